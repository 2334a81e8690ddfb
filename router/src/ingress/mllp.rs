//! One MLLP sender's connection: frames in, ACKs out, in order.
//!
//! Everything that arrived in one read is handled as a batch: each frame is parsed, routed and
//! accepted in turn, the shards that were sent work are woken once, and then every ACK of the
//! batch goes back in one write, in the order the messages came. A sender that pipelines a
//! hundred messages therefore costs a handful of syscalls, not hundreds.
//!
//! Nothing a sender does stops the connection from being answered: an unreadable message gets
//! AE with the place it went wrong, an oversized frame gets AR and the connection stays usable,
//! a refused one AR with the reason. Half a frame followed by a close is logged and dropped (the
//! sender was never acknowledged, so it still has the message).
use std::rc::Rc;
use std::time::SystemTime;

use std::ops::Range;

use codecs::hl7v2::{AckError, Message, ParseError};
use codecs::mllp;

use super::accept::{self, Incoming, Origin, Plan};
use super::answer::{write_hl7v2_ack, Answer, APPLICATION_ERROR};
use super::listener::ListenerCtx;
use crate::metrics::Metrics;
use crate::net::stream::Stream;
use crate::pipeline::Kind;
use crate::routes::message::Hl7View;
use crate::routes::Decision;
use crate::shard::durable::NotDurable;
use crate::shard::Shard;
use crate::signal::LocalSignal;

/// table 0357 code 100 would blame segment order; an oversized message is a "value too long".
const TOO_LONG: u16 = 104;

/// Receive buffers bigger than this are released when the connection goes idle, so that one
/// large message does not pin memory for the connection's life.
const KEEP_IDLE_BUFFER: usize = 64 * 1024;

/// Serves one sender (its TLS handshake, if any, already done) until it closes, goes idle too long, or breaks the connection.
pub async fn serve(
    shard: Rc<Shard>,
    listener: Rc<ListenerCtx>,
    mut stream: Stream,
    origin: Origin,
    stop: Rc<LocalSignal>,
) {
    let mut decoder = mllp::Decoder::new(listener.max_message_bytes());
    let mut input: Vec<u8> = Vec::new();
    let mut decision = Decision::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
    loop {
        match wait_for_input(&mut stream, &listener, &stop).await {
            Wake::Input => {}
            Wake::Failed(e) => {
                log::debug!("{}: {}: {e}", listener.name, origin.peer);
                return;
            }
            Wake::Idle | Wake::Stop => {
                // Nothing read is left unanswered: every batch is answered before we wait.
                let _ = stream.shutdown(&shard.pool).await;
                return;
            }
        }
        match stream.read_into(&mut input, &shard.pool).await {
            Ok(0) => {
                if decoder.in_frame() {
                    log::warn!(
                        "{}: {}: closed in the middle of a message ({} bytes); it was not acknowledged",
                        listener.name,
                        origin.peer,
                        input.len()
                    );
                }
                return;
            }
            Ok(_) => {}
            Err(e) => {
                log::info!("{}: {}: {e}", listener.name, origin.peer);
                return;
            }
        }
        let mut at = 0;
        loop {
            let decoded = decoder.decode(&input[at..]);
            let consumed = decoded.consumed;
            let entry = match decoded.event {
                Some(mllp::Event::Frame(frame)) => {
                    let start = at + consumed - 2 - frame.len();
                    let range = start..start + frame.len();
                    route_frame(&shard, &origin, frame, range, &mut decision, &mut plans).await
                }
                Some(mllp::Event::TooLarge { head }) => {
                    let start = at + consumed - head.len();
                    Entry::TooLarge(start..start + head.len())
                }
                None => {
                    at += consumed;
                    break;
                }
            };
            entries.push(entry);
            at += consumed;
        }
        // One write to the log and one group commit for everything this read brought.
        let committed = accept::commit(&shard, &plans).await;
        let mut acks = shard.pool.take();
        for entry in entries.drain(..) {
            write_answer(
                &shard, &listener, &input, entry, &plans, &committed, &mut acks,
            );
        }
        plans.clear();
        input.drain(..at);
        shard.flush();
        if acks.is_empty() {
            shard.pool.give(acks);
        } else if let Err(e) = stream.write_pooled(acks, &shard.pool).await {
            log::info!("{}: {}: writing ACKs: {e}", listener.name, origin.peer);
            return;
        }
        if input.is_empty() && input.capacity() > KEEP_IDLE_BUFFER {
            input = Vec::new();
        }
    }
}

enum Wake {
    Input,
    Failed(std::io::Error),
    Idle,
    Stop,
}

/// Waits for the sender's next bytes, its idle timeout, or shutdown, holding no buffer.
async fn wait_for_input(stream: &mut Stream, listener: &ListenerCtx, stop: &LocalSignal) -> Wake {
    if stop.is_raised() {
        return Wake::Stop;
    }
    monoio::select! {
        ready = monoio::time::timeout(listener.config.idle_timeout, stream.readable()) => match ready {
            Ok(Ok(())) => Wake::Input,
            Ok(Err(e)) => Wake::Failed(e),
            Err(_) => Wake::Idle,
        },
        _ = stop.wait() => Wake::Stop,
    }
}

