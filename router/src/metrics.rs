//! Counters for `/metrics`: one padded block per shard, written only by that shard (or its
//! fsync thread), summed only when scraped, so counting costs a shard no shared cache line;
//! each listener's counts the same way ([`listener`]). Histograms ([`histogram`]) are arrays of
//! atomic buckets for the same reason. `/metrics` is OpenMetrics text written by
//! prometheus-client's encoder ([`exposition`]) from these figures at scrape time.
//!
//! The unlabelled totals (`ganglion_received_total` …) are the process's since start, what
//! dashboards, alert rules, `ganglion status` and the status page read; the families labelled
//! by `listener` and `shard` break them down.
pub mod exposition;
pub mod histogram;
pub mod listener;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use self::exposition::{counter, counters, gauge, gauges, histogram, histograms};
use self::histogram::{Fsync, Histogram, Latency};
use self::listener::{Code, InForce, REASONS};
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
    /// Connections to endpoints that could not be opened (resolve, TCP, TLS).
    pub connect_failures: AtomicU64,
    pub wal_sync: Histogram<Fsync>,
    /// From a message's acceptance to its endpoint's acknowledgement, on the endpoint's shard.
    pub delivery_latency: Histogram<Latency>,
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

/// Which of a shard's counters a family shows.
type Pick = fn(&ShardCounters) -> &AtomicU64;

/// The counters of every shard.
pub struct Metrics {
    shards: Box<[CachePadded<ShardCounters>]>,
    pub input: CachePadded<InputGauge>,
    /// Counted by the control thread, never by a shard.
    pub reloads: ReloadCounts,
    /// Each listener in force with its counts.
    pub listeners: InForce,
    /// The cluster link's state, when this node is in a cluster (set once, at start-up).
    pub cluster: std::sync::OnceLock<crate::cluster::ClusterWatch>,
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
            listeners: InForce::default(),
            cluster: std::sync::OnceLock::new(),
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

