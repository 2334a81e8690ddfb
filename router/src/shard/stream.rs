//! A shard's side of the cluster's replicated stream (`[cluster]`): what its ingress accepts is
//! published there instead of to its own log, and what the partitions it consumes bring is
//! delivered by the shards that own the endpoints, each stream message acknowledged only once
//! every destination it was published for is done.
//!
//! A message goes to the stream once per partition its destinations fall in, each copy in the
//! log's record format with that partition's destinations only, under an id JetStream
//! de-duplicates by ([`cluster::message_id`]): a sender that sends the same bytes again after
//! a lost ACK, to this node or another, makes no second copy.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smallvec::SmallVec;

use crate::cluster::{self, AckHandle, Consumed, ConsumedFeed, Outgoing, Publisher};
use crate::egress::worker::GiveUp;
use crate::ingress::accept::unix_nanos;
use crate::pipeline::{Accepted, Delivery};
use crate::shard::durable::NotDurable;
use crate::shard::{logged, Shard};
use crate::wal::{NewRecord, Origin};

/// A message's destinations (in one partition, or all of them), borrowed from its plan.
type Names<'a> = SmallVec<[&'a str; 4]>;

/// What a shard publishes through, how the cluster partitions endpoints, and which
/// partitions this node owned when last looked at.
pub struct StreamSide {
    publisher: Publisher,
    partitions: u16,
    owned: RefCell<Vec<u16>>,
}

impl StreamSide {
    pub fn new(publisher: Publisher, partitions: u16) -> StreamSide {
        StreamSide {
            publisher,
            partitions,
            owned: RefCell::new(Vec::new()),
        }
    }

    /// Whether this node owned `endpoint`'s partition when last looked at.
    pub fn owns(&self, endpoint: &str) -> bool {
        let partition = cluster::partition_of(endpoint, self.partitions);
        self.owned.borrow().binary_search(&partition).is_ok()
    }

