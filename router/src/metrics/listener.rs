//! What each listener counts, per shard: messages received, answered by code, refused by
//! reason, unreadable, bytes, connections, and how long senders waited for their ACK.
//!
//! A listener's [`ListenerStats`] is made by the control thread when the listener first
//! appears and kept, like its connection count, while a listener of that name stays in force
//! (a reload that changes its settings or address keeps its counts). It holds one cache-padded
//! block per shard, written only by that shard with relaxed adds: ingress finds it through the
//! listener's settings (`ListenerCtx::stats`), so counting costs no lookup, lock or allocation.
//! `/metrics` reads the blocks of the listeners in force ([`InForce`]). A listener removed by a
//! reload leaves `/metrics` when that reload is applied (its series end, as Prometheus expects
//! of a label set that is gone); what it counted stays in the process totals
//! (`ganglion_received_total` …), which are counted apart. Added back later under the same name,
//! it starts from zero, which Prometheus reads as a counter reset.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use codecs::hl7v2::AckCode;
use crossbeam_utils::CachePadded;

use super::histogram::{Histogram, Latency, Snapshot};
use crate::ingress::cutoff::Cutoff;
use crate::ingress::refusals::Refusal;

/// What a sender was told about one message: the HL7v2 code of the verdict (whether or not
/// MSH-15 asked for the ACK to be sent), or the ITK answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Hl7(AckCode),
    /// An ITK response (the message was taken).
    Response,
    /// A SOAP Client fault: the sender's message is at fault.
    ClientFault,
    /// A SOAP Server fault: the router cannot take it now; try again.
    ServerFault,
}

impl Code {
    pub const ALL: [Code; 9] = [
        Code::Hl7(AckCode::AA),
        Code::Hl7(AckCode::AE),
        Code::Hl7(AckCode::AR),
        Code::Hl7(AckCode::CA),
        Code::Hl7(AckCode::CE),
        Code::Hl7(AckCode::CR),
        Code::Response,
        Code::ClientFault,
        Code::ServerFault,
    ];

    /// The `code` label.
    pub fn label(self) -> &'static str {
        match self {
            Code::Hl7(AckCode::AA) => "AA",
            Code::Hl7(AckCode::AE) => "AE",
            Code::Hl7(AckCode::AR) => "AR",
            Code::Hl7(AckCode::CA) => "CA",
            Code::Hl7(AckCode::CE) => "CE",
            Code::Hl7(AckCode::CR) => "CR",
            Code::Response => "response",
            Code::ClientFault => "client_fault",
            Code::ServerFault => "server_fault",
        }
    }

    fn index(self) -> usize {
        Code::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

/// Every refusal reason, in the order of the per-shard counters.
pub const REASONS: [Refusal; 12] = [
    Refusal::NoRoute,
    Refusal::Rejected,
    Refusal::Unreadable,
    Refusal::TooLarge,
    Refusal::NotStored,
    Refusal::NotMllp,
    Refusal::BadRequest,
    Refusal::ConnectionLimit,
    Refusal::Cutoff(Cutoff::HandshakeTimeout),
    Refusal::Cutoff(Cutoff::FirstByteTimeout),
    Refusal::Cutoff(Cutoff::PeerBufferCap),
    Refusal::Cutoff(Cutoff::InputBudget),
];

/// The `reason` label of a refusal.
pub fn reason_label(reason: Refusal) -> &'static str {
    match reason {
        Refusal::NoRoute => "no_route",
        Refusal::Rejected => "rejected",
        Refusal::Unreadable => "unreadable",
        Refusal::TooLarge => "too_large",
        Refusal::NotStored => "not_stored",
        Refusal::NotMllp => "not_mllp",
        Refusal::BadRequest => "bad_request",
        Refusal::ConnectionLimit => "connection_limit",
        Refusal::Cutoff(cutoff) => cutoff.label(),
    }
}

fn reason_index(reason: Refusal) -> usize {
    REASONS.iter().position(|&r| r == reason).unwrap_or(0)
}

