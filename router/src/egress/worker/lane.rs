//! An endpoint's lanes, when it takes more than one message at a time (`max_in_flight`,
//! `connections`): one connection each, with the order keys that hash to it.
//!
//! An ITK lane sends one message at a time (HTTP/1.1 has no pipelining worth using), so an ITK
//! endpoint gets `connections × max_in_flight` lanes. An MLLP lane pipelines HL7v2 frames: up to `max_in_flight` are written before their ACKs come,
//! and each ACK is matched to its message by MSA-2, exactly. Its queue ([`Keyed`]) lets one
//! message per order key be in flight, so messages of one key never overtake each other,
//! retries included. A reply that names no message in flight (and none acknowledged earlier on
//! the connection) means the two sides no longer agree on what is in flight: the connection is
//! closed and every unanswered message is sent again. A failure of the connection is charged to
//! the oldest message in flight, the one whose reply was awaited, as it would be with one in
//! flight; the others go back, unsent, in their order. A retired lane (a reload rearranged the
//! endpoint) takes nothing new and stops once nothing it sent is unanswered.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use codecs::mllp;

use super::{Lanes, Link, Whose, Worker, WorkerContext};
use crate::egress::exchange::MAX_REPLY;
use crate::egress::keyed::{Key, Keyed};
use crate::egress::policy::Policy;
use crate::egress::verdict::{acknowledged_id, hl7v2_reply, Failure, Verdict};
use crate::net::stream::Unsolicited;
use crate::pipeline::Delivery;
use crate::routes::Endpoint;

/// One lane's queue, filled by [`Worker::push`] on the owner shard.
#[derive(Default)]
pub(super) struct LaneQueue {
    keyed: RefCell<Keyed<Delivery>>,
    waker: Cell<Option<Waker>>,
    /// Something changed that the lane's task must look at: work, a stop, a renewal.
    poked: Cell<bool>,
    /// The endpoint's definition changed: the open connection goes to the old address.
    renew: Cell<bool>,
}

impl LaneQueue {
    pub(super) fn push(&self, key: Key, delivery: Delivery) {
        self.keyed.borrow_mut().push(key, delivery);
        self.poke();
    }

    /// Messages waiting here, those in flight included.
    pub(super) fn len(&self) -> usize {
        self.keyed.borrow().len()
    }

    pub(super) fn renew(&self) {
        self.renew.set(true);
        self.poke();
    }

