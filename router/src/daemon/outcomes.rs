//! What a shard does when a delivery ends: count it, log it, and keep dead letters.
use std::sync::Arc;
use std::time::Duration;

use crate::egress::worker::Outcomes;
use crate::metrics::Metrics;
use crate::pipeline::Delivery;

pub struct ShardOutcomes {
    pub shard: usize,
    pub metrics: Arc<Metrics>,
}

impl Outcomes for ShardOutcomes {
    fn delivered(&self, _delivery: &Delivery) {
        Metrics::bump(&self.metrics.shard(self.shard).delivered);
    }

    fn dead_letter(&self, delivery: &Delivery, reason: &str) {
        Metrics::bump(&self.metrics.shard(self.shard).dead_lettered);
        log::error!(
            "dead letter: message {} for {}: {reason}",
            String::from_utf8_lossy(delivery.message.control_id()),
            delivery.endpoint
        );
    }

    fn retrying(&self, delivery: &Delivery, reason: &str, after: Duration) {
        Metrics::bump(&self.metrics.shard(self.shard).retries);
        log::info!(
            "{}: message {} will be retried in {after:?}: {reason}",
            delivery.endpoint,
            String::from_utf8_lossy(delivery.message.control_id()),
        );
    }
}
