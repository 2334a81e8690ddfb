//! What an endpoint's reply means for the message we sent it, and why an attempt failed.
//!
//! One place decides, for every protocol, whether a message is delivered or why not
//! ([`Failure`]: which side failed, and whether trying again can help). A reply that
//! acknowledges some other message is never taken as delivery.
use std::time::Duration;

use codecs::hl7v2::{AckCode, Message};

use super::acked::AckedIds;
use super::connect::ConnectError;

/// The outcome of one delivery attempt: `Ok` when the endpoint has the message.
pub type Verdict = Result<(), Failure>;

/// Why one delivery attempt did not deliver the message. The text is the endpoint's own words
/// where it gave any (MSA-3, ERR, a SOAP fault string), for logs and the dead-letter store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The endpoint cannot take the message now: AE/CE, a SOAP Server fault, HTTP 5xx, 408
    /// or 429.
    #[error("{0}")]
    Declined(String),
    /// The endpoint will never take this message: AR/CR, a SOAP Client fault, another 4xx.
    #[error("{0}")]
    Refused(String),
    /// The endpoint answered something that is not a usable reply to this message: unreadable,
    /// too large, no MSA, an unknown MSA-1, or an acknowledgement of another message.
    #[error("{0}")]
    BadReply(String),
    /// The message was sent and no reply came within the reply timeout.
    #[error("no reply within {0:?}")]
    NoReply(Duration),
    /// The connection broke while the message was being sent or its reply read.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// No connection could be opened (refused, unreachable, no address, connect timeout).
    #[error("{0}")]
    Unreachable(String),
    /// The TLS handshake failed: a certificate (theirs or ours) or the TLS set-up was refused.
    #[error("{0}")]
    Tls(String),
    /// The request cannot be written (a SOAPAction with a control character, say); it never
    /// left the router and never will.
    #[error("cannot write the request: {0}")]
    Unsendable(String),
}

impl Failure {
    /// Whether trying the same message again can help: the one place that answers "retry?".
    /// A refusal is the endpoint's final word and an unsendable request stays unsendable;
    /// everything else may pass (a TLS failure too, once someone fixes a certificate).
    pub fn retry_can_help(&self) -> bool {
        !matches!(self, Failure::Refused(_) | Failure::Unsendable(_))
    }

    /// Whether the failure counts against the message's retry budget: the message reached the
    /// endpoint (or was on its way) and was not taken. Failing to connect says nothing about
    /// the message, only about the endpoint, so it does not spend the budget.
    pub fn charges_message(&self) -> bool {
        matches!(
            self,
            Failure::Declined(_)
                | Failure::BadReply(_)
                | Failure::NoReply(_)
                | Failure::ConnectionLost(_)
        )
    }

    /// Whether the endpoint itself answered (it is up, whatever it said).
    pub fn endpoint_answered(&self) -> bool {
        matches!(
            self,
            Failure::Declined(_) | Failure::Refused(_) | Failure::BadReply(_)
        )
    }

    /// Certificate and handshake failures, which callers log once rather than per attempt.
    pub fn is_tls(&self) -> bool {
        matches!(self, Failure::Tls(_))
    }
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Failure {
        match e {
            ConnectError::Tls { .. } | ConnectError::NoTlsConfig(_) => Failure::Tls(e.to_string()),
            ConnectError::Timeout { .. }
            | ConnectError::Io { .. }
            | ConnectError::Resolve { .. } => Failure::Unreachable(e.to_string()),
        }
    }
}

/// The control id an HL7v2 reply acknowledges (MSA-2), if it has one.
pub fn acknowledged_id(reply: &[u8]) -> Option<&[u8]> {
    let message = Message::parse(reply).ok()?;
    Some(message.segment(b"MSA")?.field(2)?.raw())
}

/// Judges an HL7v2 reply (an ACK) to the message whose MSH-10 is `control_id`. `None` when the
/// reply acknowledges a message already acknowledged on this connection (`earlier`): some
/// servers replay earlier ACKs before the current one, and the caller reads on for the real one.
pub fn hl7v2_reply(reply: &[u8], control_id: &[u8], earlier: &AckedIds) -> Option<Verdict> {
    let message = match Message::parse(reply) {
        Ok(message) => message,
        Err(err) => return Some(Err(Failure::BadReply(format!("unreadable reply: {err}")))),
    };
    let Some(msa) = message.segment(b"MSA") else {
        return Some(Err(Failure::BadReply(
            "reply has no MSA segment".to_string(),
        )));
    };
    let field = |n: usize| msa.field(n).map(|f| f.raw()).unwrap_or_default();
    let acked = field(2);
    if acked != control_id {
        if earlier.contains(acked) {
            return None;
        }
        return Some(Err(Failure::BadReply(format!(
            "reply acknowledges {:?}, not {:?}",
            String::from_utf8_lossy(acked),
            String::from_utf8_lossy(control_id)
        ))));
    }
    let code = field(1);
    let why = || reason(&message, field(3));
    Some(match AckCode::from_bytes(code) {
        Some(AckCode::AA | AckCode::CA) => Ok(()),
        Some(code @ (AckCode::AE | AckCode::CE)) => {
            Err(Failure::Declined(format!("{}: {}", code.as_str(), why())))
        }
        Some(code @ (AckCode::AR | AckCode::CR)) => {
            Err(Failure::Refused(format!("{}: {}", code.as_str(), why())))
        }
        None => Err(Failure::BadReply(format!(
            "reply has MSA-1 {:?}, not an acknowledgement code",
            String::from_utf8_lossy(code)
        ))),
    })
}

