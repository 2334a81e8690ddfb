//! [`DiskBudget`]: how much disk the whole log (every shard's directory) may take, shared by
//! the shards' logs as two atomics, so one shard's backlog counts against what the others may
//! store. What counts is what the files take: records and marks, and preallocated space (a
//! spare segment being made, and the unused part of a segment made from one).
//!
//! The check and the taking are one compare-and-swap, so two shards cannot both take the last
//! room. One per append batch, never per message (and one load of the `pressed` flag).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct DiskBudget {
    limit: AtomicU64,
    used: AtomicU64,
    /// Some log was refused for want of room (budget or disk) and none has appended since:
    /// every log then frees its active segment the moment its last record is done, since the
    /// room one shard needs may be held by another.
    pressed: AtomicBool,
}

impl DiskBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit: AtomicU64::new(limit),
            used: AtomicU64::new(0),
            pressed: AtomicBool::new(false),
        })
    }

    pub(crate) fn press(&self) {
        self.pressed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn relieve(&self) {
        if self.is_pressed() {
            self.pressed.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn is_pressed(&self) -> bool {
        self.pressed.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// A new limit (a reload): what is stored stays, appends are judged by the new one.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` if the total stays within the limit; false, taking nothing, if not.
    /// Nothing to take (an append into space made ahead of time) always fits.
    pub(crate) fn try_take(&self, bytes: u64) -> bool {
        if bytes == 0 {
            return true;
        }
        let limit = self.limit();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    /// Counts `bytes` whatever the limit: what is on disk already (found at open, held by logs
    /// this process has not opened), and marks, which must be written for space to be freed.
    pub fn take(&self, bytes: u64) {
        if bytes > 0 {
            self.used.fetch_add(bytes, Ordering::AcqRel);
        }
    }

    pub(crate) fn give_back(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_what_fits_and_gives_back() {
        let b = DiskBudget::new(100);
        assert!(b.try_take(60));
        assert!(!b.try_take(41));
        assert_eq!(b.used(), 60);
        assert!(b.try_take(40));
        b.take(5);
        assert_eq!(b.used(), 105);
        b.give_back(200);
        assert_eq!(b.used(), 0);
        b.set_limit(10);
        assert!(!b.try_take(11));
    }
}
