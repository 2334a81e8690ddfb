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
use super::settings::EgressSettings;
use super::verdict::Verdict;
use crate::net::pool::BufferPool;
use crate::net::stream::Stream;
use crate::pipeline::Delivery;
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
}

impl Worker {
    pub fn new(endpoint: Arc<Endpoint>, tls: Option<Arc<ClientConfig>>) -> Rc<Worker> {
        Rc::new(Worker {
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
        *self.target.borrow_mut() = Target { endpoint, tls };
        if changed {
            self.reconnect.set(true);
        }
    }

    /// Asks the worker to stop once its queue is empty.
    pub fn stop(&self) {
        self.stopping.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Waits for work; `false` when asked to stop and nothing is left.
    async fn next(&self) -> bool {
        poll_fn(|cx| {
            if !self.queue.borrow().is_empty() {
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
    pub async fn run(
        self: Rc<Self>,
        settings: EgressSettings,
        pool: Rc<BufferPool>,
        outcomes: Rc<dyn Outcomes>,
        seed: u64,
    ) {
        let mut backoff = Backoff::new(settings.backoff, seed);
        let mut stream: Option<Stream> = None;
        let mut first_failure: Option<Instant> = None;
        let mut tls_error_logged = false;
        while self.next().await {
            let Some(delivery) = self.queue.borrow().front().cloned() else {
                continue;
            };
            if self.reconnect.replace(false) {
                stream = None;
            }
            let (endpoint, tls) = {
                let target = self.target.borrow();
                (Arc::clone(&target.endpoint), target.tls.clone())
            };
            let mut unreachable = None;
            if stream.is_none() {
                match connect(&endpoint, tls.as_ref(), settings.connect_timeout, &pool).await {
                    Ok(fresh) => {
                        tls_error_logged = false;
                        stream = Some(fresh);
                    }
                    Err(e) => {
                        if e.is_tls() && !std::mem::replace(&mut tls_error_logged, true) {
                            log::warn!("endpoint {}: {e}", self.name);
                        }
                        unreachable = Some(e.to_string());
                    }
                }
            }
            let mut reply = None;
            let verdict = match stream.as_mut() {
                None => Verdict::Retry(unreachable.unwrap_or_default()),
                Some(open) => {
                    match exchange(
                        open,
                        &endpoint,
                        &delivery.message,
                        settings.reply_timeout,
                        &pool,
                    )
                    .await
                    {
                        Ok(attempt) => {
                            if !attempt.keep {
                                stream = None;
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
                    backoff.succeed();
                    first_failure = None;
                    self.finish();
                    outcomes.delivered(&delivery);
                }
                Verdict::Refused(reason) => {
                    backoff.succeed();
                    first_failure = None;
                    self.finish();
                    outcomes.dead_letter(&delivery, GiveUp::Refused, &reason, reply.as_deref());
                }
                Verdict::Retry(reason) => {
                    // The reply (or its absence) leaves the stream in an unknown state: a late
                    // ACK for this message must not be read as the ACK of the next one.
                    stream = None;
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    if since.elapsed() >= settings.retry_for {
                        backoff.succeed();
                        first_failure = None;
                        self.finish();
                        let why = format!("gave up after {:?}: {reason}", settings.retry_for);
                        outcomes.dead_letter(&delivery, GiveUp::RetriesExhausted, &why, None);
                        continue;
                    }
                    let wait = backoff.fail();
                    outcomes.retrying(&delivery, &reason, wait);
                    monoio::time::sleep(wait).await;
                }
            }
        }
        if let Some(mut open) = stream {
            let _ = open.shutdown(&pool).await;
        }
    }

    /// Takes the message in flight off the queue.
    fn finish(&self) {
        if let Some(done) = self.queue.borrow_mut().pop_front() {
            done.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
