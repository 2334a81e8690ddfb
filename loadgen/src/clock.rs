//! The one clock every part reads: CLOCK_MONOTONIC in nanoseconds.
//!
//! It is the same clock in every process on the machine, so an endpoint process can stamp an
//! arrival and the driver process can subtract its own intended send time from it.
use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds on CLOCK_MONOTONIC (since boot, never goes back).
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// A `Timespec` for an absolute CLOCK_MONOTONIC time in nanoseconds.
pub fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}
