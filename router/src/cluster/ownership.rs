//! Which partitions this node consumes: leases in the "<stream>-leases" bucket. Keys `p.<n>`
//! hold the owner's name; `node.<name>` says a node is alive. The bucket's max_age is the lease,
//! so a key nobody renews disappears by itself, and `create` (which fails on a live key) is the
//! claim. Each round: renew, then claim free partitions up to the fair share, and hand over
//! what is above it (a node joined): stop handing its messages out, wait until those in
//! flight are acked, then delete the lease so the node below its share claims it. Waiting
//! first means a hand-over delivers nothing twice and never lets two nodes deliver to one
//! endpoint at once; a partition whose messages are not acked in time (an endpoint down) is
//! kept, and offered again only when the membership changes.
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, UpdateErrorKind};
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use super::link::{AckCommand, Consumed, InFlight};
use super::partition::{self, Feed};
use super::status::Shared;
use super::{partition_of, ClusterSettings};

/// A claim of a partition nobody took for this many rounds ignores the fair share: better a
/// node over its share than a partition nobody consumes.
const UNOWNED_ROUNDS: u8 = 3;
/// At most this many partitions are being handed over at once, so a joining node takes them
/// over a few at a time rather than all at once under load.
const HAND_OVER_AT_ONCE: usize = 8;

struct Held {
    revision: u64,
    /// When the last successful renewal was sent (not answered): the lease lapses no sooner
    /// than `lease` after it.
    renewed: Instant,
    consuming: JoinHandle<()>,
    /// The partition's sequences handed to shards and not yet acked.
    in_flight: InFlight,
    /// `true` stops the consuming task handing messages out.
    pause: watch::Sender<bool>,
    /// Since when it is being handed over.
    handing_over: Option<Instant>,
    /// How many nodes there were when a hand-over last gave up waiting for the messages in
    /// flight: not offered again until that changes, since pausing it again would only hold
    /// up its other endpoints' messages once more.
    kept: Option<usize>,
}

impl Held {
    fn in_flight(&self) -> usize {
        self.in_flight.lock().map_or(usize::MAX, |s| s.len())
    }
}

pub(crate) struct Owner {
    pub settings: ClusterSettings,
    pub leases: kv::Store,
    pub stream: stream::Stream,
    pub shared: Arc<Shared>,
    pub shards: Vec<mpsc::Sender<Consumed>>,
    pub acks: mpsc::UnboundedSender<AckCommand>,
    held: BTreeMap<u16, Held>,
    unowned_rounds: Vec<u8>,
    rounds: u64,
    failing: bool,
    /// Live nodes, this one included, as the last claim round counted them.
    nodes: usize,
}

fn lease_key(partition: u16) -> String {
    format!("p.{partition}")
}

impl Owner {
    pub fn new(
        settings: ClusterSettings,
        leases: kv::Store,
        stream: stream::Stream,
        shared: Arc<Shared>,
        shards: Vec<mpsc::Sender<Consumed>>,
        acks: mpsc::UnboundedSender<AckCommand>,
    ) -> Owner {
        let partitions = usize::from(settings.partitions);
        Owner {
            settings,
            leases,
            stream,
            shared,
            shards,
            acks,
            held: BTreeMap::new(),
            unowned_rounds: vec![0; partitions],
            rounds: 0,
            failing: false,
            nodes: 1,
        }
    }

    pub fn round_interval(&self) -> Duration {
        self.settings.lease / 3
    }

    fn node_key(&self) -> String {
        format!("node.{}", self.settings.node)
    }

    /// One round: say this node is alive, renew what it holds, claim its share of the rest.
    pub async fn round(&mut self) {
        let node = bytes::Bytes::from(self.settings.node.clone());
        let registered = self.leases.put(self.node_key(), node.clone()).await;
        self.note(registered.as_ref().err().map(ToString::to_string));
        self.renew(&node).await;
        self.rounds += 1;
        // The first round only registers, so nodes started together see each other before
        // claiming and share from the start.
        if self.rounds > 1 && registered.is_ok() {
            self.claim(&node).await;
        }
        self.finish_hand_overs().await;
    }

    fn note(&mut self, error: Option<String>) {
        match error {
            Some(e) if !self.failing => {
                tracing::warn!(error = %e, "cluster leases cannot be renewed or claimed");
                self.failing = true;
            }
            None if self.failing => {
                tracing::info!("cluster leases renewed again");
                self.failing = false;
            }
            _ => {}
        }
    }