    fn sum(&self, pick: impl Fn(&ShardCounters) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| pick(s).load(Ordering::Relaxed))
            .sum()
    }

    fn per_shard<'a>(
        &'a self,
        pick: impl Fn(&ShardCounters) -> &AtomicU64 + 'a,
    ) -> impl Iterator<Item = ([(&'static str, usize); 1], u64)> + 'a {
        self.shards
            .iter()
            .enumerate()
            .map(move |(i, s)| ([("shard", i)], pick(s).load(Ordering::Relaxed)))
    }

    /// Every family the shards count, `queued` (read from the routing) included.
    pub fn encode(&self, enc: &mut DescriptorEncoder, queued: u64) -> fmt::Result {
        let totals: [(&str, &str, Pick); 10] = [
            ("received", "Messages read from senders.", |s| &s.received),
            ("accepted", "Messages accepted and acknowledged.", |s| {
                &s.accepted
            }),
            ("rejected", "Messages refused by routing.", |s| &s.rejected),
            ("unreadable", "Messages that could not be parsed.", |s| {
                &s.unreadable
            }),
            ("delivered", "Deliveries acknowledged by endpoints.", |s| {
                &s.delivered
            }),
            (
                "dead_lettered",
                "Deliveries moved to the dead-letter store.",
                |s| &s.dead_lettered,
            ),
            (
                "retries",
                "Failed delivery attempts that will be retried.",
                |s| &s.retries,
            ),
            ("egress_connects", "Connections opened to endpoints.", |s| {
                &s.connections_opened
            }),
            (
                "tls_handshakes_full",
                "Full TLS handshakes with endpoints.",
                |s| &s.tls_handshakes_full,
            ),
            (
                "tls_handshakes_resumed",
                "TLS handshakes with endpoints that resumed a session.",
                |s| &s.tls_handshakes_resumed,
            ),
        ];
        for (name, help, pick) in totals {
            counter(enc, &format!("ganglion_{name}"), help, self.sum(pick))?;
        }
        let open = self
            .sum(|s| &s.connections_opened)
            .saturating_sub(self.sum(|s| &s.connections_closed));
        gauge(
            enc,
            "ganglion_egress_connections",
            "Connections to endpoints open now.",
            open,
        )?;
        gauge(
            enc,
            "ganglion_queued",
            "Deliveries accepted and not yet done.",
            queued,
        )?;
        self.encode_shards(enc)?;
        self.encode_listeners(enc)?;
        self.encode_ingress(enc)
    }

    /// What each shard counts on the egress side and for its log.
    fn encode_shards(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        counters(
            enc,
            "ganglion_shard_connect_failures",
            "Connections to endpoints that could not be opened (name lookup, TCP or TLS), by \
             the shard that owns the endpoint.",
            None,
            self.per_shard(|s| &s.connect_failures),
        )?;
        gauges(
            enc,
            "ganglion_shard_egress_connections",
            "Connections to endpoints open now, by shard.",
            self.shards.iter().enumerate().map(|(i, s)| {
                let opened = s.connections_opened.load(Ordering::Relaxed);
                let closed = s.connections_closed.load(Ordering::Relaxed);
                ([("shard", i)], opened.saturating_sub(closed))
            }),
        )?;
        counters(
            enc,
            "ganglion_shard_tls_handshakes",
            "TLS handshakes with endpoints by shard and kind: full or resumed (a session ticket).",
            None,
            self.shards.iter().enumerate().flat_map(|(i, s)| {
                [
                    ("full", &s.tls_handshakes_full),
                    ("resumed", &s.tls_handshakes_resumed),
                ]
                .map(|(kind, n)| {
                    (
                        ([("shard", i)], [("kind", kind)]),
                        n.load(Ordering::Relaxed),
                    )
                })
            }),
        )?;
        histograms(
            enc,
            "ganglion_delivery_latency",
            "From a message's acceptance to its endpoint's acknowledgement, by the shard that \
             owns the endpoint.",
            self.shards.iter().enumerate().map(|(i, s)| {
                (
                    [("shard", i)],
                    Histogram::sum(std::iter::once(&s.delivery_latency)),
                )
            }),
        )?;
        histogram(
            enc,
            "ganglion_wal_fsync",
            "Time each write-ahead-log fdatasync took (acknowledgements wait for it), all shards.",
            &Histogram::sum(self.shards.iter().map(|s| &s.wal_sync)),
        )?;
        histograms(
            enc,
            "ganglion_shard_wal_fsync",
            "Time each write-ahead-log fdatasync took, by shard.",
            self.shards
                .iter()
                .enumerate()
                .map(|(i, s)| ([("shard", i)], Histogram::sum(std::iter::once(&s.wal_sync)))),
        )
    }

    /// Each listener in force, by shard.
    fn encode_listeners(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let listeners = self.listeners.get();
        let blocks = || {
            listeners.iter().flat_map(|l| {
                l.shards()
                    .map(move |(i, s)| ([("listener", &*l.name)], [("shard", i)], l, s))
            })
        };
        counters(
            enc,
            "ganglion_listener_received",
            "Messages read from senders, by listener and shard.",
            None,
            blocks().map(|(l, s, _, c)| ((l, s), c.received.load(Ordering::Relaxed))),
        )?;
        counters(
            enc,
            "ganglion_listener_received",
            "Bytes of the messages read from senders, by listener and shard.",
            Some(&Unit::Bytes),
            blocks().map(|(l, s, _, c)| ((l, s), c.bytes.load(Ordering::Relaxed))),
        )?;
        counters(
            enc,
            "ganglion_listener_unreadable",
            "Messages that could not be read, by listener and shard.",
            None,
            blocks().map(|(l, s, _, c)| ((l, s), c.unreadable.load(Ordering::Relaxed))),
        )?;
        counters(
            enc,
            "ganglion_listener_answered",
            "Messages answered, by listener, shard and code: the HL7v2 verdict (AA, AE, AR; CA, \
             CE, CR in enhanced mode, whether or not MSH-15 asked for the ACK), or the ITK \
             answer (response, client_fault, server_fault).",
            None,
            blocks().flat_map(|(l, s, stats, _)| {
                Code::ALL.map(|code| {
                    let shard = s[0].1;
                    (
                        (l, (s, [("code", code.label())])),
                        stats.answered_on(shard, code),
                    )
                })
            }),
        )?;
        counters(
            enc,
            "ganglion_listener_refused",
            "Messages and connections refused, by listener, shard and reason (each is also one \
             line in the router's log, rate-limited per sender).",
            None,
            blocks().flat_map(|(l, s, stats, _)| {
                REASONS.map(|reason| {
                    let shard = s[0].1;
                    (
                        (l, (s, [("reason", listener::reason_label(reason))])),
                        stats.refused_on(shard, reason),
                    )
                })
            }),
        )?;
        gauges(
            enc,
            "ganglion_listener_connections",
            "Sender connections open now, by listener and shard.",
            blocks().map(|(l, s, _, c)| {
                let opened = c.connections_opened.load(Ordering::Relaxed);
                let closed = c.connections_closed.load(Ordering::Relaxed);
                ((l, s), opened.saturating_sub(closed))
            }),
        )?;
        counters(
            enc,
            "ganglion_listener_tls_handshakes",
            "TLS handshakes senders finished, by listener, shard and kind: full or resumed (a \
             session ticket).",
            None,
            blocks().flat_map(|(l, s, _, c)| {
                [
                    ("full", &c.tls_handshakes_full),
                    ("resumed", &c.tls_handshakes_resumed),
                ]
                .map(|(kind, n)| ((l, (s, [("kind", kind)])), n.load(Ordering::Relaxed)))
            }),
        )?;
        histograms(
            enc,
            "ganglion_listener_ack_latency",
            "From the read that brought a message's first byte to its answer written, by \
             listener and shard (the log's group commit included).",
            blocks().map(|(l, s, stats, _)| ((l, s), stats.ack_latency_on(s[0].1))),
        )
    }

    fn encode_ingress(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        counters(
            enc,
            "ganglion_ingress_closed",
            "Sender connections closed because they reached a limit (timeouts, buffered input).",
            None,
            Cutoff::ALL.map(|cutoff| {
                let n = self.sum(|s| &s.ingress_closed[cutoff.index()]);
                ([("reason", cutoff.label())], n)
            }),
        )?;
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
            gauge(enc, name, help, value.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &Arc<Metrics>, queued: u64) -> String {
        let metrics = Arc::clone(metrics);
        exposition::text(move |enc| metrics.encode(enc, queued)).unwrap()
    }

    #[test]
    fn counts_are_summed_over_shards() {
        let metrics = Metrics::new(2);
        Metrics::bump(&metrics.shard(0).accepted);
        Metrics::bump(&metrics.shard(1).accepted);
        Metrics::bump(&metrics.shard(1).delivered);
        Metrics::bump(&metrics.shard(9).retries);
        let text = render(&metrics, 3);
        assert!(text.contains("ganglion_accepted_total 2\n"), "{text}");
        assert!(text.contains("ganglion_delivered_total 1\n"), "{text}");
        assert!(text.contains("ganglion_retries_total 1\n"), "{text}");
        assert!(text.contains("ganglion_queued 3\n"), "{text}");
        assert!(
            text.contains("# TYPE ganglion_accepted counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn ingress_closes_are_labelled_by_reason() {
        let metrics = Metrics::new(2);
        let handshake = Cutoff::HandshakeTimeout.index();
        Metrics::bump(&metrics.shard(0).ingress_closed[handshake]);
        Metrics::bump(&metrics.shard(1).ingress_closed[handshake]);
        metrics.input.held.store(5, Ordering::Relaxed);
        let text = render(&metrics, 0);
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
        let text = render(&metrics, 0);
        for line in [
            "ganglion_wal_fsync_seconds_bucket{le=\"0.0001\"} 1\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"0.00025\"} 2\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"0.0025\"} 2\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"0.005\"} 3\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"1.0\"} 3\n",
            "ganglion_wal_fsync_seconds_bucket{le=\"+Inf\"} 4\n",
            "ganglion_wal_fsync_seconds_count 4\n",
            "ganglion_wal_fsync_seconds_sum 2.00333\n",
            "ganglion_shard_wal_fsync_seconds_count{shard=\"1\"} 2\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
