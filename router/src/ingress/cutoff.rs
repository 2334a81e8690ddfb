//! Connections ingress closes because a sender reached a limit before it was done: counted in
//! `ganglion_ingress_closed_total{reason}` and logged without flooding.
//!
//! Two thousand connections that never start a TLS handshake are two thousand closes a minute:
//! a line each would bury the log. [`report`] is the one place such a close is logged; for now
//! it writes the first close of each kind on a shard and then one at each power of two, with
//! the count so far, and the rest at debug level. It is meant to be switched over to the shared
//! refusal log (one line per peer per period, with a count) when that exists, by replacing its
//! body.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shard::Shard;

/// Why a connection was closed early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutoff {
    /// A TLS sender did not finish its handshake within `handshake_timeout` of connecting.
    HandshakeTimeout,
    /// No byte of a message within `first_byte_timeout` of connecting.
    FirstByteTimeout,
    /// The sender's address held more unfinished input than `max_buffered_per_peer`.
    PeerBufferCap,
    /// The process's input budget had no room for more of the message: the connection held
    /// part of it already, or waited its whole idle timeout for room.
    InputBudget,
}

impl Cutoff {
    pub const ALL: [Cutoff; 4] = [
        Cutoff::HandshakeTimeout,
        Cutoff::FirstByteTimeout,
        Cutoff::PeerBufferCap,
        Cutoff::InputBudget,
    ];

    /// The `reason` label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Cutoff::HandshakeTimeout => "handshake_timeout",
            Cutoff::FirstByteTimeout => "first_byte_timeout",
            Cutoff::PeerBufferCap => "peer_buffer_cap",
            Cutoff::InputBudget => "input_budget",
        }
    }

    /// Position in [`Cutoff::ALL`] and in the per-shard counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// What the sender is told where the protocol lets us say something (an MLLP AE, a SOAP
    /// Server fault), and what the log says.
    pub fn reason(self) -> &'static str {
        match self {
            Cutoff::HandshakeTimeout => "did not finish its TLS handshake in time",
            Cutoff::FirstByteTimeout => "sent nothing in time",
            Cutoff::PeerBufferCap => {
                "this sender has more unfinished input buffered than max_buffered_per_peer allows; try again later"
            }
            Cutoff::InputBudget => {
                "the router is holding as much unfinished input as it may; try again later"
            }
        }
    }
}

/// Per-shard counts of each [`Cutoff`], in [`Cutoff::ALL`] order.
pub type CutoffCounters = [AtomicU64; Cutoff::ALL.len()];

/// Counts one early close and logs it without flooding (see the module note). `detail` says
/// what the limit was, for the log line only.
pub fn report(
    shard: &Shard,
    listener: &str,
    peer: SocketAddr,
    cutoff: Cutoff,
    detail: std::fmt::Arguments<'_>,
) {
    let counter = &shard.counters().ingress_closed[cutoff.index()];
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        log::info!(
            "{listener}: closed {peer}: {detail} ({n} closed for this reason so far on shard {}; \
             all are counted in ganglion_ingress_closed_total)",
            shard.info.index
        );
    } else {
        log::debug!("{listener}: closed {peer}: {detail}");
    }
}