    async fn renew(&mut self, node: &bytes::Bytes) {
        let lease = self.settings.lease;
        let margin = self.round_interval();
        let partitions: Vec<u16> = self.held.keys().copied().collect();
        for p in partitions {
            let Some(held) = self.held.get_mut(&p) else {
                continue;
            };
            let sent = Instant::now();
            match self
                .leases
                .update(lease_key(p), node.clone(), held.revision)
                .await
            {
                Ok(revision) => {
                    held.revision = revision;
                    held.renewed = sent;
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    self.lose(p, "another node holds its lease");
                }
                // Cannot tell whether it still holds: stop before it could have lapsed.
                Err(_) if held.renewed.elapsed() + margin >= lease => {
                    self.lose(p, "its lease could not be renewed in time");
                }
                Err(_) => {}
            }
        }
    }

    async fn claim(&mut self, node: &bytes::Bytes) {
        let Ok(Ok(keys)) = timeout(self.round_interval(), live_keys(&self.leases)).await else {
            return;
        };
        let partitions = self.settings.partitions;
        let node_key = self.node_key();
        let others = keys
            .iter()
            .filter(|k| k.starts_with("node.") && **k != node_key)
            .count();
        let fair = usize::from(partitions).div_ceil(others + 1);
        let taken: HashSet<u16> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("p.").and_then(|n| n.parse().ok()))
            .collect();
        for p in 0..partitions {
            if let Some(rounds) = self.unowned_rounds.get_mut(usize::from(p)) {
                *rounds = if taken.contains(&p) {
                    0
                } else {
                    rounds.saturating_add(1)
                };
            }
        }
        // Each node starts looking at its own place, so nodes claiming at once rarely collide.
        let start = partition_of(&self.settings.node, partitions);
        let mut claimed = Vec::new();
        for i in 0..partitions {
            let p = ((u32::from(start) + u32::from(i)) % u32::from(partitions)) as u16;
            if taken.contains(&p) || self.held.contains_key(&p) {
                continue;
            }
            let abandoned = self
                .unowned_rounds
                .get(usize::from(p))
                .is_some_and(|r| *r >= UNOWNED_ROUNDS);
            if self.held.len() + claimed.len() >= fair && !abandoned {
                continue;
            }
            let sent = Instant::now();
            if let Ok(revision) = self.leases.create(lease_key(p), node.clone()).await {
                claimed.push((p, revision, sent));
            }
        }
        if !claimed.is_empty() {
            self.gain(claimed).await;
        }
        self.nodes = others + 1;
        self.start_hand_overs(fair, self.nodes);
    }

    /// Pauses the partitions this node holds above its fair share (fewest in flight first), so
    /// they can drain and go to a node below it.
    fn start_hand_overs(&mut self, fair: usize, nodes: usize) {
        let handing_over = self
            .held
            .values()
            .filter(|h| h.handing_over.is_some())
            .count();
        let excess = self.held.len().saturating_sub(fair);
        let more = excess.min(HAND_OVER_AT_ONCE).saturating_sub(handing_over);
        if more == 0 {
            return;
        }
        let mut offered: Vec<(usize, u16)> = self
            .held
            .iter()
            .filter(|(_, h)| h.handing_over.is_none() && h.kept != Some(nodes))
            .map(|(p, h)| (h.in_flight(), *p))
            .collect();
        offered.sort_unstable();
        let held = self.held.len();
        for (_, p) in offered.into_iter().take(more) {
            if let Some(h) = self.held.get_mut(&p) {
                h.pause.send_replace(true);
                h.handing_over = Some(Instant::now());
                tracing::info!(
                    partition = p,
                    "handing a partition over: this node holds {held} of {} among {nodes} nodes \
                     (its fair share: {fair}); waiting for its messages in flight",
                    self.settings.partitions
                );
            }
        }
    }

    /// Lets go of each partition being handed over once its messages in flight are acked; keeps
    /// (and goes on consuming) one that waited too long.
    async fn finish_hand_overs(&mut self) {
        let limit = self.settings.lease * 2;
        let due: Vec<(u16, bool)> = self
            .held
            .iter()
            .filter_map(|(p, h)| {
                let since = h.handing_over?;
                Some((*p, h.in_flight() == 0 || since.elapsed() < limit))
            })
            .collect();
        for (p, drainable) in due {
            if !drainable {
                if let Some(h) = self.held.get_mut(&p) {
                    h.pause.send_replace(false);
                    h.handing_over = None;
                    h.kept = Some(self.nodes);
                    tracing::warn!(
                        partition = p,
                        in_flight = h.in_flight(),
                        "kept a partition: its messages in flight were not acked within {limit:?} \
                         (an endpoint down?); it is offered again when a node joins or leaves"
                    );
                }
                continue;
            }
            if self.held.get(&p).is_none_or(|h| h.in_flight() > 0) {
                continue;
            }
            // Acks queued so far reach the connection before the lease's delete, on the same
            // connection, so the next owner finds those messages gone.
            let (flushed, flushed_rx) = oneshot::channel();
            if self.acks.send(AckCommand::Flush(flushed)).is_ok() {
                let _ = timeout(self.round_interval(), flushed_rx).await;
            }
            let Some(revision) = self.held.get(&p).map(|h| h.revision) else {
                continue;
            };
            let deleted = timeout(
                self.round_interval(),
                self.leases
                    .delete_expect_revision(lease_key(p), Some(revision)),
            )
            .await;
            // Not deleted: still held (renewed as ever), tried again next round.
            if let Ok(Ok(())) = deleted {
                if let Some(held) = self.held.remove(&p) {
                    held.consuming.abort();
                    self.shared.set_owned(p, false);
                    tracing::info!(partition = p, "partition handed over");
                }
            }
        }
    }

    /// Starts consuming newly claimed partitions, their consumers re-created concurrently.
    async fn gain(&mut self, claimed: Vec<(u16, u64, Instant)>) {
        let stream = &self.stream;
        let name = &self.settings.stream;
        // At most a round: the partitions already held must be renewed before their leases
        // could lapse, and renewals wait for this.
        let limit = self.round_interval();
        let taken = futures_util::future::join_all(
            claimed
                .iter()
                .map(|(p, _, _)| timeout(limit, partition::take_over(stream, name, *p))),
        )
        .await;
        for ((p, revision, renewed), result) in claimed.into_iter().zip(taken) {
            let (consumer, delivered_before) = match result {
                Ok(Ok(taken)) => taken,
                Ok(Err(e)) => {
                    tracing::warn!(partition = p, error = %e, "could not take over a partition; releasing it");
                    let _ = self
                        .leases
                        .delete_expect_revision(lease_key(p), Some(revision))
                        .await;
                    continue;
                }
                Err(_) => {
                    tracing::warn!(
                        partition = p,
                        "taking over a partition timed out; releasing it"
                    );
                    let _ = self
                        .leases
                        .delete_expect_revision(lease_key(p), Some(revision))
                        .await;
                    continue;
                }
            };
            let shard = usize::from(p) % self.shards.len().max(1);
            let Some(to_shard) = self.shards.get(shard) else {
                continue;
            };
            let in_flight = partition::new_in_flight();
            let (pause, paused) = watch::channel(false);
            let feed = Feed {
                stream: self.stream.clone(),
                stream_name: self.settings.stream.clone(),
                partition: p,
                delivered_before,
                in_flight: in_flight.clone(),
                shard: to_shard.clone(),
                acks: self.acks.clone(),
                shared: self.shared.clone(),
                paused,
            };
            let consuming = tokio::spawn(partition::consume(consumer, feed));
            self.held.insert(
                p,
                Held {
                    revision,
                    renewed,
                    consuming,
                    in_flight,
                    pause,
                    handing_over: None,
                    kept: None,
                },
            );
            self.shared.set_owned(p, true);
            tracing::info!(partition = p, "partition owned");
        }
    }

    fn lose(&mut self, partition: u16, why: &str) {
        if let Some(held) = self.held.remove(&partition) {
            held.consuming.abort();
            self.shared.set_owned(partition, false);
            tracing::warn!(partition, why, "partition lost; stopped consuming it");
        }
    }

    /// Stops consuming every partition at once (leases still held).
    pub fn stop_consuming(&mut self) {
        for held in self.held.values() {
            held.consuming.abort();
        }
    }

    /// Deletes this node's lease keys (only where it still holds them) and its node key, so
    /// the others take over without waiting for them to lapse.
    pub async fn release_all(&mut self) {
        self.stop_consuming();
        let held = std::mem::take(&mut self.held);
        let releases = held.iter().map(|(p, h)| {
            self.shared.set_owned(*p, false);
            self.leases
                .delete_expect_revision(lease_key(*p), Some(h.revision))
        });
        let _ = futures_util::future::join_all(releases).await;
        let _ = self.leases.delete(self.node_key()).await;
    }
}

/// The keys of the leases bucket that are live now (neither lapsed nor deleted). Once: the
/// listing follows the bucket until it has caught up, so a key renewed meanwhile (every lease,
/// every round) comes again.
async fn live_keys(leases: &kv::Store) -> Result<BTreeSet<String>, String> {
    let mut keys = leases.keys().await.map_err(|e| e.to_string())?;
    let mut all = BTreeSet::new();
    while let Some(key) = keys.next().await {
        all.insert(key.map_err(|e| e.to_string())?);
    }
    Ok(all)
}
