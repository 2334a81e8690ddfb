//! An [`Answer`] as an HL7v2 acknowledgement: AA/AE/AR in original mode, CA/CE/CR in enhanced
//! mode, honouring MSH-15 in enhanced mode (a sender that asked for no accept ACK, or for
//! errors only, gets exactly that).
use std::fmt;
use std::time::SystemTime;

use codecs::hl7v2::{self, Ack, AckCode, AckCondition, AckError, AckMode, Msh, ParseError};

use super::{Answer, Malformation};

/// An HL7v2 answer: a malformed message is described by the parser's error.
pub type Hl7Answer<'a> = Answer<'a, &'a ParseError>;

/// HL7 table 0357 code 207, "application internal error": the code for refusals that are about
/// routing rather than about the message's content.
pub const APPLICATION_ERROR: u16 = 207;
/// Table 0357 code 100 would blame segment order; an oversized message is a "value too long".
const TOO_LONG: u16 = 104;

impl Malformation for &ParseError {
    fn offset(&self) -> usize {
        self.offset
    }

    fn logged(&self) -> impl fmt::Display + '_ {
        // The parser's words name segments, fields and offsets, never values.
        *self
    }
}

fn code<M>(answer: &Answer<'_, M>, mode: AckMode) -> AckCode {
    let enhanced = mode == AckMode::Enhanced;
    match answer {
        Answer::Accepted if enhanced => AckCode::CA,
        Answer::Accepted => AckCode::AA,
        Answer::TooLarge { .. } | Answer::Rejected { .. } | Answer::Unroutable if enhanced => {
            AckCode::CR
        }
        Answer::TooLarge { .. } | Answer::Rejected { .. } | Answer::Unroutable => AckCode::AR,
        Answer::Malformed(_) | Answer::NotDurable(_) | Answer::NoRoom(_) if enhanced => AckCode::CE,
        Answer::Malformed(_) | Answer::NotDurable(_) | Answer::NoRoom(_) => AckCode::AE,
    }
}

