//! One delivery attempt on an open connection: send the message, wait for the reply, judge it.
//!
//! The reply buffer is borrowed from the shard's pool for the length of the attempt, so an
//! endpoint that is idle between messages holds no buffer at all.
use std::io;
use std::time::Duration;

use codecs::mllp;

use super::acked::AckedIds;
use super::verdict::{hl7v2_reply, Failure, Verdict};
use crate::net::pool::BufferPool;
use crate::net::stream::Stream;
use crate::pipeline::{Accepted, MessageKind};
use crate::routes::Endpoint;

/// Largest reply we wait for; an endpoint that sends more is broken.
pub(super) const MAX_REPLY: usize = 1024 * 1024;

/// The outcome of one attempt.
#[derive(Debug)]
pub struct Attempt {
    pub verdict: Verdict,
    /// Whether the connection may carry the next message.
    pub keep: bool,
}

/// What one attempt needs besides the message: where to send it, how long to wait, and the
/// connection's memory of what it acknowledged.
pub struct Exchange<'a> {
    pub endpoint: &'a Endpoint,
    pub reply_timeout: Duration,
    pub pool: &'a BufferPool,
    /// Control ids acknowledged earlier on this connection (HL7v2).
    pub acked: &'a AckedIds,
}

/// Sends `message` and returns what came of it. When the endpoint answered without taking the
/// message, its reply is left in `reply` (for the dead-letter store); it is untouched
/// otherwise, so delivery copies nothing.
pub async fn exchange(
    stream: &mut Stream,
    message: &Accepted,
    how: &Exchange<'_>,
    reply: &mut Vec<u8>,
) -> Attempt {
    let result = match message.kind {
        MessageKind::Hl7v2 => hl7v2_exchange(stream, message, how, reply).await,
        MessageKind::Itk => super::itk::exchange(stream, message, how, reply).await,
    };
    result.unwrap_or_else(|e| Attempt {
        verdict: Err(transport_failure(&e, how.reply_timeout)),
        keep: false,
    })
}

/// A broken exchange: the deadline passed, or the connection failed.
fn transport_failure(e: &io::Error, reply_timeout: Duration) -> Failure {
    if e.kind() == io::ErrorKind::TimedOut {
        Failure::NoReply(reply_timeout)
    } else {
        Failure::ConnectionLost(e.to_string())
    }
}

async fn hl7v2_exchange(
    stream: &mut Stream,
    message: &Accepted,
    how: &Exchange<'_>,
    kept: &mut Vec<u8>,
) -> io::Result<Attempt> {
    let pool = how.pool;
    let mut frame = pool.take();
    mllp::encode(&message.bytes, &mut frame);
    stream.write_pooled(frame, pool).await?;

    let deadline = monoio::time::Instant::now() + how.reply_timeout;
    let mut decoder = mllp::Decoder::new(MAX_REPLY);
    let mut reply = pool.take();
    let attempt = 'reply: loop {
        if let Err(e) = read_more(stream, &mut reply, deadline, pool).await {
            pool.give(reply);
            return Err(e);
        }
        // One frame is the reply; bytes outside frames (noise) and ACKs this connection
        // already had (replayed by some servers) are dropped as they come.
        loop {
            let decoded = decoder.decode(&reply);
            let consumed = decoded.consumed;
            match decoded.event {
                Some(mllp::Event::Frame(frame)) => {
                    match hl7v2_reply(frame, message.control_id(), how.acked) {
                        Some(verdict) => {
                            // Kept whatever it says: a failure's for the dead letter, an
                            // acceptance's for the message trace (its ACK code).
                            kept.clear();
                            kept.extend_from_slice(frame);
                            break 'reply Attempt {
                                verdict,
                                keep: true,
                            };
                        }
                        None => {
                            reply.drain(..consumed);
                        }
                    }
                }
                Some(mllp::Event::TooLarge { .. }) => {
                    break 'reply Attempt {
                        verdict: Err(Failure::BadReply(format!(
                            "reply larger than {MAX_REPLY} bytes"
                        ))),
                        keep: false,
                    }
                }
                None => {
                    reply.drain(..consumed);
                    break;
                }
            }
        }
    };
    pool.give(reply);
    Ok(attempt)
}

/// Waits (until `deadline`) for bytes and appends them to `buf`. The wait holds no buffer of
/// its own and is the only part that may be cut short by the deadline.
pub(super) async fn read_more(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    deadline: monoio::time::Instant,
    pool: &BufferPool,
) -> io::Result<()> {
    let now = monoio::time::Instant::now();
    let left = deadline.saturating_duration_since(now);
    match monoio::time::timeout(left, stream.readable()).await {
        Ok(ready) => ready?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no reply from the endpoint in time",
            ))
        }
    }
    if stream.read_into(buf, pool).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the endpoint closed the connection before replying",
        ));
    }
    Ok(())
}
