//! The only way shards talk: one bounded lock-free queue per (sender, receiver) pair, and one
//! wake-up per batch.
//!
//! A shard that accepted messages for endpoints another shard owns pushes them into that pair's
//! queue as it goes and calls [`Mesh::notify`] once when the batch is done; the receiver is
//! woken at most once however many messages the batch held, because a wake-up across threads
//! costs a syscall (an eventfd write) and the batch may hold hundreds of messages.
//!
//! Each shard also has a *room bell*: rung when something it waits for has room again (an
//! endpoint's queue counter fell, see [`crate::shard::room`], or a queue of the mesh that was
//! full was drained), so that a sender held back sleeps until then instead of polling.
//!
//! Invariants: each queue has exactly one producer shard and one consumer shard; a full queue
//! is reported to the producer (which then stops reading from its sender, and may ask to be
//! woken once it was drained with [`Mesh::wake_when_drained`]) and never blocks; no lock is
//! taken anywhere.
use std::future::poll_fn;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;

/// Queues between every pair of shards, for items of type `T`.
pub struct Mesh<T> {
    shards: usize,
    /// `queues[from * shards + to]`.
    queues: Box<[ArrayQueue<T>]>,
    inboxes: Box<[Doorbell]>,
    /// Each shard's room bell.
    rooms: Box<[Doorbell]>,
    /// `blocked[from * shards + to]`: the producer found the queue full and waits to be told
    /// it was drained.
    blocked: Box<[AtomicBool]>,
}

/// A cross-thread wake-up for one task, paid for once however often it is rung before the
/// task looks.
#[derive(Default)]
struct Doorbell {
    waker: AtomicWaker,
    /// Set when rung since the owner last cleared it; whoever flips it from false to true pays
    /// for the wake-up.
    rung: AtomicBool,
}

impl Doorbell {
    fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Cleared before the owner looks at what it was rung for: a ring after this is either
    /// seen in that look or rings again.
    fn clear(&self) {
        self.rung.store(false, Ordering::Release);
    }

