//! An [`Answer`] as an ITK reply: the `SimpleMessageResponse` for an accepted request, else a
//! SOAP fault: Client (toolkit code 1000, or the Distribution Envelope's own code) when the
//! request is at fault, Server (2100) when the router cannot take it now.
use std::fmt;

use codecs::itk::{self, ErrorInfo, FaultCode, FaultReply, ItkError, SimpleResponse};

use super::{Answer, Malformation};
use crate::ids::Uuids;
use crate::metrics::listener::Code;

/// An ITK answer: a malformed request is described by the parser's error.
pub type ItkAnswer<'a> = Answer<'a, &'a ItkError>;

/// Toolkit error code for a request we cannot process (malformed, unroutable).
pub const ERROR_CLIENT: &str = "1000";
/// Toolkit error code for a failure on our side (the message could not be stored).
pub const ERROR_SERVER: &str = "2100";

/// The request an answer replies to, as far as it could be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replying<'a> {
    /// Its `wsa:MessageID`, quoted as `wsa:RelatesTo`.
    pub message_id: Option<&'a str>,
    /// Its action, which names the response's.
    pub action: &'a str,
}

impl Malformation for &ItkError {
    fn offset(&self) -> usize {
        self.offset
    }

    fn logged(&self) -> impl fmt::Display + '_ {
        LoggedError(self)
    }
}

/// Writes the reply to `answer` into `out`; returns its HTTP status and what it counts as.
pub fn write_reply(
    answer: &ItkAnswer<'_>,
    request: Replying<'_>,
    uuids: &Uuids,
    out: &mut Vec<u8>,
) -> (u16, Code) {
    let counted = if answer.accepted() {
        Code::Response
    } else if answer.senders_fault() {
        Code::ClientFault
    } else {
        Code::ServerFault
    };
    let reason = answer.reason();
    match (answer, reason.as_deref()) {
        (Answer::Malformed(error), _) => write_malformed(error, uuids, out),
        (_, Some(text)) => {
            let (code, error_code) = if answer.senders_fault() {
                (FaultCode::Client, ERROR_CLIENT)
            } else {
                (FaultCode::Server, ERROR_SERVER)
            };
            write_fault(uuids, request.message_id, code, error_code, text, out);
        }
        (_, None) => {
            let reply = SimpleResponse {
                message_id: &uuids.next_uuid(),
                request_action: request.action,
                relates_to: request.message_id.unwrap_or(""),
                text: "OK",
                timestamp: None,
            };
            itk::write_simple_response(out, &reply);
            return (200, counted);
        }
    }
    (500, counted)
}

/// A fault with a toolkit error: `text` for `ErrorText`, no diagnostic.
pub fn write_fault(
    uuids: &Uuids,
    relates_to: Option<&str>,
    code: FaultCode,
    error_code: &str,
    text: &str,
    out: &mut Vec<u8>,
) {
    let id = uuids.next_uuid();
    let reply = FaultReply {
        message_id: &uuids.next_uuid(),
        relates_to,
        code,
        fault_string: code.default_string(),
        error: ErrorInfo::toolkit(&id, error_code, text),
    };
    itk::write_fault(out, &reply);
}

/// The fault for a request that could not be read: the envelope's own error code when the
/// Distribution Envelope rules name one, and the SOAP fault code the error calls for.
fn write_malformed(error: &ItkError, uuids: &Uuids, out: &mut Vec<u8>) {
    let text = error.to_string();
    let (code, system) = match error.de_code() {
        Some(de) => (de, itk::DE_ERROR_CODE_SYSTEM),
        None => (ERROR_CLIENT, itk::TOOLKIT_ERROR_CODE_SYSTEM),
    };
    let fault = match error.kind {
        itk::ItkErrorKind::NotUnderstood => FaultCode::MustUnderstand,
        itk::ItkErrorKind::SoapVersionMismatch => FaultCode::VersionMismatch,
        _ => FaultCode::Client,
    };
    let id = uuids.next_uuid();
    let reply = FaultReply {
        message_id: &uuids.next_uuid(),
        relates_to: None,
        code: fault,
        fault_string: fault.default_string(),
        error: ErrorInfo {
            id: &id,
            code,
            code_system: system,
            text: "the request could not be accepted",
            diagnostic: Some(&text),
        },
    };
    itk::write_fault(out, &reply);
}

/// An ITK error as it may be logged: where and what, without the text quick-xml quotes from
/// the message (names and values) or the entity name a sender wrote.
struct LoggedError<'e>(&'e ItkError);

