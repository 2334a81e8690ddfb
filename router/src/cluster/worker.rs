//! The "ganglion-nats" thread: a current-thread tokio runtime owning the one NATS client. It
//! runs the lease rounds, a publishing task, an acking task and a status task, and on `stop`
//! lets go of everything within a few seconds whatever the state of NATS.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{header, HeaderMap, Subject};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::link::{AckCommand, ConsumedFeed, PublishJob, Publisher};
use super::ownership::Owner;
use super::partition::consumer_name;
use super::setup::{self, Linked};
use super::status::Shared;
use super::{Cluster, ClusterError, ClusterSettings, PublishError, ShardLink};

/// Batches queued for the NATS thread, beyond which a shard is told "busy" at once rather than
/// waiting: bounded, whatever the state of NATS.
const PUBLISH_QUEUE: usize = 4096;
/// Consumed messages queued per shard: a full queue stops the pulling for that shard.
const SHARD_QUEUE: usize = 1024;
const STATUS_EVERY: Duration = Duration::from_secs(1);
const FLUSH_ACKS: Duration = Duration::from_secs(1);
const RELEASE: Duration = Duration::from_secs(2);

pub(crate) enum Control {
    SetRoutes(String),
    Stop,
    Abandon,
}

pub(crate) fn start(
    settings: &ClusterSettings,
    routes_version: &str,
    shards: usize,
) -> Result<(Cluster, Vec<ShardLink>), ClusterError> {
    let shared = Arc::new(Shared::new(&settings.node, settings.partitions));
    let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
    let (to_shards, links): (Vec<_>, Vec<_>) = (0..shards)
        .map(|_| {
            let (tx, consumed) = mpsc::channel(SHARD_QUEUE);
            (
                tx,
                ShardLink {
                    publisher: Publisher {
                        publish: publish.clone(),
                    },
                    feed: ConsumedFeed { consumed },
                },
            )
        })
        .unzip();
    drop(publish);
    let (control, control_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready) = std_mpsc::channel();
    let (done_tx, done) = std_mpsc::channel();
    let thread = Thread {
        settings: settings.clone(),
        routes_version: routes_version.to_owned(),
        shared: shared.clone(),
        control: control_rx,
        publish: publish_rx,
        to_shards,
    };
    std::thread::Builder::new()
        .name("ganglion-nats".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    runtime.block_on(thread.run(ready_tx));
                    // Dropping the runtime drops every task, and with them the shards' queues:
                    // their `consumed` then says the cluster stopped.
                    drop(runtime);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(ClusterError::Thread(e.to_string())));
                }
            }
            let _ = done_tx.send(());
        })
        .map_err(|e| ClusterError::Thread(e.to_string()))?;
    match ready.recv() {
        Ok(Ok(())) => Ok((
            Cluster {
                shared,
                control,
                done,
            },
            links,
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ClusterError::Thread(
            "the NATS thread ended while starting".into(),
        )),
    }
}

struct Thread {
    settings: ClusterSettings,
    routes_version: String,
    shared: Arc<Shared>,
    control: mpsc::UnboundedReceiver<Control>,
    publish: mpsc::Receiver<PublishJob>,
    to_shards: Vec<mpsc::Sender<super::Consumed>>,
}

