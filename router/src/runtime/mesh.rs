//! The only way shards talk: one bounded lock-free queue per (sender, receiver) pair, and one
//! wake-up per batch.
//!
//! A shard that accepted messages for endpoints another shard owns pushes them into that pair's
//! queue as it goes and calls [`Mesh::notify`] once when the batch is done; the receiver is
//! woken at most once however many messages the batch held, because a wake-up across threads
//! costs a syscall (an eventfd write) and the batch may hold hundreds of messages.
//!
//! Invariants: each queue has exactly one producer shard and one consumer shard; a full queue
//! is reported to the producer (which then stops reading from its sender) and never blocks;
//! no lock is taken anywhere.
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;

/// Queues between every pair of shards, for items of type `T`.
pub struct Mesh<T> {
    shards: usize,
    /// `queues[from * shards + to]`.
    queues: Box<[ArrayQueue<T>]>,
    inboxes: Box<[Inbox]>,
}

struct Inbox {
    waker: AtomicWaker,
    /// Set by a producer when it has pushed since the consumer last looked; the producer that
    /// flips it from false to true is the one that pays for the wake-up.
    notified: AtomicBool,
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
            inboxes: (0..shards)
                .map(|_| Inbox {
                    waker: AtomicWaker::new(),
                    notified: AtomicBool::new(false),
                })
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
            if !inbox.notified.swap(true, Ordering::AcqRel) {
                inbox.waker.wake();
            }
        }
    }

    /// Moves everything queued for shard `to` into `out`; returns how many items moved.
    pub fn drain(&self, to: usize, out: &mut Vec<T>) -> usize {
        let before = out.len();
        if let Some(inbox) = self.inboxes.get(to) {
            // Cleared before draining: a push that lands after this is either drained below
            // or sets the flag again, so it is never left behind unseen.
            inbox.notified.store(false, Ordering::Release);
        }
        for from in 0..self.shards {
            if let Some(queue) = self.queues.get(from * self.shards + to) {
                while let Some(item) = queue.pop() {
                    out.push(item);
                }
            }
        }
        out.len() - before
    }

    /// Waits until something has been queued for shard `to` since its last [`Mesh::drain`].
    pub async fn wait(&self, to: usize) {
        let Some(inbox) = self.inboxes.get(to) else {
            return;
        };
        poll_fn(|cx| {
            if inbox.notified.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            inbox.waker.register(cx.waker());
            // Checked again after registering, or a notify between the two would be lost.
            if inbox.notified.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
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
