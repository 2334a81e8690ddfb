//! One endpoint's worker: its queue, its connection, and the loop that delivers in order.
//!
//! Exactly one message per endpoint is in flight, and it leaves the front of the queue only when
//! it is done (delivered, or refused and dead-lettered), so an endpoint receives its messages in
//! the order they were accepted. A failed attempt closes the connection and retries the same
//! message after a backoff; it never sends the next one first and never queues a second copy.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use super::backoff::Backoff;
use super::connect::connect;
use super::exchange::exchange;
use super::gate::ConnectGate;
use super::settings::EgressSettings;
use super::verdict::Verdict;
use crate::deadletter::DeadLetterError;
use crate::net::pool::BufferPool;
use crate::net::stream::{Stream, Unsolicited};
use crate::pipeline::{Accepted, Delivery};
use crate::routes::Endpoint;

/// Why a message is given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The endpoint refused it (AR/CR, a SOAP client fault, a 4xx).
    Refused,
    /// It kept failing in ways that might have passed, for longer than the retry budget.
    RetriesExhausted,
    /// Nothing routes it (the `unrouted = "dead-letter"` policy), or its endpoint is gone.
    Unroutable,
}

/// Where the worker reports what became of each message.
pub trait Outcomes {
    /// The endpoint has the message.
    fn delivered(&self, delivery: &Delivery);
    /// The message is given up on; it must be kept in the dead-letter store with the reason
    /// and the endpoint's reply, if any, before its destination is marked done.
    fn dead_letter(&self, delivery: &Delivery, why: GiveUp, detail: &str, reply: Option<&[u8]>);
    /// Keeps a message that no route takes (`unrouted = "dead-letter"`) as a dead letter, now:
    /// its sender is acknowledged only after this returned `Ok`.
    fn keep_unrouted(&self, message: &Arc<Accepted>) -> Result<(), DeadLetterError>;
    /// An attempt failed and will be retried; for logs and metrics.
    fn retrying(&self, delivery: &Delivery, reason: &str, after: Duration);
}

/// The endpoint's current definition; replaced when a reload changes it.
struct Target {
    endpoint: Arc<Endpoint>,
    tls: Option<Arc<ClientConfig>>,
}

/// State of one endpoint on its owner shard.
pub struct Worker {
    name: Arc<str>,
    target: RefCell<Target>,
    queue: RefCell<VecDeque<Delivery>>,
    waker: Cell<Option<Waker>>,
    /// Set when the definition changed: the open connection goes to the old address.
    reconnect: Cell<bool>,
    stopping: Cell<bool>,
    /// Keep a connection open even with nothing to send.
    prewarm: Cell<bool>,
}

/// What every worker of a shard shares.
#[derive(Clone)]
pub struct WorkerContext {
    pub settings: EgressSettings,
    pub pool: Rc<BufferPool>,
    pub outcomes: Rc<dyn Outcomes>,
    pub gate: Rc<ConnectGate>,
    pub counters: Rc<dyn ConnectionCounters>,
}

/// Counts connections for metrics.
pub trait ConnectionCounters {
    fn connection_opened(&self, stream: &Stream);
    fn connection_closed(&self);
}

/// One worker's connection and failure state.
struct Link {
    stream: Option<Stream>,
    backoff: Backoff,
    tls_error_logged: bool,
    circuit_open: bool,
}

/// Consecutive failures after which the circuit opens: the endpoint is left alone for a
/// cool-down, then tried once.
const BREAKER_THRESHOLD: u32 = 5;

impl Link {
    fn drop_stream(&mut self, ctx: &WorkerContext) {
        if self.stream.take().is_some() {
            ctx.counters.connection_closed();
        }
    }

    fn succeeded(&mut self, name: &str) {
        self.backoff.succeed();
        if std::mem::replace(&mut self.circuit_open, false) {
            log::info!("endpoint {name}: reachable again; circuit closed");
        }
    }

