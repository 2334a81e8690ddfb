//! What a sender is told, decided in one place for every way a message can end at ingress.
//!
//! [`Answer`] is the router's side of the story (accepted, refused by a rule, unreadable,
//! cannot accept now); [`write_hl7v2_ack`] turns it into AA/AE/AR in original mode or CA/CE/CR in
//! enhanced mode, honouring MSH-15 in enhanced mode (a sender that asked for no accept ACK, or
//! for errors only, gets exactly that).
use std::time::SystemTime;

use codecs::hl7v2::{self, Ack, AckCode, AckCondition, AckError, AckMode, Msh};

/// The router's verdict on one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Taken for delivery (or dropped by a rule, which is also an acceptance).
    Accepted,
    /// A rule or the unrouted policy refused it; the text goes to the sender.
    Rejected { reason: &'a str, code: u16 },
    /// It could not be read; the error says what and where.
    Unreadable(AckError<'a>),
    /// We could not take it now (storage full, shutting down); the sender should retry.
    NotNow { reason: &'a str },
}

/// HL7 table 0357 code 207, "application internal error": the code for refusals that are about
/// routing rather than about the message's content.
pub const APPLICATION_ERROR: u16 = 207;

impl Answer<'_> {
    fn code(&self, mode: AckMode) -> AckCode {
        match (self, mode) {
            (Answer::Accepted, AckMode::Original) => AckCode::AA,
            (Answer::Accepted, AckMode::Enhanced) => AckCode::CA,
            (Answer::Rejected { .. }, AckMode::Original) => AckCode::AR,
            (Answer::Rejected { .. }, AckMode::Enhanced) => AckCode::CR,
            (Answer::Unreadable(_) | Answer::NotNow { .. }, AckMode::Original) => AckCode::AE,
            (Answer::Unreadable(_) | Answer::NotNow { .. }, AckMode::Enhanced) => AckCode::CE,
        }
    }
}

/// Appends the acknowledgement of `answer` to `out`, MLLP-framed, unless the sender asked not
/// to get one (enhanced mode, MSH-15) or the message is itself an acknowledgement (answering
/// an ACK starts an endless exchange). `original` is the message when its MSH could be read,
/// `raw` its bytes (for salvaging MSH-10 when it could not). Returns the verdict's code,
/// whether or not it was written.
pub fn write_hl7v2_ack(
    original: Option<&Msh<'_>>,
    raw: &[u8],
    answer: Answer<'_>,
    control_id: &[u8],
    now: SystemTime,
    out: &mut Vec<u8>,
) -> AckCode {
    let mode = original.map_or(AckMode::Original, Msh::ack_mode);
    let code = answer.code(mode);
    if let Some(msh) = original {
        if msh.is_ack() {
            return code;
        }
        if mode == AckMode::Enhanced {
            let wanted = match msh.accept_ack_condition() {
                None | Some(AckCondition::Always) => true,
                Some(AckCondition::Never) => false,
                Some(AckCondition::ErrorOnly) => code.is_negative(),
                Some(AckCondition::SuccessOnly) => !code.is_negative(),
            };
            if !wanted {
                return code;
            }
        }
    }
    let timestamp = crate::clock::hl7_timestamp(now);
    let (text, error) = match answer {
        Answer::Accepted => (None, None),
        Answer::Rejected { reason, code } => (
            Some(reason),
            Some(AckError {
                segment: None,
                field: None,
                offset: None,
                code,
                text: reason,
            }),
        ),
        Answer::Unreadable(error) => (Some(error.text), Some(error)),
        Answer::NotNow { reason } => (
            Some(reason),
            Some(AckError {
                segment: None,
                field: None,
                offset: None,
                code: APPLICATION_ERROR,
                text: reason,
            }),
        ),
    };
    let ack = Ack {
        code,
        control_id,
        timestamp: timestamp.as_bytes(),
        text,
        error,
    };
    out.push(codecs::mllp::START);
    match original {
        Some(msh) => hl7v2::write_ack(Some(msh), &ack, out),
        None => hl7v2::write_ack_for_bytes(raw, &ack, out),
    }
    out.push(codecs::mllp::END);
    out.push(codecs::mllp::CR);
    code
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use codecs::hl7v2::Message;

    use std::time::UNIX_EPOCH;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ack_for(message: &[u8], answer: Answer<'_>) -> Vec<u8> {
        let parsed = Message::parse(message).ok();
        let msh = parsed.as_ref().map(Message::msh);
        let mut out = Vec::new();
        write_hl7v2_ack(msh.as_ref(), message, answer, b"ACK1", at(0), &mut out);
        out
    }

    const ORIGINAL: &[u8] =
        b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01^ADT_A01|C1|P|2.4\rPID|1\r";

    #[test]
    fn original_mode_accept() {
        let out = ack_for(ORIGINAL, Answer::Accepted);
        assert_eq!(
            out,
            b"\x0bMSH|^~\\&|EPR|RX8|PAS|RX8|19700101000000+0000||ACK^A01^ACK|ACK1|P|2.4\rMSA|AA|C1\r\x1c\r"
        );
    }

    #[test]
    fn enhanced_mode_uses_commit_codes_and_honours_msh15() {
        let always = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|C1|P|2.5|||AL|NE\r";
        let out = ack_for(
            always,
            Answer::Rejected {
                reason: "no route",
                code: APPLICATION_ERROR,
            },
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("MSA|CR|C1|no route"), "{text}");
        assert!(text.contains("\rERR|"), "{text}");

        let never = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|C1|P|2.5|||NE|NE\r";
        assert!(ack_for(never, Answer::Accepted).is_empty());
        let errors_only = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|C1|P|2.5|||ER|NE\r";
        assert!(ack_for(errors_only, Answer::Accepted).is_empty());
        let text = String::from_utf8_lossy(&ack_for(
            errors_only,
            Answer::NotNow {
                reason: "disk full",
            },
        ))
        .into_owned();
        assert!(text.contains("MSA|CE|C1|disk full"), "{text}");
    }

    #[test]
    fn an_ack_is_never_acknowledged() {
        let ack = b"MSH|^~\\&|EPR|RX8|PAS|RX8|20261125||ACK^A01^ACK|A9|P|2.4\rMSA|AA|C1\r";
        assert!(ack_for(ack, Answer::Accepted).is_empty());
    }

    #[test]
    fn unreadable_input_still_gets_an_ae_with_salvaged_control_id() {
        let broken = b"MSH|^~|PAS|RX8|EPR|RX8|20261125||ADT^A01|C77|P|2.4\r";
        let error = AckError {
            segment: Some(b"MSH"),
            field: Some(2),
            offset: Some(4),
            code: 102,
            text: "bad encoding characters",
        };
        let text =
            String::from_utf8_lossy(&ack_for(broken, Answer::Unreadable(error))).into_owned();
        assert!(
            text.contains("MSA|AE|C77|bad encoding characters"),
            "{text}"
        );
        assert!(text.contains("ERR|"), "{text}");
    }
}