/// One frame of a batch, as far as ingress got with it before the batch is committed. Ranges
/// are into the connection's input buffer, which is not touched until the batch is answered.
enum Entry {
    /// Parsed and routed: `plans[plan]`.
    Planned { frame: Range<usize>, plan: usize },
    /// Could not be read.
    Unreadable {
        frame: Range<usize>,
        error: ParseError,
    },
    /// Over the size limit; only its head was kept.
    TooLarge(Range<usize>),
}

async fn route_frame(
    shard: &Shard,
    origin: &Origin,
    frame: &[u8],
    range: Range<usize>,
    decision: &mut Decision,
    plans: &mut Vec<Plan>,
) -> Entry {
    Metrics::bump(&shard.counters().received);
    let parsed = Message::parse(frame).and_then(|m| m.validate().map(|()| m));
    let message = match parsed {
        Ok(message) => message,
        Err(error) => {
            return Entry::Unreadable {
                frame: range,
                error,
            }
        }
    };
    let msh = message.msh();
    let control_id = msh
        .control_id()
        .and_then(|c| message.offset_of(c).map(|at| at..at + c.len()))
        .unwrap_or(0..0);
    let view = Hl7View::new(message);
    let incoming = Incoming {
        bytes: frame,
        kind: Kind::Hl7v2,
        control_id,
        soap_action: None,
    };
    let plan = accept::plan(shard, &view, incoming, origin, decision).await;
    if let Plan::Dropped { rule } = &plan {
        log::info!(
            "{}: message {} dropped by rule {rule}",
            origin.listener,
            String::from_utf8_lossy(msh.control_id().unwrap_or_default())
        );
    }
    plans.push(plan);
    Entry::Planned {
        frame: range,
        plan: plans.len() - 1,
    }
}

/// Appends the ACK (if any) for one frame of a committed batch.
fn write_answer(
    shard: &Shard,
    listener: &ListenerCtx,
    input: &[u8],
    entry: Entry,
    plans: &[Plan],
    committed: &Result<(), NotDurable>,
    acks: &mut Vec<u8>,
) {
    let now = SystemTime::now();
    let id = ack_id(shard);
    let counters = shard.counters();
    let too_long;
    let (frame, answer) = match &entry {
        Entry::Planned { frame, plan } => {
            let answer = match (plans.get(*plan), committed) {
                (Some(Plan::Rejected { reason }), _) => {
                    Metrics::bump(&counters.rejected);
                    Answer::Rejected {
                        reason,
                        code: APPLICATION_ERROR,
                    }
                }
                (_, Err(refused)) => Answer::NotNow {
                    reason: refused.text(),
                },
                _ => {
                    Metrics::bump(&counters.accepted);
                    Answer::Accepted
                }
            };
            (frame.clone(), answer)
        }
        Entry::Unreadable { frame, error } => {
            Metrics::bump(&counters.unreadable);
            let text = error.to_string();
            let bytes = input.get(frame.clone()).unwrap_or_default();
            let salvage = Message::parse(bytes).ok();
            let msh = salvage.as_ref().map(Message::msh);
            let error = AckError::from_parse_error(error, &text);
            write_hl7v2_ack(
                msh.as_ref(),
                bytes,
                Answer::Unreadable(error),
                &id,
                now,
                acks,
            );
            return;
        }
        Entry::TooLarge(head) => {
            Metrics::bump(&counters.rejected);
            too_long = format!(
                "message longer than this listener's limit of {} bytes",
                listener.max_message_bytes()
            );
            (
                head.clone(),
                Answer::Rejected {
                    reason: &too_long,
                    code: TOO_LONG,
                },
            )
        }
    };
    let bytes = input.get(frame).unwrap_or_default();
    let parsed = Message::parse(bytes).ok();
    let msh = parsed.as_ref().map(Message::msh);
    write_hl7v2_ack(msh.as_ref(), bytes, answer, &id, now, acks);
}

/// MSH-10 for an ACK we send: unique within this run, and telling which shard sent it
/// (`G` and the sequence in hex). Formatted on the stack: one per message.
fn ack_id(shard: &Shard) -> AckId {
    AckId::new(shard.next_seq())
}

impl AckId {
    fn new(n: u64) -> AckId {
        let mut id = AckId {
            bytes: [0; 17],
            len: 1,
        };
        id.bytes[0] = b'G';
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
        for i in 0..digits {
            let nibble = ((n >> (4 * (digits - 1 - i))) & 0xF) as u8;
            id.bytes[1 + i] = b"0123456789ABCDEF"[usize::from(nibble)];
        }
        id.len = 1 + digits;
        id
    }
}

/// An ACK's control id, without a heap allocation.
struct AckId {
    bytes: [u8; 17],
    len: usize,
}

impl std::ops::Deref for AckId {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::AckId;

    #[test]
    fn ack_ids_are_g_and_hex() {
        for n in [0u64, 1, 0xA, 0x1_0000_0000_002A, u64::MAX] {
            assert_eq!(&*AckId::new(n), format!("G{n:X}").as_bytes());
        }
    }
}
