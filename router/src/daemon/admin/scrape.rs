//! What `/metrics` adds to the shards' counters when it is scraped: figures read from the
//! routing in force, the log's budget and the shards' health, so that nothing on the message
//! path counts them. Endpoints by state, queue depth and the longest wait by shard, the longest
//! wait of any queue and the worst few endpoints by that wait, the write-ahead log's disk use,
//! readiness, and reloads by outcome.
//!
//! A series per endpoint only when asked (`/metrics?per_endpoint=1`): 28,000 label sets on
//! every scrape would swamp a Prometheus server, so operators scrape them in a job of their
//! own, less often, while the totals and the worst few are always there.
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::encoding::DescriptorEncoder;

use super::{endpoints, ready};
use crate::cluster::ClusterStatus;
use crate::egress::alerts::Alert;
use crate::egress::status::Connection;
use crate::metrics::exposition::{self, counters, gauge, gauges};
use crate::metrics::{LogState, Metrics};
use crate::shard::Routing;
use crate::wal::DiskBudget;

/// How many endpoints `ganglion_endpoint_oldest_queued_seconds` names.
pub const WORST: usize = 10;

/// What a scrape asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// A series per endpoint (`?per_endpoint=1`).
    pub per_endpoint: bool,
}

impl Options {
    /// `/metrics?QUERY`: `per_endpoint=1` (or `true`) adds the per-endpoint series.
    pub fn parse(query: &str) -> Result<Options, String> {
        let mut options = Options::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("per_endpoint", "1" | "true") => options.per_endpoint = true,
                ("per_endpoint", "0" | "false") => options.per_endpoint = false,
                ("per_endpoint", other) => {
                    return Err(format!("per_endpoint is 1 or 0, not `{other}`"))
                }
                (other, _) => {
                    return Err(format!(
                        "unknown parameter `{other}`: per_endpoint is the one there is"
                    ))
                }
            }
        }
        Ok(options)
    }
}

/// One endpoint's figures for the per-endpoint families.
struct EndpointFigures<'a> {
    name: &'a str,
    queued: u32,
    waited: f64,
    connected: bool,
    delivered: u64,
    retried: u64,
    dead_lettered: u64,
}

/// The whole of `/metrics`: the shards' counters and the scrape-time families, as
/// OpenMetrics text. Reads only atomics (and each endpoint's last-error mutex, as `/endpoints`
/// does), so it can run on any thread.
pub fn text(
    metrics: &Arc<Metrics>,
    routing: &Arc<Routing>,
    budget: &Arc<DiskBudget>,
    options: Options,
) -> Result<String, fmt::Error> {
    let (metrics, routing, budget) = (Arc::clone(metrics), Arc::clone(routing), Arc::clone(budget));
    exposition::text(move |enc| {
        let queued = routing
            .endpoints
            .iter()
            .map(|h| u64::from(h.queued.load(Ordering::Relaxed)))
            .sum();
        metrics.encode(enc, queued)?;
        encode(enc, &metrics, &routing, &budget, SystemTime::now(), options)
    })
}

