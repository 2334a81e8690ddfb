//! Histograms a shard records into with relaxed atomic adds (no lock, no allocation): a count
//! per bucket, not cumulative, and the sum in microseconds. prometheus-client's own
//! `Histogram` takes a lock on every observation, so it is used only to encode these at scrape
//! time, summed over shards.
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of a histogram's buckets, in microseconds; a last bucket, `+Inf`, follows.
pub trait Bounds {
    const US: &'static [u64];
}

/// Write-ahead-log fdatasyncs: 100 µs to 1 s.
pub struct Fsync;

impl Bounds for Fsync {
    const US: &'static [u64] = &[
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    ];
}

/// ACK and delivery latency: 100 µs (a quiet router's ACK) to 30 s (an endpoint's reply
/// timeout), 1-2.5-5 steps so that the bounds read as round numbers on a dashboard.
pub struct Latency;

impl Bounds for Latency {
    const US: &'static [u64] = &[
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
    ];
}

pub struct Histogram<B: Bounds> {
    /// One more than `B::US`: the last is `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    bounds: PhantomData<B>,
}

impl<B: Bounds> Default for Histogram<B> {
    fn default() -> Self {
        Histogram {
            counts: (0..=B::US.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            bounds: PhantomData,
        }
    }
}

/// A histogram summed over shards, ready to encode: upper bounds in seconds with the count in
/// each bucket (not cumulative; the encoder adds them up), and the sum in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl<B: Bounds> Histogram<B> {
    pub fn record(&self, took: Duration) {
        self.record_n(took, 1);
    }

    /// `n` observations of the same duration (the messages of a batch answered by one write).
    pub fn record_n(&self, took: Duration, n: u64) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = B::US.partition_point(|&bound| bound < us);
        if let Some(b) = self.counts.get(bucket) {
            b.fetch_add(n, Ordering::Relaxed);
        }
        self.sum_us
            .fetch_add(us.saturating_mul(n), Ordering::Relaxed);
    }

    /// The sum of `histograms` (one per shard) as it is now.
    pub fn sum<'a>(histograms: impl Iterator<Item = &'a Self>) -> Snapshot
    where
        B: 'a,
    {
        let mut counts = vec![0u64; B::US.len() + 1];
        let mut sum_us = 0u64;
        for h in histograms {
            for (total, c) in counts.iter_mut().zip(h.counts.iter()) {
                *total += c.load(Ordering::Relaxed);
            }
            sum_us = sum_us.wrapping_add(h.sum_us.load(Ordering::Relaxed));
        }
        let bounds = B::US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::INFINITY]);
        Snapshot {
            count: counts.iter().sum(),
            buckets: bounds.zip(counts).collect(),
            sum_seconds: sum_us as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_belongs_to_its_own_bucket_and_shards_add_up() {
        let a: Histogram<Fsync> = Histogram::default();
        let b: Histogram<Fsync> = Histogram::default();
        let us = Duration::from_micros;
        a.record(us(100));
        b.record_n(us(101), 2);
        b.record(Duration::from_secs(5));
        let s = Histogram::sum([&a, &b].into_iter());
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.0001, 1));
        assert_eq!(s.buckets[1], (0.00025, 2));
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((s.sum_seconds - 5.000302).abs() < 1e-9, "{}", s.sum_seconds);
    }
}
