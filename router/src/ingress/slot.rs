//! [`ListenerSlot`]: what one listener's accept loop on one shard serves new connections with,
//! and the signal that closes it.
//!
//! A reload that changes a listener's settings but not its address (certificates, limits,
//! protocol) swaps the context in the slot: the socket stays open, so no connection is refused
//! while it happens, and connections accepted from then on get the new settings while those
//! already open keep the ones they started with. Closing the listener raises its stop signal:
//! the accept loop ends and drops its socket, and its connections answer what they have read
//! and close.
use std::cell::RefCell;
use std::rc::Rc;

use super::listener::ListenerCtx;
use crate::notify::LocalSignal;

pub struct ListenerSlot {
    ctx: RefCell<Rc<ListenerCtx>>,
    stop: Rc<LocalSignal>,
}

impl ListenerSlot {
    pub fn new(ctx: Rc<ListenerCtx>) -> Rc<ListenerSlot> {
        Rc::new(ListenerSlot {
            ctx: RefCell::new(ctx),
            stop: Rc::new(LocalSignal::new()),
        })
    }

    /// The settings a connection accepted now is served with.
    pub fn current(&self) -> Rc<ListenerCtx> {
        Rc::clone(&self.ctx.borrow())
    }

    /// New settings for connections accepted from now on.
    pub fn replace(&self, ctx: Rc<ListenerCtx>) {
        *self.ctx.borrow_mut() = ctx;
    }

    /// The signal the accept loop and every connection of this listener watch.
    pub fn stop_signal(&self) -> Rc<LocalSignal> {
        Rc::clone(&self.stop)
    }

    /// Stops accepting; open connections finish what they read, answer it, and close.
    pub fn close(&self) {
        self.stop.raise();
    }
}
