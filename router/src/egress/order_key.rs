//! A message's order key: what it must share with another message of the same endpoint for the
//! two to keep their order when several are in flight (`order_by`).
use std::hash::Hasher;

use codecs::hl7v2::Message;
use rustc_hash::FxHasher;

use super::keyed::Key;
use crate::pipeline::{Accepted, MessageKind};
use crate::routes::delivery::OrderBy;

/// The key of `message` under `order_by`. A message without the field (or that does not
/// parse) shares the key of every other such message, so those keep their order too.
pub fn order_key(message: &Accepted, order_by: OrderBy) -> Key {
    let value = match (order_by, message.kind) {
        (OrderBy::Endpoint, _) => return 0,
        (OrderBy::Patient | OrderBy::Field(_), MessageKind::Itk) => Some(message.control_id()),
        (OrderBy::Patient, MessageKind::Hl7v2) => Message::parse(&message.bytes)
            .ok()
            .and_then(|m| Some(m.segment(b"PID")?.field(3)?.raw())),
        (OrderBy::Field(path), MessageKind::Hl7v2) => Message::parse(&message.bytes)
            .ok()
            .and_then(|m| m.get(&path)),
    };
    let mut hasher = FxHasher::default();
    hasher.write(value.unwrap_or_default());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use codecs::hl7v2::FieldPath;

    use super::*;

    fn hl7(control_id: &str, patient: &str, visit: &str) -> Accepted {
        let text = format!(
            "MSH|^~\\&|PAS|RX8|EPR|RX8|20261125093015||ADT^A08|{control_id}|P|2.4\r\
             PID|1||{patient}^^^NHS^NH||DOE^JANE\rPV1|1|I|||||||||||||||||{visit}\r"
        );
        let at = text.find(control_id).unwrap_or_default();
        Accepted {
            seq: 0,
            kind: MessageKind::Hl7v2,
            control_id: at..at + control_id.len(),
            bytes: text.into_bytes().into_boxed_slice(),
            soap_action: None,
            arrived: SystemTime::UNIX_EPOCH,
            listener: Arc::from("in"),
            peer: Arc::from("peer"),
        }
    }

    #[test]
    fn one_patient_one_key_whatever_else_differs() {
        let (a1, a2, b) = (
            hl7("1", "111", "V1"),
            hl7("2", "111", "V2"),
            hl7("3", "222", "V1"),
        );
        let key = |m: &Accepted, by| order_key(m, by);
        assert_eq!(key(&a1, OrderBy::Patient), key(&a2, OrderBy::Patient));
        assert_ne!(key(&a1, OrderBy::Patient), key(&b, OrderBy::Patient));
        let visit = OrderBy::Field(FieldPath::parse("PV1-19").expect("a path"));
        assert_eq!(key(&a1, visit), key(&b, visit));
        assert_ne!(key(&a1, visit), key(&a2, visit));
        assert_eq!(key(&a1, OrderBy::Endpoint), key(&b, OrderBy::Endpoint));
    }

    #[test]
    fn an_itk_message_is_keyed_by_its_tracking_id() {
        let mut one = hl7("T-1", "111", "V1");
        let mut other = hl7("T-2", "111", "V1");
        one.kind = MessageKind::Itk;
        other.kind = MessageKind::Itk;
        assert_ne!(
            order_key(&one, OrderBy::Patient),
            order_key(&other, OrderBy::Patient)
        );
    }
}
