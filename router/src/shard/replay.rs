//! Replay: at start-up, messages the log holds for destinations not yet done go back to their
//! endpoints before anything newer, without reading the whole backlog into memory; on an
//! operator's word, a dead letter's message goes back into the log and on its way ([`letter`]).
//!
//! [`first_pass`] reads every pending record once, in log order. Each pending destination
//! puts a hold on its endpoint's queue count ([`QueueCount::hold`]), which keeps new senders
//! out; the first [`REPLAY_WINDOW`] messages of each endpoint go straight to its queue, and
//! the rest stay on disk as 16-byte [`Place`]s. The daemon lets the shards serve only once
//! every shard has done its first pass, so every hold is counted before the first new message
//! can be taken. [`drain`] then reads the places back one at a time as each endpoint's queue
//! makes room (woken by the room bell, like a held-back sender), so memory holds at most a
//! window per endpoint, not the backlog. An endpoint's last hold is released as its last
//! replayed message enters its queue, and only then do new messages for it come in.
//!
//! Reading a record back is a read from the log's file on the shard's thread: it happens once
//! per replayed message, at start-up, from files the first pass has just read (so usually
//! from the page cache).
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::durable::Durability;
use super::logged;
use super::room::QueueCount;
use super::{EndpointHandle, Routing, Shard};
use crate::deadletter::DeadLetter;
use crate::ingress::accept::{self, Plan};
use crate::mailbox::ReplayError;
use crate::pipeline::RecordRef;
use crate::pipeline::{Accepted, Delivery};
use crate::wal::{PendingRecord, RecordId};

/// Replayed messages an endpoint may have in memory at once (fewer when its `queue_limit` is
/// lower): enough to keep its one connection busy while the next are read from disk.
pub const REPLAY_WINDOW: u32 = 32;

/// One destination of one record, left on disk until its endpoint has room.
#[derive(Debug, Clone, Copy)]
struct Place {
    log: u16,
    destination: u16,
    id: RecordId,
}

/// An endpoint's places in this shard's logs, in log order.
struct Waiting {
    name: Arc<str>,
    /// The count the holds were put on: if the endpoint's count is another one now, the
    /// endpoint was removed by a reload (and maybe added again) since.
    queued: Arc<QueueCount>,
    places: VecDeque<Place>,
}

/// What the first pass left on disk, for [`drain`].
#[derive(Default)]
pub struct Backlog {
    endpoints: Vec<Waiting>,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    fn messages(&self) -> usize {
        self.endpoints.iter().map(|e| e.places.len()).sum()
    }
}

fn window(handle: &EndpointHandle) -> u32 {
    handle.queue_limit.clamp(1, REPLAY_WINDOW)
}

fn handle_of<'a>(routing: &'a Routing, name: &str) -> Option<&'a EndpointHandle> {
    routing
        .table
        .endpoint_id(name)
        .and_then(|id| routing.handle(id))
}

/// Reads this shard's logs once: holds every pending destination's endpoint, hands each
/// endpoint its first window of messages, and returns the rest as places to [`drain`].
pub async fn first_pass(shard: &Shard, durability: &Durability) -> Backlog {
    let ids = durability.pending_ids();
    if ids.is_empty() {
        return Backlog::default();
    }
    let routing = shard.routing();
    let mut waiting: HashMap<Arc<str>, Waiting> = HashMap::new();
    let (mut queued, mut gone) = (0usize, 0usize);
    for (log, id) in ids {
        let record = match durability.read(log, id) {
            Ok(record) => record,
            Err(e) => {
                // Left pending: the next start tries again.
                tracing::error!("log {log}: cannot read pending record {}: {e}", id.0);
                continue;
            }
        };
        let mut message: Option<Arc<Accepted>> = None;
        for (destination, name) in record.pending_destinations() {
            let reference = RecordRef {
                log,
                id: record.id,
                destination,
            };
            // Built only for a destination served now: most of a large backlog stays on disk.
            let mut message =
                || {
                    Arc::clone(message.get_or_insert_with(|| {
                        Arc::new(logged::accepted(&record, shard.next_seq()))
                    }))
                };
            let Some(handle) = handle_of(&routing, name) else {
                shard
                    .dead_letter(
                        &unheld(&message(), name, reference),
                        "its endpoint is no longer in the configuration",
                    )
                    .await;
                gone += 1;
                continue;
            };
            handle.queued.hold();
            // Behind a message already left on disk, a message waits its turn there too.
            if !waiting.contains_key(&handle.name) && handle.queued.try_take_held(window(handle)) {
                shard
                    .hand_over(held(&message(), handle, reference), handle)
                    .await;
                queued += 1;
                continue;
            }
            waiting
                .entry(Arc::clone(&handle.name))
                .or_insert_with(|| Waiting {
                    name: Arc::clone(&handle.name),
                    queued: Arc::clone(&handle.queued),
                    places: VecDeque::new(),
                })
                .places
                .push_back(Place {
                    log,
                    destination,
                    id: record.id,
                });
        }
    }
    shard.flush();
    let backlog = Backlog {
        endpoints: waiting.into_values().collect(),
    };
    tracing::info!(
        shard = shard.info.index,
        "replaying undelivered messages from the log: {queued} queued, {} left on \
         disk until their endpoints have room ({} endpoint(s)), {gone} dead-lettered (endpoint \
         no longer configured)",
        backlog.messages(),
        backlog.endpoints.len(),
    );
    backlog
}

