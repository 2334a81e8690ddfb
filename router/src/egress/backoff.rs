//! When to try an endpoint again: exponential backoff with full jitter, capped.
//!
//! 28,000 endpoints that fail together (a network blip, a restarted data centre) must not come
//! back in lock-step, or the reconnect storm is its own outage. "Full jitter" (a uniform draw
//! between zero and the exponential bound) spreads them out best for the least total delay.
//! Randomness comes from a small per-endpoint generator seeded by the caller, so tests and
//! replays are deterministic.
use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Bound of the first retry.
    pub base: Duration,
    /// Bound that retries never exceed.
    pub cap: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        }
    }
}

/// Backoff state of one endpoint.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy, seed: u64) -> Backoff {
        Backoff {
            policy,
            failures: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        let exponent = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let bound = self
            .policy
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.policy.cap);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        // Never zero: an immediate retry of something that just failed rarely helps.
        Duration::from_nanos(1 + self.next() % nanos)
    }

    /// Records a success: the next failure starts from the base again.
    pub fn succeed(&mut self) {
        self.failures = 0;
    }

    /// xorshift64*: plenty for spreading retries, and no dependency.
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }

    #[test]
    fn delays_stay_under_the_growing_bound_and_the_cap() {
        let mut backoff = Backoff::new(policy(), 7);
        for attempt in 0..40u32 {
            let bound = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(30))
                .min(Duration::from_secs(2));
            let delay = backoff.fail();
            assert!(
                delay > Duration::ZERO && delay <= bound,
                "attempt {attempt}: {delay:?}"
            );
        }
        assert_eq!(backoff.failures(), 40);
        backoff.succeed();
        assert!(backoff.fail() <= Duration::from_millis(100));
    }

    #[test]
    fn endpoints_failing_together_spread_out() {
        // A thousand endpoints fail at once, five times each: their fifth retries must not
        // bunch up (each 100 ms slot of the 1.6 s window holds well under a fifth of them).
        let mut slots = [0u32; 16];
        for seed in 0..1000u64 {
            let mut backoff = Backoff::new(policy(), seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut delay = Duration::ZERO;
            for _ in 0..5 {
                delay = backoff.fail();
            }
            let slot = (delay.as_millis() / 100).min(15) as usize;
            slots[slot] += 1;
        }
        assert!(slots.iter().all(|&n| n < 200), "{slots:?}");
    }

    #[test]
    fn same_seed_same_delays() {
        let mut a = Backoff::new(policy(), 42);
        let mut b = Backoff::new(policy(), 42);
        for _ in 0..10 {
            assert_eq!(a.fail(), b.fail());
        }
    }
}