/// MSA-3, else the text of the first ERR segment (ERR-8, else ERR-3.2, else ERR-1), else a
/// placeholder: whatever the endpoint said about why.
fn reason(message: &Message<'_>, msa3: &[u8]) -> String {
    if !msa3.is_empty() {
        return String::from_utf8_lossy(msa3).into_owned();
    }
    let from_err = message.segment(b"ERR").and_then(|err| {
        let text = |n: usize| err.field(n).map(|f| f.raw()).filter(|v| !v.is_empty());
        text(8)
            .or_else(|| {
                err.field(3)
                    .and_then(|f| f.component(2))
                    .filter(|v| !v.is_empty())
            })
            .or_else(|| text(1))
    });
    match from_err {
        Some(text) => String::from_utf8_lossy(text).into_owned(),
        None => "no reason given".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(code: &str, acked: &str, text: &str) -> Vec<u8> {
        format!(
            "MSH|^~\\&|EP|F|GANGLION|H|20261125||ACK^A01^ACK|A1|P|2.4\rMSA|{code}|{acked}|{text}\r"
        )
        .into_bytes()
    }

    fn judge(reply: &[u8], control_id: &[u8]) -> Verdict {
        hl7v2_reply(reply, control_id, &AckedIds::default()).expect("nothing acknowledged before")
    }

    #[test]
    fn accept_codes_deliver() {
        assert_eq!(judge(&ack("AA", "C1", ""), b"C1"), Ok(()));
        assert_eq!(judge(&ack("CA", "C1", ""), b"C1"), Ok(()));
    }

    #[test]
    fn error_codes_are_declined_and_reject_codes_refused() {
        assert_eq!(
            judge(&ack("AE", "C1", "database busy"), b"C1"),
            Err(Failure::Declined("AE: database busy".into()))
        );
        assert_eq!(
            judge(&ack("CR", "C1", "unknown patient"), b"C1"),
            Err(Failure::Refused("CR: unknown patient".into()))
        );
    }

    #[test]
    fn a_reply_for_another_message_is_never_delivery() {
        let verdict = judge(&ack("AA", "C2", ""), b"C1");
        assert!(
            matches!(verdict, Err(Failure::BadReply(ref why)) if why.contains("\"C2\"")),
            "{verdict:?}"
        );
    }

    /// Only a message acknowledged earlier on the connection is skipped; any other id is
    /// still a bad reply, and the current id is judged as usual.
    #[test]
    fn replayed_acks_of_earlier_messages_are_skipped() {
        let mut earlier = AckedIds::default();
        earlier.remember(b"C1");
        assert_eq!(hl7v2_reply(&ack("AA", "C1", ""), b"C2", &earlier), None);
        assert_eq!(hl7v2_reply(&ack("AE", "C1", ""), b"C2", &earlier), None);
        assert!(matches!(
            hl7v2_reply(&ack("AA", "C0", ""), b"C2", &earlier),
            Some(Err(Failure::BadReply(_)))
        ));
        assert_eq!(
            hl7v2_reply(&ack("AA", "C2", ""), b"C2", &earlier),
            Some(Ok(()))
        );
    }

    #[test]
    fn reasons_come_from_err_when_msa3_is_empty() {
        let reply = b"MSH|^~\\&|EP|F|G|H|20261125||ACK|A1|P|2.5\rMSA|AR|C1\rERR||PID^1^3|101^Required field missing^HL70357|E||||PID-3 is empty\r";
        assert_eq!(
            judge(reply, b"C1"),
            Err(Failure::Refused("AR: PID-3 is empty".into()))
        );
        let reply = b"MSH|^~\\&|EP|F|G|H|20261125||ACK|A1|P|2.5\rMSA|AR|C1\rERR||PID^1^3|101^Required field missing^HL70357\r";
        assert_eq!(
            judge(reply, b"C1"),
            Err(Failure::Refused("AR: Required field missing".into()))
        );
    }

    #[test]
    fn unreadable_replies_are_bad_replies() {
        assert!(matches!(
            judge(b"garbage", b"C1"),
            Err(Failure::BadReply(_))
        ));
        assert!(matches!(
            judge(b"MSH|^~\\&|EP|F|G|H|1||ACK|A1|P|2.5\r", b"C1"),
            Err(Failure::BadReply(ref why)) if why.contains("no MSA")
        ));
        assert!(matches!(
            judge(&ack("ZZ", "C1", ""), b"C1"),
            Err(Failure::BadReply(_))
        ));
    }

    /// Which failures a retry can help, which spend the message's budget, and which show the
    /// endpoint is up: the table the retry policy relies on.
    #[test]
    fn what_each_failure_means() {
        let table = [
            (Failure::Declined("AE".into()), true, true, true),
            (Failure::Refused("AR".into()), false, false, true),
            (Failure::BadReply("?".into()), true, true, true),
            (Failure::NoReply(Duration::from_secs(1)), true, true, false),
            (Failure::ConnectionLost("reset".into()), true, true, false),
            (Failure::Unreachable("refused".into()), true, false, false),
            (Failure::Tls("bad certificate".into()), true, false, false),
            (
                Failure::Unsendable("control character".into()),
                false,
                false,
                false,
            ),
        ];
        for (failure, retry, charges, answered) in table {
            assert_eq!(failure.retry_can_help(), retry, "{failure:?}");
            assert_eq!(failure.charges_message(), charges, "{failure:?}");
            assert_eq!(failure.endpoint_answered(), answered, "{failure:?}");
            assert_eq!(failure.is_tls(), matches!(failure, Failure::Tls(_)));
        }
    }
}
