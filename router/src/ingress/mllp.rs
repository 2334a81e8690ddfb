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

use codecs::hl7v2::{AckError, Message};
use codecs::mllp;

use super::accept::{accept, Origin, Taken};
use super::answer::{write_hl7v2_ack, Answer, APPLICATION_ERROR};
use super::listener::ListenerCtx;
use crate::metrics::Metrics;
use crate::net::stream::Stream;
use crate::pipeline::Kind;
use crate::routes::message::Hl7View;
use crate::routes::Decision;
use crate::shard::Shard;
use crate::signal::LocalSignal;

/// table 0357 code 100 would blame segment order; an oversized message is a "value too long".
const TOO_LONG: u16 = 104;

/// Receive buffers bigger than this are released when the connection goes idle, so that one
/// large message does not pin memory for the connection's life.
const KEEP_IDLE_BUFFER: usize = 64 * 1024;

/// Serves one sender until it closes, goes idle too long, or breaks the connection.
pub async fn serve(
    shard: Rc<Shard>,
    listener: Rc<ListenerCtx>,
    mut stream: Stream,
    origin: Origin,
    stop: Rc<LocalSignal>,
) {
    if let Err(e) = stream.handshake(&shard.pool).await {
        log::info!(
            "{}: {}: TLS handshake failed: {e}",
            listener.name,
            origin.peer
        );
        return;
    }
    let mut decoder = mllp::Decoder::new(listener.max_message_bytes());
    let mut input: Vec<u8> = Vec::new();
    let mut decision = Decision::default();
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
        let mut acks = shard.pool.take();
        let mut at = 0;
        loop {
            let decoded = decoder.decode(&input[at..]);
            let consumed = decoded.consumed;
            match decoded.event {
                Some(mllp::Event::Frame(frame)) => {
                    handle_frame(&shard, &origin, frame, &mut decision, &mut acks).await;
                }
                Some(mllp::Event::TooLarge { head }) => {
                    let reason = format!(
                        "message longer than this listener's limit of {} bytes",
                        decoder.max_frame()
                    );
                    let parsed = Message::parse(head).ok();
                    let msh = parsed.as_ref().map(Message::msh);
                    let answer = Answer::Rejected {
                        reason: &reason,
                        code: TOO_LONG,
                    };
                    let id = ack_id(&shard);
                    write_hl7v2_ack(
                        msh.as_ref(),
                        head,
                        answer,
                        &id,
                        SystemTime::now(),
                        &mut acks,
                    );
                }
                None => {
                    at += consumed;
                    break;
                }
            }
            at += consumed;
        }
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

async fn handle_frame(
    shard: &Shard,
    origin: &Origin,
    frame: &[u8],
    decision: &mut Decision,
    acks: &mut Vec<u8>,
) {
    let now = SystemTime::now();
    let id = ack_id(shard);
    Metrics::bump(&shard.counters().received);
    let parsed = Message::parse(frame).and_then(|m| m.validate().map(|()| m));
    let message = match parsed {
        Ok(message) => message,
        Err(err) => {
            let text = err.to_string();
            let error = AckError::from_parse_error(&err, &text);
            let salvage = Message::parse(frame).ok();
            let msh = salvage.as_ref().map(Message::msh);
            write_hl7v2_ack(
                msh.as_ref(),
                frame,
                Answer::Unreadable(error),
                &id,
                now,
                acks,
            );
            Metrics::bump(&shard.counters().unreadable);
            return;
        }
    };
    let msh = message.msh();
    let control_id = msh
        .control_id()
        .and_then(|c| message.offset_of(c).map(|at| at..at + c.len()))
        .unwrap_or(0..0);
    let view = Hl7View::new(message);
    let taken = accept(
        shard,
        &view,
        frame,
        Kind::Hl7v2,
        control_id,
        None,
        origin,
        decision,
    )
    .await;
    let counters = shard.counters();
    Metrics::bump(match taken {
        Taken::Rejected { .. } => &counters.rejected,
        _ => &counters.accepted,
    });
    let answer = match &taken {
        Taken::Queued(_) | Taken::DeadLettered => Answer::Accepted,
        Taken::Dropped { rule } => {
            log::info!(
                "{}: message {} dropped by rule {rule}",
                origin.listener,
                String::from_utf8_lossy(msh.control_id().unwrap_or_default())
            );
            Answer::Accepted
        }
        Taken::Rejected { reason } => Answer::Rejected {
            reason,
            code: APPLICATION_ERROR,
        },
    };
    write_hl7v2_ack(Some(&msh), frame, answer, &id, now, acks);
}

/// MSH-10 for an ACK we send: unique within this run, and telling which shard sent it.
fn ack_id(shard: &Shard) -> Vec<u8> {
    format!("G{:X}", shard.next_seq()).into_bytes()
}
