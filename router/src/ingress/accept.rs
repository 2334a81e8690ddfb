//! Taking messages for delivery: route each, then make the batch durable, then hand it to the
//! endpoints' owners.
//!
//! This is the one place where "accepted" is decided for both protocols. [`plan`] routes a
//! message and waits while its endpoints' queues are full (which stops the caller reading from
//! its sender); [`commit`] writes every planned message of a batch to the shard's log with one
//! write, waits for the group commit, and only then dispatches them. A sender is acknowledged
//! only after `commit` returned `Ok`; when it returns `Err`, nothing of the batch was delivered
//! or acknowledged and each sender is told "cannot accept now".
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;

use crate::metrics::listener::ListenerStats;
use crate::pipeline::{Accepted, Delivery, MessageKind, RecordRef};
use crate::routes::{Decision, EndpointId, MessageView, Outcome, RuleId, Unrouted};
use crate::shard::durable::NotDurable;
use crate::shard::stream::StreamSide;
use crate::shard::{Routing, Shard};
use crate::trace::entry::MessageRef;
use crate::trace::recorder::{self, Recorder};
use crate::wal::{NewRecord, Origin as RecordOrigin};

/// What routing decided for one message of a batch.
pub enum Plan {
    /// To be stored and delivered to these endpoints (of `routing`'s table).
    Deliver {
        message: Arc<Accepted>,
        endpoints: SmallVec<[EndpointId; 4]>,
        routing: Arc<Routing>,
        /// The rules that matched, for the message trace.
        rules: SmallVec<[RuleId; 2]>,
    },
    /// Nothing routes it and the policy keeps such messages as dead letters.
    DeadLetter { message: Arc<Accepted> },
    /// A rule said to drop it: accepted and forwarded nowhere.
    Dropped { rule: String },
    /// Refused: by a rule (named, with its reason) or because nothing routes it (`rule` is
    /// `None`).
    Rejected {
        reason: String,
        rule: Option<String>,
    },
}

impl Plan {
    /// Whether the sender is told its message was accepted (once the batch is committed).
    pub fn accepts(&self) -> bool {
        !matches!(self, Plan::Rejected { .. })
    }
}

/// Where a connection's messages come from (the listener and the sender's address), for their
/// records, counts and logs. Per connection; each record keeps its own copy as a
/// [`crate::wal::Origin`] with the message's arrival time and control id.
#[derive(Debug, Clone)]
pub struct ConnectionOrigin {
    pub listener: Arc<str>,
    /// The listener's counts, for what ingress counts of this connection's messages.
    pub stats: Arc<ListenerStats>,
    pub peer: SocketAddr,
    /// `peer` as text, made once per connection for the records of its messages.
    pub peer_text: Arc<str>,
}

/// A message as it arrived, before routing.
pub struct Incoming<'a> {
    pub bytes: &'a [u8],
    pub kind: MessageKind,
    pub control_id: Range<usize>,
    pub soap_action: Option<&'a str>,
}

/// Routes `view` (parsed from `incoming.bytes`); waits while any chosen endpoint's queue is
/// full.
pub async fn plan(
    shard: &Shard,
    view: &impl MessageView,
    incoming: Incoming<'_>,
    origin: &ConnectionOrigin,
    decision: &mut Decision,
) -> Plan {
    let routing = shard.routing();
    routing.table.route(view, decision);
    for &rule in &decision.matched {
        routing.hits.count(shard.info.index, rule);
    }
    let make = || accepted(shard, &incoming, origin, SystemTime::now());
    match decision.outcome {
        Outcome::Deliver => {
            // In a cluster the endpoints' queues are on their partitions' owners, and the
            // replicated stream is the buffer in front of them.
            if shard.stream().is_none() {
                for &id in &decision.endpoints {
                    if let Some(handle) = routing.handle(id) {
                        shard.wait_for_room(handle).await;
                    }
                }
            }
            Plan::Deliver {
                message: make(),
                endpoints: decision.endpoints.iter().copied().collect(),
                routing,
                rules: decision.matched.iter().copied().collect(),
            }
        }
        Outcome::Drop(rule) => Plan::Dropped {
            rule: routing
                .table
                .rule(rule)
                .map_or_else(|| "?".to_string(), |r| r.name().to_string()),
        },
        Outcome::Reject(rule) => Plan::Rejected {
            reason: routing
                .table
                .reject_reason(rule)
                .unwrap_or("rejected by routing rule")
                .to_string(),
            rule: Some(
                routing
                    .table
                    .rule(rule)
                    .map_or_else(|| "?".to_string(), |r| r.name().to_string()),
            ),
        },
        Outcome::Unrouted(Unrouted::Reject) => Plan::Rejected {
            reason: "no route for this message".to_string(),
            rule: None,
        },
        Outcome::Unrouted(Unrouted::DeadLetter) => Plan::DeadLetter { message: make() },
    }
}

