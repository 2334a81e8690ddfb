//! One endpoint's worker: its queue, its connection, and the loop that delivers in order.
//!
//! By default exactly one message per endpoint is in flight, and it leaves the front of the
//! queue only when it is done (delivered, or dead-lettered), so an endpoint receives its
//! messages in the order they were accepted. A failed attempt closes the connection and retries
//! the same message later; it never sends the next one first and never queues a second copy.
//! An endpoint that allows more (`max_in_flight`, `connections`) is served by [`lane`]s
//! instead, which keep the same rules per order key. A reload that changes which of the two
//! (or how many lanes, or `order_by`) winds the old arrangement down before the new one takes a
//! message: nothing new goes into the old lanes, what they have in flight is answered (or put
//! back unsent), and what they still hold goes ahead of what arrived meanwhile, each key's
//! messages in order. The worker only does the I/O: when to try again, when to give up on a
//! message and when to leave the endpoint alone is the retry policy's answer
//! ([`super::policy`]), given each outcome and the time.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use rustls::ClientConfig;

use super::acked::AckedIds;
use super::connect::connect;
use super::exchange::{exchange, Exchange};
use super::failure_log::{FailureLog, Suppressed};
use super::gate::ConnectGate;
use super::keyed::merge_lines;
use super::order_key::order_key;
use super::policy::{Budget, Charges, Machine, Next, Policy, Step};
use super::settings::EgressSettings;
use super::status::{Connection, EndpointStatus};
use super::verdict::{Failure, Verdict};
use crate::net::pool::BufferPool;
use crate::net::stream::{Stream, Unsolicited};
use crate::pipeline::Delivery;
use crate::routes::delivery::OrderBy;
use crate::routes::{Arrangement, Endpoint};
use crate::shard::room::Waiting;

mod alerting;
mod lane;

pub use super::policy::GiveUp;

/// Where the worker reports what became of each message.
pub trait Outcomes {
    /// The endpoint has the message; `reply` is what it acknowledged it with (the HL7v2 ACK
    /// frame, or `HTTP <status>` for ITK).
    fn delivered(&self, delivery: &Delivery, reply: &[u8]);
    /// The message is given up on; it must be kept in the dead-letter store with the reason
    /// and the endpoint's reply, if any, before its destination is marked done. Returns at
    /// once: the letter is written while the worker goes on.
    fn dead_letter(&self, delivery: &Delivery, why: GiveUp, detail: &str, reply: Option<&[u8]>);
    /// An attempt failed and will be retried; for logs and metrics.
    fn retrying(&self, delivery: &Delivery, reason: &str, after: Duration);
}

/// The endpoint's current definition; replaced when a reload changes it.
struct Target {
    endpoint: Arc<Endpoint>,
    tls: Option<Arc<ClientConfig>>,
}

/// What a reload does to an endpoint's open connection: as its diff says, `changed` endpoints
/// (another address, TLS profile, protocol: another identity) renew it, `unchanged` keep it,
/// and `rearranged` ones (another [`Arrangement`]) rebuild their lanes, and so every
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReload {
    Keep,
    Renew,
    Rearrange,
}

impl OnReload {
    /// What going from `old` to `new` asks of the worker; the diff decides, and this checks it.
    fn between(old: &Endpoint, new: &Endpoint) -> OnReload {
        if old.arrangement() != new.arrangement() {
            OnReload::Rearrange
        } else if old.identity() != new.identity() {
            OnReload::Renew
        } else {
            OnReload::Keep
        }
    }
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
    /// What `/endpoints` shows of this endpoint; outlives the worker across reloads.
    status: Arc<EndpointStatus>,
    /// Set while the endpoint takes more than one message at a time: messages go to these
    /// lanes, and `queue` holds only those that arrive while the arrangement changes.
    lanes: RefCell<Option<Rc<Lanes>>>,
    /// A reload changed the endpoint's [`Arrangement`]: the one in use winds down and the
    /// worker builds the new one.
    rearrange: Cell<bool>,
    /// The endpoint's alerts and circuit, one set whatever the arrangement.
    alerting: alerting::Alerting,
}

