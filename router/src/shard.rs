//! One shard: the routing in force, the endpoints it owns, and its end of the mesh.
//!
//! A shard is shared by the tasks of its own thread (`Rc`, `RefCell`) and by nothing else;
//! other shards reach it only through the mesh. Endpoint workers are created on the first
//! message for an endpoint (or at start-up when pre-warmed) and live until a reload removes the
//! endpoint and its queue has drained.
pub mod durable;
pub mod logged;
pub mod outcomes;
pub mod replay;
pub mod room;
pub mod routing;
pub mod stream;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::deadletter::DeadLetterError;
use crate::egress::gate::ConnectGate;
use crate::egress::settings::EgressSettings;
use crate::egress::worker::{
    ConnectionCounters, GiveUp, OnReload, Outcomes, RoomBell, Worker, WorkerContext,
};
use crate::ids::Uuids;
use crate::ingress::refusals::Refusals;
use crate::metrics::Metrics;
use crate::net::pool::{BufferPool, IO_BUFFER};
use crate::net::stream::Stream;
use crate::notify::LocalNotify;
use crate::pipeline::{Accepted, Delivery};
use crate::routes::TableDiff;
use crate::runtime::mesh::Mesh;
use crate::runtime::shards::ShardInfo;
use crate::trace::recorder::Recorder;
use durable::Durability;
use outcomes::ShardOutcomes;
use room::{QueueCount, Waiting};
pub use routing::{EndpointHandle, Routing};
use stream::StreamSide;

/// Handshakes a shard runs at once, and connections it starts per second: enough to pre-warm
/// 14,000 endpoints in a few seconds without starving the traffic the shard already carries.
const CONCURRENT_HANDSHAKES: usize = 64;
const CONNECTS_PER_SECOND: u32 = 5_000;

/// Connection counts for `/metrics`.
struct ShardConnections {
    metrics: Arc<Metrics>,
    shard: usize,
}

impl ConnectionCounters for ShardConnections {
    fn connection_opened(&self, stream: &Stream) {
        let counters = self.metrics.shard(self.shard);
        Metrics::bump(&counters.connections_opened);
        if stream.tls_state().is_some() {
            Metrics::bump(if stream.resumed() {
                &counters.tls_handshakes_resumed
            } else {
                &counters.tls_handshakes_full
            });
        }
    }

    fn connection_closed(&self) {
        Metrics::bump(&self.metrics.shard(self.shard).connections_closed);
    }

    fn connect_failed(&self) {
        Metrics::bump(&self.metrics.shard(self.shard).connect_failures);
    }
}

/// Rings the room bells of the shards whose senders wait for room in a queue.
struct MeshRoomBell {
    mesh: Arc<Mesh<Delivery>>,
}

impl RoomBell for MeshRoomBell {
    fn ring(&self, waiting: Waiting) {
        for shard in waiting.shards(self.mesh.shards()) {
            self.mesh.ring_room(shard);
        }
    }
}

pub struct Shard {
    pub info: ShardInfo,
    routing: RefCell<Arc<Routing>>,
    /// The routing of a reload prepared and not yet committed here.
    prepared: RefCell<Option<Arc<Routing>>>,
    mesh: Arc<Mesh<Delivery>>,
    pub pool: Rc<BufferPool>,
    workers: RefCell<HashMap<Arc<str>, Rc<Worker>>>,
    pub settings: EgressSettings,
    outcomes: Rc<ShardOutcomes>,
    workers_context: WorkerContext,
    pub metrics: Arc<Metrics>,
    /// The shard's write-ahead log; `None` only when durability was turned off (benchmarks).
    pub durability: Option<Rc<Durability>>,
    pub uuids: Uuids,
    /// What ingress refused on this shard, logged with a per-peer limit.
    pub refusals: Rc<Refusals>,
    seq: Cell<u64>,
    /// Shards sent to since the last [`Shard::flush`].
    touched: RefCell<Vec<usize>>,
    /// Notified when this shard's room bell rings: senders held back by a full endpoint queue
    /// or a full mesh queue look again.
    room: LocalNotify,
    /// Set at shutdown: nobody waits for room any more.
    released: Cell<bool>,
    /// The message trace's recorder, when the trace is on.
    trace: OnceCell<Rc<Recorder>>,
    /// In a cluster (`[cluster]`): where ingress stores what it accepts instead of the log.
    stream: OnceCell<Rc<StreamSide>>,
}

