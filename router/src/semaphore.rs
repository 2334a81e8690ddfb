//! [`LocalSemaphore`]: at most so many holders at once among the tasks of one shard. A
//! released permit goes straight to the task that has waited longest, and wakes that task only.
//!
//! Why not "notify everyone and let them race": thousands of endpoint workers wait at once when
//! a shard pre-warms its connections or its endpoints all reconnect, and waking every waiter on
//! every release costs waiters × releases polls (tens of millions at 14,000 endpoints a shard).
//!
//! Waits may be abandoned (a `select!` took another branch): an abandoned wait leaves a stale
//! entry in the queue, skipped when reached, and if it had already been handed a permit it
//! passes the permit on. Shard-local: neither `Send` nor `Sync`; share it with `Rc`.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

pub struct LocalSemaphore {
    available: Cell<usize>,
    /// Waiters in arrival order: (slot, the waiter's id), stale when the slot moved on.
    queue: RefCell<VecDeque<(usize, u64)>>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    next_id: Cell<u64>,
}

#[derive(Default)]
struct Slot {
    /// The waiter using the slot; 0 when free.
    id: u64,
    waker: Option<Waker>,
    /// A permit was handed to this waiter.
    granted: bool,
}

/// One of the semaphore's permits, given back when dropped.
pub struct Permit {
    semaphore: Rc<LocalSemaphore>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl LocalSemaphore {
    pub fn new(permits: usize) -> Rc<LocalSemaphore> {
        Rc::new(LocalSemaphore {
            available: Cell::new(permits),
            queue: RefCell::new(VecDeque::new()),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
        })
    }

    /// Waits for a permit (first come, first served).
    pub fn acquire(self: &Rc<Self>) -> Acquire {
        Acquire {
            semaphore: Rc::clone(self),
            waiting: None,
        }
    }

    /// Permits free right now.
    pub fn available(&self) -> usize {
        self.available.get()
    }

    /// Hands a permit to the longest waiter still waiting, or keeps it.
    fn release(&self) {
        loop {
            let Some((slot, id)) = self.queue.borrow_mut().pop_front() else {
                self.available.set(self.available.get() + 1);
                return;
            };
            let waker = {
                let mut slots = self.slots.borrow_mut();
                match slots.get_mut(slot) {
                    Some(s) if s.id == id && !s.granted => {
                        s.granted = true;
                        s.waker.take()
                    }
                    _ => continue, // abandoned
                }
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            return;
        }
    }

    fn enqueue(&self, waker: &Waker) -> (usize, u64) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut slots = self.slots.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                slots.push(Slot::default());
                slots.len() - 1
            }
        };
        if let Some(s) = slots.get_mut(slot) {
            *s = Slot {
                id,
                waker: Some(waker.clone()),
                granted: false,
            };
        }
        let mut queue = self.queue.borrow_mut();
        // Abandoned waits leave stale entries; drop them before they outnumber the live ones.
        let live = slots.len() - self.free.borrow().len();
        if queue.len() > 2 * live + 64 {
            queue.retain(|&(s, i)| slots.get(s).is_some_and(|s| s.id == i));
        }
        queue.push_back((slot, id));
        (slot, id)
    }

    /// Frees `slot`; true if its waiter had been handed a permit.
    fn leave(&self, slot: usize) -> bool {
        let granted = match self.slots.borrow_mut().get_mut(slot) {
            Some(s) => std::mem::take(s).granted,
            None => false,
        };
        self.free.borrow_mut().push(slot);
        granted
    }
}

/// The wait for a permit.
pub struct Acquire {
    semaphore: Rc<LocalSemaphore>,
    /// The slot and id this wait holds once it queued.
    waiting: Option<(usize, u64)>,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        // Acquire holds no self-references, so it is Unpin and may be reached through the Pin.
        let this = self.get_mut();
        let semaphore = &this.semaphore;
        match this.waiting {
            None if semaphore.available.get() > 0 => {
                semaphore.available.set(semaphore.available.get() - 1);
            }
            None => {
                this.waiting = Some(semaphore.enqueue(cx.waker()));
                return Poll::Pending;
            }
            Some((slot, _)) => {
                let granted = semaphore
                    .slots
                    .borrow()
                    .get(slot)
                    .is_some_and(|s| s.granted);
                if !granted {
                    if let Some(s) = semaphore.slots.borrow_mut().get_mut(slot) {
                        s.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                this.waiting = None;
                semaphore.leave(slot);
            }
        }
        Poll::Ready(Permit {
            semaphore: Rc::clone(&this.semaphore),
        })
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let Some((slot, _)) = self.waiting.take() {
            if self.semaphore.leave(slot) {
                // Handed a permit it will never use: pass it on.
                self.semaphore.release();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::driver::{build_runtime, Driver};

    #[test]
    fn holders_are_bounded_and_served_in_arrival_order() {
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let (order, peak) = rt.block_on(async {
            let semaphore = LocalSemaphore::new(2);
            let order = Rc::new(RefCell::new(Vec::new()));
            let (live, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
            let mut tasks = Vec::new();
            for i in 0..10 {
                let (semaphore, order) = (Rc::clone(&semaphore), Rc::clone(&order));
                let (live, peak) = (Rc::clone(&live), Rc::clone(&peak));
                tasks.push(monoio::spawn(async move {
                    let _permit = semaphore.acquire().await;
                    order.borrow_mut().push(i);
                    live.set(live.get() + 1);
                    peak.set(peak.get().max(live.get()));
                    monoio::time::sleep(Duration::from_millis(1)).await;
                    live.set(live.get() - 1);
                }));
            }
            for task in tasks {
                task.await;
            }
            assert_eq!(semaphore.available(), 2);
            let order = order.borrow().clone();
            (order, peak.get())
        });
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        assert_eq!(peak, 2);
    }

    /// A wait abandoned after it was handed a permit passes the permit on; abandoned waits
    /// leave no slot in use.
    #[test]
    fn abandoned_waits_pass_their_permit_on() {
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let got = rt.block_on(async {
            let semaphore = LocalSemaphore::new(1);
            let held = semaphore.acquire().await;
            let mut abandoned = semaphore.acquire();
            // Queue it, then hand it the permit, then drop it before it runs again.
            let waker = futures_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut abandoned).poll(&mut cx).is_pending());
            for _ in 0..1000 {
                monoio::select! {
                    _ = semaphore.acquire() => unreachable!("the permit is held"),
                    _ = std::future::ready(()) => {},
                }
            }
            drop(held);
            drop(abandoned);
            assert_eq!(semaphore.available(), 1);
            let slots_in_use = semaphore
                .slots
                .borrow()
                .iter()
                .filter(|s| s.id != 0)
                .count();
            assert_eq!(slots_in_use, 0);
            let _again = semaphore.acquire().await;
            semaphore.available()
        });
        assert_eq!(got, 0);
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }
}
