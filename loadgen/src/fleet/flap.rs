//! Flapping: an endpoint told `down` stops listening (its listener is closed, so a connection
//! attempt is refused at once, as by a host whose service has stopped) and closes every
//! connection it accepted; told `up`, it listens again on the same address and port. This is
//! what a soak does to a share of the fleet while traffic runs: the router must keep what it
//! acknowledged for a down endpoint and deliver it once the endpoint is back.
use std::net::TcpListener;

use super::conns::{self, State};
use crate::poll::{Poller, READ};

impl State {
    /// The local index of global endpoint `index`, when this process serves it.
    fn local(&self, index: usize) -> Option<usize> {
        index
            .checked_sub(self.first)
            .filter(|&i| i < self.listeners.len())
    }

    /// Takes endpoint `index` (global) down; nothing when it is not ours or already down.
    pub fn take_down(&mut self, poller: &mut Poller, index: usize) {
        let Some(local) = self.local(index) else {
            return;
        };
        self.unbound.retain(|&i| i != local);
        let Some(listener) = self.listeners.get_mut(local).and_then(Option::take) else {
            return;
        };
        poller.delete(&listener);
        drop(listener);
        let slots: Vec<usize> = self
            .slab
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.endpoint == local))
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            self.close(poller, slot);
        }
        self.down += 1;
        self.flaps += 1;
    }

    /// Brings endpoint `index` (global) back; nothing when it is not ours or not down.
    pub fn bring_up(&mut self, poller: &mut Poller, index: usize) {
        let Some(local) = self.local(index) else {
            return;
        };
        if self.listeners[local].is_some() || self.unbound.contains(&local) {
            return;
        }
        self.unbound.push(local);
        self.bind_unbound(poller);
    }

    /// Binds the listeners of endpoints told to come up. The address is free as soon as the
    /// old listener is closed (std sets SO_REUSEADDR, so connections in TIME_WAIT do not hold
    /// it), but should a bind fail it is tried again on the next turn of the loop.
    pub fn bind_unbound(&mut self, poller: &mut Poller) {
        let mut still = Vec::new();
        for local in std::mem::take(&mut self.unbound) {
            let Some(addr) = self.rows.get(local).map(|r| r.addr) else {
                continue;
            };
            let bound = TcpListener::bind(addr).and_then(|l| {
                l.set_nonblocking(true)?;
                poller.add(&l, conns::token(conns::LISTENER, local), READ)?;
                Ok(l)
            });
            match bound {
                Ok(l) => {
                    self.listeners[local] = Some(l);
                    self.down = self.down.saturating_sub(1);
                }
                Err(_) => still.push(local),
            }
        }
        self.unbound = still;
    }
}
