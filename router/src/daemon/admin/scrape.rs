//! What `/metrics` adds to the shards' counters when it is scraped: figures read from the
//! routing in force, the log's budget and the shards' health, so that nothing on the message
//! path counts them. Endpoints by state, the longest wait of any queue and the worst few
//! endpoints by that wait (never one series per endpoint: 28,000 label sets would swamp a
//! Prometheus server), the write-ahead log's disk use, readiness, and reloads by outcome.
use std::fmt::Write;
use std::time::SystemTime;

use super::{endpoints, ready};
use crate::egress::alerts::Alert;
use crate::egress::status::Connection;
use crate::metrics::{LogState, Metrics};
use crate::shard::Routing;
use crate::wal::DiskBudget;

/// How many endpoints `ganglion_endpoint_oldest_queued_seconds` names.
pub const WORST: usize = 10;

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the scrape-time families to `out`.
pub fn render(
    out: &mut String,
    metrics: &Metrics,
    routing: &Routing,
    budget: &DiskBudget,
    now: SystemTime,
) {
    let (mut down, mut open, mut backlog, mut connected) = (0u64, 0u64, 0u64, 0u64);
    let mut alerts = [0u64; Alert::ALL.len()];
    let mut waits: Vec<(f64, &str)> = Vec::new();
    for row in endpoints::rows(routing) {
        down += u64::from(row.is_down());
        open += u64::from(row.has_open_circuit());
        backlog += u64::from(row.has_backlog());
        connected += u64::from(row.status.connection == Connection::Connected);
        for alert in &row.status.alerts {
            if let Some(n) = Alert::ALL
                .iter()
                .position(|a| a == alert)
                .and_then(|i| alerts.get_mut(i))
            {
                *n += 1;
            }
        }
        if let Some(arrived) = row.status.oldest_arrived {
            let waited = now.duration_since(arrived).map_or(0.0, |d| d.as_secs_f64());
            waits.push((waited, row.endpoint.name.as_str()));
        }
    }
    family(
        out,
        "ganglion_endpoints",
        "gauge",
        "Endpoints by state: down (the last attempt failed), open_circuit, backlog (more than the \
         message in flight waiting), connected, and all of them.",
    );
    for (state, n) in [
        ("down", down),
        ("open_circuit", open),
        ("backlog", backlog),
        ("connected", connected),
        ("all", routing.endpoints.len() as u64),
    ] {
        let _ = writeln!(out, "ganglion_endpoints{{state=\"{state}\"}} {n}");
    }
    family(
        out,
        "ganglion_endpoint_alerts",
        "gauge",
        "Endpoints with each alert in force (thresholds alert_queue_depth, stuck_after, \
         alert_circuit_open, alert_dead_letters_per_hour in routes.toml).",
    );
    for (alert, n) in Alert::ALL.iter().zip(alerts) {
        let _ = writeln!(
            out,
            "ganglion_endpoint_alerts{{alert=\"{}\"}} {n}",
            alert.as_str()
        );
    }
    waits.sort_by(|a, b| b.0.total_cmp(&a.0));
    family(
        out,
        "ganglion_endpoint_oldest_queued_seconds_max",
        "gauge",
        "How long the oldest queued message of any endpoint has waited (0: every queue empty).",
    );
    let _ = writeln!(
        out,
        "ganglion_endpoint_oldest_queued_seconds_max {:.3}",
        waits.first().map_or(0.0, |w| w.0)
    );
    family(
        out,
        "ganglion_endpoint_oldest_queued_seconds",
        "gauge",
        "How long each of the endpoints with the longest waits (at most 10) has had its oldest \
         queued message.",
    );
    for (waited, name) in waits.iter().take(WORST) {
        let _ = writeln!(
            out,
            "ganglion_endpoint_oldest_queued_seconds{{endpoint=\"{}\"}} {waited:.3}",
            label(name)
        );
    }
    family(
        out,
        "ganglion_wal_used_bytes",
        "gauge",
        "Disk the write-ahead log holds, spare segments included.",
    );
    let _ = writeln!(out, "ganglion_wal_used_bytes {}", budget.used());
    family(
        out,
        "ganglion_wal_budget_bytes",
        "gauge",
        "The write-ahead log's disk budget (wal_budget).",
    );
    let _ = writeln!(out, "ganglion_wal_budget_bytes {}", budget.limit());
    let refusing = (0..metrics.shards())
        .filter(|&s| metrics.shard(s).health.log_state() == LogState::Refusing)
        .count();
    family(
        out,
        "ganglion_wal_refusing_shards",
        "gauge",
        "Shards whose log refuses messages now for want of disk or budget.",
    );
    let _ = writeln!(out, "ganglion_wal_refusing_shards {refusing}");
    family(
        out,
        "ganglion_ready",
        "gauge",
        "1 when /readyz answers ready, 0 when not.",
    );
    let ready = u8::from(ready::reasons(metrics, routing).is_empty());
    let _ = writeln!(out, "ganglion_ready {ready}");
    family(
        out,
        "ganglion_routes_version",
        "gauge",
        "Which reload made the routing in force (1: the one start-up applied).",
    );
    let _ = writeln!(
        out,
        "ganglion_routes_version {}",
        routing.provenance.version
    );
    family(
        out,
        "ganglion_reloads_total",
        "counter",
        "Reloads since start, by outcome: applied, invalid (errors in the file), refused (would \
         empty the router, or needs a restart), failed (a shard could not take it).",
    );
    for (outcome, n) in metrics.reloads.counts() {
        let _ = writeln!(out, "ganglion_reloads_total{{outcome=\"{outcome}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