impl fmt::Display for LoggedError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        match &e.kind {
            itk::ItkErrorKind::Xml(_) => f.write_str("malformed XML")?,
            itk::ItkErrorKind::UndefinedEntity(_) => f.write_str("undefined entity reference")?,
            itk::ItkErrorKind::UnsupportedEncoding(_) => f.write_str("unsupported encoding")?,
            kind => write!(f, "{kind}")?,
        }
        write!(f, " at byte {}", e.offset)?;
        if !e.path.is_empty() {
            write!(f, " in {}", e.path)?;
        }
        if let Some(de) = e.de_code() {
            write!(f, " ({de})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::cutoff::Cutoff;
    use crate::shard::durable::NotDurable;

    const REQUEST: Replying<'static> = Replying {
        message_id: Some("REQ-1"),
        action: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
    };

    fn reply(answer: &ItkAnswer<'_>, request: Replying<'_>) -> (u16, Code, String) {
        let mut out = Vec::new();
        let (status, code) = write_reply(answer, request, &Uuids::new(0), &mut out);
        let text = String::from_utf8(out).expect("our SOAP is UTF-8");
        (status, code, text)
    }

    /// The parts of a fault that tell the sender what happened.
    fn fault(code: &str, error_code: &str, text: &str) -> [String; 3] {
        [
            format!("<faultcode>{code}</faultcode>"),
            format!(">{error_code}</itk:ErrorCode>"),
            format!("<itk:ErrorText>{text}</itk:ErrorText>"),
        ]
    }

    #[test]
    fn an_accepted_request_gets_the_simple_response() {
        let (status, code, text) = reply(&Answer::Accepted, REQUEST);
        assert_eq!((status, code), (200, Code::Response));
        assert!(text.contains(">OK</itk:SimpleMessageResponse>"), "{text}");
        assert!(
            text.contains("<wsa:RelatesTo>REQ-1</wsa:RelatesTo>"),
            "{text}"
        );
        assert!(
            text.contains("SendCDADocument-v2-0Response</wsa:Action>"),
            "{text}"
        );
    }

    #[test]
    fn each_refusal_is_a_client_or_server_fault_with_its_toolkit_code() {
        let cases: [(ItkAnswer<'_>, Code, [String; 3]); 5] = [
            (
                Answer::Rejected {
                    rule: "r",
                    reason: "not for us",
                },
                Code::ClientFault,
                fault("soap:Client", "1000", "not for us"),
            ),
            (
                Answer::Unroutable,
                Code::ClientFault,
                fault("soap:Client", "1000", "no route for this message"),
            ),
            (
                Answer::TooLarge { limit: 9 },
                Code::ClientFault,
                fault(
                    "soap:Client",
                    "1000",
                    "message longer than this listener's limit of 9 bytes",
                ),
            ),
            (
                Answer::NotDurable(NotDurable::StoreFailed),
                Code::ServerFault,
                fault(
                    "soap:Server",
                    "2100",
                    "the router cannot store messages now; try again later",
                ),
            ),
            (
                Answer::NoRoom(Cutoff::PeerBufferCap),
                Code::ServerFault,
                fault("soap:Server", "2100", Cutoff::PeerBufferCap.reason()),
            ),
        ];
        for (answer, counted, parts) in cases {
            let (status, code, text) = reply(&answer, REQUEST);
            assert_eq!((status, code), (500, counted), "{answer:?}");
            for part in parts {
                assert!(text.contains(&part), "{answer:?}: {part} in {text}");
            }
            assert!(
                text.contains("<wsa:RelatesTo>REQ-1</wsa:RelatesTo>"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_malformed_request_gets_a_client_fault_with_the_parsers_diagnostic() {
        let error = itk::parse(b"<not-soap").expect_err("not XML");
        let (status, code, text) = reply(&Answer::Malformed(&error), Replying::default());
        assert_eq!((status, code), (500, Code::ClientFault));
        for part in fault("soap:Client", "1000", "the request could not be accepted") {
            assert!(text.contains(&part), "{part} in {text}");
        }
        assert!(text.contains("<itk:ErrorDiagnosticText>"), "{text}");
        assert!(!text.contains("RelatesTo"), "{text}");
    }

    #[test]
    fn logged_errors_leave_out_what_the_sender_wrote() {
        let error = itk::parse(b"<a>&secret;</a>").expect_err("an undefined entity");
        let logged = (&error).logged().to_string();
        assert!(!logged.contains("secret"), "{logged}");
    }
}
