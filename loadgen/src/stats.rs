//! What one run (one step of a proof) measured: counts, errors by kind, and HdrHistograms of
//! ACK latency (intended send time → ACK received), delivery latency (intended send time →
//! arrival at the endpoint) and send lag (intended → actually written, the generator's own
//! lateness). Latencies are recorded in microseconds, 3 significant digits, up to an hour.
use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn new() -> Latency {
        // Bounds are constants that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, sigfig ≤ 5).
        let hist = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_hist()));
        Latency { hist }
    }

    /// Records a latency given in nanoseconds (saturating at the top bound).
    pub fn record_ns(&mut self, ns: u64) {
        let us = (ns / 1000).max(1);
        self.hist.saturating_record(us);
    }

    pub fn add(&mut self, other: &Latency) {
        let _ = self.hist.add(&other.hist);
    }

    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.hist.len(),
            p50: self.hist.value_at_quantile(0.50),
            p90: self.hist.value_at_quantile(0.90),
            p99: self.hist.value_at_quantile(0.99),
            p999: self.hist.value_at_quantile(0.999),
            max: self.hist.max(),
        }
    }
}

fn unreachable_hist() -> Histogram<u64> {
    // Histogram::new(3) cannot fail (3 significant digits is in range); this is never called.
    Histogram::new_with_max(2, 1).unwrap_or_else(|_| std::process::abort())
}

/// Everything one run counted.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub offered_rate: f64,
    /// Seconds from the first intended send time to the last.
    pub duration_s: f64,
    /// Messages scheduled.
    pub scheduled: u64,
    pub sent: u64,
    /// Positive acknowledgements (AA/CA, HTTP 2xx).
    pub acked: u64,
    /// Distinct messages that reached an endpoint and were accepted there.
    pub delivered: u64,
    /// ACKed by the router but never accepted by any endpoint.
    pub lost: u64,
    /// Arrivals beyond the first of the same message (retries after a drop or an AE).
    pub duplicates: u64,
    /// First arrivals of a patient's message after a later one of the same patient (only
    /// counted when the run draws patients: [`crate::drive::DriveConfig::patients`]).
    pub out_of_order: u64,
    /// Messages an endpoint refused for good (AR, Client fault): dead letters by design.
    pub refused_by_endpoint: u64,
    /// Failures seen by the sender, by kind (`AE`, `AR`, `timeout`, `closed`, ...).
    pub errors: BTreeMap<String, u64>,
    pub ack: Latency,
    pub delivery: Latency,
    pub send_lag: Latency,
    /// Seconds from the first intended send to the last ACK (for the achieved rate).
    pub ack_span_s: f64,
    /// Seconds from the first intended send to the last first arrival at an endpoint.
    pub delivery_span_s: f64,
    /// The run cut into windows by intended send time, when the driver was asked to.
    pub windows: Vec<Window>,
}

/// The messages of one window of a run (those whose intended send time falls in it): how a
/// long run changed over its course.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Seconds from the start of the run.
    pub start_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub ack: Latency,
    pub delivery: Latency,
}

impl Window {
    pub fn starting(start_s: f64) -> Window {
        Window {
            start_s,
            ..Window::default()
        }
    }
}

impl RunStats {
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// ACKs per second over the run.
    pub fn achieved_rate(&self) -> f64 {
        if self.ack_span_s > 0.0 {
            self.acked as f64 / self.ack_span_s.max(self.duration_s)
        } else {
            0.0
        }
    }

    /// Messages delivered per second: over the time from the first intended send to the last
    /// delivery, or the run's length when that was shorter, so a backlog left to drain after
    /// the last send counts against it.
    pub fn delivered_rate(&self) -> f64 {
        let span = self.delivery_span_s.max(self.duration_s);
        if span > 0.0 {
            self.delivered as f64 / span
        } else {
            0.0
        }
    }

    /// Errors as a fraction of what was scheduled.
    pub fn error_ratio(&self) -> f64 {
        self.error_count() as f64 / self.scheduled.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latency::new();
        // 1..=1000 ms: p50 is 500 ms, p99 990 ms, max 1000 ms (within 0.1 %).
        for ms in 1..=1000u64 {
            l.record_ns(ms * 1_000_000);
        }
        let p = l.percentiles();
        assert_eq!(p.count, 1000);
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(p.p50, 500_000), "{p:?}");
        assert!(near(p.p90, 900_000), "{p:?}");
        assert!(near(p.p99, 990_000), "{p:?}");
        assert!(near(p.p999, 999_000), "{p:?}");
        assert!(near(p.max, 1_000_000), "{p:?}");
    }

    #[test]
    fn one_slow_message_in_a_thousand_shows_at_p999_not_p99() {
        let mut l = Latency::new();
        for _ in 0..999 {
            l.record_ns(200_000);
        }
        l.record_ns(50_000_000);
        let p = l.percentiles();
        assert!(p.p99 < 250, "{p:?}");
        assert!(p.max >= 49_900, "{p:?}");
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
    }
}
