//! How an endpoint answers one message: the policy (accept, AE, AR, drop the connection, be
//! slow) drawn from the seed, and the bytes (an HL7 ACK with MSA-2 = MSH-10; an ITK
//! `SimpleMessageResponse` or SOAP fault in an HTTP response), written by [`crate::receiver`].
use codecs::hl7v2::AckCode;
use codecs::itk;

use crate::receiver::reply;
use crate::rng::Rng;

/// How often the fleet misbehaves, and how.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Fraction answered AE (ITK: a Server fault): the router should retry.
    pub error: f64,
    /// Fraction answered AR (ITK: a Client fault): the router should dead-letter.
    pub reject: f64,
    /// Fraction whose connection is closed instead of answered.
    pub drop: f64,
    /// Fraction answered late, after `delay`.
    pub slow: f64,
    pub delay_ns: u64,
}

/// The outcome an endpoint chose; its letter goes in arrival reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Error,
    Reject,
    Drop,
}

impl Outcome {
    pub fn letter(self) -> u8 {
        match self {
            Outcome::Accept => b'A',
            Outcome::Error => b'E',
            Outcome::Reject => b'R',
            Outcome::Drop => b'D',
        }
    }

    pub fn from_letter(b: u8) -> Option<Outcome> {
        match b {
            b'A' => Some(Outcome::Accept),
            b'E' => Some(Outcome::Error),
            b'R' => Some(Outcome::Reject),
            b'D' => Some(Outcome::Drop),
            _ => None,
        }
    }
}

impl Behaviour {
    /// The outcome and extra delay for the next message.
    pub fn decide(&self, rng: &mut Rng) -> (Outcome, u64) {
        let x = rng.unit();
        let outcome = if x < self.drop {
            Outcome::Drop
        } else if x < self.drop + self.reject {
            Outcome::Reject
        } else if x < self.drop + self.reject + self.error {
            Outcome::Error
        } else {
            Outcome::Accept
        };
        let delay = if self.delay_ns > 0 && rng.chance(self.slow) {
            self.delay_ns
        } else {
            0
        };
        (outcome, delay)
    }
}

/// The MLLP-framed ACK for `frame`, and the message's control id (empty when unreadable).
pub fn hl7_ack<'f>(frame: &'f [u8], outcome: Outcome, out: &mut Vec<u8>) -> &'f [u8] {
    let code = match outcome {
        Outcome::Error => AckCode::AE,
        Outcome::Reject => AckCode::AR,
        _ => AckCode::AA,
    };
    reply::hl7_ack(frame, code, out).unwrap_or_default()
}

fn between<'a>(hay: &'a [u8], open: &[u8], close: &[u8]) -> Option<&'a [u8]> {
    let start = memchr::memmem::find(hay, open)? + open.len();
    let len = memchr::memmem::find(hay.get(start..)?, close)?;
    hay.get(start..start + len)
}

/// The HTTP response for an ITK request body.
pub fn itk_response(body: &[u8], outcome: Outcome, keep_alive: bool, out: &mut Vec<u8>) {
    let relates = between(body, b"<wsa:MessageID>", b"</wsa:MessageID>")
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let action = between(body, b"<wsa:Action>", b"</wsa:Action>")
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let mut soap = Vec::with_capacity(1024);
    let status = match outcome {
        Outcome::Accept | Outcome::Drop => {
            itk::write_simple_response(
                &mut soap,
                &itk::SimpleResponse {
                    message_id: "uuid:0E7A9A80-0000-4000-8000-000000000001",
                    request_action: &action,
                    relates_to: &relates,
                    text: "OK",
                    timestamp: None,
                },
            );
            200
        }
        Outcome::Error | Outcome::Reject => {
            let code = if outcome == Outcome::Reject {
                itk::FaultCode::Client
            } else {
                itk::FaultCode::Server
            };
            itk::write_fault(
                &mut soap,
                &itk::FaultReply {
                    message_id: "uuid:0E7A9A80-0000-4000-8000-000000000002",
                    relates_to: Some(&relates),
                    code,
                    fault_string: code.default_string(),
                    error: itk::ErrorInfo {
                        id: "0E7A9A80-0000-4000-8000-000000000003",
                        code: "2100",
                        code_system: itk::TOOLKIT_ERROR_CODE_SYSTEM,
                        text: reply::REFUSAL,
                        diagnostic: None,
                    },
                },
            );
            500
        }
    };
    // Only fails on a status that allows no body, and these are constants that allow one.
    let _ = reply::http(status, &soap, keep_alive, out);
}
