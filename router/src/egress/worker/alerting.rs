//! An endpoint's alerts and circuit as its log and `/endpoints` tell them: one set per
//! endpoint, whichever path or lane saw what they watch (see [`crate::egress::alerts`] for the
//! thresholds). The one-at-a-time path looks before each message and while it waits to retry;
//! lanes, which take many messages at once, have a watcher that looks every second while
//! anything waits, and sleeps until the next message otherwise.
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use super::lane::IDLE_WAKE;
use super::{millis, Lanes, Link, Worker, WorkerContext};
use crate::egress::alerts::{AlertWatch, Change, Seen};
use crate::pipeline::Delivery;
use crate::routes::delivery::DeliverySettings;

/// How often a lane endpoint with messages waiting looks at its oldest message and alerts.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// See the module's comment.
#[derive(Default)]
pub(super) struct Alerting {
    alerts: RefCell<AlertWatch>,
    /// When the endpoint's circuit opened (the first of its connections' to open); `None`
    /// while it is closed.
    circuit_since: Cell<Option<Instant>>,
    /// Failures in a row as the last judged attempt left them, for the stuck alert's line.
    failures: Cell<u32>,
    /// The lanes' watcher, while it waits for a message.
    watcher: Cell<Option<Waker>>,
}

impl Alerting {
    pub(super) fn failures_now(&self, failures: u32) {
        self.failures.set(failures);
    }

    /// Something worth a look happened on a lane (a message came, or was dead-lettered).
    pub(super) fn wake_watcher(&self) {
        if let Some(waker) = self.watcher.take() {
            waker.wake();
        }
    }

