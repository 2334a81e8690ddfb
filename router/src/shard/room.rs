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
//! At start-up the same word also counts the endpoint's messages *held* for replay: accepted
//! before the restart and not yet in the endpoint's queue (some still on disk). New senders
//! find no room while any is held, so a message accepted after the restart never overtakes one
//! accepted before it, whichever shard's log holds the older one. A hold is released by the
//! owner shard as the replayed message enters the worker's queue, which is what keeps the order.
//!
//! Lost wake-ups: the waiter sets its bit, then looks at the count again; the worker lowers the
//! count, then looks at the bits (both sequentially consistent). Whichever comes second sees
//! the other's write, so either the waiter sees the room or the worker sees the waiter.
use std::sync::atomic::{AtomicU64, Ordering};

/// One held message, in the high half of [`QueueCount::state`].
const HELD: u64 = 1 << 32;
const QUEUED: u64 = HELD - 1;

/// Messages accepted for one endpoint and not yet done, and the shards waiting for room.
#[derive(Debug, Default)]
pub struct QueueCount {
    /// Messages counted against the limit (low 32 bits) and messages held for replay (high
    /// 32 bits), in one word so that "no hold and under the limit" is one compare-and-swap.
    state: AtomicU64,
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
    /// Messages counted now (held ones not included).
    pub fn load(&self, order: Ordering) -> u32 {
        (self.state.load(order) & QUEUED) as u32
    }

    /// Messages held for replay now.
    pub fn held(&self) -> u32 {
        (self.state.load(Ordering::SeqCst) >> 32) as u32
    }

    /// Whether a new message could be taken now with `limit`.
    pub fn has_room(&self, limit: u32) -> bool {
        // A hold sets the high half, so any hold puts the word past every limit.
        self.state.load(Ordering::SeqCst) < u64::from(limit)
    }

    /// Takes a place for a new message if none is held and the queue is under `limit`.
    pub fn try_take(&self, limit: u32) -> bool {
        self.state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < u64::from(limit)).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a place whatever the limit: for messages accepted before (replayed from the
    /// dead-letter store), which must not wait behind new ones.
    pub fn take(&self) {
        self.state.fetch_add(1, Ordering::SeqCst);
    }

    /// Holds a message for replay: new senders wait until every hold is released.
    pub fn hold(&self) {
        self.state.fetch_add(HELD, Ordering::SeqCst);
    }

    /// Takes a place for a held message if the queue is under `window`, holds or not.
    pub fn try_take_held(&self, window: u32) -> bool {
        self.state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n & QUEUED < u64::from(window)).then_some(n + 1)
            })
            .is_ok()
    }

    /// A held message entered its endpoint's queue (or its dead letters); the shards to wake
    /// when that was the last hold.
    pub fn release_hold(&self) -> Waiting {
        let before = self.state.fetch_sub(HELD, Ordering::SeqCst);
        if before >> 32 != 1 {
            return Waiting(0);
        }
        self.take_waiting()
    }

    /// Notes that shard `shard` waits for room. Look at the count again afterwards.
    pub fn wait_from(&self, shard: usize) {
        self.waiting.fetch_or(1 << (shard % 64), Ordering::SeqCst);
    }

    /// Gives a place back; the shards to wake, if any waited.
    pub fn done(&self) -> Waiting {
        self.state.fetch_sub(1, Ordering::SeqCst);
        self.take_waiting()
    }

    fn take_waiting(&self) -> Waiting {
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

    /// While any message is held for replay, new senders find no room, but held messages
    /// still go in up to their window; the last release wakes the waiters.
    #[test]
    fn held_messages_keep_new_ones_out_until_the_last_is_released() {
        let count = QueueCount::default();
        count.hold();
        count.hold();
        assert!(!count.has_room(10) && !count.try_take(10));
        assert_eq!(count.held(), 2);
        assert!(count.try_take_held(1));
        assert!(!count.try_take_held(1), "the window is full");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        count.wait_from(3);
        assert!(count.release_hold().is_empty(), "one is still held");
        assert!(!count.try_take(10));
        assert_eq!(count.done().shards(4).collect::<Vec<_>>(), [3]);
        assert!(count.try_take_held(1));
        count.wait_from(2);
        assert_eq!(count.release_hold().shards(4).collect::<Vec<_>>(), [2]);
        assert_eq!(count.held(), 0);
        assert!(count.try_take(10), "no hold left: new senders come in");
        assert_eq!(count.load(Ordering::SeqCst), 2);
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
