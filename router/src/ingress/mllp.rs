//! One MLLP sender's connection: frames in, ACKs out, in order.
//!
//! Everything that arrived in one read is handled as a batch: each frame is parsed, routed and
//! accepted in turn, the shards that were sent work are woken once, and then every ACK of the
//! batch goes back in one write, in the order the messages came. A sender that pipelines a
//! hundred messages therefore costs a handful of syscalls, not hundreds.
//!
//! Nothing a sender does stops the connection from being answered: an unreadable message (or one
//! without MSH-9, MSH-10 or MSH-12) gets AE with the place it went wrong, an oversized frame
//! gets AR and the connection stays usable, a refused one AR with the reason; each refusal is
//! logged once ([`super::refusals`]). Bytes outside a frame other than line ends mean the peer
//! does not speak MLLP (an HTTP or TLS client, a sender that lost its framing): what was read
//! before them is answered, then the connection is closed at once with one log line. Half a
//! frame followed by a close is logged and dropped (the sender was never acknowledged, so it
//! still has the message). A frame that the input budgets cannot make room for gets AE "try
//! again later" and the connection is closed.
//!
//! A frame is parsed once: its entry keeps the MSH view routing used, and the ACK is written
//! from it. What becomes of each message (routing, the log, the answer, its counts and refusal
//! line) is decided by the [`super::session`] shared with ITK; this module frames, parses and
//! writes ACKs.
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use std::ops::Range;

use codecs::hl7v2::{salvage_control_id, Message, Msh, ParseError};
use codecs::mllp;

use super::accept::{ConnectionOrigin, Incoming};
use super::answer::hl7v2::{write_ack, Hl7Answer};
use super::answer::Answer;
use super::budget::InputBuffer;
use super::cutoff::Cutoff;
use super::listener::ListenerCtx;
use super::not_mllp::{self, Stray};
use super::reader::{Got, Reader};
use super::refusals::{Detail, Refusal};
use super::session::{About, Committed, Kept, Session};
use crate::known::within;
use crate::metrics::listener::Code;
use crate::net::stream::Stream;
use crate::notify::LocalSignal;
use crate::pipeline::MessageKind;
use crate::routes::message::Hl7View;
use crate::shard::Shard;

