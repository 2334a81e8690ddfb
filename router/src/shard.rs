//! One shard: the routing in force, the endpoints it owns, and its end of the mesh.
//!
//! A shard is shared by the tasks of its own thread (`Rc`, `RefCell`) and by nothing else;
//! other shards reach it only through the mesh. Endpoint workers are created on the first
//! message for an endpoint (or at start-up when pre-warmed) and live until a reload removes the
//! endpoint and its queue has drained.
pub mod durable;
pub mod logged;
pub mod routing;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::egress::gate::ConnectGate;
use crate::egress::settings::EgressSettings;
use crate::egress::worker::{ConnectionCounters, GiveUp, Outcomes, Worker, WorkerContext};
use crate::ids::Uuids;
use crate::metrics::Metrics;
use crate::net::pool::{BufferPool, IO_BUFFER};
use crate::net::stream::Stream;
use crate::pipeline::{Accepted, Delivery};
use crate::runtime::mesh::Mesh;
use crate::runtime::shards::ShardInfo;
use durable::Durability;
pub use routing::{EndpointHandle, Routing};

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
}

/// How often a sender held back by a full queue looks again. Back-pressure is the slow path:
/// polling it keeps the fast path free of cross-shard bookkeeping.
const BACKPRESSURE_POLL: Duration = Duration::from_millis(2);

pub struct Shard {
    pub info: ShardInfo,
    routing: RefCell<Arc<Routing>>,
    mesh: Arc<Mesh<Delivery>>,
    pub pool: Rc<BufferPool>,
    workers: RefCell<HashMap<Arc<str>, Rc<Worker>>>,
    pub settings: EgressSettings,
    outcomes: Rc<dyn Outcomes>,
    workers_context: WorkerContext,
    pub metrics: Arc<Metrics>,
    /// The shard's write-ahead log; `None` only when durability was turned off (benchmarks).
    pub durability: Option<Rc<Durability>>,
    pub uuids: Uuids,
    seq: Cell<u64>,
    /// Shards sent to since the last [`Shard::flush`].
    touched: RefCell<Vec<usize>>,
}

impl Shard {
    pub fn new(
        info: ShardInfo,
        routing: Arc<Routing>,
        mesh: Arc<Mesh<Delivery>>,
        settings: EgressSettings,
        outcomes: Rc<dyn Outcomes>,
        metrics: Arc<Metrics>,
        durability: Option<Rc<Durability>>,
    ) -> Rc<Shard> {
        let pool = Rc::new(BufferPool::new(IO_BUFFER, 64));
        let workers_context = WorkerContext {
            settings,
            pool: Rc::clone(&pool),
            outcomes: Rc::clone(&outcomes),
            gate: ConnectGate::new(CONCURRENT_HANDSHAKES, CONNECTS_PER_SECOND),
            counters: Rc::new(ShardConnections {
                metrics: Arc::clone(&metrics),
                shard: info.index,
            }),
        };
        Rc::new(Shard {
            workers_context,
            info,
            routing: RefCell::new(routing),
            mesh,
            pool,
            workers: RefCell::new(HashMap::new()),
            settings,
            outcomes,
            metrics,
            durability,
            uuids: Uuids::new(info.index),
            seq: Cell::new(0),
            touched: RefCell::new(Vec::new()),
        })
    }

    /// The routing in force; a message keeps the `Arc` it was routed with.
    pub fn routing(&self) -> Arc<Routing> {
        Arc::clone(&self.routing.borrow())
    }

    /// Takes a new routing into use: workers of endpoints it still has get their (possibly
    /// changed) definitions; workers of endpoints it dropped finish their queues and stop.
    pub fn install(&self, routing: Arc<Routing>) {
        let mut workers = self.workers.borrow_mut();
        let table = &routing.table;
        workers.retain(|name, worker| match table.endpoint_id(name) {
            Some(id) => {
                if let Some(endpoint) = table.endpoint(id) {
                    let tls = routing.client_tls_for(endpoint);
                    worker.update(Arc::new(endpoint.clone()), tls);
                }
                true
            }
            None => {
                worker.stop();
                false
            }
        });
        drop(workers);
        *self.routing.borrow_mut() = routing;
        self.prewarm();
    }

    /// Starts a worker for every endpoint this shard owns that wants its connection open
    /// before the first message (`prewarm`); the connect gate spreads the handshakes out.
    pub fn prewarm(&self) {
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
                && !self.workers.borrow().contains_key(&handle.name)
                && self.start_worker(&endpoint.name).is_some()
            {
                started += 1;
            }
        }
        if started > 0 {
            log::info!(
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
    /// full.
    pub async fn wait_for_room(&self, handle: &EndpointHandle) {
        while handle.queued.load(Ordering::Acquire) >= self.settings.queue_limit {
            monoio::time::sleep(BACKPRESSURE_POLL).await;
        }
    }

    /// Hands a delivery to the shard that owns its endpoint: directly when that is this shard,
    /// through the mesh otherwise. Counts it against the endpoint's queue.
    pub async fn dispatch(&self, delivery: Delivery, handle: &EndpointHandle) {
        delivery.queued.fetch_add(1, Ordering::AcqRel);
        if handle.owner == self.info.index {
            self.deliver_here(delivery);
            return;
        }
        let mut item = delivery;
        loop {
            match self.mesh.try_send(self.info.index, handle.owner, item) {
                Ok(()) => break,
                Err(back) => {
                    // The owner is behind: make sure it is awake, then wait for room.
                    item = back;
                    self.mesh.notify(handle.owner);
                    monoio::time::sleep(BACKPRESSURE_POLL).await;
                }
            }
        }
        let mut touched = self.touched.borrow_mut();
        if !touched.contains(&handle.owner) {
            touched.push(handle.owner);
        }
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
        let existing = self.workers.borrow().get(&delivery.endpoint).cloned();
        let worker = match existing {
            Some(worker) => worker,
            None => match self.start_worker(&delivery.endpoint) {
                Some(worker) => worker,
                None => {
                    // The endpoint vanished in a reload between routing and delivery; the
                    // message was accepted, so it must not be lost.
                    delivery.queued.fetch_sub(1, Ordering::AcqRel);
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
        let routing = self.routing();
        let id = routing.table.endpoint_id(name)?;
        let endpoint = routing.table.endpoint(id)?;
        let tls = routing.client_tls_for(endpoint);
        let worker = Worker::new(Arc::new(endpoint.clone()), tls);
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
        let mut batch = Vec::with_capacity(256);
        loop {
            self.mesh.wait(self.info.index).await;
            self.mesh.drain(self.info.index, &mut batch);
            for delivery in batch.drain(..) {
                self.deliver_here(delivery);
            }
        }
    }

    /// Gives up on a delivery that cannot reach its endpoint (it no longer exists).
    pub fn dead_letter(&self, delivery: &Delivery, detail: &str) {
        self.outcomes
            .dead_letter(delivery, GiveUp::Unroutable, detail, None);
    }

    /// Keeps a message that no rule routes, when the policy says to keep such messages.
    pub fn dead_letter_unrouted(&self, message: &Arc<Accepted>) {
        let delivery = Delivery {
            message: Arc::clone(message),
            endpoint: Arc::from("(unrouted)"),
            queued: Arc::new(AtomicU32::new(0)),
            record: None,
        };
        self.outcomes.dead_letter(
            &delivery,
            GiveUp::Unroutable,
            "no route for this message",
            None,
        );
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
