//! A one-shot signal for the tasks of one shard: "stop now", raised once, seen by everyone.
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Shard-local (neither `Send` nor `Sync`); share it with `Rc`.
#[derive(Default)]
pub struct LocalSignal {
    raised: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl LocalSignal {
    pub fn new() -> LocalSignal {
        LocalSignal::default()
    }

    /// Raises the signal and wakes every task waiting for it.
    pub fn raise(&self) {
        self.raised.set(true);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    pub fn is_raised(&self) -> bool {
        self.raised.get()
    }

    /// Completes once the signal is raised (at once if it already was).
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.raised.get() {
                Poll::Ready(())
            } else {
                let mut waiters = self.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

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
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
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
}

/// A re-armable notification for the tasks of one shard: waiters wake on every
/// [`LocalNotify::notify`] after they began waiting.
#[derive(Default)]
pub struct LocalNotify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
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
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Completes once [`LocalNotify::notify`] has been called since `seen` was read.
    pub async fn changed(&self, seen: u64) {
        poll_fn(|cx| {
            if self.generation.get() != seen {
                Poll::Ready(())
            } else {
                let mut waiters = self.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}
