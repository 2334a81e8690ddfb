//! Between an accepted message and its log record: what ingress parsed goes into the record
//! ([`parsed`]), and a record comes back as an accepted message ([`accepted`]) from what was
//! stored, parsing the bytes again ([`describe`]) only for records that did not store it
//! (format version 1, or letters put back by a tool).
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::pipeline::{Accepted, MessageKind};
use crate::wal::{OwnedParsed, Parsed, PendingRecord, Span};

/// What ingress parsed of `message`, for its record.
pub fn parsed(message: &Accepted) -> Parsed<'_> {
    Parsed {
        kind: Some(message.kind),
        control_id: span(&message.control_id),
        soap_action: message.soap_action.as_deref(),
    }
}

/// `range` as a [`Span`]; an empty one if it does not fit (it always does: messages are
/// smaller than 4 GiB).
fn span(range: &std::ops::Range<usize>) -> Span {
    match (u32::try_from(range.start), u32::try_from(range.len())) {
        (Ok(offset), Ok(len)) => Span { offset, len },
        _ => Span::default(),
    }
}

/// The accepted message a pending record stands for, numbered `seq`.
pub fn accepted(record: &PendingRecord, seq: u64) -> Accepted {
    made(record, record.message.clone().into(), seq)
}

/// As [`accepted`], keeping the record's message bytes instead of copying them (a record
/// read for this one message, as a cluster node's consumed message is).
pub fn into_accepted(mut record: PendingRecord, seq: u64) -> Accepted {
    let bytes = std::mem::take(&mut record.message).into();
    made(&record, bytes, seq)
}

fn made(record: &PendingRecord, bytes: Box<[u8]>, seq: u64) -> Accepted {
    let parsed = match record.parsed.kind {
        Some(_) => record.parsed.clone(),
        None => describe(&bytes),
    };
    let control_id = parsed.control_id.range();
    Accepted {
        seq,
        kind: kind_of(&parsed),
        // A span that does not fit the bytes (it cannot, for a record whose checksum held)
        // quotes nothing rather than the wrong bytes.
        control_id: if control_id.end <= bytes.len() {
            control_id
        } else {
            0..0
        },
        soap_action: parsed.soap_action.map(String::into_boxed_str),
        arrived: UNIX_EPOCH + Duration::from_nanos(record.origin.arrival_unix_nanos),
        listener: Arc::from(record.origin.listener.as_str()),
        peer: Arc::from(record.origin.peer.as_str()),
        bytes,
    }
}

/// The kind a record kept or [`describe`] found: every message has one by then (only a
/// version 1 record lacks it, and those are described first).
pub fn kind_of(parsed: &OwnedParsed) -> MessageKind {
    debug_assert!(
        parsed.kind.is_some(),
        "a described message always has a kind"
    );
    parsed.kind.unwrap_or(MessageKind::Hl7v2)
}

/// Kind, control-id position and SOAPAction of message bytes nobody recorded them for: ITK if
/// the bytes parse as ITK, HL7v2 otherwise.
pub fn describe(bytes: &[u8]) -> OwnedParsed {
    if let Ok(message) = codecs::itk::parse(bytes) {
        let tracking = message.envelope.tracking_id;
        let action = message
            .soap
            .as_ref()
            .and_then(|s| s.action)
            .unwrap_or(message.envelope.service)
            .decoded()
            .ok()
            .map(|a| a.into_owned());
        let at = tracking.offset();
        return OwnedParsed {
            kind: Some(MessageKind::Itk),
            control_id: span(&(at..at + tracking.raw().len())),
            soap_action: action,
        };
    }
    let control_id = codecs::hl7v2::Message::parse(bytes)
        .ok()
        .and_then(|m| {
            let id = m.msh().control_id()?;
            m.offset_of(id).map(|at| at..at + id.len())
        })
        .unwrap_or(0..0);
    OwnedParsed {
        kind: Some(MessageKind::Hl7v2),
        control_id: span(&control_id),
        soap_action: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{OwnedOrigin, RecordId};

    fn record(message: &[u8], parsed: OwnedParsed) -> PendingRecord {
        PendingRecord {
            id: RecordId(4),
            destinations: vec!["E".into()],
            pending: vec![0],
            origin: OwnedOrigin {
                listener: "itk".into(),
                peer: "10.0.0.1:5".into(),
                arrival_unix_nanos: 1_000,
                control_id: "T-1".into(),
            },
            parsed,
            message: message.to_vec(),
        }
    }

    /// Bytes that parse as neither ITK nor HL7v2: what was stored decides, nothing is guessed.
    #[test]
    fn a_stored_kind_is_used_even_where_the_bytes_would_say_otherwise() {
        let bytes = b"xxT-1xx not a SOAP envelope";
        let stored = OwnedParsed {
            kind: Some(MessageKind::Itk),
            control_id: Span { offset: 2, len: 3 },
            soap_action: Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0".into()),
        };
        let message = accepted(&record(bytes, stored), 7);
        assert_eq!(message.kind, MessageKind::Itk);
        assert_eq!(message.control_id(), b"T-1");
        assert_eq!(
            message.soap_action.as_deref(),
            Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
        );
        assert_eq!(message.seq, 7);
        assert_eq!(&*message.listener, "itk");
    }

    /// Taking the record whole gives the same message as reading it borrowed.
    #[test]
    fn a_record_taken_whole_is_the_same_message() {
        let bytes = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A08|C-9|P|2.4\rPID|1\r";
        let borrowed = accepted(&record(bytes, OwnedParsed::default()), 3);
        let owned = into_accepted(record(bytes, OwnedParsed::default()), 3);
        assert_eq!(owned.bytes, borrowed.bytes);
        assert_eq!(owned.control_id(), b"C-9");
        assert_eq!(owned.control_id, borrowed.control_id);
        assert_eq!(owned.kind, borrowed.kind);
        assert_eq!((owned.seq, &*owned.peer), (3, "10.0.0.1:5"));
    }

    #[test]
    fn a_record_that_stored_nothing_is_described_from_its_bytes() {
        let bytes = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A08|C-9|P|2.4\rPID|1\r";
        let message = accepted(&record(bytes, OwnedParsed::default()), 1);
        assert_eq!(message.kind, MessageKind::Hl7v2);
        assert_eq!(message.control_id(), b"C-9");
        assert_eq!(message.soap_action, None);
    }

    #[test]
    fn a_span_past_the_end_quotes_nothing() {
        let stored = OwnedParsed {
            kind: Some(MessageKind::Hl7v2),
            control_id: Span { offset: 2, len: 99 },
            soap_action: None,
        };
        assert_eq!(accepted(&record(b"short", stored), 1).control_id(), b"");
    }
}