/// The connections of an endpoint with several messages in flight. Their number and
/// `order_by` stay as they are while the lanes run, so that a key always finds its earlier
/// messages; a reload that changes them retires these lanes and builds others.
struct Lanes {
    order_by: OrderBy,
    lanes: Box<[lane::LaneQueue]>,
    /// HTTP/1.1 has no pipelining worth using: an ITK lane has one message in flight, and an
    /// endpoint gets `connections × max_in_flight` lanes instead.
    one_each: bool,
    /// Another arrangement is wanted: take nothing new, finish what is in flight, stop.
    retiring: Cell<bool>,
}

impl Lanes {
    /// Lanes as `arrangement` says, if it asks for more than one message at a time.
    fn new(arrangement: Arrangement) -> Option<Lanes> {
        let Arrangement::Lanes {
            count,
            order_by,
            one_each,
        } = arrangement
        else {
            return None;
        };
        Some(Lanes {
            order_by,
            lanes: (0..count.max(1))
                .map(|_| lane::LaneQueue::default())
                .collect(),
            one_each,
            retiring: Cell::new(false),
        })
    }

    fn push(&self, delivery: Delivery) {
        let key = order_key(&delivery.message, self.order_by);
        let n = self.lanes.len() as u64;
        // The high bits: FxHash's low bits are weak for short keys.
        let index = usize::try_from((key >> 32) % n.max(1)).unwrap_or_default();
        if let Some(lane) = self.lanes.get(index) {
            lane.push(key, delivery);
        }
    }

    fn len(&self) -> usize {
        self.lanes.iter().map(lane::LaneQueue::len).sum()
    }

    fn each(&self, f: impl Fn(&lane::LaneQueue)) {
        self.lanes.iter().for_each(f);
    }

    /// The message that has waited longest, of those first in their key's line.
    fn oldest(&self) -> Option<Delivery> {
        self.lanes
            .iter()
            .filter_map(lane::LaneQueue::oldest)
            .min_by_key(|d| d.message.arrived)
    }

    fn retire(&self) {
        self.retiring.set(true);
        self.each(lane::LaneQueue::poke);
    }

    /// Empties the lanes once retired: each key's messages in their order, the keys
    /// interleaved by arrival.
    fn take_left(&self) -> Vec<Delivery> {
        let lines = self.lanes.iter().flat_map(lane::LaneQueue::take_lines);
        merge_lines(lines, |d: &Delivery| d.message.arrived)
    }
}

/// What every worker of a shard shares.
#[derive(Clone)]
pub struct WorkerContext {
    pub settings: EgressSettings,
    pub pool: Rc<BufferPool>,
    pub outcomes: Rc<dyn Outcomes>,
    pub gate: Rc<ConnectGate>,
    pub counters: Rc<dyn ConnectionCounters>,
    pub room: Rc<dyn RoomBell>,
}

/// Wakes the senders (on any shard) held back while a queue was full.
pub trait RoomBell {
    fn ring(&self, waiting: Waiting);
}

/// Counts connections for metrics.
pub trait ConnectionCounters {
    fn connection_opened(&self, stream: &Stream);
    fn connection_closed(&self);
    /// A connection could not be opened (name lookup, TCP or TLS).
    fn connect_failed(&self);
}

/// Which message a verdict is for, and so where its retry budget is kept.
enum Whose<'a> {
    /// The front of the queue (one in flight): the retry machine keeps its budget.
    Front,
    /// One of several in flight; its budget is kept with its key's line.
    InFlight(&'a mut Charges),
}

/// One worker's connection and failure state.
struct Link {
    stream: Option<Stream>,
    machine: Machine,
    tls_error_logged: bool,
    /// Control ids acknowledged on the open connection.
    acked: AckedIds,
    /// The endpoint's last reply to the message in flight that did not deliver it, kept for
    /// the dead letter; empty otherwise.
    last_reply: Vec<u8>,
    status: Arc<EndpointStatus>,
    /// Which failed attempts are logged one by one.
    failure_log: FailureLog,
}

/// Larger kept replies are given back once their message is done rather than kept for the
/// next failure.
const KEEP_REPLY_BUFFER: usize = 4096;

