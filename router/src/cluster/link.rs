//! A shard's end of the link: publishing batches and receiving consumed messages. Only tokio
//! channels cross to the NATS thread: their futures need no tokio reactor, so they run on a
//! shard's monoio runtime as they are.
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::status::Shared;

/// One message to publish: to the subject of `partition`, de-duplicated by `msg_id`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub partition: u16,
    pub msg_id: String,
    pub payload: Bytes,
}

/// One message consumed from an owned partition, to deliver and then ack.
#[derive(Debug)]
pub struct Consumed {
    pub partition: u16,
    /// Stream sequence.
    pub sequence: u64,
    pub redelivered: bool,
    pub payload: Bytes,
    pub ack: AckHandle,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("JetStream did not ack in time")]
    Timeout,
    #[error("JetStream publish failed: {0}")]
    Failed(String),
    /// The NATS thread's queue is full: it is far behind, or NATS is slow or gone.
    #[error("too many publishes waiting for NATS")]
    Busy,
    #[error("the cluster link has stopped")]
    Stopped,
}

pub(crate) struct PublishJob {
    pub batch: Vec<Outgoing>,
    pub reply: oneshot::Sender<Result<(), PublishError>>,
}

/// What the NATS thread sends back to JetStream for a consumed message.
pub(crate) enum AckCommand {
    /// `nak`: the shard let the message go without delivering it: hand it out again.
    Settle {
        reply: async_nats::Subject,
        nak: bool,
    },
    /// Answered once every command sent before it has reached the client.
    Flush(oneshot::Sender<()>),
}

/// The sequences of a partition handed to shards and not yet acked or let go. A fresh set each
/// time this node gains the partition, so a stale handle can never clear a new claim's entry.
pub(crate) type InFlight = Arc<Mutex<HashSet<u64>>>;

/// A shard's end of the link: what it publishes through, and what it is fed.
pub struct ShardLink {
    pub(crate) publisher: Publisher,
    pub(crate) feed: ConsumedFeed,
}

/// Publishing, for ingress (shared by a shard's connections).
pub struct Publisher {
    pub(crate) publish: mpsc::Sender<PublishJob>,
}

/// What the partitions a shard takes bring, for the one task that delivers them.
pub struct ConsumedFeed {
    pub(crate) consumed: mpsc::Receiver<Consumed>,
}

/// How many consumed messages one `consumed` call takes at most, so a shard returns to its
/// other work between batches.
const CONSUMED_BATCH: usize = 256;

impl ShardLink {
    /// The two halves, for the two sides of a shard that use them.
    pub fn split(self) -> (Publisher, ConsumedFeed) {
        (self.publisher, self.feed)
    }

    /// See [`Publisher::publish`].
    pub fn publish(
        &self,
        batch: Vec<Outgoing>,
    ) -> impl Future<Output = Result<(), PublishError>> + 'static {
        self.publisher.publish(batch)
    }

    /// See [`ConsumedFeed::consumed`].
    pub async fn consumed(&mut self, into: &mut Vec<Consumed>) -> bool {
        self.feed.consumed(into).await
    }
}

impl Publisher {
    /// Publishes every message of the batch concurrently, each with its `Nats-Msg-Id`; `Ok` once
    /// JetStream acked all (a duplicate's ack counts), `Err` at the first failure or after
    /// `publish_timeout`. Never blocks the calling thread.
    pub fn publish(
        &self,
        batch: Vec<Outgoing>,
    ) -> impl Future<Output = Result<(), PublishError>> + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = if batch.is_empty() {
            Ok(false)
        } else {
            match self.publish.try_send(PublishJob { batch, reply }) {
                Ok(()) => Ok(true),
                Err(mpsc::error::TrySendError::Full(_)) => Err(PublishError::Busy),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(PublishError::Stopped),
            }
        };
        async move {
            if !queued? {
                return Ok(());
            }
            // The NATS thread answers every job within publish_timeout; a dropped sender means
            // it has stopped.
            answer.await.unwrap_or(Err(PublishError::Stopped))
        }
    }
}

impl ConsumedFeed {
    /// Waits for messages consumed from this shard's partitions and appends them to `into`, in
    /// stream order per partition; false once the cluster stopped.
    pub async fn consumed(&mut self, into: &mut Vec<Consumed>) -> bool {
        let Some(first) = self.consumed.recv().await else {
            return false;
        };
        into.push(first);
        for _ in 1..CONSUMED_BATCH {
            match self.consumed.try_recv() {
                Ok(more) => into.push(more),
                Err(_) => break,
            }
        }
        true
    }
}

/// Acks one consumed message. `Send + Sync`; may be used on any thread. Dropped without `ack`,
/// the message is handed out again (to this node, or whichever owns the partition then).
pub struct AckHandle {
    pub(crate) reply: Option<async_nats::Subject>,
    pub(crate) sequence: u64,
    pub(crate) in_flight: InFlight,
    pub(crate) to_nats: mpsc::UnboundedSender<AckCommand>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckHandle")
            .field("sequence", &self.sequence)
            .finish()
    }
}

impl AckHandle {
    /// The endpoint ACKed the message: JetStream may forget it. Fire-and-forget.
    pub fn ack(mut self) {
        self.settle(false);
    }

    fn settle(&mut self, nak: bool) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&self.sequence);
        }
        if self.to_nats.send(AckCommand::Settle { reply, nak }).is_ok() && !nak {
            self.shared.acked.fetch_add(1, Relaxed);
        }
    }
}

impl Drop for AckHandle {
    fn drop(&mut self) {
        self.settle(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    /// Links are made on the control thread and moved to the shards; acks happen anywhere.
    #[test]
    fn links_move_to_shards_and_acks_go_anywhere() {
        send::<ShardLink>();
        send::<Consumed>();
        send_sync::<AckHandle>();
        send::<super::super::Cluster>();
    }
}
