//! `GET /shards`: each shard as the status page shows it: whether it accepts connections, its
//! write-ahead log's state, what it counted, and the endpoints it owns with their queues.
//!
//! Read from the shards' atomics ([`crate::metrics::ShardHealth`], the counters, each
//! endpoint's queue count), like `/readyz` and `/metrics`: no shard is asked anything. Counts
//! are per shard as each shard keeps them: a message is counted received, accepted, rejected
//! or unreadable by the shard that read it, delivered or dead-lettered by the shard that owns
//! its endpoint.
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::routes::{reply, Shared};
use crate::metrics::{Metrics, ShardCounters};
use crate::shard::Routing;

pub async fn answer(State(s): State<Shared>) -> Response {
    reply(200, list(&s.metrics, &s.current()).to_string() + "\n")
}

/// `{"shards": [{"shard", "serving", "log", "endpoints", "queued", counters…}]}`; `log` is
/// `ok`, `refusing` (disk or budget full) or `failed` (until a restart).
pub fn list(metrics: &Metrics, routing: &Routing) -> Value {
    let count = metrics.shards();
    let mut owned = vec![(0u64, 0u64); count];
    for handle in routing.endpoints.iter() {
        if let Some((endpoints, queued)) = owned.get_mut(handle.owner) {
            *endpoints += 1;
            *queued += u64::from(handle.queued.load(Ordering::Relaxed));
        }
    }
    let shards: Vec<Value> = owned
        .iter()
        .enumerate()
        .map(|(i, &(endpoints, queued))| one(i, metrics.shard(i), endpoints, queued))
        .collect();
    json!({ "shards": shards })
}

fn one(index: usize, shard: &ShardCounters, endpoints: u64, queued: u64) -> Value {
    let n = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let health = &shard.health;
    let log = health.log_state().as_str();
    json!({
        "shard": index,
        "serving": health.serving.load(Ordering::Relaxed),
        "log": log,
        "endpoints": endpoints,
        "queued": queued,
        "received": n(&shard.received),
        "accepted": n(&shard.accepted),
        "rejected": n(&shard.rejected),
        "unreadable": n(&shard.unreadable),
        "delivered": n(&shard.delivered),
        "dead_lettered": n(&shard.dead_lettered),
        "retries": n(&shard.retries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shard_says_its_health_and_its_own_counts() {
        let metrics = Metrics::new(2);
        metrics
            .shard(0)
            .health
            .serving
            .store(true, Ordering::Relaxed);
        metrics
            .shard(1)
            .health
            .log_refusing
            .store(true, Ordering::Relaxed);
        Metrics::bump(&metrics.shard(1).accepted);
        Metrics::bump(&metrics.shard(1).dead_lettered);
        let shard0 = one(0, metrics.shard(0), 3, 1);
        let shard1 = one(1, metrics.shard(1), 0, 0);
        assert_eq!(
            (
                &shard0["serving"],
                &shard0["log"],
                &shard0["endpoints"],
                &shard0["queued"]
            ),
            (&json!(true), &json!("ok"), &json!(3), &json!(1))
        );
        assert_eq!(
            (&shard1["serving"], &shard1["log"], &shard1["accepted"]),
            (&json!(false), &json!("refusing"), &json!(1))
        );
        assert_eq!(shard1["dead_lettered"], 1);
        assert_eq!(shard0["accepted"], 0);
        metrics
            .shard(1)
            .health
            .log_failed
            .store(true, Ordering::Relaxed);
        assert_eq!(one(1, metrics.shard(1), 0, 0)["log"], "failed");
    }
}