    /// Records a failure; returns how long to wait before the next try.
    fn failed(&mut self, name: &str, ctx: &WorkerContext) -> Duration {
        let wait = self.backoff.fail();
        if self.backoff.failures() < BREAKER_THRESHOLD {
            return wait;
        }
        if !std::mem::replace(&mut self.circuit_open, true) {
            log::warn!(
                "endpoint {name}: {} failures in a row; circuit open, probing every {:?} or so",
                self.backoff.failures(),
                ctx.settings.breaker_cooldown
            );
        }
        // A jittered cool-down (half to the whole of it), so endpoints that failed together
        // are not probed together.
        let half = ctx.settings.breaker_cooldown / 2;
        half + wait.min(half)
    }
}

impl Worker {
    pub fn new(endpoint: Arc<Endpoint>, tls: Option<Arc<ClientConfig>>) -> Rc<Worker> {
        let prewarm = endpoint.prewarm;
        Rc::new(Worker {
            prewarm: Cell::new(prewarm),
            name: Arc::from(endpoint.name.as_str()),
            target: RefCell::new(Target { endpoint, tls }),
            queue: RefCell::new(VecDeque::new()),
            waker: Cell::new(None),
            reconnect: Cell::new(false),
            stopping: Cell::new(false),
        })
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Queues a delivery and wakes the worker if it was waiting for work.
    pub fn push(&self, delivery: Delivery) {
        self.queue.borrow_mut().push_back(delivery);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Messages waiting here, including the one in flight.
    pub fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// Takes a changed definition (address, TLS) into use from the next attempt on.
    pub fn update(&self, endpoint: Arc<Endpoint>, tls: Option<Arc<ClientConfig>>) {
        let changed = endpoint.identity() != self.target.borrow().endpoint.identity();
        self.prewarm.set(endpoint.prewarm);
        *self.target.borrow_mut() = Target { endpoint, tls };
        if changed {
            self.reconnect.set(true);
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// Asks the worker to stop once its queue is empty.
    pub fn stop(&self) {
        self.stopping.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Waits for work; `false` when asked to stop and nothing is left. Also returns when the
    /// definition changed, so that an idle pre-warmed worker reconnects to the new address.
    async fn next(&self) -> bool {
        poll_fn(|cx| {
            if !self.queue.borrow().is_empty() || self.reconnect.get() {
                Poll::Ready(true)
            } else if self.stopping.get() {
                Poll::Ready(false)
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    /// Delivers until stopped. Runs as one task on the owner shard.
    pub async fn run(self: Rc<Self>, ctx: WorkerContext, seed: u64) {
        let mut link = Link {
            stream: None,
            backoff: Backoff::new(ctx.settings.backoff, seed),
            tls_error_logged: false,
            circuit_open: false,
        };
        let mut first_failure: Option<Instant> = None;
        loop {
            if self.reconnect.replace(false) {
                link.drop_stream(&ctx);
            }
            if self.queue.borrow().is_empty() {
                if self.stopping.get() {
                    break;
                }
                self.idle(&mut link, &ctx).await;
                continue;
            }
            let Some(delivery) = self.queue.borrow().front().cloned() else {
                continue;
            };
            let endpoint = Arc::clone(&self.target.borrow().endpoint);
            let unreachable = match link.stream {
                Some(_) => None,
                None => self.open(&mut link, &ctx).await.err(),
            };
            let mut reply = None;
            let verdict = match link.stream.as_mut() {
                None => Verdict::Retry(unreachable.unwrap_or_default()),
                Some(open) => {
                    let result = exchange(
                        open,
                        &endpoint,
                        &delivery.message,
                        ctx.settings.reply_timeout,
                        &ctx.pool,
                    )
                    .await;
                    match result {
                        Ok(attempt) => {
                            if !attempt.keep {
                                link.drop_stream(&ctx);
                            }
                            reply = attempt.reply;
                            attempt.verdict
                        }
                        Err(e) => Verdict::Retry(format!("connection lost: {e}")),
                    }
                }
            };
            match verdict {
                Verdict::Delivered => {
                    link.succeeded(&self.name);
                    first_failure = None;
                    self.finish();
                    ctx.outcomes.delivered(&delivery);
                }
                Verdict::Refused(reason) => {
                    link.succeeded(&self.name);
                    first_failure = None;
                    self.finish();
                    ctx.outcomes
                        .dead_letter(&delivery, GiveUp::Refused, &reason, reply.as_deref());
                }
                Verdict::Retry(reason) => {
                    // The reply (or its absence) leaves the stream in an unknown state: a late
                    // ACK for this message must not be read as the ACK of the next one.
                    link.drop_stream(&ctx);
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    if since.elapsed() >= ctx.settings.retry_for {
                        link.succeeded(&self.name);
                        first_failure = None;
                        self.finish();
                        let why = format!("gave up after {:?}: {reason}", ctx.settings.retry_for);
                        ctx.outcomes
                            .dead_letter(&delivery, GiveUp::RetriesExhausted, &why, None);
                        continue;
                    }
                    let wait = link.failed(&self.name, &ctx);
                    ctx.outcomes.retrying(&delivery, &reason, wait);
                    monoio::time::sleep(wait).await;
                }
            }
        }
        if let Some(mut open) = link.stream.take() {
            let _ = open.shutdown(&ctx.pool).await;
            ctx.counters.connection_closed();
        }
    }

    /// Nothing to send: keep (or, when pre-warmed, make) the connection, watch it for the
    /// endpoint closing it, and return when work arrives or the worker is asked to stop.
    async fn idle(&self, link: &mut Link, ctx: &WorkerContext) {
        if link.stream.is_none() && self.prewarm.get() && !self.stopping.get() {
            if let Err(e) = self.open(link, ctx).await {
                let wait = link.failed(&self.name, ctx);
                log::debug!(
                    "endpoint {}: pre-warm: {e}; next try in {wait:?}",
                    self.name
                );
                monoio::select! {
                    _ = monoio::time::sleep(wait) => {},
                    _ = self.next() => {},
                }
                return;
            }
        }
        let Some(open) = link.stream.as_mut() else {
            self.next().await;
            return;
        };
        let closed = monoio::select! {
            _ = self.next() => false,
            ready = open.readable() => ready.is_err() || {
                match open.take_unsolicited(&ctx.pool).await {
                    Ok(Unsolicited::Nothing) => false,
                    Ok(Unsolicited::Data(n)) => {
                        log::debug!("endpoint {}: {n} unsolicited bytes ignored", self.name);
                        false
                    }
                    Ok(Unsolicited::Closed) | Err(_) => true,
                }
            },
        };
        if closed {
            log::debug!("endpoint {}: closed the idle connection", self.name);
            link.drop_stream(ctx);
            if self.prewarm.get() {
                // Do not reconnect in a tight loop to an endpoint that closes at once.
                monoio::time::sleep(link.backoff.fail()).await;
            }
        }
    }

    /// Opens the connection, through the shard's connect gate.
    async fn open(&self, link: &mut Link, ctx: &WorkerContext) -> Result<(), String> {
        let (endpoint, tls) = {
            let target = self.target.borrow();
            (Arc::clone(&target.endpoint), target.tls.clone())
        };
        let _pass = ctx.gate.enter().await;
        match connect(
            &endpoint,
            tls.as_ref(),
            ctx.settings.connect_timeout,
            &ctx.pool,
        )
        .await
        {
            Ok(fresh) => {
                link.tls_error_logged = false;
                ctx.counters.connection_opened(&fresh);
                link.stream = Some(fresh);
                Ok(())
            }
            Err(e) => {
                // A certificate problem does not go away by retrying: say it once.
                if e.is_tls() && !std::mem::replace(&mut link.tls_error_logged, true) {
                    log::warn!("endpoint {}: {e}", self.name);
                }
                Err(e.to_string())
            }
        }
    }

    /// Takes the message in flight off the queue.
    fn finish(&self) {
        if let Some(done) = self.queue.borrow_mut().pop_front() {
            done.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
