//! What a shard does when a delivery ends: count it, log it, keep dead letters, and mark the
//! destination done in the write-ahead log.
use std::cell::Cell;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::deadletter::{
    DeadLetterError, DeadLetterId, LetterWriter, NewDeadLetter, Reason, Source,
};
use crate::egress::worker::{GiveUp, Outcomes};
use crate::ingress::accept::unix_nanos;
use crate::metrics::Metrics;
use crate::pipeline::{Accepted, Delivery, MessageKind};
use crate::shard::durable::Durability;
use crate::shard::room::QueueCount;
use crate::trace::entry::What;
use crate::trace::recorder::Recorder;
use crate::wal::Origin;

pub struct ShardOutcomes {
    shard: usize,
    metrics: Arc<Metrics>,
    durability: Option<Rc<Durability>>,
    /// Writes dead letters on a thread of its own: each is two fsyncs.
    letters: LetterWriter,
    /// Dead letters handed to the writer by workers and not yet answered; shutdown waits for
    /// them, so that their destinations are marked done before the log closes.
    letters_pending: Cell<usize>,
    /// When a dead letter last could not be written, so that a broken store under a flood of
    /// messages is reported once a second, not once a message.
    last_complaint: Cell<Option<Instant>>,
    /// The message trace's recorder, when the trace is on.
    trace: Option<Rc<Recorder>>,
    /// Itself, for the tasks that await a letter a worker handed over without waiting.
    me: Weak<ShardOutcomes>,
}

impl ShardOutcomes {
    pub fn new(
        shard: usize,
        metrics: Arc<Metrics>,
        durability: Option<Rc<Durability>>,
        letters: LetterWriter,
        trace: Option<Rc<Recorder>>,
    ) -> Rc<ShardOutcomes> {
        Rc::new_cyclic(|me| ShardOutcomes {
            shard,
            metrics,
            durability,
            letters,
            letters_pending: Cell::new(0),
            last_complaint: Cell::new(None),
            trace,
            me: me.clone(),
        })
    }

    /// This destination is done: in the log it came from, or in the cluster's stream.
    fn mark(&self, delivery: &Delivery) {
        if let (Some(durability), Some(record)) = (&self.durability, delivery.record) {
            durability.mark(record);
        }
        if let Some(settle) = &delivery.settle {
            settle.done();
        }
    }

    /// Dead letters handed over by workers and not yet stored (or failed).
    pub fn letters_pending(&self) -> usize {
        self.letters_pending.get()
    }

    /// Keeps `delivery` as a dead letter, then marks its destination done in the log; the
    /// shard serves everyone else meanwhile. A letter that cannot be stored leaves the message
    /// pending in the log, tried again after a restart rather than lost.
    pub async fn keep(&self, delivery: &Delivery, why: GiveUp, detail: &str, reply: Option<&[u8]>) {
        match self.store(delivery, why, detail, reply).await {
            Ok(_) => self.mark(delivery),
            Err(e) => {
                let (control_id, tracking_id) = crate::logging::message_ids(&delivery.message);
                tracing::error!(
                    endpoint = &*delivery.endpoint,
                    control_id,
                    tracking_id,
                    reason = detail,
                    "the message could not be stored as a dead letter ({e}); it stays in the log"
                )
            }
        }
    }

    /// Keeps a message that no route takes (`unrouted = "dead-letter"`) as a dead letter:
    /// its sender is acknowledged only after this returned `Ok`.
    pub async fn keep_unrouted(&self, message: &Arc<Accepted>) -> Result<(), DeadLetterError> {
        let delivery = Delivery {
            message: Arc::clone(message),
            endpoint: Arc::from("(unrouted)"),
            queued: Arc::new(QueueCount::default()),
            record: None,
            held: false,
            settle: None,
        };
        let stored = self
            .store(
                &delivery,
                GiveUp::Unroutable,
                "no route for this message",
                None,
            )
            .await;
        if let Err(e) = &stored {
            if self.may_complain() {
                tracing::error!(
                    shard = self.shard,
                    "unrouted messages cannot be kept as dead letters, their senders \
                     are told to retry: {e}"
                );
            }
        }
        stored.map(|_| ())
    }