/// Serves one sender (its TLS handshake, if any, already done; `accepted` when it connected)
/// until it closes, goes idle too long, reaches a limit, or breaks the connection.
pub async fn serve(
    shard: Rc<Shard>,
    listener: Rc<ListenerCtx>,
    mut stream: Stream,
    origin: ConnectionOrigin,
    stop: Rc<LocalSignal>,
    accepted: monoio::time::Instant,
) {
    let mut decoder = mllp::Decoder::new(listener.max_message_bytes());
    let mut reader = Reader::new(&listener, &origin, accepted);
    let mut input = InputBuffer::default();
    let mut session = Session::new(&shard, &origin);
    let mut spare: Vec<Entry<'static>> = Vec::new();
    // When the read that brought the first byte of the unfinished frame returned.
    let mut frame_began: Option<Instant> = None;
    loop {
        // Nothing read is left unanswered: every batch is answered before the next read.
        let got = reader
            .read(
                &mut stream,
                &mut input,
                &shard,
                &listener,
                &origin,
                &stop,
                true,
            )
            .await;
        match got {
            Got::Data => {}
            Got::Closed => {
                if decoder.in_frame() {
                    tracing::warn!(
                        "{}: {}: closed in the middle of a message ({} bytes); it was not acknowledged",
                        listener.name,
                        origin.peer,
                        input.len()
                    );
                }
                return;
            }
            Got::TimedOut | Got::Stopped => {
                let _ = stream.shutdown(&shard.pool).await;
                return;
            }
            Got::Failed(e) => {
                tracing::info!("{}: {}: {e}", listener.name, origin.peer);
                return;
            }
            Got::Refused(cutoff) => {
                if decoder.in_frame() {
                    let mut out = shard.pool.take();
                    refuse_unfinished(&shard, &input, cutoff, &mut out);
                    let _ = stream.write_pooled(out, &shard.pool).await;
                }
                let _ = stream.shutdown(&shard.pool).await;
                return;
            }
        }
        let read_at = Instant::now();
        let first_byte = *frame_began.get_or_insert(read_at);
        let mut entries = recycle(std::mem::take(&mut spare));
        let mut at = 0;
        let mut stray = None;
        loop {
            if decoder.between_frames() {
                let rest = within(&input, at..);
                let gap = rest.get(..memchr::memchr(mllp::START, rest).unwrap_or(rest.len()));
                stray = not_mllp::classify(gap.unwrap_or_default());
                if stray.is_some() {
                    at = input.len();
                    break;
                }
            }
            let decoded = decoder.decode(within(&input, at..));
            let consumed = decoded.consumed;
            let entry = match decoded.event {
                Some(mllp::Event::Frame(frame)) => {
                    let start = at + consumed - 2 - frame.len();
                    let range = start..start + frame.len();
                    route_frame(&mut session, frame, range).await
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
        let batch = session.commit().await;
        let mut acks = shard.pool.take();
        let answered = entries.len() as u64;
        for entry in entries.drain(..) {
            write_answer(&batch, &listener, &input, entry, &mut acks);
        }
        drop(batch);
        spare = recycle(entries);
        // A frame still unfinished began in this read if frames ended in it, else earlier.
        frame_began = match (decoder.in_frame(), answered) {
            (false, _) => None,
            (true, 0) => Some(first_byte),
            (true, _) => Some(read_at),
        };
        input.drain(..at);
        shard.flush();
        if acks.is_empty() {
            shard.pool.give(acks);
        } else if let Err(e) = stream.write_pooled(acks, &shard.pool).await {
            tracing::info!("{}: {}: writing ACKs: {e}", listener.name, origin.peer);
            return;
        }
        if answered > 0 {
            let counts = listener.stats.shard(shard.info.index);
            counts.ack_latency.record_n(first_byte.elapsed(), answered);
        }
        if let Some(stray) = stray {
            refuse_stray(&shard, &listener, &origin, stray);
            let _ = stream.shutdown(&shard.pool).await;
            return;
        }
        reader.settle(&mut input);
    }
}

/// How far into an unfinished frame its MSH segment is looked for.
const MSH_SEARCH: usize = 64 * 1024;

/// Logs why a connection that sent bytes outside a frame is being closed.
fn refuse_stray(shard: &Shard, listener: &ListenerCtx, origin: &ConnectionOrigin, stray: Stray) {
    shard.refusals.note(
        origin.peer,
        &listener.stats,
        Refusal::NotMllp,
        Detail::why(&format_args!("{stray}; closing the connection")),
    );
}

/// Empties `entries` and hands its allocation on to the entries of the next read, which borrow
/// a different buffer: a connection allocates its list of entries once, not once per read.
// `filter_map` because it changes the type (the lifetime), which `filter` cannot.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut entries: Vec<Entry<'_>>) -> Vec<Entry<'b>> {
    entries.clear();
    // Collecting from an emptied vector's own iterator into a type of the same size reuses
    // its allocation (std's in-place collection).
    entries.into_iter().filter_map(|_| None).collect()
}

/// AE "try again later" for the frame `input` holds the start of, whose rest there is no room
/// for. Its MSH, the first segment, is all the answer needs.
fn refuse_unfinished(shard: &Shard, input: &[u8], cutoff: Cutoff, out: &mut Vec<u8>) {
    let frame = input.strip_prefix(&[mllp::START]).unwrap_or(input);
    let frame = &frame[..frame.len().min(MSH_SEARCH)];
    let msh = frame
        .iter()
        .position(|&b| b == b'\r')
        .map_or(frame, |end| &frame[..=end]);
    let parsed = Message::parse(msh).ok();
    let answer: Hl7Answer<'_> = Answer::NoRoom(cutoff);
    write_ack(
        parsed.as_ref().map(Message::msh).as_ref(),
        msh,
        &answer,
        &ack_id(shard),
        SystemTime::now(),
        out,
    );
}

/// One frame of a batch, as far as ingress got with it before the batch is committed. Ranges
/// and views are into the connection's input buffer, which is not touched until the batch is
/// answered.
enum Entry<'a> {
    /// Parsed, routed and kept in the session's batch.
    Planned {
        frame: Range<usize>,
        msh: Msh<'a>,
        kept: Kept,
    },
    /// Could not be read; `msh` when at least its MSH could.
    Unreadable {
        frame: Range<usize>,
        msh: Option<Msh<'a>>,
        error: ParseError,
    },
    /// Over the size limit; only its head was kept.
    TooLarge(Range<usize>),
}

async fn route_frame<'a>(
    session: &mut Session<'_>,
    frame: &'a [u8],
    range: Range<usize>,
) -> Entry<'a> {
    session.received(frame.len());
    let message = match Message::parse(frame) {
        Ok(message) => message,
        Err(error) => {
            return Entry::Unreadable {
                frame: range,
                msh: None,
                error,
            }
        }
    };
    let view = Hl7View::new(message);
    let msh = view.msh();
    if let Err(error) = message.validate().and_then(|()| msh.check_required()) {
        return Entry::Unreadable {
            frame: range,
            msh: Some(msh),
            error,
        };
    }
    let control_id = msh
        .control_id()
        .and_then(|c| message.offset_of(c).map(|at| at..at + c.len()))
        .unwrap_or(0..0);
    let incoming = Incoming {
        bytes: frame,
        kind: MessageKind::Hl7v2,
        control_id,
        soap_action: None,
    };
    let plan = session.plan(&view, incoming).await;
    // A routing value that could not be decoded: whatever the rules made of it, the message
    // cannot be routed as its sender meant.
    if let Some(error) = view.unreadable() {
        return Entry::Unreadable {
            frame: range,
            msh: Some(msh),
            error,
        };
    }
    Entry::Planned {
        frame: range,
        msh,
        kept: session.keep(plan, msh.control_id().unwrap_or_default()),
    }
}