impl Shard {
    pub fn new(
        info: ShardInfo,
        routing: Arc<Routing>,
        mesh: Arc<Mesh<Delivery>>,
        settings: EgressSettings,
        outcomes: Rc<ShardOutcomes>,
        metrics: Arc<Metrics>,
        durability: Option<Rc<Durability>>,
    ) -> Rc<Shard> {
        let pool = Rc::new(BufferPool::new(IO_BUFFER, 64));
        let workers_context = WorkerContext {
            settings,
            pool: Rc::clone(&pool),
            outcomes: Rc::clone(&outcomes) as Rc<dyn Outcomes>,
            gate: ConnectGate::new(CONCURRENT_HANDSHAKES, CONNECTS_PER_SECOND),
            counters: Rc::new(ShardConnections {
                metrics: Arc::clone(&metrics),
                shard: info.index,
            }),
            room: Rc::new(MeshRoomBell {
                mesh: Arc::clone(&mesh),
            }),
        };
        Rc::new(Shard {
            workers_context,
            info,
            routing: RefCell::new(routing),
            prepared: RefCell::new(None),
            mesh,
            pool,
            workers: RefCell::new(HashMap::new()),
            settings,
            outcomes,
            metrics,
            durability,
            uuids: Uuids::new(info.index),
            refusals: Rc::new(Refusals::on_shard(info.index)),
            seq: Cell::new(0),
            touched: RefCell::new(Vec::new()),
            room: LocalNotify::new(),
            released: Cell::new(false),
            trace: OnceCell::new(),
            stream: OnceCell::new(),
        })
    }

    /// Turns the message trace on for this shard's ingress (once, at start-up).
    pub fn set_trace(&self, recorder: Rc<Recorder>) {
        let _ = self.trace.set(recorder);
    }

    /// The message trace's recorder, when the trace is on.
    /// Joins the cluster: from now on ingress publishes to its stream.
    pub fn set_stream(&self, side: StreamSide) {
        let _ = self.stream.set(Rc::new(side));
    }

    /// The cluster's stream, when this node is in a cluster.
    pub fn stream(&self) -> Option<&StreamSide> {
        self.stream.get().map(|s| &**s)
    }

    pub fn trace(&self) -> Option<&Recorder> {
        self.trace.get().map(|r| &**r)
    }

    /// The routing in force; a message keeps the `Arc` it was routed with.
    pub fn routing(&self) -> Arc<Routing> {
        Arc::clone(&self.routing.borrow())
    }

    /// Phase one of a reload: `routing` is about to be in force. Until this shard commits it,
    /// a delivery that another shard (already committed) routed to an endpoint new in it still
    /// finds its definition here.
    pub fn prepare(&self, routing: Arc<Routing>) {
        *self.prepared.borrow_mut() = Some(routing);
    }

    /// The reload was aborted.
    pub fn forget_prepared(&self) {
        self.prepared.borrow_mut().take();
    }

    /// Takes a new routing into use as `diff` (from the routing in force to it) says: workers
    /// of removed endpoints finish their queues and stop; workers of changed endpoints take
    /// the new definition and reconnect; workers of rearranged ones rebuild their lanes (see
    /// [`Worker::update`]); those of unchanged ones keep their connection (their
    /// definition may still differ in what does not make the connection, such as `prewarm`);
    /// endpoints that want it are pre-warmed.
    pub fn install(&self, routing: Arc<Routing>, diff: &TableDiff) {
        let old = self.routing();
        let mut workers = self.workers.borrow_mut();
        for &id in &diff.removed {
            let stopped = old
                .table
                .endpoint(id)
                .and_then(|endpoint| workers.remove(endpoint.name.as_str()));
            if let Some(worker) = stopped {
                worker.stop();
            }
        }
        let renewed = diff.changed.iter().map(|&(_, id)| (id, OnReload::Renew));
        let kept = diff.unchanged.iter().map(|&(_, id)| (id, OnReload::Keep));
        for (id, connection) in renewed.chain(kept) {
            let connection = match diff.rearranged.binary_search(&id) {
                Ok(_) => OnReload::Rearrange,
                Err(_) => connection,
            };
            let Some(endpoint) = routing.table.endpoint(id) else {
                continue;
            };
            if let Some(worker) = workers.get(endpoint.name.as_str()) {
                let tls = routing.client_tls_for(endpoint);
                worker.update(Arc::new(endpoint.clone()), tls, connection);
            }
        }
        drop(workers);
        *self.routing.borrow_mut() = routing;
        self.prepared.borrow_mut().take();
        // Whoever waits for room looks again under the new table: a start-up replay still
        // reading back the backlog of an endpoint this reload removed sends it to the dead
        // letters now rather than when some queue next makes room.
        self.room.notify();
        self.prewarm();
    }

    /// Starts a worker for every endpoint this shard owns that wants its connection open
    /// before the first message (`prewarm`); the connect gate spreads the handshakes out. In a
    /// cluster, only those of the partitions this node owns.
    pub fn prewarm(&self) {
        match self.stream() {
            // In a cluster an endpoint's connection belongs on its partition's owner, which
            // changes as nodes come and go: see `stream::run_ownership`.
            Some(stream) => self.prewarm_where(|name| stream.owns(name)),
            None => self.prewarm_where(|_| true),
        }
    }