impl Thread {
    async fn run(mut self, ready: std_mpsc::Sender<Result<(), ClusterError>>) {
        let linked = match setup::link(&self.settings, &self.routes_version).await {
            Ok(linked) => linked,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let Linked {
            client,
            js,
            stream,
            leases,
            config,
        } = linked;
        self.shared.connected.store(true, Relaxed);
        tracing::info!(node = %self.settings.node, "cluster link up");
        let _ = ready.send(Ok(()));

        let (acks, acks_rx) = mpsc::unbounded_channel();
        tokio::spawn(send_acks(client.clone(), acks_rx, self.shared.clone()));
        tokio::spawn(publish_all(
            js.clone(),
            self.publish,
            subjects(&self.settings),
            self.settings.publish_timeout,
            self.shared.clone(),
        ));
        tokio::spawn(watch_status(
            client.clone(),
            stream.clone(),
            self.shared.clone(),
        ));

        let mut owner = Owner::new(
            self.settings.clone(),
            leases,
            stream,
            self.shared.clone(),
            std::mem::take(&mut self.to_shards),
            acks.clone(),
        );
        loop {
            // A round that hangs on an unreachable server must not hold up `stop`.
            let _ = timeout(self.settings.lease, owner.round()).await;
            match timeout(owner.round_interval(), self.control.recv()).await {
                Err(_) => {}
                Ok(Some(Control::SetRoutes(version))) => {
                    if let Err(e) = setup::set_routes(&config, &version).await {
                        tracing::warn!(error = %e, "could not set the cluster's routes version");
                    }
                }
                Ok(Some(Control::Abandon)) => return,
                Ok(Some(Control::Stop) | None) => break,
            }
        }
        owner.stop_consuming();
        // Acks queued before this point reach the client's buffer, then the server.
        let (flushed, flushed_rx) = oneshot::channel();
        if acks.send(AckCommand::Flush(flushed)).is_ok() {
            let _ = timeout(FLUSH_ACKS, flushed_rx).await;
        }
        let _ = timeout(RELEASE, owner.release_all()).await;
        let _ = timeout(FLUSH_ACKS, client.flush()).await;
        tracing::info!(node = %self.settings.node, "cluster link stopped");
    }
}

fn subjects(settings: &ClusterSettings) -> Arc<Vec<Subject>> {
    Arc::new(
        (0..settings.partitions)
            .map(|p| Subject::from(settings.subject(p)))
            .collect(),
    )
}

async fn send_acks(
    client: async_nats::Client,
    mut commands: mpsc::UnboundedReceiver<AckCommand>,
    _shared: Arc<Shared>,
) {
    const ACK: &[u8] = b"+ACK";
    const NAK: &[u8] = b"-NAK";
    while let Some(command) = commands.recv().await {
        match command {
            AckCommand::Settle { reply, nak } => {
                let body = bytes::Bytes::from_static(if nak { NAK } else { ACK });
                // Lost only if the connection is: the message then comes again (at-least-once).
                let _ = client.publish(reply, body).await;
            }
            AckCommand::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn publish_all(
    js: jetstream::Context,
    mut jobs: mpsc::Receiver<PublishJob>,
    subjects: Arc<Vec<Subject>>,
    limit: Duration,
    shared: Arc<Shared>,
) {
    while let Some(job) = jobs.recv().await {
        tokio::spawn(publish_batch(
            js.clone(),
            job,
            subjects.clone(),
            limit,
            shared.clone(),
        ));
    }
}

/// Sends every publish of the batch before awaiting any ack, so the acks come back together
/// rather than one round trip after another.
async fn publish_batch(
    js: jetstream::Context,
    job: PublishJob,
    subjects: Arc<Vec<Subject>>,
    limit: Duration,
    shared: Arc<Shared>,
) {
    let count = job.batch.len() as u64;
    let publishing = async {
        let mut acks = Vec::with_capacity(job.batch.len());
        for message in job.batch {
            let subject = subjects
                .get(usize::from(message.partition))
                .ok_or_else(|| PublishError::Failed(format!("no partition {}", message.partition)))?
                .clone();
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MESSAGE_ID, message.msg_id.as_str());
            let ack = js
                .publish_with_headers(subject, headers, message.payload)
                .await
                .map_err(|e| PublishError::Failed(e.to_string()))?;
            acks.push(ack);
        }
        // Ends at the first failure. A duplicate's ack (the same id within the window) is an
        // ack too.
        futures_util::future::try_join_all(
            acks.into_iter().map(|ack| async move {
                ack.await.map_err(|e| PublishError::Failed(e.to_string()))
            }),
        )
        .await
        .map(drop)
    };
    let result = match timeout(limit, publishing).await {
        Ok(result) => result,
        Err(_) => Err(PublishError::Timeout),
    };
    match &result {
        Ok(()) => {
            shared.published.fetch_add(count, Relaxed);
            if shared.publish_failing.swap(false, Relaxed) {
                tracing::info!("JetStream publishes succeed again");
            }
        }
        Err(e) => {
            shared.publish_failures.fetch_add(count, Relaxed);
            if !shared.publish_failing.swap(true, Relaxed) {
                tracing::warn!(error = %e, "JetStream publishes fail");
            }
        }
    }
    let _ = job.reply.send(result);
}

/// How often the owned partitions' lag is asked for: one consumer-info request per partition,
/// a JetStream API call each, which at 64 partitions a second cost the NATS servers more than
/// a figure for dashboards is worth.
const LAG_EVERY: u32 = 10;

/// Every second: whether the client is connected; every [`LAG_EVERY`] seconds, the lag of the
/// owned partitions.
async fn watch_status(
    client: async_nats::Client,
    stream: jetstream::stream::Stream,
    shared: Arc<Shared>,
) {
    let mut ticks = 0u32;
    loop {
        tokio::time::sleep(STATUS_EVERY).await;
        ticks = ticks.wrapping_add(1);
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        if shared.connected.swap(connected, Relaxed) != connected {
            if connected {
                tracing::info!("connected to NATS again");
            } else {
                tracing::warn!("lost the connection to NATS; reconnecting");
            }
        }
        if !connected || ticks % LAG_EVERY != 1 {
            continue;
        }
        let lag = async {
            let mut lag = 0u64;
            for p in shared.owned() {
                if let Ok(info) = stream.consumer_info(consumer_name(p)).await {
                    lag += info.num_pending + info.num_ack_pending as u64;
                }
            }
            lag
        };
        if let Ok(lag) = timeout(STATUS_EVERY, lag).await {
            shared.lag.store(lag, Relaxed);
        }
    }
}