    /// Writes the dead letter (durable once this returns `Ok`) and counts it.
    async fn store(
        &self,
        delivery: &Delivery,
        why: GiveUp,
        detail: &str,
        reply: Option<&[u8]>,
    ) -> Result<DeadLetterId, DeadLetterError> {
        let message = &delivery.message;
        let reason = match (why, message.kind) {
            (GiveUp::Refused, MessageKind::Hl7v2) => Reason::Rejected,
            (GiveUp::Refused, MessageKind::Itk) => Reason::ClientFault,
            (GiveUp::RetriesExhausted, _) => Reason::RetriesExhausted,
            (GiveUp::Unroutable, _) => Reason::Other,
        };
        let control_id = String::from_utf8_lossy(message.control_id());
        let letter = NewDeadLetter {
            time_unix_nanos: unix_nanos(SystemTime::now()),
            endpoint: &delivery.endpoint,
            reason,
            detail,
            reply,
            source: delivery.record.map(|r| Source {
                shard: u32::from(r.log),
                record: r.id,
            }),
            origin: Origin {
                listener: &message.listener,
                peer: &message.peer,
                arrival_unix_nanos: unix_nanos(message.arrived),
                control_id: &control_id,
            },
            message: &message.bytes,
        };
        let id = self.letters.write(&letter).await?;
        if let Some(trace) = &self.trace {
            trace.outcome(delivery, What::DeadLettered, detail, Some(id.as_str()));
        }
        Metrics::bump(&self.metrics.shard(self.shard).dead_lettered);
        let (control_id, tracking_id) = crate::logging::message_ids(message);
        tracing::warn!(
            endpoint = &*delivery.endpoint,
            control_id,
            tracking_id,
            listener = &*message.listener,
            peer = &*message.peer,
            dead_letter = %id,
            reason = detail,
            body = crate::logging::body(&message.bytes),
            "delivery failed; kept as dead letter {id}"
        );
        Ok(id)
    }

    /// True at most once a second.
    fn may_complain(&self) -> bool {
        let now = Instant::now();
        let due = self
            .last_complaint
            .get()
            .is_none_or(|t| now - t >= Duration::from_secs(1));
        if due {
            self.last_complaint.set(Some(now));
        }
        due
    }
}

impl Outcomes for ShardOutcomes {
    fn delivered(&self, delivery: &Delivery, reply: &[u8]) {
        let counters = self.metrics.shard(self.shard);
        Metrics::bump(&counters.delivered);
        // The wall clock, because `arrived` is one (it survives a restart in the log record).
        let waited = delivery.message.arrived.elapsed().unwrap_or_default();
        counters.delivery_latency.record(waited);
        self.mark(delivery);
        if let Some(trace) = &self.trace {
            trace.outcome(delivery, What::Delivered, &ack_code(reply), None);
        }
    }

    /// The worker goes on with its next message while the letter is written.
    fn dead_letter(&self, delivery: &Delivery, why: GiveUp, detail: &str, reply: Option<&[u8]>) {
        let Some(me) = self.me.upgrade() else {
            return; // the shard is gone: the message stays pending in the log
        };
        let (delivery, detail) = (delivery.clone(), detail.to_owned());
        let reply = reply.map(<[u8]>::to_vec);
        self.letters_pending.set(self.letters_pending.get() + 1);
        monoio::spawn(async move {
            me.keep(&delivery, why, &detail, reply.as_deref()).await;
            me.letters_pending.set(me.letters_pending.get() - 1);
        });
    }

    // Logged by the worker, which limits the lines per endpoint.
    fn retrying(&self, delivery: &Delivery, reason: &str, _after: Duration) {
        Metrics::bump(&self.metrics.shard(self.shard).retries);
        if let Some(trace) = &self.trace {
            trace.outcome(delivery, What::Retrying, reason, None);
        }
    }
}

/// What an endpoint acknowledged a delivered message with: MSA-1 of an HL7v2 ACK (`AA`, `CA`),
/// or the worker's words for an ITK reply (`HTTP 202`).
fn ack_code(reply: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(ack) = codecs::hl7v2::Message::parse(reply) {
        let code = ack
            .segment(b"MSA")
            .and_then(|msa| msa.field(1))
            .and_then(|f| f.value());
        return String::from_utf8_lossy(code.unwrap_or(b"?"));
    }
    String::from_utf8_lossy(reply.get(..64).unwrap_or(reply))
}

#[cfg(test)]
mod tests {
    use super::ack_code;

    #[test]
    fn ack_codes_are_read_from_the_reply() {
        assert_eq!(
            ack_code(b"MSH|^~\\&|A|B|C|D|2026||ACK|1|P|2.4\rMSA|CA|X1\r"),
            "CA"
        );
        assert_eq!(ack_code(b"HTTP 202"), "HTTP 202");
        assert_eq!(ack_code(b""), "");
    }
}
