//! One delivery attempt on an open connection: send the message, wait for the reply, judge it.
//!
//! The reply buffer is borrowed from the shard's pool for the length of the attempt, so an
//! endpoint that is idle between messages holds no buffer at all.
use std::io;
use std::time::Duration;

use codecs::mllp;

use super::verdict::{hl7v2_reply, Verdict};
use crate::net::pool::BufferPool;
use crate::net::stream::Stream;
use crate::pipeline::{Accepted, Kind};
use crate::routes::Endpoint;

/// Largest reply we wait for; an endpoint that sends more is broken.
const MAX_REPLY: usize = 1024 * 1024;

/// The outcome of one attempt that got a reply.
#[derive(Debug)]
pub struct Attempt {
    pub verdict: Verdict,
    /// Whether the connection may carry the next message.
    pub keep: bool,
    /// The endpoint's reply, kept only when it refused the message (for the dead-letter store).
    pub reply: Option<Vec<u8>>,
}

/// Sends `message` to `endpoint` and returns what the reply means. An `Err` is a transport
/// failure (the connection is no longer usable); a reply we cannot make sense of is a
/// [`Verdict::Retry`].
pub async fn exchange(
    stream: &mut Stream,
    endpoint: &Endpoint,
    message: &Accepted,
    reply_timeout: Duration,
    pool: &BufferPool,
) -> io::Result<Attempt> {
    match message.kind {
        Kind::Hl7v2 => hl7v2_exchange(stream, message, reply_timeout, pool).await,
        Kind::Itk => super::itk::exchange(stream, endpoint, message, reply_timeout, pool).await,
    }
}

async fn hl7v2_exchange(
    stream: &mut Stream,
    message: &Accepted,
    reply_timeout: Duration,
    pool: &BufferPool,
) -> io::Result<Attempt> {
    let mut frame = pool.take();
    mllp::encode(&message.bytes, &mut frame);
    stream.write_pooled(frame, pool).await?;

    let deadline = monoio::time::Instant::now() + reply_timeout;
    let mut decoder = mllp::Decoder::new(MAX_REPLY);
    let mut reply = pool.take();
    let attempt = loop {
        match read_more(stream, &mut reply, deadline, pool).await {
            Ok(()) => {}
            Err(e) => {
                pool.give(reply);
                return Err(e);
            }
        }
        // One frame is the whole reply; bytes before it (noise) are dropped as they come.
        let decoded = decoder.decode(&reply);
        match decoded.event {
            Some(mllp::Event::Frame(frame)) => {
                let verdict = hl7v2_reply(frame, message.control_id());
                let reply = matches!(verdict, Verdict::Refused(_)).then(|| frame.to_vec());
                break Attempt {
                    verdict,
                    keep: true,
                    reply,
                };
            }
            Some(mllp::Event::TooLarge { .. }) => {
                break Attempt {
                    verdict: Verdict::Retry(format!("reply larger than {MAX_REPLY} bytes")),
                    keep: false,
                    reply: None,
                }
            }
            None => {
                reply.drain(..decoded.consumed);
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
