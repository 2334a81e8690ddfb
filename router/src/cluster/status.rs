//! The link's state as atomics: the NATS thread writes them, `Cluster::status` reads them
//! without ever waiting on that thread.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A snapshot for `/readyz` and `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct ClusterStatus {
    pub connected: bool,
    pub node: String,
    pub partitions_owned: Vec<u16>,
    /// Messages in owned partitions not yet acked (the consumers' num_pending +
    /// num_ack_pending), refreshed every second or so.
    pub lag: u64,
    pub published: u64,
    pub publish_failures: u64,
    pub consumed: u64,
    pub acked: u64,
    /// Messages consumed again (delivery count > 1, or re-read after a takeover).
    pub redelivered: u64,
}

pub(crate) struct Shared {
    pub node: String,
    pub connected: AtomicBool,
    /// One bit per partition: set while this node owns it.
    owned: Vec<AtomicU64>,
    pub lag: AtomicU64,
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub consumed: AtomicU64,
    pub acked: AtomicU64,
    pub redelivered: AtomicU64,
    /// Publishes failed last time: log only changes.
    pub publish_failing: AtomicBool,
}

impl Shared {
    pub fn new(node: &str, partitions: u16) -> Shared {
        Shared {
            node: node.to_owned(),
            connected: AtomicBool::new(false),
            owned: (0..usize::from(partitions).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            lag: AtomicU64::new(0),
            published: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            publish_failing: AtomicBool::new(false),
        }
    }

    pub fn set_owned(&self, partition: u16, owned: bool) {
        if let Some(word) = self.owned.get(usize::from(partition) / 64) {
            let bit = 1u64 << (partition % 64);
            if owned {
                word.fetch_or(bit, Relaxed);
            } else {
                word.fetch_and(!bit, Relaxed);
            }
        }
    }

    pub fn owned(&self) -> Vec<u16> {
        let mut partitions = Vec::new();
        for (i, word) in self.owned.iter().enumerate() {
            let bits = word.load(Relaxed);
            for b in 0..64 {
                if bits & (1 << b) != 0 {
                    if let Ok(p) = u16::try_from(i * 64 + b) {
                        partitions.push(p);
                    }
                }
            }
        }
        partitions
    }

    pub fn snapshot(&self) -> ClusterStatus {
        ClusterStatus {
            connected: self.connected.load(Relaxed),
            node: self.node.clone(),
            partitions_owned: self.owned(),
            lag: self.lag.load(Relaxed),
            published: self.published.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
            consumed: self.consumed.load(Relaxed),
            acked: self.acked.load(Relaxed),
            redelivered: self.redelivered.load(Relaxed),
        }
    }
}