/// Appends the ACK (if any) for one frame of a committed batch, and reports it to the session.
fn write_answer(
    batch: &Committed<'_, '_>,
    listener: &ListenerCtx,
    input: &[u8],
    entry: Entry<'_>,
    acks: &mut Vec<u8>,
) {
    let head_parsed;
    let (frame, msh, answer): (_, _, Hl7Answer<'_>) = match &entry {
        Entry::Planned { frame, msh, kept } => (frame, Some(*msh), batch.verdict(*kept)),
        Entry::Unreadable { frame, msh, error } => (frame, *msh, Answer::Malformed(error)),
        Entry::TooLarge(head) => {
            head_parsed = Message::parse(within(input, head.clone())).ok();
            let limit = listener.max_message_bytes();
            (
                head,
                head_parsed.as_ref().map(Message::msh),
                Answer::TooLarge { limit },
            )
        }
    };
    let bytes = within(input, frame.clone());
    let id = msh.map_or_else(|| salvage_control_id(bytes), |msh| msh.control_id());
    let code = write_ack(
        msh.as_ref(),
        bytes,
        &answer,
        &ack_id(batch.shard()),
        SystemTime::now(),
        acks,
    );
    let about = About {
        kind: MessageKind::Hl7v2,
        id,
        bytes,
    };
    batch.told(&answer, about, Code::Hl7(code));
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
    use super::{recycle, AckId, Entry};

    #[test]
    fn entries_keep_their_allocation_from_read_to_read() {
        let mut entries: Vec<Entry<'_>> = Vec::with_capacity(16);
        entries.push(Entry::TooLarge(0..8));
        let allocation = entries.as_ptr() as usize;
        let next: Vec<Entry<'static>> = recycle(entries);
        assert!(next.is_empty());
        assert!(next.capacity() >= 16);
        assert_eq!(next.as_ptr() as usize, allocation);
    }

    #[test]
    fn ack_ids_are_g_and_hex() {
        for n in [0u64, 1, 0xA, 0x1_0000_0000_002A, u64::MAX] {
            assert_eq!(&*AckId::new(n), format!("G{n:X}").as_bytes());
        }
    }
}
