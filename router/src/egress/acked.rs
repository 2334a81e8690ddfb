//! The control ids acknowledged on one connection, so that a replayed earlier ACK is known for
//! what it is.
//!
//! Some endpoints (a widely used Node.js HL7 server among them) send the ACKs of earlier
//! messages again before the ACK of the current one. Read as the reply to the current message,
//! such an ACK names another message and would fail the attempt, close the connection and send
//! the message again, every time. An ACK that names a message already acknowledged on this
//! connection is instead skipped.
//!
//! The memory is fixed and small (every endpoint has one): hashes of the last
//! [`REMEMBERED`] ids. A hash that matches by accident can only make an unknown reply be
//! skipped (the attempt then waits for its reply until the reply timeout) and never makes a
//! reply count as delivery: delivery still needs MSA-2 equal, byte for byte, to the message's
//! own control id.
use std::hash::Hasher;

use rustc_hash::FxHasher;

/// How many acknowledged ids a connection remembers. A server replaying its whole history
/// outlives this after as many messages; the connection is then reopened once, which clears
/// its history on both sides.
pub const REMEMBERED: usize = 16;

/// The last [`REMEMBERED`] control ids acknowledged on a connection.
#[derive(Debug, Clone, Default)]
pub struct AckedIds {
    hashes: [u64; REMEMBERED],
    /// Slots in use (up to [`REMEMBERED`]), and the slot the next id goes in.
    len: u8,
    next: u8,
}

impl AckedIds {
    /// Forgets everything: a new connection starts with no history.
    pub fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// Notes that `id` was acknowledged on this connection.
    pub fn remember(&mut self, id: &[u8]) {
        let slot = usize::from(self.next) % REMEMBERED;
        if let Some(h) = self.hashes.get_mut(slot) {
            *h = hash(id);
        }
        self.next = ((slot + 1) % REMEMBERED) as u8;
        self.len = (usize::from(self.len) + 1).min(REMEMBERED) as u8;
    }

    /// Whether `id` was acknowledged on this connection (among the last [`REMEMBERED`]).
    pub fn contains(&self, id: &[u8]) -> bool {
        let h = hash(id);
        self.hashes
            .iter()
            .take(usize::from(self.len))
            .any(|&k| k == h)
    }
}

fn hash(id: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(id);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_ids_and_forgets_on_clear() {
        let mut acked = AckedIds::default();
        assert!(!acked.contains(b"C1"));
        for i in 0..REMEMBERED + 4 {
            acked.remember(format!("C{i}").as_bytes());
        }
        // The oldest four fell out; the rest are known.
        for i in 0..4 {
            assert!(!acked.contains(format!("C{i}").as_bytes()), "C{i}");
        }
        for i in 4..REMEMBERED + 4 {
            assert!(acked.contains(format!("C{i}").as_bytes()), "C{i}");
        }
        assert!(!acked.contains(b"never"));
        acked.clear();
        assert!(!acked.contains(format!("C{}", REMEMBERED + 3).as_bytes()));
    }
}