/// Plans a message the router made itself (an ITK InfAck) for delivery to `endpoint`, as its
/// sender's connection would have sent it; waits while that endpoint's queue is full. `None`
/// when the endpoint is not in the table in force.
pub async fn plan_made(
    shard: &Shard,
    endpoint: EndpointId,
    made: Incoming<'_>,
    origin: &ConnectionOrigin,
    arrived: SystemTime,
) -> Option<Plan> {
    let routing = shard.routing();
    shard.wait_for_room(routing.handle(endpoint)?).await;
    Some(Plan::Deliver {
        message: accepted(shard, &made, origin, arrived),
        endpoints: std::iter::once(endpoint).collect(),
        routing,
        rules: SmallVec::new(),
    })
}

/// The one copy of an incoming message's bytes, made when it is accepted.
fn accepted(
    shard: &Shard,
    incoming: &Incoming<'_>,
    origin: &ConnectionOrigin,
    arrived: SystemTime,
) -> Arc<Accepted> {
    Arc::new(Accepted {
        seq: shard.next_seq(),
        kind: incoming.kind,
        bytes: incoming.bytes.into(),
        control_id: incoming.control_id.clone(),
        soap_action: incoming.soap_action.map(Into::into),
        arrived,
        listener: Arc::clone(&origin.listener),
        peer: Arc::clone(&origin.peer_text),
    })
}

/// Stores every accepted message of the batch durably (unrouted ones as dead letters, the
/// rest in the log), then hands them to their endpoints, each once its endpoint's queue has
/// room (so a full queue holds the batch's answer back). `Err`: none of them is delivered and
/// their senders must not be acknowledged (dead letters written before the failure stay: a
/// sender that tries again makes a second one, as at-least-once allows).
pub async fn commit(shard: &Shard, plans: &[Plan]) -> Result<(), NotDurable> {
    commit_with(shard, plans, false).await
}

/// As [`commit`] for a message accepted before (a dead letter replayed): queued past the
/// limit, since it must not wait behind new senders (nor hold up the control commands).
pub async fn commit_replayed(shard: &Shard, plans: &[Plan]) -> Result<(), NotDurable> {
    commit_with(shard, plans, true).await
}

