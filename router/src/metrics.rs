//! Counters for `/metrics`: one padded block per shard, written only by that shard, summed
//! only when scraped, so counting costs a shard no shared cache line.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

/// What one shard counts.
#[derive(Default)]
pub struct ShardCounters {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub unreadable: AtomicU64,
    pub delivered: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub retries: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub tls_handshakes_full: AtomicU64,
    pub tls_handshakes_resumed: AtomicU64,
}

/// The counters of every shard.
pub struct Metrics {
    shards: Box<[CachePadded<ShardCounters>]>,
}

impl Metrics {
    pub fn new(shards: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            shards: (0..shards.max(1)).map(|_| CachePadded::default()).collect(),
        })
    }

    /// This shard's counters. Every shard has a block, so an index past the end is a bug;
    /// it counts into the last block rather than panic.
    pub fn shard(&self, index: usize) -> &ShardCounters {
        let last = self.shards.len() - 1;
        &self.shards[index.min(last)]
    }

    /// Adds one to a counter (a relaxed add: counters order nothing).
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter, summed over shards, plus `queued`.
    pub fn render(&self, queued: u64) -> String {
        let sum = |pick: fn(&ShardCounters) -> &AtomicU64| -> u64 {
            self.shards
                .iter()
                .map(|s| pick(s).load(Ordering::Relaxed))
                .sum()
        };
        let counters: [(&str, &str, u64); 10] = [
            (
                "received",
                "Messages read from senders.",
                sum(|s| &s.received),
            ),
            (
                "accepted",
                "Messages accepted and acknowledged.",
                sum(|s| &s.accepted),
            ),
            (
                "rejected",
                "Messages refused by routing.",
                sum(|s| &s.rejected),
            ),
            (
                "unreadable",
                "Messages that could not be parsed.",
                sum(|s| &s.unreadable),
            ),
            (
                "delivered",
                "Deliveries acknowledged by endpoints.",
                sum(|s| &s.delivered),
            ),
            (
                "dead_lettered",
                "Deliveries moved to the dead-letter store.",
                sum(|s| &s.dead_lettered),
            ),
            (
                "retries",
                "Failed delivery attempts that will be retried.",
                sum(|s| &s.retries),
            ),
            (
                "egress_connects",
                "Connections opened to endpoints.",
                sum(|s| &s.connections_opened),
            ),
            (
                "tls_handshakes_full",
                "Full TLS handshakes with endpoints.",
                sum(|s| &s.tls_handshakes_full),
            ),
            (
                "tls_handshakes_resumed",
                "TLS handshakes with endpoints that resumed a session.",
                sum(|s| &s.tls_handshakes_resumed),
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP ganglion_{name}_total {help}");
            let _ = writeln!(out, "# TYPE ganglion_{name}_total counter");
            let _ = writeln!(out, "ganglion_{name}_total {value}");
        }
        let open = sum(|s| &s.connections_opened).saturating_sub(sum(|s| &s.connections_closed));
        let _ = writeln!(
            out,
            "# HELP ganglion_egress_connections Connections to endpoints open now."
        );
        let _ = writeln!(out, "# TYPE ganglion_egress_connections gauge");
        let _ = writeln!(out, "ganglion_egress_connections {open}");
        let _ = writeln!(
            out,
            "# HELP ganglion_queued Deliveries accepted and not yet done."
        );
        let _ = writeln!(out, "# TYPE ganglion_queued gauge");
        let _ = writeln!(out, "ganglion_queued {queued}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_over_shards() {
        let metrics = Metrics::new(2);
        Metrics::bump(&metrics.shard(0).accepted);
        Metrics::bump(&metrics.shard(1).accepted);
        Metrics::bump(&metrics.shard(1).delivered);
        Metrics::bump(&metrics.shard(9).retries);
        let text = metrics.render(3);
        assert!(text.contains("ganglion_accepted_total 2\n"), "{text}");
        assert!(text.contains("ganglion_delivered_total 1\n"), "{text}");
        assert!(text.contains("ganglion_retries_total 1\n"), "{text}");
        assert!(text.contains("ganglion_queued 3\n"), "{text}");
    }
}