/// Writes the scrape-time families.
pub fn encode(
    enc: &mut DescriptorEncoder,
    metrics: &Metrics,
    routing: &Routing,
    budget: &DiskBudget,
    now: SystemTime,
    options: Options,
) -> fmt::Result {
    let (mut down, mut open, mut backlog, mut connected) = (0u64, 0u64, 0u64, 0u64);
    let mut alerts = [0u64; Alert::ALL.len()];
    let mut waits: Vec<(f64, &str)> = Vec::new();
    let shards = metrics.shards();
    let mut shard_queued = vec![0u64; shards];
    let mut shard_waited = vec![0f64; shards];
    let mut each = Vec::new();
    for row in endpoints::rows(routing) {
        down += u64::from(row.is_down());
        open += u64::from(row.has_open_circuit());
        backlog += u64::from(row.has_backlog());
        let is_connected = row.status.connection == Connection::Connected;
        connected += u64::from(is_connected);
        for alert in &row.status.alerts {
            if let Some(n) = Alert::ALL
                .iter()
                .position(|a| a == alert)
                .and_then(|i| alerts.get_mut(i))
            {
                *n += 1;
            }
        }
        let waited = row
            .status
            .oldest_arrived
            .map(|arrived| now.duration_since(arrived).map_or(0.0, |d| d.as_secs_f64()));
        let owner = row.handle.owner.min(shards.saturating_sub(1));
        if let Some(q) = shard_queued.get_mut(owner) {
            *q += u64::from(row.queued);
        }
        if let (Some(w), Some(waited)) = (shard_waited.get_mut(owner), waited) {
            *w = w.max(waited);
        }
        if let Some(waited) = waited {
            waits.push((waited, row.endpoint.name.as_str()));
        }
        if options.per_endpoint {
            each.push(EndpointFigures {
                name: row.endpoint.name.as_str(),
                queued: row.queued,
                waited: waited.unwrap_or(0.0),
                connected: is_connected,
                delivered: row.status.delivered,
                retried: row.status.retried,
                dead_lettered: row.status.dead_lettered,
            });
        }
    }
    gauges(
        enc,
        "ganglion_endpoints",
        "Endpoints by state: down (the last attempt failed), open_circuit, backlog (more than the \
         message in flight waiting), connected, and all of them.",
        [
            ("down", down),
            ("open_circuit", open),
            ("backlog", backlog),
            ("connected", connected),
            ("all", routing.endpoints.len() as u64),
        ]
        .map(|(state, n)| ([("state", state)], n)),
    )?;
    gauges(
        enc,
        "ganglion_endpoint_alerts",
        "Endpoints with each alert in force (thresholds alert_queue_depth, stuck_after, \
         alert_circuit_open, alert_dead_letters_per_hour in routes.toml).",
        Alert::ALL
            .iter()
            .zip(alerts)
            .map(|(alert, n)| ([("alert", alert.as_str())], n)),
    )?;
    gauges(
        enc,
        "ganglion_shard_queued",
        "Deliveries accepted and not yet done, by the shard that owns their endpoint.",
        shard_queued
            .iter()
            .enumerate()
            .map(|(i, &n)| ([("shard", i)], n)),
    )?;
    gauges(
        enc,
        "ganglion_shard_oldest_queued_seconds",
        "How long the oldest queued message of the shard's endpoints has waited (0: empty).",
        shard_waited
            .iter()
            .enumerate()
            .map(|(i, &w)| ([("shard", i)], w)),
    )?;
    waits.sort_by(|a, b| b.0.total_cmp(&a.0));
    gauge(
        enc,
        "ganglion_endpoint_oldest_queued_seconds_max",
        "How long the oldest queued message of any endpoint has waited (0: every queue empty).",
        waits.first().map_or(0.0, |w| w.0),
    )?;
    gauges(
        enc,
        "ganglion_endpoint_oldest_queued_seconds",
        "How long each of the endpoints with the longest waits (at most 10) has had its oldest \
         queued message.",
        waits
            .iter()
            .take(WORST)
            .map(|&(waited, name)| ([("endpoint", name)], waited)),
    )?;
    if options.per_endpoint {
        encode_each(enc, &each)?;
    }
    gauge(
        enc,
        "ganglion_wal_used_bytes",
        "Disk the write-ahead log holds, spare segments included.",
        budget.used(),
    )?;
    gauge(
        enc,
        "ganglion_wal_budget_bytes",
        "The write-ahead log's disk budget (wal_budget).",
        budget.limit(),
    )?;
    let refusing = (0..metrics.shards())
        .filter(|&s| metrics.shard(s).health.log_state() == LogState::Refusing)
        .count();
    gauge(
        enc,
        "ganglion_wal_refusing_shards",
        "Shards whose log refuses messages now for want of disk or budget.",
        refusing,
    )?;
    if let Some(cluster) = metrics.cluster.get() {
        encode_cluster(enc, &cluster.status())?;
    }
    let ready = u32::from(ready::reasons(metrics, routing).is_empty());
    gauge(
        enc,
        "ganglion_ready",
        "1 when /readyz answers ready, 0 when not.",
        ready,
    )?;
    gauge(
        enc,
        "ganglion_routes_version",
        "Which reload made the routing in force (1: the one start-up applied).",
        routing.provenance.version,
    )?;
    counters(
        enc,
        "ganglion_reloads",
        "Reloads since start, by outcome: applied, invalid (errors in the file), refused (would \
         empty the router, or needs a restart), failed (a shard could not take it).",
        None,
        metrics
            .reloads
            .counts()
            .map(|(outcome, n)| ([("outcome", outcome)], n)),
    )
}

