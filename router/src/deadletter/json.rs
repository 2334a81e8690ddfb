//! Dead letters as JSON, the same for `ganglion dead-letters --json` and the admin address.
use serde_json::json;

use super::{DeadLetter, State, Summary};
use crate::wire_time::rfc3339_nanos;

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Ready => "ready",
        State::Replaying => "replaying",
    }
}

pub fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "id": s.id.as_str(),
        "state": state_name(s.state),
        "time": rfc3339_nanos(s.time_unix_nanos),
        "endpoint": s.endpoint,
        "reason": s.reason.as_str(),
        "control_id": s.control_id,
        "bytes": s.message_len,
        "detail": s.detail,
    })
}

pub fn letter_json(l: &DeadLetter, state: State) -> serde_json::Value {
    json!({
        "id": l.id.as_str(),
        "state": state_name(state),
        "time": rfc3339_nanos(l.time_unix_nanos),
        "endpoint": l.endpoint,
        "reason": l.reason.as_str(),
        "detail": l.detail,
        "source": l.source.map(|s| json!({"shard": s.shard, "record": s.record.0})),
        "listener": l.origin.listener,
        "peer": l.origin.peer,
        "arrival": rfc3339_nanos(l.origin.arrival_unix_nanos),
        "control_id": l.origin.control_id,
        "reply": l.reply.as_ref().map(|r| String::from_utf8_lossy(r)),
        "message": String::from_utf8_lossy(&l.message),
    })
}
