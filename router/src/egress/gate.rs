//! How fast a shard opens connections: at most so many handshakes at once, and new ones no
//! closer together than a set spacing.
//!
//! At start-up with `prewarm`, or when a data centre comes back, thousands of endpoints want a
//! connection at the same moment. Opening them all at once would stall the shard on handshake
//! CPU and look like an attack to the network; the gate spreads them out.
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use monoio::time::Instant;

use crate::semaphore::{LocalSemaphore, Permit};

pub struct ConnectGate {
    handshakes: Rc<LocalSemaphore>,
    spacing: Duration,
    next_start: Cell<Instant>,
}

/// Held while a connection is being opened; lets the next one in when dropped.
pub struct Pass {
    _permit: Permit,
}

impl ConnectGate {
    /// A gate letting `max_in_flight` handshakes run at once and at most `per_second` start
    /// each second.
    pub fn new(max_in_flight: usize, per_second: u32) -> Rc<ConnectGate> {
        Rc::new(ConnectGate {
            handshakes: LocalSemaphore::new(max_in_flight.max(1)),
            spacing: Duration::from_secs(1) / per_second.max(1),
            next_start: Cell::new(Instant::now()),
        })
    }

    /// Waits for a turn.
    pub async fn enter(self: &Rc<Self>) -> Pass {
        let permit = self.handshakes.acquire().await;
        let now = Instant::now();
        let start = self.next_start.get().max(now);
        self.next_start.set(start + self.spacing);
        if start > now {
            monoio::time::sleep_until(start).await;
        }
        Pass { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::driver::{build_runtime, Driver};

    #[test]
    fn concurrency_and_rate_are_bounded() {
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        let (peak, elapsed) = rt.block_on(async {
            let gate = ConnectGate::new(3, 1000);
            let live = Rc::new(Cell::new(0usize));
            let peak = Rc::new(Cell::new(0usize));
            let started = std::time::Instant::now();
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let (gate, live, peak) = (Rc::clone(&gate), Rc::clone(&live), Rc::clone(&peak));
                    monoio::spawn(async move {
                        let _pass = gate.enter().await;
                        live.set(live.get() + 1);
                        peak.set(peak.get().max(live.get()));
                        monoio::time::sleep(Duration::from_millis(2)).await;
                        live.set(live.get() - 1);
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            (peak.get(), started.elapsed())
        });
        assert_eq!(peak, 3);
        // Twenty starts at least a millisecond apart take at least 19 ms.
        assert!(elapsed >= Duration::from_millis(19), "{elapsed:?}");
    }
}
