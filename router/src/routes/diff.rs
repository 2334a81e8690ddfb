//! What changed between two tables, so a reload keeps what it can.
//!
//! Endpoints are paired by name and compared by [`super::EndpointIdentity`]: same identity means
//! the egress keeps the open connection (listed in `unchanged` with the old and new ids, since
//! ids are per table). Rules are compared as the operator wrote them, with endpoint ids mapped
//! back to names, so a new directory order alone is not a rule change. Start-up is the diff from
//! an empty table: every endpoint is `added`.
use super::endpoint::EndpointId;
use super::table::{Action, RouteTable, Rule, Target};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableDiff {
    /// New endpoints (new ids).
    pub added: Vec<EndpointId>,
    /// Endpoints gone (old ids): close their connections once their queues drain.
    pub removed: Vec<EndpointId>,
    /// Same name, different identity (old id, new id): reconnect.
    pub changed: Vec<(EndpointId, EndpointId)>,
    /// Same identity (old id, new id): keep the connection, re-key its state to the new id.
    pub unchanged: Vec<(EndpointId, EndpointId)>,
    /// Whether routing decisions may differ (rules, their order, `unrouted`, or lookup contents).
    pub rules_changed: bool,
}

impl TableDiff {
    /// True when nothing at all changed: a reload can keep the old table.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.rules_changed
    }
}

/// Compares `old` (or no table, at start-up) with `new`.
pub fn diff(old: Option<&RouteTable>, new: &RouteTable) -> TableDiff {
    let mut d = TableDiff::default();
    let Some(old) = old else {
        d.added = (0..new.endpoints.len()).map(id).collect();
        d.rules_changed = true;
        return d;
    };
    for (i, e) in new.endpoints.iter().enumerate() {
        match old.endpoint_id(&e.name) {
            None => d.added.push(id(i)),
            Some(o) => {
                let same = old
                    .endpoint(o)
                    .is_some_and(|oe| oe.identity() == e.identity());
                if same {
                    d.unchanged.push((o, id(i)));
                } else {
                    d.changed.push((o, id(i)));
                }
            }
        }
    }
    for (i, e) in old.endpoints.iter().enumerate() {
        if new.endpoint_id(&e.name).is_none() {
            d.removed.push(id(i));
        }
    }
    d.rules_changed = old.unrouted != new.unrouted
        || old.rules.len() != new.rules.len()
        || old
            .rules
            .iter()
            .zip(&new.rules)
            .any(|(a, b)| !same_rule(old, a, new, b))
        || lookups_changed(old, new);
    d
}

fn id(i: usize) -> EndpointId {
    // Endpoint counts are bounded by one file's rows, far below u32::MAX.
    EndpointId(u32::try_from(i).unwrap_or(u32::MAX))
}

fn same_rule(ta: &RouteTable, a: &Rule, tb: &RouteTable, b: &Rule) -> bool {
    let conds_same = a.conds.len() == b.conds.len()
        && a.conds.iter().zip(b.conds.iter()).all(|(x, y)| {
            x.pattern == y.pattern && ta.key(x.key).is_some() && ta.key(x.key) == tb.key(y.key)
        });
    let action_same = match (&a.action, &b.action) {
        (Action::Reject(x), Action::Reject(y)) => x == y,
        (Action::Drop, Action::Drop) => true,
        (Action::To(x), Action::To(y)) => {
            x.len() == y.len()
                && x.iter().zip(y.iter()).all(|(p, q)| match (p, q) {
                    (Target::Lookup(l), Target::Lookup(m)) => l == m,
                    (Target::Endpoint(e), Target::Endpoint(f)) => {
                        ta.endpoint(*e).map(|e| &e.name) == tb.endpoint(*f).map(|f| &f.name)
                    }
                    _ => false,
                })
        }
        _ => false,
    };
    a.name == b.name && a.cont == b.cont && a.kind == b.kind && conds_same && action_same
}

/// Whether any endpoint's lookup values changed (a lookup could then find another endpoint).
fn lookups_changed(old: &RouteTable, new: &RouteTable) -> bool {
    old.endpoints.len() != new.endpoints.len()
        || new.endpoints.iter().any(|e| {
            old.endpoint_id(&e.name)
                .and_then(|o| old.endpoint(o))
                .is_none_or(|o| o.keys != e.keys)
        })
}