    /// Waits until rung since the last [`Doorbell::clear`].
    async fn wait(&self) {
        poll_fn(|cx| {
            if self.rung.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // Checked again after registering, or a ring between the two would be lost.
            if self.rung.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl<T> Mesh<T> {
    /// A mesh of `shards` shards whose queues each hold `capacity` items.
    pub fn new(shards: usize, capacity: usize) -> Mesh<T> {
        let shards = shards.max(1);
        Mesh {
            shards,
            queues: (0..shards * shards)
                .map(|_| ArrayQueue::new(capacity.max(1)))
                .collect(),
            inboxes: (0..shards).map(|_| Doorbell::default()).collect(),
            rooms: (0..shards).map(|_| Doorbell::default()).collect(),
            blocked: (0..shards * shards)
                .map(|_| AtomicBool::new(false))
                .collect(),
        }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Queues `item` from shard `from` to shard `to`; gives it back when the queue is full.
    /// The receiver is not woken until [`Mesh::notify`].
    pub fn try_send(&self, from: usize, to: usize, item: T) -> Result<(), T> {
        match self.queues.get(from * self.shards + to) {
            Some(queue) => queue.push(item),
            None => Err(item),
        }
    }

    /// True when the queue from `from` to `to` has no room left.
    pub fn is_full(&self, from: usize, to: usize) -> bool {
        self.queues
            .get(from * self.shards + to)
            .is_none_or(ArrayQueue::is_full)
    }

    /// Ends a batch: wakes shard `to` if it is not already due to look at its queues.
    pub fn notify(&self, to: usize) {
        if let Some(inbox) = self.inboxes.get(to) {
            inbox.ring();
        }
    }

    /// Moves everything queued for shard `to` into `out`; returns how many items moved.
    /// Producers that found their queue to `to` full are told it has room.
    pub fn drain(&self, to: usize, out: &mut Vec<T>) -> usize {
        let before = out.len();
        if let Some(inbox) = self.inboxes.get(to) {
            // Cleared before draining: a push that lands after this is either drained below
            // or sets the flag again, so it is never left behind unseen.
            inbox.clear();
        }
        for from in 0..self.shards {
            let pair = from * self.shards + to;
            if let Some(queue) = self.queues.get(pair) {
                while let Some(item) = queue.pop() {
                    out.push(item);
                }
            }
            // Paired with the fence in `wake_when_drained`: either the producer's next try
            // sees the room made above, or this sees its flag.
            fence(Ordering::SeqCst);
            if self
                .blocked
                .get(pair)
                .is_some_and(|b| b.swap(false, Ordering::SeqCst))
            {
                self.ring_room(from);
            }
        }
        out.len() - before
    }

    /// Waits until something has been queued for shard `to` since its last [`Mesh::drain`].
    pub async fn wait(&self, to: usize) {
        if let Some(inbox) = self.inboxes.get(to) {
            inbox.wait().await;
        }
    }

    /// Asks for shard `from`'s room bell to be rung once the queue from `from` to `to` (found
    /// full) has been drained. Try to send again afterwards: it may have been drained already.
    pub fn wake_when_drained(&self, from: usize, to: usize) {
        if let Some(b) = self.blocked.get(from * self.shards + to) {
            b.store(true, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
    }

    /// Rings shard `to`'s room bell: something it waits for may have room now.
    pub fn ring_room(&self, to: usize) {
        if let Some(bell) = self.rooms.get(to) {
            bell.ring();
        }
    }

    /// Waits until shard `to`'s room bell rang, and clears it (the caller then looks at what
    /// it waits for).
    pub async fn room_rung(&self, to: usize) {
        match self.rooms.get(to) {
            Some(bell) => {
                bell.wait().await;
                bell.clear();
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::runtime::driver::{build_runtime, Driver};

    #[test]
    fn items_arrive_in_order_per_pair() {
        let mesh = Mesh::new(2, 8);
        for i in 0..5 {
            mesh.try_send(0, 1, i).unwrap();
        }
        mesh.try_send(1, 1, 100).unwrap();
        let mut out = Vec::new();
        assert_eq!(mesh.drain(1, &mut out), 6);
        assert_eq!(out, vec![0, 1, 2, 3, 4, 100]);
        assert_eq!(mesh.drain(0, &mut out), 0);
    }

    #[test]
    fn a_full_queue_gives_the_item_back() {
        let mesh = Mesh::new(2, 2);
        mesh.try_send(0, 1, 'a').unwrap();
        mesh.try_send(0, 1, 'b').unwrap();
        assert!(mesh.is_full(0, 1));
        assert_eq!(mesh.try_send(0, 1, 'c'), Err('c'));
        // Other pairs are unaffected.
        mesh.try_send(1, 1, 'd').unwrap();
        assert_eq!(mesh.try_send(5, 1, 'e'), Err('e'));
    }

    /// A producer that found its queue full and asked to be told is rung once it is drained,
    /// and only then; other shards' bells stay quiet.
    #[test]
    fn a_blocked_producer_is_rung_when_its_queue_drains() {
        let mesh = Arc::new(Mesh::new(3, 1));
        mesh.try_send(0, 1, 'a').unwrap();
        assert_eq!(mesh.try_send(0, 1, 'b'), Err('b'));
        mesh.wake_when_drained(0, 1);
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let rung = rt.block_on({
            let mesh = Arc::clone(&mesh);
            async move {
                let waiter = monoio::spawn({
                    let mesh = Arc::clone(&mesh);
                    async move { mesh.room_rung(0).await }
                });
                let mut out = Vec::new();
                // Another shard's queue drained: not this producer's.
                mesh.drain(2, &mut out);
                monoio::time::sleep(std::time::Duration::from_millis(5)).await;
                mesh.drain(1, &mut out);
                waiter.await;
                out
            }
        });
        assert_eq!(rung, vec!['a']);
        assert!(mesh.try_send(0, 1, 'b').is_ok());
        // Rung once: the flag was consumed.
        let mut out = Vec::new();
        mesh.drain(1, &mut out);
        assert!(!mesh.rooms[0].rung.load(Ordering::SeqCst));
    }

    /// Two real shards on two threads: every item sent in batches arrives, in order, and the
    /// receiver, which only ever sleeps in `wait`, is always woken.
    #[test]
    fn batches_cross_threads_and_wake_the_receiver() {
        const BATCHES: usize = 200;
        const PER_BATCH: usize = 50;
        let mesh = Arc::new(Mesh::new(2, 64));
        let receiver = {
            let mesh = Arc::clone(&mesh);
            std::thread::spawn(move || {
                let mut rt = build_runtime(Driver::Epoll).unwrap();
                rt.block_on(async move {
                    let mut got = Vec::new();
                    while got.len() < BATCHES * PER_BATCH {
                        mesh.wait(1).await;
                        mesh.drain(1, &mut got);
                    }
                    got
                })
            })
        };
        for batch in 0..BATCHES {
            for i in 0..PER_BATCH {
                let mut item = batch * PER_BATCH + i;
                // Back-pressure: the producer waits for room instead of dropping.
                while let Err(back) = mesh.try_send(0, 1, item) {
                    item = back;
                    mesh.notify(1);
                    std::thread::yield_now();
                }
            }
            mesh.notify(1);
        }
        let got = receiver.join().unwrap();
        assert_eq!(got, (0..BATCHES * PER_BATCH).collect::<Vec<_>>());
    }
}