    async fn something_happened(&self) {
        let mut waited = false;
        poll_fn(|cx| {
            if std::mem::replace(&mut waited, true) {
                Poll::Ready(())
            } else {
                self.watcher.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

impl Worker {
    /// What the alert thresholds are compared with, `oldest` being the message that has
    /// waited longest.
    fn seen(&self, oldest: Option<&Delivery>) -> Seen {
        Seen {
            queued: oldest.map_or(0, |d| d.queued.load(std::sync::atomic::Ordering::Relaxed)),
            oldest: oldest.map(|d| d.message.arrived.elapsed().unwrap_or_default()),
            circuit_open_since: self.alerting.circuit_since.get(),
        }
    }

    /// When a threshold that depends only on time is next crossed, if nothing else changes.
    pub(super) fn alert_due(
        &self,
        now: Instant,
        oldest: Option<&Delivery>,
        settings: &DeliverySettings,
    ) -> Option<Instant> {
        let seen = self.seen(oldest);
        self.alerting.alerts.borrow().next_due(now, seen, settings)
    }

    /// Says once when an alert threshold is crossed, and once when it is back under.
    pub(super) fn watch(&self, oldest: Option<&Delivery>) {
        let settings = self.target.borrow().endpoint.delivery;
        let seen = self.seen(oldest);
        let changes: Vec<Change> = self
            .alerting
            .alerts
            .borrow_mut()
            .observe(Instant::now(), seen, &settings)
            .collect();
        if changes.is_empty() {
            return;
        }
        self.status
            .set_alerts(self.alerting.alerts.borrow().active());
        for change in changes {
            self.say(change, seen, oldest, &settings);
        }
    }

    /// A message was dead-lettered: counted for `alert_dead_letters_per_hour`.
    pub(super) fn dead_lettered(&self, settings: &DeliverySettings) {
        self.alerting
            .alerts
            .borrow_mut()
            .dead_lettered(Instant::now(), settings);
        self.alerting.wake_watcher();
    }

    /// Says once that the endpoint's circuit opened (a lane's opening while another's is
    /// open says nothing), and hands back when it is next probed.
    pub(super) fn circuit_opened(
        &self,
        link: &Link,
        ctx: &WorkerContext,
        until: Instant,
    ) -> Instant {
        if self.alerting.circuit_since.get().is_some() {
            return until;
        }
        self.status.circuit_opened(SystemTime::now());
        self.alerting.circuit_since.set(Some(Instant::now()));
        tracing::warn!(
            endpoint = &*self.name,
            circuit = "open",
            failures = link.machine.failures(),
            "circuit open after {} failures in a row; probing every {:?} or so",
            link.machine.failures(),
            ctx.settings.breaker_cooldown
        );
        until
    }

    /// Something went through: the endpoint is reachable again.
    pub(super) fn circuit_closed(&self) {
        if self.alerting.circuit_since.take().is_some() {
            tracing::info!(
                endpoint = &*self.name,
                circuit = "closed",
                "circuit closed: the endpoint is reachable again"
            );
            self.status.circuit_closed();
        }
    }

    /// The connections whose circuit was open are gone (the arrangement changed, or the
    /// worker stopped): the next ones start closed.
    pub(super) fn forget_circuit(&self) {
        if self.alerting.circuit_since.take().is_some() {
            self.status.circuit_closed();
        }
    }

    /// Watches the lanes' oldest message and alerts for as long as the lanes run (the caller
    /// drops this when they end).
    pub(super) async fn watch_lanes(&self, lanes: &Lanes) {
        loop {
            let oldest = lanes.oldest();
            self.status
                .set_oldest(oldest.as_ref().map(|d| d.message.arrived));
            self.watch(oldest.as_ref());
            let now = Instant::now();
            let settings = self.target.borrow().endpoint.delivery;
            let due = self.alert_due(now, oldest.as_ref(), &settings);
            // Scanning the lanes costs a look at every key: once a second while anything waits,
            // never once per message.
            if oldest.is_some() || self.alerting.alerts.borrow().active() != 0 {
                let next = due.map_or(now + LOOK_EVERY, |due| due.min(now + LOOK_EVERY));
                monoio::time::sleep(next.saturating_duration_since(now)).await;
            } else {
                let wait = due.map_or(IDLE_WAKE, |due| due.saturating_duration_since(now));
                monoio::select! {
                    _ = monoio::time::sleep(wait) => {},
                    _ = self.alerting.something_happened() => {},
                }
            }
        }
    }

    fn say(
        &self,
        change: Change,
        seen: Seen,
        oldest: Option<&Delivery>,
        settings: &DeliverySettings,
    ) {
        use crate::egress::alerts::Alert::{CircuitOpen, DeadLetters, QueueDepth, Stuck};
        let endpoint = &*self.name;
        let queued = seen.queued;
        match change {
            Change::Raised(Stuck) => {
                let (control_id, tracking_id) =
                    oldest.map_or((None, None), |d| crate::logging::message_ids(&d.message));
                tracing::warn!(
                    endpoint,
                    alert = "stuck",
                    control_id,
                    tracking_id,
                    queued,
                    "alert stuck: the oldest message has waited {:?} for delivery (stuck_after is \
                     {:?}); {} failure(s) in a row",
                    millis(seen.oldest.unwrap_or_default()),
                    settings.stuck_after,
                    self.alerting.failures.get()
                )
            }
            Change::Cleared(Stuck) => tracing::info!(
                endpoint,
                alert = "stuck",
                queued,
                "alert stuck cleared: caught up, no message has waited longer than {:?}",
                settings.stuck_after
            ),
            Change::Raised(QueueDepth) => tracing::warn!(
                endpoint,
                alert = "queue_depth",
                queued,
                "alert queue_depth: {queued} messages queued (alert_queue_depth is {})",
                settings.alert_queue_depth.unwrap_or_default()
            ),
            Change::Cleared(QueueDepth) => tracing::info!(
                endpoint,
                alert = "queue_depth",
                queued,
                "alert queue_depth cleared: {queued} queued"
            ),
            Change::Raised(CircuitOpen) => tracing::warn!(
                endpoint,
                alert = "circuit_open",
                queued,
                "alert circuit_open: the circuit has been open for {:?} \
                 (alert_circuit_open is {:?})",
                millis(
                    seen.circuit_open_since
                        .map_or(Duration::ZERO, |t| t.elapsed())
                ),
                settings.alert_circuit_open.unwrap_or_default()
            ),
            Change::Cleared(CircuitOpen) => tracing::info!(
                endpoint,
                alert = "circuit_open",
                queued,
                "alert circuit_open cleared: the circuit closed"
            ),
            Change::Raised(DeadLetters) => tracing::warn!(
                endpoint,
                alert = "dead_letters",
                queued,
                "alert dead_letters: more than {} messages dead-lettered in the last hour",
                settings.alert_dead_letters_per_hour.unwrap_or_default()
            ),
            Change::Cleared(DeadLetters) => tracing::info!(
                endpoint,
                alert = "dead_letters",
                queued,
                "alert dead_letters cleared: {} or fewer in the last hour",
                settings.alert_dead_letters_per_hour.unwrap_or_default()
            ),
        }
    }
}