/// Appends the acknowledgement of `answer` to `out`, MLLP-framed, unless the sender asked not
/// to get one (enhanced mode, MSH-15) or the message is itself an acknowledgement (answering
/// an ACK starts an endless exchange). `original` is the message when its MSH could be read,
/// `raw` its bytes (for salvaging MSH-10 when it could not). Returns the verdict's code,
/// whether or not it was written.
pub fn write_ack(
    original: Option<&Msh<'_>>,
    raw: &[u8],
    answer: &Hl7Answer<'_>,
    control_id: &[u8],
    now: SystemTime,
    out: &mut Vec<u8>,
) -> AckCode {
    let mode = original.map_or(AckMode::Original, Msh::ack_mode);
    let code = code(answer, mode);
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
    let timestamp = crate::wire_time::hl7_timestamp(now);
    let parse_text;
    let reason = answer.reason();
    let error = match (answer, reason.as_deref()) {
        (Answer::Malformed(error), _) => {
            parse_text = error.to_string();
            Some(AckError::from_parse_error(error, &parse_text))
        }
        (_, Some(text)) => Some(AckError {
            segment: None,
            field: None,
            offset: None,
            code: match answer {
                Answer::TooLarge { .. } => TOO_LONG,
                _ => APPLICATION_ERROR,
            },
            text,
        }),
        (_, None) => None,
    };
    let ack = Ack {
        code,
        control_id,
        timestamp: timestamp.as_bytes(),
        text: error.map(|e| e.text),
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
    use std::time::{Duration, UNIX_EPOCH};

    use codecs::hl7v2::{ErrorKind, Message};

    use super::*;
    use crate::ingress::cutoff::Cutoff;
    use crate::shard::durable::NotDurable;

    fn ack_for(message: &[u8], answer: Hl7Answer<'_>) -> String {
        let parsed = Message::parse(message).ok();
        let msh = parsed.as_ref().map(Message::msh);
        let mut out = Vec::new();
        let at = UNIX_EPOCH + Duration::from_secs(0);
        write_ack(msh.as_ref(), message, &answer, b"ACK1", at, &mut out);
        String::from_utf8(out).expect("an ACK of ASCII input is ASCII")
    }

    const ORIGINAL: &[u8] =
        b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01^ADT_A01|C1|P|2.4\rPID|1\r";
    const ENHANCED: &[u8] = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|C1|P|2.5|||AL|NE\r";

    /// The ACK a sender of `ORIGINAL` gets: its MSA and, for a refusal, its ERR.
    fn original_ack(msa: &str, err: Option<&str>) -> String {
        let head = "\x0bMSH|^~\\&|EPR|RX8|PAS|RX8|19700101000000+0000||ACK^A01^ACK|ACK1|P|2.4\r";
        let err = err.map(|e| format!("ERR|{e}\r")).unwrap_or_default();
        format!("{head}MSA|{msa}\r{err}\x1c\r")
    }

    #[test]
    fn original_mode_accept() {
        assert_eq!(
            ack_for(ORIGINAL, Answer::Accepted),
            original_ack("AA|C1", None)
        );
    }

    #[test]
    fn each_refusal_has_its_code_and_reason() {
        let rejected = Answer::Rejected {
            rule: "no-tests",
            reason: "test messages are not taken",
        };
        let cases: [(Hl7Answer<'_>, &str, &str); 5] = [
            (
                rejected,
                "AR|C1|test messages are not taken",
                "||207^Application internal error^HL70357|E||||test messages are not taken",
            ),
            (
                Answer::Unroutable,
                "AR|C1|no route for this message",
                "||207^Application internal error^HL70357|E||||no route for this message",
            ),
            (
                Answer::TooLarge { limit: 10 },
                "AR|C1|message longer than this listener's limit of 10 bytes",
                "||104^Value too long^HL70357|E||||message longer than this listener's limit of 10 bytes",
            ),
            (
                Answer::NotDurable(NotDurable::StoreFull),
                "AE|C1|the router's message store is full; try again later",
                "||207^Application internal error^HL70357|E||||the router's message store is full; try again later",
            ),
            (
                Answer::NoRoom(Cutoff::InputBudget),
                &format!("AE|C1|{}", Cutoff::InputBudget.reason()),
                &format!(
                    "||207^Application internal error^HL70357|E||||{}",
                    Cutoff::InputBudget.reason()
                ),
            ),
        ];
        for (answer, msa, err) in cases {
            assert_eq!(
                ack_for(ORIGINAL, answer),
                original_ack(msa, Some(err)),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn enhanced_mode_uses_commit_codes_and_honours_msh15() {
        let text = ack_for(ENHANCED, Answer::Unroutable);
        assert!(text.contains("MSA|CR|C1|no route"), "{text}");
        assert!(text.contains("\rERR|"), "{text}");
        assert!(ack_for(ENHANCED, Answer::Accepted).contains("MSA|CA|C1\r"));

        let never = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|C1|P|2.5|||NE|NE\r";
        assert!(ack_for(never, Answer::Accepted).is_empty());
        let errors_only = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|C1|P|2.5|||ER|NE\r";
        assert!(ack_for(errors_only, Answer::Accepted).is_empty());
        let text = ack_for(errors_only, Answer::NotDurable(NotDurable::DiskFull));
        assert!(
            text.contains("MSA|CE|C1|the router's disk is full"),
            "{text}"
        );
    }

    #[test]
    fn an_ack_is_never_acknowledged() {
        let ack = b"MSH|^~\\&|EPR|RX8|PAS|RX8|20261125||ACK^A01^ACK|A9|P|2.4\rMSA|AA|C1\r";
        assert!(ack_for(ack, Answer::Accepted).is_empty());
        assert!(ack_for(ack, Answer::Unroutable).is_empty());
    }

    #[test]
    fn malformed_input_still_gets_an_ae_with_salvaged_control_id() {
        let broken = b"MSH|^~|PAS|RX8|EPR|RX8|20261125||ADT^A01|C77|P|2.4\r";
        let error = Message::parse(broken).expect_err("MSH-2 is too short");
        let text = ack_for(broken, Answer::Malformed(&error));
        assert!(text.contains(&format!("MSA|AE|C77|{error}")), "{text}");
        assert!(
            text.contains("\rERR|MSH^1^2^102&Data type error&HL70357|MSH^1^2|"),
            "{text}"
        );
    }

    #[test]
    fn a_bad_escape_found_by_routing_is_placed_in_err() {
        let error = ParseError {
            offset: 40,
            segment: Some(*b"PID"),
            field: Some(5),
            kind: ErrorKind::BadEscape,
        };
        let text = ack_for(ORIGINAL, Answer::Malformed(&error));
        assert!(text.contains("MSA|AE|C1|"), "{text}");
        assert!(
            text.contains("\rERR|PID^1^5^102&Data type error&HL70357|PID^1^5|"),
            "{text}"
        );
    }
}
