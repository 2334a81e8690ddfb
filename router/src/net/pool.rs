//! Per-shard I/O buffers lent out for the length of one operation.
//!
//! io_uring needs a buffer it owns while an operation is in flight, so a buffer cannot simply be
//! borrowed from the connection. Giving every connection its own pair of 16 KiB buffers would
//! cost 28,000 endpoints close to a gigabyte while they sit idle; instead a connection takes a
//! buffer from its shard's pool just before a read or write and gives it back right after.
//! Idle connections hold none.
//!
//! Reads nobody is waiting for (an idle connection's session tickets, or its close) come all at
//! once when every endpoint drops its connection together: 14,000 reads in flight on a shard
//! would hold 14,000 buffers. Those reads first take one of [`IDLE_READS`] permits, so a
//! reconnect storm costs a few buffers, not a quarter of a gigabyte.
use std::cell::RefCell;
use std::rc::Rc;

use crate::semaphore::LocalSemaphore;

/// Reads on idle connections in flight at once, per shard.
pub const IDLE_READS: usize = 64;

/// A shard-local pool; never shared between threads (it is neither `Send` nor `Sync`).
pub struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
    size: usize,
    keep: usize,
    idle_reads: Rc<LocalSemaphore>,
}

/// Big enough for the largest TLS record (16 KiB of plaintext plus its overhead).
pub const IO_BUFFER: usize = 18 * 1024;

impl BufferPool {
    /// A pool of `size`-byte buffers that keeps at most `keep` spare ones.
    pub fn new(size: usize, keep: usize) -> BufferPool {
        BufferPool {
            free: RefCell::new(Vec::new()),
            size,
            keep,
            idle_reads: LocalSemaphore::new(IDLE_READS),
        }
    }

    /// An empty buffer with room for at least `size` bytes.
    pub fn take(&self) -> Vec<u8> {
        match self.free.borrow_mut().pop() {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::with_capacity(self.size),
        }
    }

    /// Returns a buffer; ones that grew past four times the usual size are dropped so that one
    /// huge message does not pin memory for the life of the shard.
    pub fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if free.len() < self.keep && buf.capacity() >= self.size && buf.capacity() <= self.size * 4
        {
            free.push(buf);
        }
    }

    /// The permits for reads on idle connections (see the module note).
    pub fn idle_reads(&self) -> &Rc<LocalSemaphore> {
        &self.idle_reads
    }

    /// Spare buffers held right now.
    pub fn spare(&self) -> usize {
        self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_cleared_and_bounded() {
        let pool = BufferPool::new(1024, 2);
        let mut a = pool.take();
        assert!(a.capacity() >= 1024);
        a.extend_from_slice(b"secret");
        let b = pool.take();
        let c = pool.take();
        pool.give(a);
        pool.give(b);
        pool.give(c);
        assert_eq!(pool.spare(), 2);
        assert!(pool.take().is_empty());
        pool.give(Vec::with_capacity(1024 * 64));
        assert_eq!(pool.spare(), 1);
    }
}
