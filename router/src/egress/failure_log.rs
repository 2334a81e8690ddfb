//! How many of an endpoint's failed deliveries are logged one by one.
//!
//! A down endpoint fails every retry, for as long as it is down: once a second or more for
//! each message at the front of its queue. Each endpoint logs its first [`BURST`] failures of
//! a window of [`WINDOW`] one by one and only counts the rest; the count is logged as a
//! summary (with the endpoint) when a failure comes after the window ended, and when the
//! endpoint delivers again or its queue empties. An endpoint that failed past its burst starts
//! the next window with summaries only; one that stayed within it starts afresh, as refusals do
//! per peer ([`crate::ingress::refusals`]).
//!
//! One per worker (the worker is the endpoint), so no map and no lock; pure, with the time
//! passed in, so that it is tested without sleeping and without a timer of its own.
use std::time::{Duration, Instant};

pub use crate::ingress::refusals::{BURST, WINDOW};

/// What to log for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// Log this failure itself.
    pub log: bool,
    /// First log this summary of the failures counted in the window that ended.
    pub summary: Option<Suppressed>,
}

/// Failures counted, not logged, over a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    pub count: u64,
    pub over: Duration,
}

#[derive(Debug, Default)]
pub struct FailureLog {
    /// When the current window started; `None` while the endpoint is not failing.
    since: Option<Instant>,
    logged: u32,
    counted: u64,
}

impl FailureLog {
    /// Notes a failure at `now`.
    pub fn admit(&mut self, now: Instant) -> Admitted {
        let mut summary = None;
        match self.since {
            Some(since) if now.saturating_duration_since(since) >= WINDOW => {
                summary = self.close(now);
                self.since = Some(now);
                // Failing past its burst: the next window gets summaries only. A window within
                // its burst was no flood; the next starts afresh.
                self.logged = if summary.is_some() { BURST } else { 0 };
            }
            Some(_) => {}
            None => self.since = Some(now),
        }
        let log = self.logged < BURST;
        if log {
            self.logged += 1;
        } else {
            self.counted += 1;
        }
        Admitted { log, summary }
    }

    /// The endpoint delivered, or has nothing left to send: the failures still counted, and
    /// the next failure is logged again.
    pub fn settle(&mut self, now: Instant) -> Option<Suppressed> {
        let summary = self.close(now);
        *self = FailureLog::default();
        summary
    }

    fn close(&mut self, now: Instant) -> Option<Suppressed> {
        let since = self.since?;
        let count = std::mem::take(&mut self.counted);
        (count > 0).then(|| Suppressed {
            count,
            over: now.saturating_duration_since(since),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_down_endpoint_gets_a_few_lines_then_summaries() {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let first: Vec<Admitted> = (0..10).map(|i| log.admit(t0 + second * i)).collect();
        assert!(first[..BURST as usize].iter().all(|a| a.log));
        assert!(first[BURST as usize..].iter().all(|a| !a.log));
        assert!(first.iter().all(|a| a.summary.is_none()));
        // The first failure after the window: the summary, and only counted from now on.
        let next = log.admit(t0 + WINDOW);
        assert!(!next.log);
        assert_eq!(
            next.summary,
            Some(Suppressed {
                count: 10 - u64::from(BURST),
                over: WINDOW
            })
        );
        for i in 1..10 {
            assert_eq!(
                log.admit(t0 + WINDOW + second * i),
                Admitted {
                    log: false,
                    summary: None
                }
            );
        }
        let later = log.admit(t0 + WINDOW * 2);
        assert_eq!(later.summary.map(|s| s.count), Some(10));
        // Delivered again: what was counted is said, and the next failure is logged.
        let end = t0 + WINDOW * 2 + second;
        assert_eq!(log.settle(end).map(|s| s.count), Some(1));
        assert_eq!(log.settle(end), None);
        assert!(log.admit(end).log);
    }

    #[test]
    fn a_few_failures_need_no_summary() {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        assert!(log.admit(t0).log);
        assert!(log.admit(t0 + WINDOW * 3).log);
        assert_eq!(log.settle(t0 + WINDOW * 4), None);
    }
}
