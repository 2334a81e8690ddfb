//! `GET /readyz`: whether the router can take a message now, and if not, every reason why.
//!
//! Ready means: every shard accepts (start-up has read the logs and no shard has stopped),
//! every shard's write-ahead log takes messages (not failed, not refusing for want of disk or
//! budget), a cluster node is connected to its NATS servers, and the routing in force has a
//! listener and a route. A load balancer or service
//! manager that sees 503 should send senders elsewhere; the body says what to fix.
use crate::metrics::{LogState, Metrics};
use crate::shard::Routing;
use std::sync::atomic::Ordering;

/// What stops the router from taking messages now; empty when it is ready.
pub fn reasons(metrics: &Metrics, routing: &Routing) -> Vec<String> {
    let mut reasons = Vec::new();
    for shard in 0..metrics.shards() {
        let health = &metrics.shard(shard).health;
        if !health.serving.load(Ordering::Relaxed) {
            reasons.push(format!("shard {shard} is not accepting connections"));
        }
        match health.log_state() {
            LogState::Failed => reasons.push(format!(
                "shard {shard}: the write-ahead log failed; nothing more is acknowledged until \
                 the router restarts"
            )),
            LogState::Refusing => reasons.push(format!(
                "shard {shard}: the write-ahead log refuses messages (disk or wal_budget full) \
                 until endpoints drain it"
            )),
            LogState::Ok => {}
        }
    }
    if let Some(cluster) = metrics.cluster.get() {
        if !cluster.status().connected {
            reasons.push(
                "not connected to the cluster's NATS servers: nothing can be stored or \
                 acknowledged until the connection is back"
                    .to_string(),
            );
        }
    }
    if routing.table.listeners().is_empty() {
        reasons.push("no listener is configured".to_string());
    }
    if routing.table.rules().is_empty() {
        reasons.push("no route is loaded".to_string());
    }
    reasons
}

/// The answer: 200 `ready`, or 503 with one reason per line.
pub fn answer(reasons: &[String]) -> (u16, String) {
    if reasons.is_empty() {
        return (200, "ready\n".to_string());
    }
    let mut body = String::from("not ready:\n");
    for reason in reasons {
        body.push_str("  ");
        body.push_str(reason);
        body.push('\n');
    }
    (503, body)
}
