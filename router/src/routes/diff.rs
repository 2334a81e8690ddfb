//! What changed between two tables: the plan a reload (and start-up) applies.
//!
//! Endpoints are paired by name and compared by [`super::EndpointIdentity`]: same identity means
//! the egress keeps the open connection (listed in `unchanged` with the old and new ids, since
//! ids are per table), and by [`super::Arrangement`]: another one (`max_in_flight`, `connections`,
//! `order_by` changed how messages are spread) means the worker rebuilds its lanes. Listeners are paired by name: a new address needs a new socket, other
//! settings (certificates included, by content) apply to new connections on the same socket.
//! Rules are compared as the operator wrote them, with endpoint ids mapped back to names, so a
//! new directory order alone is not a rule change. `[server]` settings are listed when they
//! differ; the daemon decides which it cannot change while running. Start-up is the diff from
//! an empty table: every endpoint and listener is `added`.
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::endpoint::{Endpoint, EndpointId};
use super::server::Workers;
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
    /// Endpoints of `changed` or `unchanged` (new ids, ascending) whose [`super::Arrangement`]
    /// differs: their workers rebuild their lanes (and so their connections).
    pub rearranged: Vec<EndpointId>,
    /// Whether routing decisions may differ (rules, their order, `unrouted`, or lookup contents).
    pub rules_changed: bool,
    pub listeners: ListenerDiff,
    /// `[server]` settings that differ.
    pub server: Vec<ServerChange>,
}

/// What changed among the listeners, as indexes into the old and new tables' listener lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerDiff {
    /// New names (new index): bind a socket.
    pub added: Vec<usize>,
    /// Names gone (old index): close the socket, let its connections finish.
    pub removed: Vec<usize>,
    /// Same name, another `bind` (old, new): a new socket, the old one closed as if removed.
    pub moved: Vec<(usize, usize)>,
    /// Same name and address, other settings (old, new): the socket stays; connections
    /// accepted from now on get the new protocol, limits and certificates.
    pub changed: Vec<(usize, usize)>,
    /// Same in every respect, certificates' contents included (old, new).
    pub unchanged: Vec<(usize, usize)>,
}

impl ListenerDiff {
    /// True when no listener needs anything done.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.moved.is_empty()
            && self.changed.is_empty()
    }
}

/// A `[server]` setting that differs between the tables, with both values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerChange {
    Workers {
        old: Workers,
        new: Workers,
    },
    /// Resolved against the config file's folder.
    DataDir {
        old: PathBuf,
        new: PathBuf,
    },
    Admin {
        old: SocketAddr,
        new: SocketAddr,
    },
    /// A key whose values say nothing useful side by side (paths of secrets, flags).
    Other {
        key: &'static str,
    },
}

impl ServerChange {
    /// The key as the operator writes it.
    pub fn key(&self) -> &'static str {
        match self {
            ServerChange::Workers { .. } => "[server] workers",
            ServerChange::DataDir { .. } => "[server] data_dir",
            ServerChange::Admin { .. } => "[server] admin",
            ServerChange::Other { key } => key,
        }
    }
}

impl fmt::Display for ServerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let workers = |w: &Workers| match w {
            Workers::Auto => "\"auto\"".to_string(),
            Workers::Count(n) => n.to_string(),
        };
        match self {
            ServerChange::Workers { old, new } => {
                write!(f, "{} {} -> {}", self.key(), workers(old), workers(new))
            }
            ServerChange::DataDir { old, new } => {
                write!(f, "{} {} -> {}", self.key(), old.display(), new.display())
            }
            ServerChange::Admin { old, new } => write!(f, "{} {old} -> {new}", self.key()),
            ServerChange::Other { key } => write!(f, "{key} changed"),
        }
    }
}

impl TableDiff {
    /// True when nothing at all changed: a reload can keep the old table.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.rearranged.is_empty()
            && !self.rules_changed
            && self.listeners.is_empty()
            && self.server.is_empty()
    }
}

/// Compares `old` (or no table, at start-up) with `new`.
pub fn diff(old: Option<&RouteTable>, new: &RouteTable) -> TableDiff {
    let mut d = TableDiff::default();
    let Some(old) = old else {
        d.added = (0..new.endpoints.len()).map(id).collect();
        d.listeners.added = (0..new.listeners.len()).collect();
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
                let arranged = old.endpoint(o).map(Endpoint::arrangement);
                if arranged != Some(e.arrangement()) {
                    d.rearranged.push(id(i));
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
    d.listeners = listeners(old, new);
    d.server = server(old, new);
    d
}

fn listeners(old: &RouteTable, new: &RouteTable) -> ListenerDiff {
    let mut d = ListenerDiff::default();
    let find = |t: &RouteTable, name: &str| t.listeners.iter().position(|l| l.name == name);
    for (i, l) in new.listeners.iter().enumerate() {
        match find(old, &l.name) {
            None => d.added.push(i),
            Some(o) => {
                let before = &old.listeners[o]; // `find` returned an index into this list
                if before == l {
                    d.unchanged.push((o, i));
                } else if before.bind != l.bind {
                    d.moved.push((o, i));
                } else {
                    d.changed.push((o, i));
                }
            }
        }
    }
    for (i, l) in old.listeners.iter().enumerate() {
        if find(new, &l.name).is_none() {
            d.removed.push(i);
        }
    }
    d
}

fn server(old: &RouteTable, new: &RouteTable) -> Vec<ServerChange> {
    let mut changes = Vec::new();
    let (a, b) = (&old.server, &new.server);
    if a.workers != b.workers {
        changes.push(ServerChange::Workers {
            old: a.workers,
            new: b.workers,
        });
    }
    if old.data_dir() != new.data_dir() {
        changes.push(ServerChange::DataDir {
            old: old.data_dir(),
            new: new.data_dir(),
        });
    }
    if a.admin != b.admin {
        changes.push(ServerChange::Admin {
            old: a.admin,
            new: b.admin,
        });
    }
    let (x, y) = (&a.admin_access, &b.admin_access);
    let others = [
        ("[server] admin_token_file", x.token_file != y.token_file),
        ("[server] admin_cert", x.cert != y.cert),
        ("[server] admin_key", x.key != y.key),
        ("[server] admin_client_ca", x.client_ca != y.client_ca),
        ("[server] admin_names", x.names != y.names),
        (
            "[server] admin_allow_unverified_remote",
            x.allow_unverified_remote != y.allow_unverified_remote,
        ),
        (
            "[server] allow_shared_data_dir",
            a.allow_shared_data_dir != b.allow_shared_data_dir,
        ),
        (
            "[server] max_buffered_input",
            a.max_buffered_input != b.max_buffered_input,
        ),
        ("[trace] enabled", a.trace.enabled != b.trace.enabled),
        ("[trace] retention", a.trace.retention != b.trace.retention),
        ("[cluster]", a.cluster != b.cluster),
    ];
    changes.extend(
        others
            .into_iter()
            .filter(|&(_, differs)| differs)
            .map(|(key, _)| ServerChange::Other { key }),
    );
    changes
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