impl Link {
    fn drop_stream(&mut self, ctx: &WorkerContext) {
        if self.stream.take().is_some() {
            ctx.counters.connection_closed();
            self.status.closed();
        }
    }

    /// The message in flight is done: its kept reply is not needed any more.
    fn forget_reply(&mut self) {
        if self.last_reply.capacity() > KEEP_REPLY_BUFFER {
            self.last_reply = Vec::new();
        } else {
            self.last_reply.clear();
        }
    }
}

fn budget(endpoint: &Endpoint) -> Budget {
    Budget {
        retry_for: endpoint.delivery.retry_for,
        max_attempts: endpoint.delivery.max_attempts,
    }
}

/// Rounded to the millisecond, for logs.
fn millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Worker {
    pub fn new(
        endpoint: Arc<Endpoint>,
        tls: Option<Arc<ClientConfig>>,
        status: Arc<EndpointStatus>,
    ) -> Rc<Worker> {
        let prewarm = endpoint.prewarm;
        Rc::new(Worker {
            lanes: RefCell::new(None),
            rearrange: Cell::new(false),
            alerting: alerting::Alerting::default(),
            status,
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
        if let Some(lanes) = self.lanes.borrow().as_ref().filter(|l| !l.retiring.get()) {
            lanes.push(delivery);
            self.alerting.wake_watcher();
            return;
        }
        self.queue.borrow_mut().push_back(delivery);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Messages waiting here, including the one in flight.
    pub fn len(&self) -> usize {
        let lanes = self.lanes.borrow().as_ref().map_or(0, |l| l.len());
        self.queue.borrow().len() + lanes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a reloaded definition into use from the next attempt on; the reload's diff
    /// (not this worker) has decided whether the connection must be renewed, or the lanes
    /// rebuilt.
    pub fn update(
        &self,
        endpoint: Arc<Endpoint>,
        tls: Option<Arc<ClientConfig>>,
        connection: OnReload,
    ) {
        debug_assert_eq!(
            connection,
            OnReload::between(&self.target.borrow().endpoint, &endpoint),
            "the reload's diff and the endpoint's definitions disagree about {}",
            endpoint.name
        );
        self.prewarm.set(endpoint.prewarm);
        *self.target.borrow_mut() = Target { endpoint, tls };
        let lanes = self.lanes.borrow().clone();
        match connection {
            OnReload::Keep => return,
            OnReload::Renew => {
                self.reconnect.set(true);
                if let Some(lanes) = lanes {
                    lanes.each(lane::LaneQueue::renew);
                }
            }
            OnReload::Rearrange => {
                self.rearrange.set(true);
                if let Some(lanes) = lanes {
                    lanes.retire();
                }
            }
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Asks the worker to stop once its queue is empty.
    pub fn stop(&self) {
        self.stopping.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        if let Some(lanes) = self.lanes.borrow().as_ref() {
            lanes.each(lane::LaneQueue::poke);
        }
    }

    /// Waits for work; `false` when asked to stop and nothing is left. Also returns when the
    /// definition changed, so that an idle pre-warmed worker reconnects to the new address.
    async fn next(&self) -> bool {
        poll_fn(|cx| {
            if !self.queue.borrow().is_empty() || self.reconnect.get() || self.rearrange.get() {
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

    /// Returns once a reload asked for another arrangement.
    async fn rearranged(&self) {
        poll_fn(|cx| {
            if self.rearrange.get() {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    /// Delivers until stopped, in the arrangement the endpoint's definition asks for, and
    /// in the next one when a reload changes it. Runs as one task on the owner shard.
    pub async fn run(self: Rc<Self>, ctx: WorkerContext, seed: u64) {
        loop {
            match self.arrange() {
                Some(lanes) => Rc::clone(&self).run_lanes(&ctx, lanes, seed).await,
                None => self.run_one(&ctx, seed).await,
            }
            // The next arrangement's connections start with their circuits closed.
            self.forget_circuit();
            if !self.rearrange.replace(false) {
                break;
            }
        }
    }

    /// Lanes, if the current definition asks for them, with the queue's messages moved into
    /// them in order; `None`: the one-at-a-time path, over the queue as it is.
    fn arrange(&self) -> Option<Rc<Lanes>> {
        let arrangement = self.target.borrow().endpoint.arrangement();
        let lanes = Rc::new(Lanes::new(arrangement)?);
        for delivery in self.queue.borrow_mut().drain(..) {
            lanes.push(delivery);
        }
        *self.lanes.borrow_mut() = Some(Rc::clone(&lanes));
        Some(lanes)
    }

    /// One message in flight: the front of the queue, until it is done.
    async fn run_one(&self, ctx: &WorkerContext, seed: u64) {
        let policy = ctx.settings.policy();
        let mut link = self.link(&policy, seed);
        loop {
            // Between attempts nothing is in flight: the queue is whole, in order, for the
            // next arrangement.
            if self.rearrange.get() {
                break;
            }
            if self.reconnect.replace(false) {
                link.drop_stream(ctx);
            }
            let front = self.queue.borrow().front().cloned();
            self.status
                .set_oldest(front.as_ref().map(|d| d.message.arrived));
            let Some(delivery) = front else {
                self.settle_failures(&mut link);
                self.watch(None);
                if self.stopping.get() {
                    break;
                }
                self.idle(&mut link, ctx, &policy).await;
                continue;
            };
            let endpoint = Arc::clone(&self.target.borrow().endpoint);
            self.watch(Some(&delivery));
            let verdict = self.attempt(&mut link, ctx, &endpoint, &delivery).await;
            let step = self.judged(
                &mut link,
                ctx,
                (&policy, &endpoint),
                &delivery,
                &verdict,
                Whose::Front,
            );
            let Some(until) = self.retry_at(&mut link, ctx, &delivery, &verdict, &step) else {
                continue;
            };
            self.pause(until).await;
        }
        Self::close(&mut link, ctx).await;
    }

    /// A connection's state before it is first opened.
    fn link(&self, policy: &Policy, seed: u64) -> Link {
        Link {
            stream: None,
            machine: Machine::new(policy, seed),
            tls_error_logged: false,
            acked: AckedIds::default(),
            last_reply: Vec::new(),
            status: Arc::clone(&self.status),
            failure_log: FailureLog::default(),
        }
    }

    async fn close(link: &mut Link, ctx: &WorkerContext) {
        if let Some(mut open) = link.stream.take() {
            let _ = open.shutdown(&ctx.pool).await;
            ctx.counters.connection_closed();
        }
    }

    /// When the policy's `step` says to send again, saying why if the message failed and will
    /// be retried; `None`: now.
    fn retry_at(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        delivery: &Delivery,
        verdict: &Verdict,
        step: &Step,
    ) -> Option<Instant> {
        let until = match step.next {
            Next::SendNow => return None,
            Next::WaitUntil(until) => until,
            Next::OpenCircuit { until } => self.circuit_opened(link, ctx, until),
        };
        if let Err(failure) = verdict {
            if step.give_up.is_none() {
                let after = until.saturating_duration_since(Instant::now());
                self.status.retried();
                let reason = failure.to_string();
                self.log_retry(link, delivery, &reason, after, step.attempts);
                ctx.outcomes.retrying(delivery, &reason, after);
            }
        }
        Some(until)
    }

    /// One attempt at `delivery`: connect if need be, send, wait for the reply.
    async fn attempt(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        endpoint: &Endpoint,
        delivery: &Delivery,
    ) -> Verdict {
        if link.stream.is_none() {
            self.open(link, ctx).await?;
        }
        let Some(stream) = link.stream.as_mut() else {
            return Err(Failure::Unreachable("no connection".to_string()));
        };
        let how = Exchange {
            endpoint,
            reply_timeout: ctx.settings.reply_timeout,
            pool: &ctx.pool,
            acked: &link.acked,
        };
        let attempt = exchange(stream, &delivery.message, &how, &mut link.last_reply).await;
        if !attempt.keep {
            link.drop_stream(ctx);
        }
        attempt.verdict
    }

    /// Asks the policy what the verdict means, and does what it says with the message: done,
    /// dead-lettered, or left (at the front of the queue, or of its key's line) to be tried
    /// again.
    fn judged(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        (policy, endpoint): (&Policy, &Endpoint),
        delivery: &Delivery,
        verdict: &Verdict,
        whose: Whose<'_>,
    ) -> Step {
        let front = matches!(whose, Whose::Front);
        let step = match verdict {
            Ok(()) => {
                link.acked.remember(delivery.message.control_id());
                link.machine.delivered()
            }
            Err(failure) => {
                let now = Instant::now();
                let budget = budget(endpoint);
                match whose {
                    Whose::Front => {
                        if failure.retry_can_help() {
                            // The stream is in an unknown state: a late reply to this message
                            // must not be read as the reply to the next one.
                            link.drop_stream(ctx);
                        } else if failure.endpoint_answered() {
                            link.acked.remember(delivery.message.control_id());
                        }
                        link.machine.failed(now, failure, policy, &budget)
                    }
                    // Replies in flight are matched by control id, so a reply that names this
                    // message leaves the stream usable; the lane closes it when it is not.
                    Whose::InFlight(charges) => {
                        if failure.endpoint_answered() {
                            link.acked.remember(delivery.message.control_id());
                        }
                        link.machine
                            .failed_charging(charges, now, failure, policy, &budget)
                    }
                }
            }
        };
        self.alerting.failures_now(link.machine.failures());
        if step.circuit_closed {
            self.circuit_closed();
        }
        if let Err(failure) = verdict {
            self.status.failed(failure.to_string(), SystemTime::now());
            if link.stream.is_none() {
                self.status.set_connection(Connection::Down);
            }
        }
        match (verdict, step.give_up) {
            (Ok(()), _) => {
                self.settle_failures(link);
                self.status.delivered();
                self.finish(ctx, delivery, front);
                ctx.outcomes.delivered(delivery, &link.last_reply);
                link.forget_reply();
            }
            (Err(failure), Some(why)) => {
                self.finish(ctx, delivery, front);
                let detail = match why {
                    GiveUp::RetriesExhausted => format!(
                        "gave up after {} attempts over {:?}: {failure}",
                        step.attempts,
                        millis(step.failing_for)
                    ),
                    GiveUp::Refused | GiveUp::Unroutable => failure.to_string(),
                };
                let reply = (!link.last_reply.is_empty()).then_some(&link.last_reply[..]);
                ctx.outcomes.dead_letter(delivery, why, &detail, reply);
                self.status.dead_lettered();
                self.dead_lettered(&endpoint.delivery);
                link.forget_reply();
            }
            (Err(_), None) => {}
        }
        step
    }

    /// Logs a failed attempt that will be retried, within the endpoint's limit (see
    /// [`super::failure_log`]).
    fn log_retry(
        &self,
        link: &mut Link,
        delivery: &Delivery,
        reason: &str,
        after: Duration,
        attempts: u32,
    ) {
        let admitted = link.failure_log.admit(Instant::now());
        if let Some(suppressed) = admitted.summary {
            self.say_suppressed(suppressed);
        }
        if admitted.log {
            let (control_id, tracking_id) = crate::logging::message_ids(&delivery.message);
            tracing::warn!(
                endpoint = &*self.name,
                control_id,
                tracking_id,
                reason,
                attempts,
                retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                body = crate::logging::body(&delivery.message.bytes),
                "delivery failed; will retry in {:?}",
                millis(after)
            );
        }
    }

    /// The endpoint delivered or has nothing left to send: says how many failures were only
    /// counted.
    fn settle_failures(&self, link: &mut Link) {
        if let Some(suppressed) = link.failure_log.settle(Instant::now()) {
            self.say_suppressed(suppressed);
        }
    }

    fn say_suppressed(&self, suppressed: Suppressed) {
        tracing::warn!(
            endpoint = &*self.name,
            suppressed = suppressed.count,
            "{} more delivery failures in the last {} s",
            suppressed.count,
            suppressed.over.as_secs_f64().round()
        );
    }

    /// Waits until `until` before the next attempt, waking on the way when an alert threshold
    /// that depends only on time is due (the oldest message passing `stuck_after`, the circuit
    /// open for `alert_circuit_open`), so that it is said on time.
    async fn pause(&self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let front = self.queue.borrow().front().cloned();
            let settings = self.target.borrow().endpoint.delivery;
            let wake = self
                .alert_due(now, front.as_ref(), &settings)
                .map_or(until, |due| due.clamp(now, until));
            monoio::select! {
                _ = monoio::time::sleep(wake.saturating_duration_since(now)) => {},
                _ = self.rearranged() => return,
            }
            self.watch(front.as_ref());
        }
    }

    /// Nothing to send: keep (or, when pre-warmed, make) the connection, watch it for the
    /// endpoint closing it, and return when work arrives or the worker is asked to stop.
    async fn idle(&self, link: &mut Link, ctx: &WorkerContext, policy: &Policy) {
        if let Some(until) = self.prewarm(link, ctx, policy).await {
            monoio::select! {
                _ = monoio::time::sleep(until.saturating_duration_since(Instant::now())) => {},
                _ = self.next() => {},
            }
            return;
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
                        tracing::debug!(endpoint = &*self.name, "{n} unsolicited bytes ignored");
                        false
                    }
                    Ok(Unsolicited::Closed) | Err(_) => true,
                }
            },
        };
        if closed {
            tracing::debug!(
                endpoint = &*self.name,
                "the endpoint closed the idle connection"
            );
            link.drop_stream(ctx);
            if self.prewarm.get() {
                // Do not reconnect in a tight loop to an endpoint that closes at once.
                let until = link.machine.idle_closed(Instant::now());
                monoio::time::sleep(until.saturating_duration_since(Instant::now())).await;
            }
        }
    }

    /// Opens an idle connection of a pre-warmed endpoint that has none; `Some` when that failed
    /// (counted as any failed connection is): wait until then before trying again.
    async fn prewarm(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        policy: &Policy,
    ) -> Option<Instant> {
        if link.stream.is_some() || !self.prewarm.get() || self.stopping.get() {
            return None;
        }
        let e = self.open(link, ctx).await.err()?;
        self.status.failed(e.to_string(), SystemTime::now());
        let until = match link.machine.connection_failed(Instant::now(), policy) {
            Next::OpenCircuit { until } => self.circuit_opened(link, ctx, until),
            Next::WaitUntil(until) => until,
            Next::SendNow => Instant::now(),
        };
        let wait = until.saturating_duration_since(Instant::now());
        tracing::debug!(endpoint = &*self.name, reason = %e, "pre-warm failed; next try in {wait:?}");
        Some(until)
    }

    /// Opens the connection, through the shard's connect gate.
    async fn open(&self, link: &mut Link, ctx: &WorkerContext) -> Result<(), Failure> {
        let (endpoint, tls) = {
            let target = self.target.borrow();
            (Arc::clone(&target.endpoint), target.tls.clone())
        };
        let _pass = ctx.gate.enter().await;
        self.status.set_connection(Connection::Connecting);
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
                link.acked.clear();
                ctx.counters.connection_opened(&fresh);
                self.status
                    .connected(fresh.tls_state().is_some().then(|| fresh.resumed()));
                link.stream = Some(fresh);
                Ok(())
            }
            Err(e) => {
                let failure = Failure::from(e);
                ctx.counters.connect_failed();
                self.status.set_connection(Connection::Down);
                // A certificate problem does not go away by retrying: say it once.
                if failure.is_tls() && !std::mem::replace(&mut link.tls_error_logged, true) {
                    tracing::warn!(
                        endpoint = &*self.name,
                        reason = %failure,
                        "cannot connect: TLS (said once until a connection succeeds)"
                    );
                }
                Err(failure)
            }
        }
    }

    /// `delivery` is done: gives its place back (waking senders that wait for one), and takes
    /// it off the front of the queue if it came from there (a lane takes its own off its line).
    fn finish(&self, ctx: &WorkerContext, delivery: &Delivery, front: bool) {
        if front {
            self.queue.borrow_mut().pop_front();
        }
        let waiting = delivery.queued.done();
        if !waiting.is_empty() {
            ctx.room.ring(waiting);
        }
    }
}
