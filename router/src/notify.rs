//! Shard-local signals: "stop now" ([`LocalSignal`], raised once) and "something changed"
//! ([`LocalNotify`], raised again and again).
//!
//! Both are waited on by many tasks, often inside a `select!` whose other branch usually wins
//! (a connection waits for bytes or for shutdown). A waiter that is dropped must therefore leave
//! nothing behind, and registering must not cost more as waiters come and go: each waiter owns a
//! slot in a slab, updates it in place when polled again, and frees it when dropped.
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Wakers of the tasks waiting on one signal, each in a slot its waiter owns.
#[derive(Default)]
struct Waiters {
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Waiters {
    /// Puts `waker` in the slot `key` names, taking a slot first if it has none.
    fn register(&self, key: &mut Option<usize>, waker: &Waker) {
        let mut slots = self.slots.borrow_mut();
        let index = match *key {
            Some(index) => index,
            None => {
                let index = match self.free.borrow_mut().pop() {
                    Some(index) => index,
                    None => {
                        slots.push(None);
                        slots.len() - 1
                    }
                };
                *key = Some(index);
                index
            }
        };
        if let Some(slot) = slots.get_mut(index) {
            match slot {
                Some(old) if old.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
    }

    /// Gives the slot back (the waiter is done or dropped).
    fn release(&self, key: usize) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(key) {
            *slot = None;
            self.free.borrow_mut().push(key);
        }
    }

    /// Wakes every registered waiter; their slots stay theirs until they are dropped.
    fn wake_all(&self) {
        let woken: Vec<Waker> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for waker in woken {
            waker.wake();
        }
    }

    #[cfg(test)]
    fn slots_in_use(&self) -> usize {
        self.slots.borrow().len() - self.free.borrow().len()
    }
}

/// A wait that completes when `done()` holds, holding a slot in `waiters` only while pending.
struct Wait<'a, F: Fn() -> bool> {
    waiters: &'a Waiters,
    key: Option<usize>,
    done: F,
}

impl<F: Fn() -> bool> Future for Wait<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Wait holds no self-references, so it is Unpin and may be reached through the Pin.
        let this = self.get_mut();
        if (this.done)() {
            if let Some(key) = this.key.take() {
                this.waiters.release(key);
            }
            return Poll::Ready(());
        }
        this.waiters.register(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl<F: Fn() -> bool> Unpin for Wait<'_, F> {}

impl<F: Fn() -> bool> Drop for Wait<'_, F> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.waiters.release(key);
        }
    }
}

/// A one-shot signal for the tasks of one shard: raised once, seen by everyone. Shard-local
/// (neither `Send` nor `Sync`); share it with `Rc`.
#[derive(Default)]
pub struct LocalSignal {
    raised: Cell<bool>,
    waiters: Waiters,
}

impl LocalSignal {
    pub fn new() -> LocalSignal {
        LocalSignal::default()
    }

    /// Raises the signal and wakes every task waiting for it.
    pub fn raise(&self) {
        self.raised.set(true);
        self.waiters.wake_all();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.get()
    }

    /// Completes once the signal is raised (at once if it already was).
    pub async fn wait(&self) {
        Wait {
            waiters: &self.waiters,
            key: None,
            done: || self.raised.get(),
        }
        .await
    }
}

/// A re-armable notification for the tasks of one shard: waiters wake on every
/// [`LocalNotify::notify`] after they began waiting.
#[derive(Default)]
pub struct LocalNotify {
    generation: Cell<u64>,
    waiters: Waiters,
}

impl LocalNotify {
    pub fn new() -> LocalNotify {
        LocalNotify::default()
    }

    /// The current generation; pass it to [`LocalNotify::changed`].
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.waiters.wake_all();
    }

    /// Completes once [`LocalNotify::notify`] has been called since `seen` was read.
    pub async fn changed(&self, seen: u64) {
        Wait {
            waiters: &self.waiters,
            key: None,
            done: || self.generation.get() != seen,
        }
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;
    use crate::runtime::driver::{build_runtime, Driver};

    #[test]
    fn every_waiter_wakes_once_raised() {
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let woke = rt.block_on(async {
            let signal = Rc::new(LocalSignal::new());
            let count = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for _ in 0..3 {
                let (signal, count) = (Rc::clone(&signal), Rc::clone(&count));
                tasks.push(monoio::spawn(async move {
                    signal.wait().await;
                    count.set(count.get() + 1);
                }));
            }
            monoio::time::sleep(Duration::from_millis(1)).await;
            assert_eq!(count.get(), 0);
            signal.raise();
            for task in tasks {
                task.await;
            }
            signal.wait().await;
            count.get()
        });
        assert_eq!(woke, 3);
    }

    /// The case that matters under load: a connection waits on "bytes or shutdown" thousands of
    /// times, and the bytes win. Abandoned waits must leave no slot behind.
    #[test]
    fn abandoned_waits_leave_nothing_behind() {
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let (signal_slots, notify_slots) = rt.block_on(async {
            let signal = LocalSignal::new();
            let notify = LocalNotify::new();
            for _ in 0..10_000 {
                monoio::select! {
                    _ = signal.wait() => unreachable!("never raised"),
                    _ = notify.changed(notify.generation()) => unreachable!("never notified"),
                    _ = std::future::ready(()) => {},
                }
            }
            (signal.waiters.slots_in_use(), notify.waiters.slots_in_use())
        });
        assert_eq!((signal_slots, notify_slots), (0, 0));
    }

    #[test]
    fn notify_wakes_waiters_each_time() {
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let rounds = rt.block_on(async {
            let notify = Rc::new(LocalNotify::new());
            let seen = Rc::new(Cell::new(0));
            let waiter = {
                let (notify, seen) = (Rc::clone(&notify), Rc::clone(&seen));
                monoio::spawn(async move {
                    for _ in 0..5 {
                        let generation = notify.generation();
                        notify.changed(generation).await;
                        seen.set(seen.get() + 1);
                    }
                })
            };
            for _ in 0..5 {
                monoio::time::sleep(Duration::from_millis(1)).await;
                notify.notify();
            }
            waiter.await;
            seen.get()
        });
        assert_eq!(rounds, 5);
    }
}