    pub(super) fn poke(&self) {
        self.poked.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    async fn poked(&self) {
        poll_fn(|cx| {
            if self.poked.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    /// The first message of the next ready key, taken for sending.
    fn take_one(&self) -> Option<Sent> {
        let mut keyed = self.keyed.borrow_mut();
        let (key, delivery) = keyed.take_ready()?;
        Some(Sent {
            key,
            delivery: delivery.clone(),
            at: Instant::now(),
        })
    }

    /// The message here that has waited longest, of those first in their key's line.
    pub(super) fn oldest(&self) -> Option<Delivery> {
        let keyed = self.keyed.borrow();
        keyed.heads().min_by_key(|d| d.message.arrived).cloned()
    }

    /// Every message held, line by line, leaving the lane empty: for the lanes that follow a
    /// reload's new arrangement.
    pub(super) fn take_lines(&self) -> impl Iterator<Item = VecDeque<Delivery>> {
        std::mem::take(&mut *self.keyed.borrow_mut()).into_lines()
    }

    /// Puts messages taken for sending back at the front of their lines, in their order.
    fn put_back(&self, sent: impl DoubleEndedIterator<Item = Sent>) {
        let mut keyed = self.keyed.borrow_mut();
        for s in sent.rev() {
            keyed.untake(s.key);
        }
    }
}

/// A message written to the lane's connection and not yet answered.
struct Sent {
    key: Key,
    delivery: Delivery,
    at: Instant,
}

/// What is in flight on a lane's connection, oldest first, and the replies read so far.
struct Flight {
    sent: VecDeque<Sent>,
    replies: Vec<u8>,
    decoder: mllp::Decoder,
}

impl Flight {
    fn new() -> Flight {
        Flight {
            sent: VecDeque::new(),
            replies: Vec::new(),
            decoder: mllp::Decoder::new(MAX_REPLY),
        }
    }

    /// The connection is gone: so are half-read replies.
    fn reset(&mut self, ctx: &WorkerContext) {
        self.decoder = mllp::Decoder::new(MAX_REPLY);
        self.give_back(ctx);
    }

    fn give_back(&mut self, ctx: &WorkerContext) {
        if self.replies.capacity() > 0 {
            ctx.pool.give(std::mem::take(&mut self.replies));
        }
    }

    fn holds(&self, control_id: &[u8]) -> bool {
        self.sent
            .iter()
            .any(|s| s.delivery.message.control_id() == control_id)
    }

    /// The message in flight that `reply` acknowledges.
    fn answered_by(&mut self, reply: &[u8]) -> Option<Sent> {
        let id = acknowledged_id(reply)?;
        let at = self
            .sent
            .iter()
            .position(|s| s.delivery.message.control_id() == id)?;
        self.sent.remove(at)
    }
}

/// What woke a lane waiting for replies.
enum Woke {
    Readable(std::io::Result<()>),
    Poked,
    Timer,
}

/// How long a lane waits when nothing else wakes it: it is woken by work anyway.
pub(super) const IDLE_WAKE: Duration = Duration::from_secs(3600);

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn window(endpoint: &Endpoint) -> usize {
    usize::try_from(endpoint.delivery.max_in_flight.max(1)).unwrap_or(1)
}

impl Worker {
    /// Runs every lane as a task of its own on the owner shard, until stopped or retired; the
    /// messages retired lanes still hold go back to the front of the queue, ahead of those
    /// that arrived since, for the next arrangement.
    pub(super) async fn run_lanes(
        self: Rc<Self>,
        ctx: &WorkerContext,
        lanes: Rc<Lanes>,
        seed: u64,
    ) {
        let tasks: Vec<_> = (0..lanes.lanes.len())
            .map(|i| {
                let lane_seed = seed.wrapping_add(i as u64);
                let lane = Rc::clone(&self).run_lane(ctx.clone(), Rc::clone(&lanes), i, lane_seed);
                monoio::spawn(lane)
            })
            .collect();
        let lanes_done = async {
            for task in tasks {
                task.await;
            }
        };
        monoio::select! {
            _ = lanes_done => {},
            _ = self.watch_lanes(&lanes) => {},
        }
        self.lanes.borrow_mut().take();
        let mut queue = self.queue.borrow_mut();
        for delivery in lanes.take_left().into_iter().rev() {
            queue.push_front(delivery);
        }
    }

    async fn run_lane(
        self: Rc<Self>,
        ctx: WorkerContext,
        lanes: Rc<Lanes>,
        index: usize,
        seed: u64,
    ) {
        let Some(lane) = lanes.lanes.get(index) else {
            return;
        };
        let one_each = lanes.one_each;
        let policy = ctx.settings.policy();
        let mut link = self.link(&policy, seed);
        let mut flight = Flight::new();
        // Set while the lane backs off after a failure of its connection, or its circuit is open.
        let mut paused: Option<Instant> = None;
        loop {
            if lane.renew.replace(false) {
                link.drop_stream(&ctx);
                flight.reset(&ctx);
                lane.put_back(flight.sent.drain(..));
            }
            let now = Instant::now();
            let rested = lane.keyed.borrow_mut().wake(now);
            paused = paused.filter(|&until| until > now);
            let endpoint = Arc::clone(&self.target.borrow().endpoint);
            let judge = (&policy, &*endpoint);
            let retiring = lanes.retiring.get();
            if one_each {
                let next = (paused.is_none() && !retiring)
                    .then(|| lane.take_one())
                    .flatten();
                if let Some(sent) = next {
                    paused = self.exchange_one(&mut link, &ctx, judge, lane, sent).await;
                    continue;
                }
            } else if paused.is_none() && !retiring {
                if let Err(failure) = self
                    .fill(&mut link, &ctx, &endpoint, lane, &mut flight)
                    .await
                {
                    paused = Some(self.lost(&mut link, &ctx, judge, lane, &mut flight, failure));
                    continue;
                }
            }
            let wake_at = earliest(rested, paused);
            if flight.sent.is_empty() {
                if retiring || (lane.len() == 0 && self.stopping.get()) {
                    break;
                }
                if paused.is_none() && !retiring {
                    // A pre-warmed endpoint's lanes connect before their first message too.
                    paused = self.prewarm(&mut link, &ctx, &policy).await;
                    if paused.is_some() {
                        continue;
                    }
                }
                self.lane_idle(&mut link, &ctx, lane, wake_at).await;
                continue;
            }
            let room = paused.is_none() && !retiring && flight.sent.len() < window(&endpoint);
            let read = self
                .replies(
                    &mut link,
                    &ctx,
                    judge,
                    lane,
                    &mut flight,
                    room.then_some(wake_at),
                )
                .await;
            match read {
                Ok(circuit) => paused = circuit.or(paused),
                Err(failure) => {
                    paused = Some(self.lost(&mut link, &ctx, judge, lane, &mut flight, failure));
                }
            }
        }
        flight.give_back(&ctx);
        Self::close(&mut link, &ctx).await;
    }

    /// One message on a lane with one in flight at a time (ITK): one attempt, judged as a reply
    /// in flight is; `Some` when the lane must wait before sending again (the connection
    /// failed, or the circuit opened), while a decline only rests the message's key.
    async fn exchange_one(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        judge: (&Policy, &Endpoint),
        lane: &LaneQueue,
        sent: Sent,
    ) -> Option<Instant> {
        let verdict = self.attempt(link, ctx, judge.1, &sent.delivery).await;
        let answered = verdict
            .as_ref()
            .err()
            .is_none_or(Failure::endpoint_answered);
        if !answered {
            link.drop_stream(ctx);
        }
        let until = self.settle(link, ctx, judge, lane, &sent, &verdict);
        until.filter(|_| !answered || link.machine.circuit_open())
    }

    /// Writes, in one go, as many messages as the window has room for, each the first of its
    /// key's line, connecting first if need be.
    async fn fill(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        endpoint: &Endpoint,
        lane: &LaneQueue,
        flight: &mut Flight,
    ) -> Result<(), Failure> {
        let mut frames: Option<Vec<u8>> = None;
        while flight.sent.len() < window(endpoint) {
            let mut keyed = lane.keyed.borrow_mut();
            let Some((key, delivery)) = keyed.take_ready() else {
                break;
            };
            // Replies are told apart by control id alone: a second message with the same one
            // waits until the first is answered.
            if flight.holds(delivery.message.control_id()) {
                keyed.untake(key);
                break;
            }
            let delivery = delivery.clone();
            drop(keyed);
            let buf = frames.get_or_insert_with(|| ctx.pool.take());
            mllp::encode(&delivery.message.bytes, buf);
            flight.sent.push_back(Sent {
                key,
                delivery,
                at: Instant::now(),
            });
        }
        let Some(frames) = frames else {
            return Ok(());
        };
        if link.stream.is_none() {
            if let Err(failure) = self.open(link, ctx).await {
                ctx.pool.give(frames);
                return Err(failure);
            }
        }
        let Some(stream) = link.stream.as_mut() else {
            ctx.pool.give(frames);
            return Err(Failure::Unreachable("no connection".to_string()));
        };
        stream
            .write_pooled(frames, &ctx.pool)
            .await
            .map_err(|e| Failure::ConnectionLost(e.to_string()))
    }

    /// Waits for replies and judges each; returns early when work arrives while the window has
    /// room, or at `wake_at` (a resting key's time); `Some` when the circuit opened, until when.
    async fn replies(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        judge: (&Policy, &Endpoint),
        lane: &LaneQueue,
        flight: &mut Flight,
        room: Option<Option<Instant>>,
    ) -> Result<Option<Instant>, Failure> {
        let reply_timeout = ctx.settings.reply_timeout;
        let oldest = flight.sent.front().map_or_else(Instant::now, |s| s.at);
        let deadline = oldest + reply_timeout;
        let wake = earliest(Some(deadline), room.flatten()).unwrap_or(deadline);
        let Some(stream) = link.stream.as_mut() else {
            return Err(Failure::ConnectionLost("no connection".to_string()));
        };
        let sleep = monoio::time::sleep(wake.saturating_duration_since(Instant::now()));
        let woke = if room.is_some() {
            monoio::select! {
                ready = stream.readable() => Woke::Readable(ready),
                _ = lane.poked() => Woke::Poked,
                _ = sleep => Woke::Timer,
            }
        } else {
            monoio::select! {
                ready = stream.readable() => Woke::Readable(ready),
                _ = sleep => Woke::Timer,
            }
        };
        let lost = |e: std::io::Error| Failure::ConnectionLost(e.to_string());
        match woke {
            Woke::Poked => return Ok(None),
            Woke::Timer if Instant::now() >= deadline => {
                return Err(Failure::NoReply(reply_timeout))
            }
            Woke::Timer => return Ok(None),
            Woke::Readable(ready) => ready.map_err(lost)?,
        }
        if flight.replies.capacity() == 0 {
            flight.replies = ctx.pool.take();
        }
        if stream
            .read_into(&mut flight.replies, &ctx.pool)
            .await
            .map_err(lost)?
            == 0
        {
            return Err(Failure::ConnectionLost(
                "the endpoint closed the connection before replying".to_string(),
            ));
        }
        let circuit = self.judge_replies(link, ctx, judge, lane, flight)?;
        if flight.sent.is_empty() && flight.replies.is_empty() {
            flight.give_back(ctx);
        }
        Ok(circuit)
    }

    /// Judges every whole reply read so far.
    fn judge_replies(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        judge: (&Policy, &Endpoint),
        lane: &LaneQueue,
        flight: &mut Flight,
    ) -> Result<Option<Instant>, Failure> {
        let mut circuit = None;
        loop {
            let decoded = flight.decoder.decode(&flight.replies);
            let consumed = decoded.consumed;
            match decoded.event {
                None => {
                    flight.replies.drain(..consumed);
                    return Ok(circuit);
                }
                Some(mllp::Event::TooLarge { .. }) => {
                    return Err(Failure::BadReply(format!(
                        "reply larger than {MAX_REPLY} bytes"
                    )))
                }
                Some(mllp::Event::Frame(frame)) => {
                    // Kept whatever it says: a failure's for the dead letter, an acceptance's
                    // for the message trace.
                    link.last_reply.clear();
                    link.last_reply.extend_from_slice(frame);
                }
            }
            flight.replies.drain(..consumed);
            let Some(sent) = flight.answered_by(&link.last_reply) else {
                let id = acknowledged_id(&link.last_reply);
                // An ACK this connection already had, sent again by the endpoint (see
                // `acked`): skipped, as with one message in flight.
                if id.is_some_and(|id| link.acked.contains(id)) {
                    continue;
                }
                return Err(Failure::BadReply(match id {
                    Some(id) => format!(
                        "reply acknowledges {:?}, which is not in flight",
                        String::from_utf8_lossy(id)
                    ),
                    None => "reply names no message (no MSA-2)".to_string(),
                }));
            };
            let control_id = sent.delivery.message.control_id();
            let verdict = hl7v2_reply(&link.last_reply, control_id, &link.acked)
                .unwrap_or_else(|| Err(Failure::BadReply("reply names no message".to_string())));
            let until = self.settle(link, ctx, judge, lane, &sent, &verdict);
            if link.machine.circuit_open() {
                circuit = earliest(circuit, until);
            }
        }
    }

    /// What `verdict` means for one message in flight: done (delivered or dead-lettered), or
    /// resting until it is tried again, holding its key. Returns when the lane may send again
    /// by the policy's word (`None`: now).
    fn settle(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        judge: (&Policy, &Endpoint),
        lane: &LaneQueue,
        sent: &Sent,
        verdict: &Verdict,
    ) -> Option<Instant> {
        let charges = lane.keyed.borrow_mut().charges(sent.key).copied();
        let mut charges = charges.unwrap_or_default();
        let whose = Whose::InFlight(&mut charges);
        let step = self.judged(link, ctx, judge, &sent.delivery, verdict, whose);
        let until = self.retry_at(link, ctx, &sent.delivery, verdict, &step);
        let mut keyed = lane.keyed.borrow_mut();
        if verdict.is_ok() || step.give_up.is_some() {
            keyed.done(sent.key);
        } else {
            if let Some(kept) = keyed.charges(sent.key) {
                *kept = charges;
            }
            keyed.rest(sent.key, until.unwrap_or_else(Instant::now));
        }
        until
    }

    /// The connection failed with messages in flight: closes it, charges the oldest, puts the
    /// others back unsent, and says when the lane may send again.
    fn lost(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        judge: (&Policy, &Endpoint),
        lane: &LaneQueue,
        flight: &mut Flight,
        failure: Failure,
    ) -> Instant {
        link.drop_stream(ctx);
        flight.reset(ctx);
        let mut sent = std::mem::take(&mut flight.sent);
        let until = match sent.pop_front() {
            Some(oldest) => self.settle(link, ctx, judge, lane, &oldest, &Err(failure)),
            None => None,
        };
        lane.put_back(sent.into_iter());
        until.unwrap_or_else(Instant::now)
    }

    /// Nothing in flight: keeps the connection (noticing when the endpoint closes it) until
    /// work arrives or `wake_at`.
    async fn lane_idle(
        &self,
        link: &mut Link,
        ctx: &WorkerContext,
        lane: &LaneQueue,
        wake_at: Option<Instant>,
    ) {
        let wait = wake_at.map_or(IDLE_WAKE, |t| t.saturating_duration_since(Instant::now()));
        let Some(open) = link.stream.as_mut() else {
            monoio::select! {
                _ = lane.poked() => {},
                _ = monoio::time::sleep(wait) => {},
            }
            return;
        };
        let closed = monoio::select! {
            _ = lane.poked() => false,
            _ = monoio::time::sleep(wait) => false,
            ready = open.readable() => ready.is_err() || matches!(
                open.take_unsolicited(&ctx.pool).await,
                Ok(Unsolicited::Closed) | Err(_)
            ),
        };
        if closed {
            link.drop_stream(ctx);
        }
    }
}