/// One listener's counts on one shard.
#[derive(Default)]
pub struct ListenerShard {
    /// Messages (frames, requests) read.
    pub received: AtomicU64,
    /// Bytes of those messages.
    pub bytes: AtomicU64,
    /// Messages that could not be read.
    pub unreadable: AtomicU64,
    answered: [AtomicU64; Code::ALL.len()],
    refused: [AtomicU64; REASONS.len()],
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    /// TLS handshakes senders finished: full, or resuming a session (a ticket).
    pub tls_handshakes_full: AtomicU64,
    pub tls_handshakes_resumed: AtomicU64,
    /// From the read that brought a message's first byte to its answer written.
    pub ack_latency: Histogram<Latency>,
}

impl ListenerShard {
    pub fn answered(&self, code: Code) {
        self.answered[code.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, reason: Refusal) {
        self.refused[reason_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// A sender finished its TLS handshake.
    pub fn handshake(&self, resumed: bool) {
        let kind = if resumed {
            &self.tls_handshakes_resumed
        } else {
            &self.tls_handshakes_full
        };
        kind.fetch_add(1, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A listener's counts, a block per shard.
pub struct ListenerStats {
    pub name: Arc<str>,
    shards: Box<[CachePadded<ListenerShard>]>,
}

impl std::fmt::Debug for ListenerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerStats")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ListenerStats {
    pub fn new(name: Arc<str>, shards: usize) -> Arc<ListenerStats> {
        Arc::new(ListenerStats {
            name,
            shards: (0..shards.max(1)).map(|_| CachePadded::default()).collect(),
        })
    }

    /// Shard `index`'s block; an index past the end (a bug) counts into the last one.
    pub fn shard(&self, index: usize) -> &ListenerShard {
        let last = self.shards.len() - 1;
        &self.shards[index.min(last)]
    }

    /// Each shard's block with its index.
    pub fn shards(&self) -> impl Iterator<Item = (usize, &ListenerShard)> {
        self.shards.iter().map(|s| &**s).enumerate()
    }

    /// How many messages shard `shard` answered with `code`.
    pub fn answered_on(&self, shard: usize, code: Code) -> u64 {
        self.shard(shard).answered[code.index()].load(Ordering::Relaxed)
    }

    /// How many messages shard `shard` refused for `reason`.
    pub fn refused_on(&self, shard: usize, reason: Refusal) -> u64 {
        self.shard(shard).refused[reason_index(reason)].load(Ordering::Relaxed)
    }

    /// Shard `shard`'s ACK latency.
    pub fn ack_latency_on(&self, shard: usize) -> Snapshot {
        Histogram::sum(std::iter::once(&self.shard(shard).ack_latency))
    }
}

/// The listeners in force, as the last reload (or start-up) left them. The lock is taken by
/// the control thread when a reload is applied and by `/metrics`, never by a shard.
#[derive(Default)]
pub struct InForce(Mutex<Vec<Arc<ListenerStats>>>);

impl InForce {
    /// Replaces the list; sorted by name so the exposition reads the same from scrape to scrape.
    pub fn set(&self, mut listeners: Vec<Arc<ListenerStats>>) {
        listeners.sort_by(|a, b| a.name.cmp(&b.name));
        if let Ok(mut list) = self.0.lock() {
            *list = listeners;
        }
    }

    pub fn get(&self) -> Vec<Arc<ListenerStats>> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_and_code_has_its_own_counter() {
        let stats = ListenerStats::new(Arc::from("adt"), 2);
        for (i, reason) in REASONS.iter().enumerate() {
            for _ in 0..=i {
                stats.shard(1).refused(*reason);
            }
        }
        for (i, code) in Code::ALL.iter().enumerate() {
            for _ in 0..=i {
                stats.shard(0).answered(*code);
            }
        }
        for (i, reason) in REASONS.iter().enumerate() {
            assert_eq!(stats.refused_on(1, *reason), i as u64 + 1, "{reason}");
            assert_eq!(stats.refused_on(0, *reason), 0);
        }
        for (i, code) in Code::ALL.iter().enumerate() {
            assert_eq!(
                stats.answered_on(0, *code),
                i as u64 + 1,
                "{}",
                code.label()
            );
        }
    }
}