    /// As [`Shard::prewarm`], for the endpoints `wanted` says.
    pub fn prewarm_where(&self, wanted: impl Fn(&str) -> bool) {
        let routing = self.routing();
        let mut started = 0;
        for (endpoint, handle) in routing
            .table
            .endpoints()
            .iter()
            .zip(routing.endpoints.iter())
        {
            if endpoint.prewarm
                && handle.owner == self.info.index
                && wanted(&endpoint.name)
                && !self.workers.borrow().contains_key(&handle.name)
                && self.start_worker(&endpoint.name).is_some()
            {
                started += 1;
            }
        }
        if started > 0 {
            tracing::info!(
                "shard {}: pre-warming {started} endpoint connection(s)",
                self.info.index
            );
        }
    }

    /// A number unique to this message within this run of the router.
    pub fn next_seq(&self) -> u64 {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        ((self.info.index as u64) << 48) | n
    }

    /// Holds the caller (and so stops reading from its sender) while the endpoint's queue is
    /// full: before a message is stored, so that a full queue does not fill the log.
    pub async fn wait_for_room(&self, handle: &EndpointHandle) {
        self.room_in(handle, false).await;
    }

    /// Hands a delivery to the shard that owns its endpoint, once it has a place in the
    /// endpoint's queue (waiting, and so holding its sender's answer, while the queue is at its
    /// limit): directly when the owner is this shard, through the mesh otherwise.
    pub async fn dispatch(&self, delivery: Delivery, handle: &EndpointHandle) {
        self.room_in(handle, true).await;
        self.hand_over(delivery, handle).await;
    }

    /// As [`Shard::dispatch`], past the queue limit: for messages accepted before (replayed
    /// from the log or the dead-letter store), which must not wait behind new senders.
    pub async fn requeue(&self, delivery: Delivery, handle: &EndpointHandle) {
        handle.queued.take();
        self.hand_over(delivery, handle).await;
    }

    /// Waits until `handle`'s queue is under its limit; with `take`, takes a place in it.
    /// Woken by the room bell, so a held-back sender costs nothing while it waits.
    async fn room_in(&self, handle: &EndpointHandle, take: bool) {
        let (count, limit) = (&handle.queued, handle.queue_limit);
        let got = |count: &QueueCount| {
            if take {
                count.try_take(limit)
            } else {
                count.has_room(limit)
            }
        };
        loop {
            if got(count) {
                return;
            }
            if self.released.get() {
                if take {
                    count.take();
                }
                return;
            }
            let seen = self.room.generation();
            count.wait_from(self.info.index);
            if got(count) {
                return;
            }
            // What this batch already handed over must reach its owners before we sleep:
            // their progress is what makes room.
            self.flush();
            self.room.changed(seen).await;
        }
    }

    /// Hands a delivery that already has its place to the shard that owns its endpoint.
    pub(crate) async fn hand_over(&self, delivery: Delivery, handle: &EndpointHandle) {
        if handle.owner == self.info.index {
            self.deliver_here(delivery);
            return;
        }
        let mut item = delivery;
        loop {
            match self.mesh.try_send(self.info.index, handle.owner, item) {
                Ok(()) => break,
                Err(back) => {
                    // The owner is behind: ask to be told when it has drained, make sure it is
                    // awake, and try again once told (or at once, if it drained meanwhile).
                    item = back;
                    let seen = self.room.generation();
                    self.mesh.wake_when_drained(self.info.index, handle.owner);
                    match self.mesh.try_send(self.info.index, handle.owner, item) {
                        Ok(()) => break,
                        Err(back) => item = back,
                    }
                    self.mesh.notify(handle.owner);
                    self.room.changed(seen).await;
                }
            }
        }
        let mut touched = self.touched.borrow_mut();
        if !touched.contains(&handle.owner) {
            touched.push(handle.owner);
        }
    }

    /// Runs for the life of the shard: passes the room bell's rings on to the senders of this
    /// shard that wait for room.
    pub async fn run_room(self: Rc<Self>) {
        loop {
            self.mesh.room_rung(self.info.index).await;
            self.room.notify();
        }
    }

    /// Shutdown: senders stop waiting for room (what they hold is stored; it is delivered in
    /// the grace period or after the restart).
    pub fn release_waiters(&self) {
        self.released.set(true);
        self.room.notify();
    }

    /// Whether shutdown has begun (nobody waits for room any more).
    pub fn is_released(&self) -> bool {
        self.released.get()
    }

