//! Consuming one owned partition: a durable pull consumer `p<n>`, re-created from the oldest
//! unacked message whenever this node gains the partition, so a takeover keeps stream order.
//! Each stream sequence is handed to a shard once while this node holds the partition.
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::link::{AckCommand, AckHandle, Consumed, InFlight};
use super::status::Shared;

/// Long, so a slow endpoint's message is not redelivered while it is still being delivered
/// (a redelivery of one in flight is ignored anyway).
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Large, so one slow endpoint does not stall the other endpoints of its partition.
const MAX_ACK_PENDING: i64 = 100_000;
const PULL_BATCH: usize = 256;
const RETRY: Duration = Duration::from_millis(500);

pub(crate) fn consumer_name(partition: u16) -> String {
    format!("p{partition}")
}

/// Replaces any consumer of the partition with a new one that starts at the oldest message the
/// stream holds (with WorkQueue retention: exactly the unacked ones). Returns it and the last
/// stream sequence the old consumer had delivered: anything up to it is a re-read.
pub(crate) async fn take_over(
    stream: &stream::Stream,
    stream_name: &str,
    partition: u16,
) -> Result<(PullConsumer, u64), String> {
    let name = consumer_name(partition);
    let delivered_before = match stream.consumer_info(&name).await {
        Ok(info) => info.delivered.stream_sequence,
        Err(_) => 0,
    };
    // Not found is the usual case for a partition never consumed.
    let _ = stream.delete_consumer(&name).await;
    let consumer = stream
        .create_consumer(config(stream_name, partition))
        .await
        .map_err(|e| e.to_string())?;
    Ok((consumer, delivered_before))
}

fn config(stream_name: &str, partition: u16) -> pull::Config {
    pull::Config {
        durable_name: Some(consumer_name(partition)),
        filter_subject: format!("{stream_name}.p.{partition}"),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: MAX_ACK_PENDING,
        // In memory (replicated as the stream is): what a consumer remembers (delivered,
        // acked) is only a shortcut, since the WorkQueue stream holds exactly the unacked
        // messages and every takeover re-creates the consumer from them; its state need not
        // be written to every server's disk. (One replica would be cheaper still, but a
        // 2.9 server then never removes acked messages from a replicated work queue.)
        memory_storage: true,
        ..Default::default()
    }
}

pub(crate) struct Feed {
    pub stream: stream::Stream,
    pub stream_name: String,
    pub partition: u16,
    pub delivered_before: u64,
    pub in_flight: InFlight,
    pub shard: mpsc::Sender<Consumed>,
    pub acks: mpsc::UnboundedSender<AckCommand>,
    pub shared: Arc<Shared>,
    /// True while the partition is being handed over: nothing more is handed out (what was
    /// pulled and not handed out stays unacked, for whichever node consumes next).
    pub paused: watch::Receiver<bool>,
}

pub(crate) fn new_in_flight() -> InFlight {
    Arc::new(Mutex::new(HashSet::new()))
}

/// Pulls the partition for as long as the task lives (the owner aborts it on losing the
/// partition). The shard's bounded queue is the backpressure: a full one stops the pulling.
pub(crate) async fn consume(mut consumer: PullConsumer, mut feed: Feed) {
    let mut failing = false;
    loop {
        let messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        match messages {
            Ok(mut messages) => {
                while let Some(next) = messages.next().await {
                    match next {
                        Ok(message) => {
                            if failing {
                                tracing::info!(partition = feed.partition, "consuming again");
                                failing = false;
                            }
                            // An error: the owner dropped the pause's sender, letting the
                            // partition go. (The borrow of the value ends with the statement.)
                            let handing_on = feed.paused.wait_for(|paused| !paused).await.is_ok();
                            if !handing_on || !hand_out(message, &feed).await {
                                return;
                            }
                        }
                        Err(e) => {
                            if !failing {
                                tracing::warn!(partition = feed.partition, error = %e, "consuming failed; retrying");
                                failing = true;
                            }
                            // Some errors end only this pull; a fresh stream recovers from all.
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(partition = feed.partition, error = %e, "consuming failed; retrying");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
        // The consumer may have been deleted under us (a takeover race, a server restored from
        // an old state): create it if missing, without resetting it, so what was delivered and
        // not acked comes again after ack_wait.
        if let Ok(again) = feed
            .stream
            .create_consumer(config(&feed.stream_name, feed.partition))
            .await
        {
            consumer = again;
        }
    }
}

/// Hands one message to its shard unless it is already in flight; false once the shard is gone.
async fn hand_out(message: async_nats::jetstream::Message, feed: &Feed) -> bool {
    let (sequence, delivered) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered),
        // Not a stream message (a status the client did not absorb): nothing to deliver.
        Err(_) => return true,
    };
    let fresh = match feed.in_flight.lock() {
        Ok(mut in_flight) => in_flight.insert(sequence),
        Err(_) => false,
    };
    if !fresh {
        return true;
    }
    let redelivered = delivered > 1 || sequence <= feed.delivered_before;
    feed.shared.consumed.fetch_add(1, Relaxed);
    if redelivered {
        feed.shared.redelivered.fetch_add(1, Relaxed);
    }
    // Not `split`, which takes the reply subject: it is the ack's address.
    let message = message.message;
    let consumed = Consumed {
        partition: feed.partition,
        sequence,
        redelivered,
        payload: message.payload,
        ack: AckHandle {
            reply: message.reply,
            sequence,
            in_flight: feed.in_flight.clone(),
            to_nats: feed.acks.clone(),
            shared: feed.shared.clone(),
        },
    };
    feed.shard.send(consumed).await.is_ok()
}
