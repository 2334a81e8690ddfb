//! Cluster mode's link to NATS JetStream, the log a cluster of ganglion nodes shares (issue #13).
//!
//! Ingress publishes each routed message to the stream subject of its destination's partition
//! and ACKs the sender only once JetStream acked it; each partition is owned by one node at a
//! time through a lease in a key-value bucket, and its owner consumes it in stream order and
//! acks each message once the endpoint ACKed it. Delivery is at-least-once.
//!
//! All NATS work happens on one thread, "ganglion-nats", on a current-thread tokio runtime that
//! owns the client; shards talk to it only through tokio channels (whose futures run under any
//! executor, monoio's included), so no shard needs a tokio reactor.
//!
//! - [`settings`]: `[cluster]` as applied, and the stable partition and message-id functions.
//! - [`link`]: a shard's end: publish a batch, receive consumed messages, ack them.
//! - [`status`]: counters and state as atomics, read by `/readyz` and `/metrics`.
//! - `setup`: connecting, the stream and buckets, the routes version check.
//! - `worker`: the thread, its publishing and acking tasks, start and stop.
//! - `ownership`: leases: claiming, renewing, losing and releasing partitions.
//! - `partition`: consuming one owned partition in order, each message handed out once.
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

pub mod link;
mod ownership;
mod partition;
pub mod settings;
mod setup;
pub mod status;
mod worker;

pub use link::{AckHandle, Consumed, ConsumedFeed, Outgoing, PublishError, Publisher, ShardLink};
pub use settings::{message_digest, message_id, partition_id, partition_of, ClusterSettings};
pub use status::ClusterStatus;

use status::Shared;
use worker::Control;

/// Why the cluster link could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "this node's routes.toml differs from the cluster's (ours {ours}, cluster {cluster}): \
         deploy the same file to every node, or reload the others first"
    )]
    RoutesDiffer { ours: String, cluster: String },
    #[error("no NATS server reachable ({0})")]
    Unreachable(String),
    #[error("JetStream stream or bucket: {0}")]
    Stream(String),
    #[error("[cluster] settings: {0}")]
    Invalid(String),
    #[error("could not start the NATS thread: {0}")]
    Thread(String),
}

/// The control thread's handle on the cluster link.
pub struct Cluster {
    shared: Arc<Shared>,
    control: tokio::sync::mpsc::UnboundedSender<Control>,
    done: std_mpsc::Receiver<()>,
}

/// How long `stop` waits for the NATS thread to give up its leases and flush its acks; the
/// thread bounds each step itself, this only guards against the unforeseen.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl Cluster {
    /// Connects, ensures the stream and buckets, checks the routes version, then starts the
    /// NATS thread; one [`ShardLink`] per shard.
    pub fn start(
        settings: &ClusterSettings,
        routes_version: &str,
        shards: usize,
    ) -> Result<(Cluster, Vec<ShardLink>), ClusterError> {
        settings.validate()?;
        if shards == 0 {
            return Err(ClusterError::Invalid("no shards".into()));
        }
        worker::start(settings, routes_version, shards)
    }

    /// A snapshot for `/readyz` and `/metrics`, from atomics only.
    pub fn status(&self) -> ClusterStatus {
        self.shared.snapshot()
    }

    /// A handle on the same snapshots, for the admin server and the shards.
    pub fn watch(&self) -> ClusterWatch {
        ClusterWatch {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A reload put a new routes.toml in force on this node: the cluster's version becomes it.
    pub fn set_routes_version(&self, version: &str) {
        let _ = self.control.send(Control::SetRoutes(version.to_owned()));
    }

    /// Stops consuming, deletes this node's lease keys so the others take over at once,
    /// flushes pending acks and closes; bounded even when NATS is unreachable.
    pub fn stop(self) {
        self.finish(Control::Stop);
    }

    /// Vanishes as a crashed node would: no lease given up, no ack flushed, the connection
    /// just closed. For tests of takeover after a node's loss.
    #[doc(hidden)]
    pub fn abandon(self) {
        self.finish(Control::Abandon);
    }

    fn finish(self, how: Control) {
        if self.control.send(how).is_ok() {
            // A timeout leaves the thread to end on its own; the daemon is exiting anyway.
            let _ = self.done.recv_timeout(STOP_WAIT);
        }
    }
}

/// Reads the link's state, as [`Cluster::status`] does, from any thread.
#[derive(Clone)]
pub struct ClusterWatch {
    shared: Arc<Shared>,
}

impl ClusterWatch {
    pub fn status(&self) -> ClusterStatus {
        self.shared.snapshot()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Dropped without `stop` (an early return on the control thread): still let go.
        let _ = self.control.send(Control::Stop);
    }
}
