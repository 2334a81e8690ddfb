//! `GET /routes`: the routing table in force: which reload made it (`version`: 1 for the one
//! start-up applied, one more per reload applied since), when, from which files' bytes
//! (SHA-256, as `sha256sum` prints it), and each rule in file order with what it does and how
//! many messages it has matched since this table was loaded.
use serde_json::{json, Value};

use crate::routes::{Action, RuleId};
use crate::shard::Routing;
use crate::wire_time::xml_datetime;

/// The body of `/routes`.
pub fn describe(routing: &Routing) -> Value {
    let p = &routing.provenance;
    let rules: Vec<Value> = routing
        .table
        .rules()
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let action = match rule.action() {
                Action::To(_) => "deliver",
                Action::Reject(_) => "reject",
                Action::Drop => "drop",
            };
            json!({
                "name": rule.name(),
                "line": rule.line(),
                "action": action,
                "continue": rule.continues(),
                "hits": routing.hits.total(RuleId(i as u32)),
            })
        })
        .collect();
    json!({
        "version": p.version,
        "loaded_at": p.loaded_at.map(xml_datetime),
        "files": p.files.iter().map(|(path, digest)| json!({
            "path": path.display().to_string(),
            "sha256": digest.map(|d| d.to_string()),
        })).collect::<Vec<_>>(),
        "endpoints": routing.table.endpoints().len(),
        "listeners": routing.table.listeners().len(),
        "rules": rules,
    })
}