async fn commit_with(shard: &Shard, plans: &[Plan], replayed: bool) -> Result<(), NotDurable> {
    // Dead letters first: were the log written first and a dead letter then failed, the log
    // would hold records of messages never acknowledged nor delivered until a restart.
    for plan in plans {
        if let Plan::DeadLetter { message } = plan {
            if shard.keep_unrouted(message).await.is_err() {
                return Err(NotDurable::StoreFailed);
            }
        }
    }
    if let Some(stream) = shard.stream() {
        return commit_to_stream(shard, stream, plans).await;
    }
    let deliveries = plans.iter().filter(|p| matches!(p, Plan::Deliver { .. }));
    let refs = match &shard.durability {
        Some(durability) => {
            // Borrowed from the plans: control ids are ASCII in practice, so the lossy view
            // allocates nothing, and destination lists of up to four stay on the stack.
            let mut names: Vec<SmallVec<[&str; 4]>> = Vec::new();
            let mut control_ids: Vec<std::borrow::Cow<'_, str>> = Vec::new();
            for plan in deliveries.clone() {
                if let Plan::Deliver {
                    message,
                    endpoints,
                    routing,
                    ..
                } = plan
                {
                    names.push(endpoint_names(endpoints, routing));
                    control_ids.push(String::from_utf8_lossy(message.control_id()));
                }
            }
            let records: Vec<NewRecord<'_>> = deliveries
                .clone()
                .zip(names.iter().zip(&control_ids))
                .filter_map(|(plan, (names, control_id))| match plan {
                    Plan::Deliver { message, .. } => Some(NewRecord {
                        destinations: names,
                        origin: RecordOrigin {
                            listener: &message.listener,
                            peer: &message.peer,
                            arrival_unix_nanos: unix_nanos(message.arrived),
                            control_id,
                        },
                        parsed: crate::shard::logged::parsed(message),
                        message: &message.bytes,
                    }),
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                None
            } else {
                let last = durability.append(&records)?;
                if let Some(last) = last {
                    durability.wait_durable(last).await?;
                }
                // Ids were given in batch order, ending at `last`.
                last.map(|last| (durability.log_number(), last.0 + 1 - records.len() as u64))
            }
        }
        None => None,
    };
    let mut next_id = refs.map(|(_, first)| first);
    for plan in plans {
        match plan {
            Plan::Deliver {
                message,
                endpoints,
                routing,
                ..
            } => {
                let id = next_id;
                next_id = next_id.map(|n| n + 1);
                if let Some(trace) = shard.trace() {
                    let at = match (refs, id) {
                        (Some((log, _)), Some(id)) => Some(MessageRef { log, record: id }),
                        _ => None,
                    };
                    trace_plan(trace, plan, at);
                }
                for (destination, &endpoint) in endpoints.iter().enumerate() {
                    let Some(handle) = routing.handle(endpoint) else {
                        continue;
                    };
                    let record = match (refs, id) {
                        (Some((log, _)), Some(id)) => Some(RecordRef {
                            log,
                            id: crate::wal::RecordId(id),
                            destination: destination as u16,
                        }),
                        _ => None,
                    };
                    let delivery = Delivery {
                        message: Arc::clone(message),
                        endpoint: Arc::clone(&handle.name),
                        queued: Arc::clone(&handle.queued),
                        record,
                        held: false,
                        settle: None,
                    };
                    if replayed {
                        shard.requeue(delivery, handle).await;
                    } else {
                        shard.dispatch(delivery, handle).await;
                    }
                }
            }
            Plan::DeadLetter { .. } => {
                if let Some(trace) = shard.trace() {
                    trace_plan(trace, plan, None);
                }
            }
            Plan::Dropped { .. } | Plan::Rejected { .. } => {}
        }
    }
    Ok(())
}

/// In a cluster: the batch goes to the replicated stream, and from there to whichever node
/// owns each endpoint's partition (this one included), never straight to a local worker.
async fn commit_to_stream(
    shard: &Shard,
    stream: &StreamSide,
    plans: &[Plan],
) -> Result<(), NotDurable> {
    let messages: Vec<(&Arc<Accepted>, SmallVec<[&str; 4]>)> = plans
        .iter()
        .filter_map(|plan| match plan {
            Plan::Deliver {
                message,
                endpoints,
                routing,
                ..
            } => Some((message, endpoint_names(endpoints, routing))),
            _ => None,
        })
        .collect();
    stream.publish(&messages).await?;
    if let Some(trace) = shard.trace() {
        for plan in plans {
            trace_plan(trace, plan, None);
        }
    }
    Ok(())
}

/// Records a planned message's arrival in the message trace, with its rules and endpoints
/// when it is delivered; `at` is where the log keeps it (`None`: not in this node's log).
fn trace_plan(trace: &Recorder, plan: &Plan, at: Option<MessageRef>) {
    let at = |message: &Accepted| at.unwrap_or_else(|| recorder::unlogged(message));
    match plan {
        Plan::Deliver {
            message,
            endpoints,
            routing,
            rules,
        } => {
            let rules: SmallVec<[&str; 2]> = rules
                .iter()
                .filter_map(|&r| routing.table.rule(r).map(|r| r.name()))
                .collect();
            let names = endpoint_names(endpoints, routing);
            trace.received(message, at(message), &rules, &names);
        }
        Plan::DeadLetter { message } => trace.received(message, at(message), &[], &[]),
        Plan::Dropped { .. } | Plan::Rejected { .. } => {}
    }
}

/// The names of a plan's endpoints (as the log, the stream and the trace record them),
/// borrowed from the routing; up to four stay on the stack.
fn endpoint_names<'a>(endpoints: &[EndpointId], routing: &'a Routing) -> SmallVec<[&'a str; 4]> {
    endpoints
        .iter()
        .filter_map(|&id| routing.handle(id).map(|h| &*h.name))
        .collect()
}

/// Nanoseconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