    /// The room bell's count of rings so far, to wait for the next with [`Shard::room_changed`].
    pub fn room_generation(&self) -> u64 {
        self.room.generation()
    }

    /// Waits until the room bell rang (or shutdown began) since `seen`.
    pub async fn room_changed(&self, seen: u64) {
        self.room.changed(seen).await;
    }

    /// Wakes the shards whose senders wait for room, as a count found them.
    pub fn ring(&self, waiting: Waiting) {
        self.workers_context.room.ring(waiting);
    }

    /// Ends a batch: wakes each shard that was sent something, once.
    pub fn flush(&self) {
        for shard in self.touched.borrow_mut().drain(..) {
            self.mesh.notify(shard);
        }
    }

    /// Queues a delivery on this shard's worker for its endpoint, starting the worker if the
    /// endpoint has none yet.
    fn deliver_here(&self, delivery: Delivery) {
        // A replayed message releases its hold only once it is in the queue (or the dead
        // letters): from then on nothing new can overtake it.
        let held = delivery.held.then(|| Arc::clone(&delivery.queued));
        self.enqueue(delivery);
        if let Some(queued) = held {
            self.ring(queued.release_hold());
        }
    }

    fn enqueue(&self, delivery: Delivery) {
        let existing = self.workers.borrow().get(&delivery.endpoint).cloned();
        let worker = match existing {
            Some(worker) => worker,
            None => match self.start_worker(&delivery.endpoint) {
                Some(worker) => worker,
                None => {
                    // The endpoint vanished in a reload between routing and delivery; the
                    // message was accepted, so it must not be lost.
                    self.workers_context.room.ring(delivery.queued.done());
                    self.outcomes.dead_letter(
                        &delivery,
                        GiveUp::Unroutable,
                        "endpoint removed from the directory",
                        None,
                    );
                    return;
                }
            },
        };
        worker.push(delivery);
    }

    fn start_worker(&self, name: &str) -> Option<Rc<Worker>> {
        let current = self.routing();
        let prepared = self.prepared.borrow().clone();
        let (routing, id) = std::iter::once(current)
            .chain(prepared)
            .find_map(|routing| routing.table.endpoint_id(name).map(|id| (routing, id)))?;
        let endpoint = routing.table.endpoint(id)?;
        let tls = routing.client_tls_for(endpoint);
        let status = routing
            .handle(id)
            .map(|handle| Arc::clone(&handle.status))
            .unwrap_or_default();
        let worker = Worker::new(Arc::new(endpoint.clone()), tls, status);
        self.workers
            .borrow_mut()
            .insert(Arc::clone(worker.name()), Rc::clone(&worker));
        let seed = (self.info.index as u64) << 32 ^ u64::from(id.index() as u32);
        monoio::spawn(Rc::clone(&worker).run(self.workers_context.clone(), seed));
        Some(worker)
    }

    /// Runs for the life of the shard: moves deliveries that other shards queued for this one
    /// to their endpoints' workers.
    pub async fn run_inbox(self: Rc<Self>) {
        monoio::spawn(Rc::clone(&self).run_room());
        let mut batch = Vec::with_capacity(256);
        loop {
            self.mesh.wait(self.info.index).await;
            self.mesh.drain(self.info.index, &mut batch);
            for delivery in batch.drain(..) {
                self.deliver_here(delivery);
            }
        }
    }

    /// Gives up on a delivery without waiting for its dead letter to be written.
    pub fn give_up(&self, delivery: &Delivery, why: GiveUp, detail: &str) {
        self.outcomes.dead_letter(delivery, why, detail, None);
    }

    /// Gives up on a delivery that cannot reach its endpoint (it no longer exists).
    pub async fn dead_letter(&self, delivery: &Delivery, detail: &str) {
        self.outcomes
            .keep(delivery, GiveUp::Unroutable, detail, None)
            .await;
    }

    /// Keeps a message that no rule routes, when the policy says to keep such messages; its
    /// sender may be acknowledged once this returned `Ok`.
    pub async fn keep_unrouted(&self, message: &Arc<Accepted>) -> Result<(), DeadLetterError> {
        self.outcomes.keep_unrouted(message).await
    }

    /// Dead letters being written for this shard's workers.
    pub fn letters_pending(&self) -> usize {
        self.outcomes.letters_pending()
    }

    /// This shard's counters.
    pub fn counters(&self) -> &crate::metrics::ShardCounters {
        self.metrics.shard(self.info.index)
    }

    /// Messages queued on this shard's workers, in flight included.
    pub fn queued_here(&self) -> usize {
        self.workers.borrow().values().map(|w| w.len()).sum()
    }

    /// Asks every worker to stop once its queue is empty.
    pub fn stop_workers(&self) {
        for worker in self.workers.borrow().values() {
            worker.stop();
        }
    }
}
