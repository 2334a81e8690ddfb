//! `GET /endpoints` and `GET /endpoints/NAME`: every endpoint's state as its worker last wrote
//! it ([`crate::egress::status`]), with its queue from the counts ingress and the worker share.
//!
//! `/endpoints` takes `state=down|open-circuit|backlog|failing` (failing: any of the three),
//! `sort=name|oldest` (oldest: the longest-waiting first message first), `limit` (default 100,
//! at most 10,000) and `offset`, and answers `{"total": matching, "offset", "limit",
//! "endpoints": [...]}`. Reading 28,000 endpoints is a pass over their atomics: no shard is
//! asked anything.
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::egress::status::{Connection, Snapshot};
use crate::routes::Endpoint;
use crate::shard::{EndpointHandle, Routing};
use crate::wire_time::xml_datetime;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// Which endpoints a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    All,
    /// The last attempt to connect or deliver failed.
    Down,
    OpenCircuit,
    /// More than the one message in flight is waiting.
    Backlog,
    /// Down, open circuit or backlog.
    Failing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    Oldest,
}

/// A listing's query, read from `?state=…&sort=…&limit=…&offset=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub state: StateFilter,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
}

impl Query {
    /// The query of `text` (without the `?`); the error is a sentence for the client.
    pub fn parse(text: &str) -> Result<Query, String> {
        let mut query = Query {
            state: StateFilter::All,
            sort: Sort::Name,
            limit: DEFAULT_LIMIT,
            offset: 0,
        };
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "state" => {
                    query.state = match value {
                        "down" => StateFilter::Down,
                        "open-circuit" => StateFilter::OpenCircuit,
                        "backlog" => StateFilter::Backlog,
                        "failing" => StateFilter::Failing,
                        "all" | "" => StateFilter::All,
                        other => {
                            return Err(format!(
                                "state `{other}`: one of down, open-circuit, backlog, failing, all"
                            ))
                        }
                    }
                }
                "sort" => {
                    query.sort = match value {
                        "name" => Sort::Name,
                        "oldest" => Sort::Oldest,
                        other => return Err(format!("sort `{other}`: name or oldest")),
                    }
                }
                "limit" => {
                    query.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| (1..=MAX_LIMIT).contains(&n))
                        .ok_or_else(|| format!("limit `{value}`: a number from 1 to {MAX_LIMIT}"))?
                }
                "offset" => {
                    query.offset = value
                        .parse()
                        .map_err(|_| format!("offset `{value}`: a number"))?
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{other}`: state, sort, limit and offset are the ones \
                         there are"
                    ))
                }
            }
        }
        Ok(query)
    }
}

/// One endpoint as it is now; what "down", "open circuit" and "backlog" mean, for `/endpoints`
/// and `/metrics` alike.
pub(super) struct Row<'a> {
    pub endpoint: &'a Endpoint,
    pub handle: &'a EndpointHandle,
    pub status: Snapshot,
    pub queued: u32,
}

impl Row<'_> {
    pub fn is_down(&self) -> bool {
        self.status.connection == Connection::Down
    }

    pub fn has_open_circuit(&self) -> bool {
        self.status.circuit_open_since.is_some()
    }

    /// More than the one message in flight is waiting.
    pub fn has_backlog(&self) -> bool {
        self.queued > 1
    }

    fn matches(&self, filter: StateFilter) -> bool {
        match filter {
            StateFilter::All => true,
            StateFilter::Down => self.is_down(),
            StateFilter::OpenCircuit => self.has_open_circuit(),
            StateFilter::Backlog => self.has_backlog(),
            StateFilter::Failing => self.is_down() || self.has_open_circuit() || self.has_backlog(),
        }
    }

    fn json(&self, now: SystemTime) -> Value {
        let s = &self.status;
        let age_ms = |at: SystemTime| {
            now.duration_since(at)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        };
        json!({
            "name": self.endpoint.name,
            "protocol": self.endpoint.protocol.as_str(),
            "address": self.endpoint.address.to_string(),
            "owner_shard": self.handle.owner,
            "connection": s.connection.as_str(),
            "circuit": if s.circuit_open_since.is_some() { "open" } else { "closed" },
            "circuit_open_since": s.circuit_open_since.map(xml_datetime),
            "queued": self.queued,
            "queue_limit": self.handle.queue_limit,
            "held_for_replay": self.handle.queued.held(),
            "oldest_queued_age_ms": s.oldest_arrived.map(age_ms),
            "delivered": s.delivered,
            "retried": s.retried,
            "dead_lettered": s.dead_lettered,
            "tls_handshakes": { "full": s.handshakes_full, "resumed": s.handshakes_resumed },
            "alerts": s.alerts.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "last_error": s.last_error.as_ref().map(|e| json!({
                "error": e.text,
                "at": xml_datetime(e.at),
                "age_ms": age_ms(e.at),
            })),
        })
    }
}

pub(super) fn rows(routing: &Routing) -> impl Iterator<Item = Row<'_>> {
    routing
        .table
        .endpoints()
        .iter()
        .zip(routing.endpoints.iter())
        .map(|(endpoint, handle)| Row {
            endpoint,
            handle,
            status: handle.status.snapshot(),
            queued: handle.queued.load(std::sync::atomic::Ordering::Relaxed),
        })
}

/// The body of `/endpoints?query`.
pub fn list(routing: &Routing, query: Query, now: SystemTime) -> Value {
    let mut matching: Vec<Row<'_>> = rows(routing).filter(|r| r.matches(query.state)).collect();
    match query.sort {
        Sort::Name => matching.sort_by(|a, b| a.endpoint.name.cmp(&b.endpoint.name)),
        // Empty queues last; among the rest, the earliest first message first.
        Sort::Oldest => {
            matching.sort_by_key(|r| (r.status.oldest_arrived.is_none(), r.status.oldest_arrived))
        }
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(query.limit)
        .map(|r| r.json(now))
        .collect();
    json!({
        "total": total,
        "offset": query.offset,
        "limit": query.limit,
        "endpoints": page,
    })
}

/// The body of `/endpoints/NAME`, if there is such an endpoint.
pub fn one(routing: &Routing, name: &str, now: SystemTime) -> Option<Value> {
    let id = routing.table.endpoint_id(name)?;
    rows(routing).nth(id.index()).map(|r| r.json(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_and_bad_ones_say_what_is_wrong() {
        let q = Query::parse("state=failing&sort=oldest&limit=5&offset=10").unwrap();
        assert_eq!(
            q,
            Query {
                state: StateFilter::Failing,
                sort: Sort::Oldest,
                limit: 5,
                offset: 10
            }
        );
        assert_eq!(Query::parse("").unwrap().limit, DEFAULT_LIMIT);
        assert!(Query::parse("state=sad")
            .unwrap_err()
            .contains("state `sad`"));
        assert!(Query::parse("limit=0").unwrap_err().contains("limit `0`"));
        assert!(Query::parse("limit=10001").is_err());
        assert!(Query::parse("colour=red").unwrap_err().contains("`colour`"));
    }
}
