//! Back-pressure across shards: each endpoint's count of messages not yet done, and which
//! shards have a sender waiting for room in its queue.
//!
//! Ingress on any shard takes a place in an endpoint's queue before handing it a message, and
//! waits when the queue is at its limit; the owner shard's worker gives the place back when the
//! message is done. The count is one atomic that both sides touch once per message. A shard
//! that waits sets its bit in `waiting` and sleeps; the worker that gives back a place sees the
//! bit and rings that shard's room bell ([`crate::runtime::mesh::Mesh::ring_room`]), so a
//! held-back sender wakes as soon as there is room and sleeps until then: no polling.
//!
//! Lost wake-ups: the waiter sets its bit, then looks at the count again; the worker lowers the
//! count, then looks at the bits (both sequentially consistent). Whichever comes second sees
//! the other's write, so either the waiter sees the room or the worker sees the waiter.
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Messages accepted for one endpoint and not yet done, and the shards waiting for room.
#[derive(Debug, Default)]
pub struct QueueCount {
    queued: AtomicU32,
    /// Bit `s % 64` for each shard `s` with a sender waiting for room (with more than 64
    /// shards, a bit stands for several: a wake-up for nothing is harmless).
    waiting: AtomicU64,
}

/// Shards to wake, as [`QueueCount::done`] found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting(u64);

impl Waiting {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The shards (of `count`) these bits stand for.
    pub fn shards(self, count: usize) -> impl Iterator<Item = usize> {
        (0..count).filter(move |s| self.0 & (1 << (s % 64)) != 0)
    }
}

impl QueueCount {
    /// Messages counted now.
    pub fn load(&self, order: Ordering) -> u32 {
        self.queued.load(order)
    }

    /// Whether a message could be taken now with `limit`.
    pub fn has_room(&self, limit: u32) -> bool {
        self.queued.load(Ordering::SeqCst) < limit
    }

    /// Takes a place if the queue is under `limit`.
    pub fn try_take(&self, limit: u32) -> bool {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a place whatever the limit: for messages accepted before (replayed from the log
    /// or the dead-letter store), which must not wait behind new ones.
    pub fn take(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }

    /// Notes that shard `shard` waits for room. Look at the count again afterwards.
    pub fn wait_from(&self, shard: usize) {
        self.waiting.fetch_or(1 << (shard % 64), Ordering::SeqCst);
    }

    /// Gives a place back; the shards to wake, if any waited.
    pub fn done(&self) -> Waiting {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return Waiting(0);
        }
        Waiting(self.waiting.swap(0, Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn places_are_taken_up_to_the_limit_and_given_back() {
        let count = QueueCount::default();
        assert!(count.try_take(2) && count.try_take(2));
        assert!(!count.try_take(2) && !count.has_room(2));
        count.take();
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert!(count.done().is_empty());
        count.wait_from(1);
        count.wait_from(65);
        let waiting = count.done();
        assert_eq!(waiting.shards(70).collect::<Vec<_>>(), [1, 65]);
        // Told once: the bits are cleared.
        assert!(count.done().is_empty());
        assert!(count.has_room(2));
    }

    /// Threads racing to take places never take more than the limit between them.
    #[test]
    fn racing_takers_never_pass_the_limit() {
        const LIMIT: u32 = 8;
        let count = Arc::new(QueueCount::default());
        let taken: Vec<u32> = (0..4)
            .map(|_| {
                let count = Arc::clone(&count);
                std::thread::spawn(move || (0..1000).filter(|_| count.try_take(LIMIT)).count())
            })
            .map(|t| t.join().map_or(0, |n| n as u32))
            .collect();
        assert_eq!(taken.iter().sum::<u32>(), LIMIT);
        assert_eq!(count.load(Ordering::SeqCst), LIMIT);
    }
}
