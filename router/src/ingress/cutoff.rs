//! Connections ingress closes because a sender reached a limit before it was done: counted in
//! `ganglion_ingress_closed_total{reason}` and logged without flooding.
//!
//! Two thousand connections that never start a TLS handshake are two thousand closes a minute:
//! a line each would bury the log. [`report`] is the one place such a close is counted and
//! logged, through the shard's refusal log ([`super::refusals`]: a few lines per sender address
//! and reason, then a count every period).
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use super::refusals::{Detail, Refusal};
use crate::metrics::listener::ListenerStats;
use crate::metrics::Metrics;

use crate::shard::Shard;

/// Why a connection was closed early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    listener: &ListenerStats,
    peer: SocketAddr,
    cutoff: Cutoff,
    detail: std::fmt::Arguments<'_>,
) {
    Metrics::bump(&shard.counters().ingress_closed[cutoff.index()]);
    shard.refusals.note(
        peer,
        listener,
        Refusal::Cutoff(cutoff),
        Detail::why(&detail),
    );
}