/// Feeds each endpoint its places as its queue makes room, until none is left or the shard
/// shuts down (what is left stays in the log for the next start).
pub async fn drain(shard: &Shard, durability: &Durability, mut backlog: Backlog) {
    if backlog.is_empty() {
        return;
    }
    let started = Instant::now();
    let mut delivered = 0usize;
    loop {
        if shard.is_released() {
            tracing::info!(
                shard = shard.info.index,
                "shutting down with {} replayed message(s) still on disk; they are \
                 replayed at the next start",
                backlog.messages()
            );
            return;
        }
        let seen = shard.room_generation();
        let routing = shard.routing();
        let mut i = 0;
        while i < backlog.endpoints.len() {
            delivered += feed(shard, durability, &routing, &mut backlog.endpoints[i]).await;
            if backlog.endpoints[i].places.is_empty() {
                backlog.endpoints.swap_remove(i);
            } else {
                i += 1;
            }
        }
        shard.flush();
        if backlog.is_empty() {
            break;
        }
        shard.room_changed(seen).await;
    }
    tracing::info!(
        shard = shard.info.index,
        "replay done: {delivered} message(s) read back from disk in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Hands `endpoint` as many of its places as its window has room for; when it has none,
/// asks for the room bell. Returns how many it handed over.
async fn feed(
    shard: &Shard,
    durability: &Durability,
    routing: &Routing,
    endpoint: &mut Waiting,
) -> usize {
    let handle = handle_of(routing, &endpoint.name)
        .filter(|handle| Arc::ptr_eq(&handle.queued, &endpoint.queued));
    let mut handed = 0;
    while let Some(place) = endpoint.places.front().copied() {
        if let Some(handle) = handle {
            let window = window(handle);
            if !handle.queued.try_take_held(window) {
                handle.queued.wait_from(shard.info.index);
                if !handle.queued.try_take_held(window) {
                    break;
                }
            }
        }
        endpoint.places.pop_front();
        let reference = RecordRef {
            log: place.log,
            id: place.id,
            destination: place.destination,
        };
        let record = match read(durability, place) {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(
                    "log {}: cannot read pending record {} again: {e}; it stays in the log",
                    place.log,
                    place.id.0
                );
                if let Some(handle) = handle {
                    shard.ring(handle.queued.done());
                }
                shard.ring(endpoint.queued.release_hold());
                continue;
            }
        };
        let message = Arc::new(logged::accepted(&record, shard.next_seq()));
        match handle {
            Some(handle) => {
                shard
                    .hand_over(held(&message, handle, reference), handle)
                    .await;
                handed += 1;
            }
            None => {
                shard
                    .dead_letter(
                        &unheld(&message, &endpoint.name, reference),
                        "its endpoint was removed from the configuration",
                    )
                    .await;
                shard.ring(endpoint.queued.release_hold());
            }
        }
    }
    handed
}

fn read(durability: &Durability, place: Place) -> Result<PendingRecord, String> {
    let record = durability
        .read(place.log, place.id)
        .map_err(|e| e.to_string())?;
    if !record.pending.contains(&place.destination) {
        return Err(format!(
            "destination {} is no longer pending",
            place.destination
        ));
    }
    Ok(record)
}

/// Puts a dead letter's message back on its way: stored in this shard's log, then delivered.
pub async fn letter(shard: &Shard, letter: &DeadLetter) -> Result<(), ReplayError> {
    let routing = shard.routing();
    let endpoint = routing
        .table
        .endpoint_id(&letter.endpoint)
        .ok_or_else(|| ReplayError::EndpointGone(letter.endpoint.clone()))?;
    let bytes: Box<[u8]> = letter.message.clone().into();
    let parsed = logged::describe(&bytes);
    let message = Arc::new(Accepted {
        seq: shard.next_seq(),
        kind: logged::kind_of(&parsed),
        control_id: parsed.control_id.range(),
        soap_action: parsed.soap_action.map(String::into_boxed_str),
        arrived: std::time::SystemTime::now(),
        listener: Arc::from(letter.origin.listener.as_str()),
        peer: Arc::from(letter.origin.peer.as_str()),
        bytes,
    });
    let plan = Plan::Deliver {
        message,
        endpoints: std::iter::once(endpoint).collect(),
        routing,
        rules: smallvec::SmallVec::new(),
    };
    let result = accept::commit_replayed(shard, &[plan]).await;
    shard.flush();
    result.map_err(|e| ReplayError::NotStored {
        shard: shard.info.index,
        reason: e.text().to_string(),
    })
}

/// A replayed delivery whose endpoint holds new senders back until it is queued.
fn held(message: &Arc<Accepted>, handle: &EndpointHandle, record: RecordRef) -> Delivery {
    Delivery {
        message: Arc::clone(message),
        endpoint: Arc::clone(&handle.name),
        queued: Arc::clone(&handle.queued),
        record: Some(record),
        held: true,
        settle: None,
    }
}

/// A replayed delivery for an endpoint that no longer exists: it only goes to the dead letters.
fn unheld(message: &Arc<Accepted>, name: &str, record: RecordRef) -> Delivery {
    Delivery {
        message: Arc::clone(message),
        endpoint: Arc::from(name),
        queued: Arc::new(QueueCount::default()),
        record: Some(record),
        held: false,
        settle: None,
    }
}
