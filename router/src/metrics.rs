//! Counters for `/metrics`: one padded block per shard, written only by that shard (or its
//! fsync thread), summed only when scraped, so counting costs a shard no shared cache line.
//!
//! One histogram: how long each write-ahead-log fdatasync took, since every acknowledgement
//! waits for one and the disk is what a durable router's latency tail is made of.
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::ingress::cutoff::{Cutoff, CutoffCounters};

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
    pub wal_sync: SyncHistogram,
    /// Connections ingress closed because a limit was reached (see `ingress::cutoff`).
    pub ingress_closed: CutoffCounters,
    /// What `/readyz` asks of the shard.
    pub health: ShardHealth,
}

/// A shard's answers to "is it ready?", kept where the admin thread can read them.
#[derive(Default)]
pub struct ShardHealth {
    /// Accepting on its listeners: set once start-up has read the logs, cleared at shutdown
    /// and when the shard's thread ends for any reason.
    pub serving: AtomicBool,
    /// Its log refuses messages now (disk or budget full): senders are told to try later.
    pub log_refusing: AtomicBool,
    /// Its log failed (an fsync failed, or its thread is gone): nothing more is acknowledged
    /// until a restart.
    pub log_failed: AtomicBool,
}

/// A shard's write-ahead log, as `/readyz`, `/shards` and `/metrics` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    Ok,
    /// Refusing messages for want of disk or budget; ends by itself as endpoints drain.
    Refusing,
    /// Failed; nothing more is acknowledged until a restart.
    Failed,
}

impl LogState {
    pub fn as_str(self) -> &'static str {
        match self {
            LogState::Ok => "ok",
            LogState::Refusing => "refusing",
            LogState::Failed => "failed",
        }
    }
}

impl ShardHealth {
    pub fn log_state(&self) -> LogState {
        if self.log_failed.load(Ordering::Relaxed) {
            LogState::Failed
        } else if self.log_refusing.load(Ordering::Relaxed) {
            LogState::Refusing
        } else {
            LogState::Ok
        }
    }
}

/// Senders' unfinished input held beyond each connection's first buffer, against the
/// process-wide budget (`ingress::budget`), which counts in `held` itself.
#[derive(Default)]
pub struct InputGauge {
    pub held: AtomicU64,
    pub limit: AtomicU64,
    /// Connections waiting for room in the budget now.
    pub waiting: AtomicU64,
}

/// Upper bounds (µs) of the fdatasync histogram's buckets; the last bucket is `+Inf`.
const SYNC_BOUNDS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// fdatasync durations: a count per bucket (not cumulative; summed at render), and their sum.
#[derive(Default)]
pub struct SyncHistogram {
    buckets: [AtomicU64; SYNC_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl SyncHistogram {
    pub fn record(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = SYNC_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(SYNC_BOUNDS_US.len());
        if let Some(b) = self.buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// The counters of every shard.
pub struct Metrics {
    shards: Box<[CachePadded<ShardCounters>]>,
    pub input: CachePadded<InputGauge>,
    /// Counted by the control thread, never by a shard.
    pub reloads: ReloadCounts,
}

/// Reloads by outcome.
#[derive(Default)]
pub struct ReloadCounts {
    pub applied: AtomicU64,
    /// The file has errors.
    pub invalid: AtomicU64,
    /// It would empty the router, or changes what needs a restart.
    pub refused: AtomicU64,
    /// A shard could not take it (aborted) or did not confirm it.
    pub failed: AtomicU64,
}

impl ReloadCounts {
    pub fn counts(&self) -> [(&'static str, u64); 4] {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("applied", n(&self.applied)),
            ("invalid", n(&self.invalid)),
            ("refused", n(&self.refused)),
            ("failed", n(&self.failed)),
        ]
    }
}

impl Metrics {
    pub fn new(shards: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            shards: (0..shards.max(1)).map(|_| CachePadded::default()).collect(),
            input: CachePadded::default(),
            reloads: ReloadCounts::default(),
        })
    }

    /// How many shards there are.
    pub fn shards(&self) -> usize {
        self.shards.len()
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
        self.render_sync(&mut out);
        self.render_ingress(&mut out);
        out
    }

    fn render_ingress(&self, out: &mut String) {
        let name = "ganglion_ingress_closed_total";
        let _ = writeln!(
            out,
            "# HELP {name} Sender connections closed because they reached a limit (timeouts, buffered input)."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for cutoff in Cutoff::ALL {
            let n: u64 = self
                .shards
                .iter()
                .map(|s| s.ingress_closed[cutoff.index()].load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", cutoff.label());
        }
        let gauges = [
            (
                "ganglion_ingress_buffered_bytes",
                "Senders' unfinished input held beyond each connection's first buffer.",
                &self.input.held,
            ),
            (
                "ganglion_ingress_buffered_limit_bytes",
                "The most unfinished input the router holds (max_buffered_input).",
                &self.input.limit,
            ),
            (
                "ganglion_ingress_waiting_for_budget",
                "Sender connections not read until there is room in the input budget.",
                &self.input.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }

    fn render_sync(&self, out: &mut String) {
        let name = "ganglion_wal_fsync_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time each write-ahead-log fdatasync took (acknowledgements wait for it)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let bucket = |i: usize| -> u64 {
            self.shards
                .iter()
                .map(|s| s.wal_sync.buckets[i].load(Ordering::Relaxed))
                .sum()
        };
        let mut cumulative = 0;
        for (i, bound) in SYNC_BOUNDS_US.iter().enumerate() {
            cumulative += bucket(i);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += bucket(SYNC_BOUNDS_US.len());
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum_us: u64 = self
            .shards
            .iter()
            .map(|s| s.wal_sync.sum_us.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(out, "{name}_sum {}", sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
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

    #[test]
    fn ingress_closes_are_labelled_by_reason() {
        let metrics = Metrics::new(2);
        let handshake = Cutoff::HandshakeTimeout.index();
        Metrics::bump(&metrics.shard(0).ingress_closed[handshake]);
        Metrics::bump(&metrics.shard(1).ingress_closed[handshake]);
        metrics.input.held.store(5, Ordering::Relaxed);
        let text = metrics.render(0);
        for line in [
            "ganglion_ingress_closed_total{reason=\"handshake_timeout\"} 2\n",
            "ganglion_ingress_closed_total{reason=\"first_byte_timeout\"} 0\n",
            "ganglion_ingress_closed_total{reason=\"peer_buffer_cap\"} 0\n",
            "ganglion_ingress_closed_total{reason=\"input_budget\"} 0\n",
            "ganglion_ingress_buffered_bytes 5\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn fsync_times_land_in_cumulative_buckets() {
        let metrics = Metrics::new(2);
        let us = std::time::Duration::from_micros;
        metrics.shard(0).wal_sync.record(us(80));
        metrics.shard(1).wal_sync.record(us(250));
        metrics.shard(1).wal_sync.record(us(3_000));
        metrics.shard(0).wal_sync.record(us(2_000_000));
        let text = metrics.render(0);
        for line in [
            "ganglion_wal_fsync_seconds_bucket{le=\"0.0001\"} 1\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"0.00025\"} 2\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"0.0025\"} 2\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"0.005\"} 3\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"1\"} 3\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"+Inf\"} 4\n",
            "ganglion_wal_fsync_seconds_count 4\n",
            "ganglion_wal_fsync_seconds_sum 2.00333\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