    /// Publishes each message to the partitions of its destinations and waits until the
    /// stream holds every copy: only then may the senders be told "accepted".
    pub async fn publish(
        &self,
        messages: &[(&Arc<Accepted>, Names<'_>)],
    ) -> Result<(), NotDurable> {
        let mut batch = Vec::with_capacity(messages.len());
        for (message, destinations) in messages {
            let mut by_partition: SmallVec<[(u16, Names<'_>); 4]> = SmallVec::new();
            for &name in destinations {
                let partition = cluster::partition_of(name, self.partitions);
                match by_partition.iter_mut().find(|(p, _)| *p == partition) {
                    Some((_, names)) => names.push(name),
                    None => by_partition.push((partition, std::iter::once(name).collect())),
                }
            }
            let control_id = String::from_utf8_lossy(message.control_id());
            let digest = cluster::message_digest(&message.bytes);
            for (partition, names) in by_partition {
                let record = NewRecord {
                    destinations: &names,
                    origin: Origin {
                        listener: &message.listener,
                        peer: &message.peer,
                        arrival_unix_nanos: unix_nanos(message.arrived),
                        control_id: &control_id,
                    },
                    parsed: logged::parsed(message),
                    message: &message.bytes,
                };
                let payload = crate::wal::record_bytes(message.seq, &record)
                    .map_err(NotDurable::Unstorable)?;
                batch.push(Outgoing {
                    partition,
                    msg_id: cluster::partition_id(&digest, partition),
                    payload: payload.into(),
                });
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.publisher.publish(batch).await.map_err(|e| {
            tracing::debug!("publishing to the cluster's stream failed: {e}");
            NotDurable::ClusterUnavailable
        })
    }
}

/// Acknowledges a consumed stream message once each destination it was delivered for is done
/// (delivered, or kept as a dead letter); shared by those deliveries, on whichever shards own
/// their endpoints.
pub struct Settle {
    remaining: AtomicUsize,
    ack: Mutex<Option<AckHandle>>,
}

impl std::fmt::Debug for Settle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settle")
            .field("remaining", &self.remaining.load(Ordering::Relaxed))
            .finish()
    }
}

impl Settle {
    fn new(destinations: usize, ack: AckHandle) -> Settle {
        Settle {
            remaining: AtomicUsize::new(destinations),
            ack: Mutex::new(Some(ack)),
        }
    }

    /// One destination is done; the last one acknowledges the stream message.
    pub fn done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ack = self.ack.lock().map(|mut a| a.take()).unwrap_or(None);
            if let Some(ack) = ack {
                ack.ack();
            }
        }
    }
}

/// Runs for the life of the shard in cluster mode: hands each message the stream brings for
/// the partitions this shard consumes to its endpoints' owners, in stream order. Past the
/// endpoints' queue limits: the stream is the buffer, and a full endpoint must not hold back
/// the others of its partition (what is consumed and unacknowledged is bounded by the
/// consumer's `max_ack_pending`).
pub async fn run_feed(shard: Rc<Shard>, mut feed: ConsumedFeed) {
    let mut batch = Vec::with_capacity(256);
    let complained = Cell::new(0u64);
    while feed.consumed(&mut batch).await {
        for consumed in batch.drain(..) {
            // Shutting down: what is left stays unacknowledged in the stream, for the node
            // that takes the partition next.
            if shard.is_released() {
                return;
            }
            deliver(&shard, consumed, &complained).await;
        }
        shard.flush();
    }
}

/// How often a shard looks at which partitions its node owns.
const OWNERSHIP_CHECK: Duration = Duration::from_secs(1);

/// Runs for the life of the shard in cluster mode: when the node gains partitions, connects
/// to their pre-warmed endpoints (of this shard) before their messages come, so that a
/// takeover does not start with thousands of handshakes on the first messages.
pub async fn run_ownership(shard: Rc<Shard>) {
    let Some(watch) = shard.metrics.cluster.get().cloned() else {
        return;
    };
    loop {
        let mut owned = watch.status().partitions_owned;
        owned.sort_unstable();
        let gained = match shard.stream() {
            Some(stream) => {
                let before = stream.owned.replace(owned.clone());
                owned.iter().any(|p| before.binary_search(p).is_err())
            }
            None => return,
        };
        if gained {
            shard.prewarm();
        }
        monoio::time::sleep(OWNERSHIP_CHECK).await;
    }
}

async fn deliver(shard: &Shard, consumed: Consumed, complained: &Cell<u64>) {
    let mut record = match crate::wal::record_from_bytes(&consumed.payload) {
        Ok(record) => record,
        Err(why) => {
            // Not from a ganglion node of this version: never guessed at, never dropped; kept
            // whole as a dead letter (then acknowledged), said once per partition and sequence.
            if complained.get() != consumed.sequence {
                complained.set(consumed.sequence);
                tracing::error!(
                    partition = consumed.partition,
                    sequence = consumed.sequence,
                    "a message in the cluster's stream is not a ganglion record ({why}); \
                     kept as a dead letter"
                );
            }
            keep_foreign(shard, consumed);
            return;
        }
    };
    let destinations = std::mem::take(&mut record.destinations);
    let message = Arc::new(logged::into_accepted(record, shard.next_seq()));
    let settle = Arc::new(Settle::new(destinations.len(), consumed.ack));
    let routing = shard.routing();
    for name in &destinations {
        let handle = routing
            .table
            .endpoint_id(name)
            .and_then(|id| routing.handle(id));
        match handle {
            Some(handle) => {
                let delivery = Delivery {
                    message: Arc::clone(&message),
                    endpoint: Arc::clone(&handle.name),
                    queued: Arc::clone(&handle.queued),
                    record: None,
                    held: false,
                    settle: Some(Arc::clone(&settle)),
                };
                shard.requeue(delivery, handle).await;
            }
            None => {
                // Accepted by a node whose table had the endpoint: kept, not lost.
                let delivery = Delivery {
                    message: Arc::clone(&message),
                    endpoint: Arc::from(name.as_str()),
                    queued: Arc::default(),
                    record: None,
                    held: false,
                    settle: Some(Arc::clone(&settle)),
                };
                shard.give_up(
                    &delivery,
                    GiveUp::Unroutable,
                    "endpoint not in this node's directory",
                );
            }
        }
    }
}

/// Keeps a stream message that is not a ganglion record as a dead letter, its bytes as they
/// are, and acknowledges it once the letter is stored.
fn keep_foreign(shard: &Shard, consumed: Consumed) {
    let bytes: Box<[u8]> = consumed.payload.to_vec().into();
    let described = logged::describe(&bytes);
    let message = Arc::new(Accepted {
        seq: shard.next_seq(),
        kind: logged::kind_of(&described),
        control_id: described.control_id.range(),
        soap_action: described.soap_action.map(String::into_boxed_str),
        arrived: std::time::SystemTime::now(),
        listener: Arc::from("(cluster stream)"),
        peer: Arc::from(format!("partition {}", consumed.partition)),
        bytes,
    });
    let delivery = Delivery {
        message,
        endpoint: Arc::from("(not a ganglion record)"),
        queued: Arc::default(),
        record: None,
        held: false,
        settle: Some(Arc::new(Settle::new(1, consumed.ack))),
    };
    shard.give_up(&delivery, GiveUp::Unroutable, "not a ganglion record");
}
