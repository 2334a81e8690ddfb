//! How a sender's connection reads, for MLLP and ITK alike: within the listener's deadlines (the
//! first byte of a message within `first_byte_timeout` of connecting, then nothing silent for
//! longer than `idle_timeout`, a TLS record stalled half-way included) and within the input
//! budgets (`ingress::budget`).
use std::io;
use std::time::Duration;

use monoio::time::{timeout, timeout_at, Instant};

use super::accept::Origin;
use super::budget::{Grant, Short};
use super::cutoff::{self, Cutoff};
use super::listener::ListenerCtx;
use crate::net::stream::Stream;
use crate::shard::Shard;
use crate::signal::LocalSignal;

/// One connection's reading state.
pub struct Reader {
    grant: Grant,
    /// Until the first byte of a message has come: when it must have come by.
    first_byte: Option<Instant>,
    idle: Duration,
}

/// What [`Reader::read`] came back with.
#[derive(Debug)]
pub enum Got {
    /// Bytes were appended to the input.
    Data,
    /// The sender closed the connection.
    Closed,
    /// Nothing came in time (a missed first byte is already counted and logged).
    TimedOut,
    /// Shutdown was asked for while the connection waited.
    Stopped,
    Failed(io::Error),
    /// No room could be made for more of the message (counted and logged): tell the sender
    /// where the protocol allows, and close.
    Refused(Cutoff),
}

impl Reader {
    /// For a connection accepted at `accepted` (its TLS handshake, if any, already done).
    pub fn new(listener: &ListenerCtx, origin: &Origin, accepted: Instant) -> Reader {
        Reader {
            grant: Grant::new(
                std::sync::Arc::clone(&listener.budget),
                std::sync::Arc::clone(&listener.peers),
                origin.peer.ip(),
                listener.max_message_bytes(),
            ),
            first_byte: Some(accepted + listener.config.first_byte_timeout),
            idle: listener.config.idle_timeout,
        }
    }

    /// Waits for the sender's next bytes and appends them to `input`. Between messages
    /// (`between`) shutdown interrupts the wait; within a message the sender gets to finish it
    /// (or the idle timeout ends it).
    #[allow(clippy::too_many_arguments)]
    pub async fn read(
        &mut self,
        stream: &mut Stream,
        input: &mut Vec<u8>,
        shard: &Shard,
        listener: &ListenerCtx,
        origin: &Origin,
        stop: &LocalSignal,
        between: bool,
    ) -> Got {
        let ready = if between {
            if stop.is_raised() {
                return Got::Stopped;
            }
            monoio::select! {
                ready = timeout_at(self.deadline(), stream.readable()) => ready,
                _ = stop.wait() => return Got::Stopped,
            }
        } else {
            timeout_at(self.deadline(), stream.readable()).await
        };
        match ready {
            Err(_) => return self.timed_out(shard, listener, origin),
            Ok(Err(e)) => return Got::Failed(e),
            Ok(Ok(())) => {}
        }
        // Room for what comes, before reading it: a spent budget leaves the bytes in the
        // kernel, and TCP slows the sender down. The usual case is a comparison, here.
        let refused = match self.grant.try_make_room(input) {
            Ok(()) => None,
            Err(Short::Peer) => Some(Cutoff::PeerBufferCap),
            Err(Short::Budget) if self.grant.held() > 0 => Some(Cutoff::InputBudget),
            Err(Short::Budget) => {
                let room = monoio::select! {
                    room = timeout(self.idle, self.grant.make_room(input)) => room,
                    _ = stop.wait() => return Got::Stopped,
                };
                match room {
                    Ok(Ok(())) => None,
                    Ok(Err(Short::Peer)) => Some(Cutoff::PeerBufferCap),
                    Ok(Err(Short::Budget)) | Err(_) => Some(Cutoff::InputBudget),
                }
            }
        };
        if let Some(cutoff) = refused {
            let (name, peer) = (&*listener.stats, origin.peer);
            match cutoff {
                Cutoff::PeerBufferCap => cutoff::report(
                    shard,
                    name,
                    peer,
                    cutoff,
                    format_args!(
                        "its address holds more unfinished input than max_buffered_per_peer ({} bytes)",
                        listener.config.max_buffered_per_peer
                    ),
                ),
                _ => cutoff::report(
                    shard,
                    name,
                    peer,
                    cutoff,
                    format_args!(
                        "no room for more of its message in the input budget ({} bytes)",
                        listener.budget.limit()
                    ),
                ),
            }
            return Got::Refused(cutoff);
        }
        // Plain TCP has the bytes once readable; a TLS record may stall half-way, and that is
        // silence too.
        let read = if stream.tls_state().is_some() {
            match timeout_at(self.deadline(), stream.read_within(input, &shard.pool)).await {
                Ok(read) => read,
                Err(_) => return self.timed_out(shard, listener, origin),
            }
        } else {
            stream.read_within(input, &shard.pool).await
        };
        match read {
            Ok(0) => Got::Closed,
            Ok(_) => {
                self.first_byte = None;
                Got::Data
            }
            Err(e) => Got::Failed(e),
        }
    }

    /// After a batch or request is answered: a buffer grown for a large message goes back to
    /// its first size.
    pub fn settle(&mut self, input: &mut Vec<u8>) {
        self.grant.settle(input);
    }

    fn deadline(&self) -> Instant {
        self.first_byte
            .unwrap_or_else(|| Instant::now() + self.idle)
    }

    fn timed_out(&self, shard: &Shard, listener: &ListenerCtx, origin: &Origin) -> Got {
        if self.first_byte.is_some() {
            cutoff::report(
                shard,
                &listener.stats,
                origin.peer,
                Cutoff::FirstByteTimeout,
                format_args!(
                    "sent nothing within first_byte_timeout ({:?})",
                    listener.config.first_byte_timeout
                ),
            );
        }
        Got::TimedOut
    }
}
