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
//! from it.
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use std::ops::Range;

use codecs::hl7v2::{salvage_control_id, AckError, Message, Msh, ParseError};
use codecs::mllp;

use super::accept::{self, ConnectionOrigin, Incoming, Plan};
use super::answer::{write_hl7v2_ack, Answer, APPLICATION_ERROR};
use super::budget::InputBuffer;
use super::cutoff::Cutoff;
use super::listener::ListenerCtx;
use super::not_mllp::{self, Stray};
use super::reader::{Got, Reader};
use super::refusals::{ControlId, Detail, Refusal};
use crate::known::within;
use crate::metrics::listener::Code;
use crate::metrics::Metrics;
use crate::net::stream::Stream;
use crate::notify::LocalSignal;
use crate::pipeline::MessageKind;
use crate::routes::message::Hl7View;
use crate::routes::Decision;
use crate::shard::durable::NotDurable;
use crate::shard::Shard;

/// table 0357 code 100 would blame segment order; an oversized message is a "value too long".
const TOO_LONG: u16 = 104;

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
    let mut decision = Decision::default();
    let mut spare: Vec<Entry<'static>> = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
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
        let answered = entries.len() as u64;
        for entry in entries.drain(..) {
            write_answer(
                &shard, &listener, &origin, &input, entry, &plans, &committed, &mut acks,
            );
        }
        spare = recycle(entries);
        plans.clear();
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
    let answer = Answer::NotNow {
        reason: cutoff.reason(),
    };
    write_hl7v2_ack(
        parsed.as_ref().map(Message::msh).as_ref(),
        msh,
        answer,
        &ack_id(shard),
        SystemTime::now(),
        out,
    );
}

/// One frame of a batch, as far as ingress got with it before the batch is committed. Ranges
/// and views are into the connection's input buffer, which is not touched until the batch is
/// answered.
enum Entry<'a> {
    /// Parsed and routed: `plans[plan]`.
    Planned {
        frame: Range<usize>,
        msh: Msh<'a>,
        plan: usize,
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
    shard: &Shard,
    origin: &ConnectionOrigin,
    frame: &'a [u8],
    range: Range<usize>,
    decision: &mut Decision,
    plans: &mut Vec<Plan>,
) -> Entry<'a> {
    Metrics::bump(&shard.counters().received);
    origin.stats.shard(shard.info.index).received(frame.len());
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
    let plan = accept::plan(shard, &view, incoming, origin, decision).await;
    // A routing value that could not be decoded: whatever the rules made of it, the message
    // cannot be routed as its sender meant.
    if let Some(error) = view.unreadable() {
        return Entry::Unreadable {
            frame: range,
            msh: Some(msh),
            error,
        };
    }
    if let Plan::Dropped { rule } = &plan {
        tracing::info!(
            listener = &*origin.listener,
            peer = %origin.peer,
            control_id = %ControlId(msh.control_id().unwrap_or_default()),
            rule = &**rule,
            "message dropped by a rule"
        );
    }
    plans.push(plan);
    Entry::Planned {
        frame: range,
        msh,
        plan: plans.len() - 1,
    }
}

/// Appends the ACK (if any) for one frame of a committed batch, and logs it if it is a refusal.
#[allow(clippy::too_many_arguments)]
fn write_answer(
    shard: &Shard,
    listener: &ListenerCtx,
    origin: &ConnectionOrigin,
    input: &[u8],
    entry: Entry<'_>,
    plans: &[Plan],
    committed: &Result<(), NotDurable>,
    acks: &mut Vec<u8>,
) {
    let now = SystemTime::now();
    let id = ack_id(shard);
    let counters = shard.counters();
    let counts = listener.stats.shard(shard.info.index);
    let refuse = |kind: Refusal, detail: Detail<'_>| {
        shard
            .refusals
            .note(origin.peer, &listener.stats, kind, detail);
    };
    match entry {
        Entry::Planned { frame, msh, plan } => {
            let control_id = msh.control_id().unwrap_or_default();
            let bytes = within(input, frame);
            let answer = match (plans.get(plan), committed) {
                (Some(Plan::Rejected { reason, rule }), _) => {
                    Metrics::bump(&counters.rejected);
                    let detail = Detail::message(control_id, bytes, reason);
                    match rule {
                        Some(rule) => refuse(Refusal::Rejected, detail.rule(Some(&**rule))),
                        None => refuse(Refusal::NoRoute, detail),
                    }
                    Answer::Rejected {
                        reason,
                        code: APPLICATION_ERROR,
                    }
                }
                (_, Err(refused)) => {
                    let why = refused.text();
                    refuse(Refusal::NotStored, Detail::message(control_id, bytes, &why));
                    Answer::NotNow { reason: why }
                }
                _ => {
                    Metrics::bump(&counters.accepted);
                    Answer::Accepted
                }
            };
            let code = write_hl7v2_ack(Some(&msh), bytes, answer, &id, now, acks);
            counts.answered(Code::Hl7(code));
        }
        Entry::Unreadable { frame, msh, error } => {
            Metrics::bump(&counters.unreadable);
            counts.unreadable.fetch_add(1, Ordering::Relaxed);
            let bytes = within(input, frame);
            let control_id = match &msh {
                Some(msh) => msh.control_id(),
                None => salvage_control_id(bytes),
            };
            refuse(
                Refusal::Unreadable,
                Detail::message(control_id.unwrap_or_default(), bytes, &error).at(error.offset),
            );
            let text = error.to_string();
            let error = AckError::from_parse_error(&error, &text);
            let code = write_hl7v2_ack(
                msh.as_ref(),
                bytes,
                Answer::Unreadable(error),
                &id,
                now,
                acks,
            );
            counts.answered(Code::Hl7(code));
        }
        Entry::TooLarge(head) => {
            Metrics::bump(&counters.rejected);
            let reason = format!(
                "message longer than this listener's limit of {} bytes",
                listener.max_message_bytes()
            );
            let bytes = within(input, head);
            let parsed = Message::parse(bytes).ok();
            let msh = parsed.as_ref().map(Message::msh);
            let control_id = match &msh {
                Some(msh) => msh.control_id(),
                None => salvage_control_id(bytes),
            };
            refuse(
                Refusal::TooLarge,
                Detail::message(control_id.unwrap_or_default(), bytes, &reason),
            );
            let answer = Answer::Rejected {
                reason: &reason,
                code: TOO_LONG,
            };
            let code = write_hl7v2_ack(msh.as_ref(), bytes, answer, &id, now, acks);
            counts.answered(Code::Hl7(code));
        }
    }
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
