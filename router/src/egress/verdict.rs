//! What an endpoint's reply means for the message we sent it.
//!
//! One place decides, for every protocol, whether a message is delivered, should be tried
//! again, or was refused for good (and goes to the dead-letter store with the reply beside it).
//! A reply that acknowledges some other message is never taken as delivery.
use codecs::hl7v2::{AckCode, Message};

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The endpoint has the message.
    Delivered,
    /// Try again after a backoff: the endpoint had a problem that may pass.
    Retry(String),
    /// The endpoint will never take this message; the reason says why, in its words.
    Refused(String),
}

/// Judges an HL7v2 reply (an ACK) to the message whose MSH-10 is `control_id`.
pub fn hl7v2_reply(reply: &[u8], control_id: &[u8]) -> Verdict {
    let message = match Message::parse(reply) {
        Ok(message) => message,
        Err(err) => return Verdict::Retry(format!("unreadable reply: {err}")),
    };
    let Some(msa) = message.segment(b"MSA") else {
        return Verdict::Retry("reply has no MSA segment".to_string());
    };
    let field = |n: usize| msa.field(n).map(|f| f.raw()).unwrap_or_default();
    let acked = field(2);
    if acked != control_id {
        return Verdict::Retry(format!(
            "reply acknowledges {:?}, not {:?}",
            String::from_utf8_lossy(acked),
            String::from_utf8_lossy(control_id)
        ));
    }
    let code = field(1);
    let why = || reason(&message, field(3));
    match AckCode::from_bytes(code) {
        Some(AckCode::AA | AckCode::CA) => Verdict::Delivered,
        Some(code @ (AckCode::AE | AckCode::CE)) => {
            Verdict::Retry(format!("{}: {}", code.as_str(), why()))
        }
        Some(code @ (AckCode::AR | AckCode::CR)) => {
            Verdict::Refused(format!("{}: {}", code.as_str(), why()))
        }
        None => Verdict::Retry(format!(
            "reply has MSA-1 {:?}, not an acknowledgement code",
            String::from_utf8_lossy(code)
        )),
    }
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

    #[test]
    fn accept_codes_deliver() {
        assert_eq!(hl7v2_reply(&ack("AA", "C1", ""), b"C1"), Verdict::Delivered);
        assert_eq!(hl7v2_reply(&ack("CA", "C1", ""), b"C1"), Verdict::Delivered);
    }

    #[test]
    fn error_codes_retry_and_reject_codes_refuse() {
        assert_eq!(
            hl7v2_reply(&ack("AE", "C1", "database busy"), b"C1"),
            Verdict::Retry("AE: database busy".into())
        );
        assert_eq!(
            hl7v2_reply(&ack("CR", "C1", "unknown patient"), b"C1"),
            Verdict::Refused("CR: unknown patient".into())
        );
    }

    #[test]
    fn a_reply_for_another_message_is_never_delivery() {
        let verdict = hl7v2_reply(&ack("AA", "C2", ""), b"C1");
        assert!(
            matches!(verdict, Verdict::Retry(ref why) if why.contains("\"C2\"")),
            "{verdict:?}"
        );
    }

    #[test]
    fn reasons_come_from_err_when_msa3_is_empty() {
        let reply = b"MSH|^~\\&|EP|F|G|H|20261125||ACK|A1|P|2.5\rMSA|AR|C1\rERR||PID^1^3|101^Required field missing^HL70357|E||||PID-3 is empty\r";
        assert_eq!(
            hl7v2_reply(reply, b"C1"),
            Verdict::Refused("AR: PID-3 is empty".into())
        );
        let reply = b"MSH|^~\\&|EP|F|G|H|20261125||ACK|A1|P|2.5\rMSA|AR|C1\rERR||PID^1^3|101^Required field missing^HL70357\r";
        assert_eq!(
            hl7v2_reply(reply, b"C1"),
            Verdict::Refused("AR: Required field missing".into())
        );
    }

    #[test]
    fn unreadable_replies_retry() {
        assert!(matches!(hl7v2_reply(b"garbage", b"C1"), Verdict::Retry(_)));
        assert!(matches!(
            hl7v2_reply(b"MSH|^~\\&|EP|F|G|H|1||ACK|A1|P|2.5\r", b"C1"),
            Verdict::Retry(ref why) if why.contains("no MSA")
        ));
        assert!(matches!(
            hl7v2_reply(&ack("ZZ", "C1", ""), b"C1"),
            Verdict::Retry(_)
        ));
    }
}