/// The cluster link: whether it is up, what this node owns, and what waits in its partitions.
fn encode_cluster(enc: &mut DescriptorEncoder, status: &ClusterStatus) -> fmt::Result {
    gauge(
        enc,
        "ganglion_cluster_connected",
        "1 while this node is connected to the cluster's NATS servers.",
        u32::from(status.connected),
    )?;
    gauge(
        enc,
        "ganglion_cluster_partitions_owned",
        "Partitions of the endpoints this node delivers for now.",
        status.partitions_owned.len(),
    )?;
    gauge(
        enc,
        "ganglion_cluster_lag_messages",
        "Messages in this node's partitions not yet acknowledged by their endpoints.",
        status.lag,
    )?;
    for (name, help, value) in [
        (
            "ganglion_cluster_published",
            "Messages this node stored in the cluster's stream (one per partition).",
            status.published,
        ),
        (
            "ganglion_cluster_publish_failures",
            "Publishes the stream did not take in time; their senders were told to retry.",
            status.publish_failures,
        ),
        (
            "ganglion_cluster_consumed",
            "Messages this node took from its partitions.",
            status.consumed,
        ),
        (
            "ganglion_cluster_acked",
            "Messages this node acknowledged to the stream once their endpoints had them.",
            status.acked,
        ),
        (
            "ganglion_cluster_redelivered",
            "Messages taken again (after a takeover, or a second delivery by the stream).",
            status.redelivered,
        ),
    ] {
        exposition::counter(enc, name, help, value)?;
    }
    Ok(())
}

/// Which count of an endpoint a family shows.
type Pick = fn(&EndpointFigures<'_>) -> u64;

/// The families of `?per_endpoint=1`.
fn encode_each(enc: &mut DescriptorEncoder, each: &[EndpointFigures<'_>]) -> fmt::Result {
    fn label<'a>(e: &EndpointFigures<'a>) -> [(&'static str, &'a str); 1] {
        [("endpoint", e.name)]
    }
    gauges(
        enc,
        "ganglion_endpoint_queue_depth",
        "Messages accepted for the endpoint and not yet done, per endpoint.",
        each.iter().map(|e| (label(e), e.queued)),
    )?;
    gauges(
        enc,
        "ganglion_endpoint_queue_oldest_seconds",
        "How long the endpoint's oldest queued message has waited (0: empty), per endpoint.",
        each.iter().map(|e| (label(e), e.waited)),
    )?;
    gauges(
        enc,
        "ganglion_endpoint_connected",
        "1 while the endpoint's connection is open, per endpoint.",
        each.iter().map(|e| (label(e), u32::from(e.connected))),
    )?;
    let totals: [(&str, &str, Pick); 3] = [
        (
            "ganglion_endpoint_delivered",
            "Deliveries the endpoint acknowledged, per endpoint.",
            |e| e.delivered,
        ),
        (
            "ganglion_endpoint_retried",
            "Failed attempts that will be retried, per endpoint.",
            |e| e.retried,
        ),
        (
            "ganglion_endpoint_dead_lettered",
            "Deliveries moved to the dead-letter store, per endpoint.",
            |e| e.dead_lettered,
        ),
    ];
    for (name, help, pick) in totals {
        counters(
            enc,
            name,
            help,
            None,
            each.iter().map(|e| (label(e), pick(e))),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_endpoint_is_asked_for_by_name() {
        assert_eq!(Options::parse(""), Ok(Options::default()));
        assert!(Options::parse("per_endpoint=1").unwrap().per_endpoint);
        assert!(Options::parse("per_endpoint=true").unwrap().per_endpoint);
        assert!(!Options::parse("per_endpoint=0").unwrap().per_endpoint);
        assert!(Options::parse("per_endpoint=yes").is_err());
        assert!(Options::parse("endpoints=1").is_err());
    }
}
