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
