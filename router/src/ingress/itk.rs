//! One ITK sender's HTTP/1.1 connection: SOAP requests in, responses or faults out.
//!
//! A request is read whole (Content-Length or chunked, within the listener's limit), parsed,
//! routed by its service and fanned out per address, and answered synchronously: the
//! `SimpleMessageResponse` once it is accepted, a SOAP Client fault when it is malformed or
//! unroutable, a Server fault when we cannot take it now; every refusal is logged once
//! ([`super::refusals`]), with the tracking id when there is one. Connections are kept alive as the
//! sender asks. When the envelope asks for an infrastructure acknowledgement and its sender is
//! in the directory, an InfAck is routed back to it, committed with the request it
//! acknowledges. What becomes of each request (routing, the log, the answer, its counts and
//! refusal line) is decided by the [`super::session`] shared with MLLP; this module reads HTTP,
//! parses SOAP and writes the reply.
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use codecs::http1;
use codecs::itk::{self, FaultCode, InfAck, InfResult};

use super::accept::{self, ConnectionOrigin, Incoming, Plan};
use super::answer::itk::{write_fault, write_reply, ItkAnswer, Replying, ERROR_CLIENT};
use super::answer::Answer;
use super::budget::InputBuffer;
use super::cutoff::Cutoff;
use super::listener::ListenerCtx;
use super::reader::{Got, Reader};
use super::refusals::{Detail, Refusal};
use super::session::{About, Session};
use crate::net::stream::Stream;
use crate::notify::LocalSignal;
use crate::pipeline::MessageKind;
use crate::routes::keys::Column;
use crate::routes::message::ItkView;
use crate::shard::Shard;

/// Our identity in the InfAcks we send (`auditIdentity`, `reportingIdentity`).
pub const ROUTER_IDENTITY: &str = "urn:nhs-uk:identity:ganglion";

/// Serves one sender (its TLS handshake, if any, already done; `accepted` when it connected)
/// until it closes, asks to close, goes idle, reaches a limit, or breaks the protocol.
pub async fn serve(
    shard: Rc<Shard>,
    listener: Rc<ListenerCtx>,
    mut stream: Stream,
    origin: ConnectionOrigin,
    stop: Rc<LocalSignal>,
    accepted: monoio::time::Instant,
) {
    let limits = http1::Limits {
        max_body: listener.config.max_message_bytes,
        ..http1::Limits::default()
    };
    let mut reader = Reader::new(&listener, &origin, accepted);
    let mut input = InputBuffer::default();
    let mut session = Session::new(&shard, &origin);
    loop {
        let connection = Connection {
            stream: &mut stream,
            reader: &mut reader,
            listener: &listener,
            origin: &origin,
            stop: &stop,
            shard: &shard,
        };
        let request = match read_request(connection, &mut input, &limits).await {
            Ok(Next::Request(request)) => request,
            Ok(Next::Ended) => return,
            Ok(Next::Refused(cutoff)) => {
                // The rest of the request cannot be read: say why, then close, because we
                // no longer know where the next request starts.
                let mut out = shard.pool.take();
                let answer: ItkAnswer<'_> = Answer::NoRoom(cutoff);
                write_reply(&answer, Replying::default(), &shard.uuids, &mut out);
                let mut response = shard.pool.take();
                let spec = http1::ResponseSpec {
                    status: 500,
                    content_type: "text/xml; charset=utf-8",
                    keep_alive: false,
                };
                if http1::write_response(&mut response, &spec, &out).is_ok() {
                    let _ = stream.write_pooled(response, &shard.pool).await;
                }
                shard.pool.give(out);
                let _ = stream.shutdown(&shard.pool).await;
                return;
            }
            Err(error) => {
                // The framing is broken: answer with the status the parser chose, then close,
                // because we no longer know where the next request starts.
                let kind = match error.kind {
                    http1::HttpErrorKind::BodyTooLarge { .. } => Refusal::TooLarge,
                    _ => Refusal::BadRequest,
                };
                shard.refusals.note(
                    origin.peer,
                    &listener.stats,
                    kind,
                    Detail::why(&format_args!("{error}; closing the connection")),
                );
                let mut out = shard.pool.take();
                http1::write_error_response(&mut out, &error);
                let _ = stream.write_pooled(out, &shard.pool).await;
                let _ = stream.shutdown(&shard.pool).await;
                return;
            }
        };
        let mut out = shard.pool.take();
        let body = &input[request.body.clone()];
        let status = if request.method_ok {
            handle(&mut session, body, request.soap_action.as_deref(), &mut out).await
        } else {
            let why = "only POST is accepted here";
            shard.refusals.note(
                origin.peer,
                &listener.stats,
                Refusal::BadRequest,
                Detail::why(&why),
            );
            write_fault(
                &shard.uuids,
                None,
                FaultCode::Client,
                ERROR_CLIENT,
                why,
                &mut out,
            );
            405
        };
        let mut response = shard.pool.take();
        let spec = http1::ResponseSpec {
            status,
            content_type: "text/xml; charset=utf-8",
            keep_alive: request.keep_alive,
        };
        let written = http1::write_response(&mut response, &spec, &out);
        shard.pool.give(out);
        input.drain(..request.consumed);
        reader.settle(&mut input);
        shard.flush();
        if written.is_err() || stream.write_pooled(response, &shard.pool).await.is_err() {
            return;
        }
        if request.method_ok {
            let counts = listener.stats.shard(shard.info.index);
            counts.ack_latency.record(request.first_byte.elapsed());
        }
        if !request.keep_alive {
            let _ = stream.shutdown(&shard.pool).await;
            return;
        }
    }
}

/// A whole request in the connection's buffer.
struct Request {
    method_ok: bool,
    soap_action: Option<String>,
    keep_alive: bool,
    /// When the read that brought the request's first byte returned.
    first_byte: Instant,
    /// Where the (decoded) body sits in the buffer.
    body: std::ops::Range<usize>,
    /// Bytes of the buffer this request used, head and framing included.
    consumed: usize,
}

/// What came of reading the next request.
enum Next {
    Request(Request),
    /// The connection ended (closed, idle, broken, or shutdown between requests).
    Ended,
    /// The rest of the request cannot be read: no room for it (already counted and logged).
    Refused(Cutoff),
}

/// A connection's parts that reading a request needs.
struct Connection<'a> {
    stream: &'a mut Stream,
    reader: &'a mut Reader,
    listener: &'a ListenerCtx,
    origin: &'a ConnectionOrigin,
    stop: &'a LocalSignal,
    shard: &'a Shard,
}

/// Reads until one whole request is in `input`.
async fn read_request(
    conn: Connection<'_>,
    input: &mut Vec<u8>,
    limits: &http1::Limits,
) -> Result<Next, http1::HttpError> {
    let Connection {
        stream,
        reader,
        listener,
        origin,
        stop,
        shard,
    } = conn;
    let mut sent_continue = false;
    // Bytes already buffered (a pipelined request) arrived no later than now.
    let mut first_byte = (!input.is_empty()).then(Instant::now);
    let mut chunked: Option<(http1::ChunkedDecoder, usize)> = None;
    loop {
        let parsed = {
            let mut headers = [http1::EMPTY_HEADER; 64];
            http1::parse_request(input, &mut headers, limits)?.map(|head| {
                (
                    head.method == "POST",
                    head.soap_action()
                        .map(|a| String::from_utf8_lossy(a).trim_matches('"').to_string()),
                    head.keep_alive,
                    head.head_len,
                    head.framing,
                    head.expect_continue,
                )
            })
        };
        if let Some((method_ok, soap_action, keep_alive, head_len, framing, expect_continue)) =
            parsed
        {
            if expect_continue && !sent_continue {
                sent_continue = true;
                let mut out = shard.pool.take();
                out.extend_from_slice(http1::CONTINUE_100);
                if stream.write_pooled(out, &shard.pool).await.is_err() {
                    return Ok(Next::Ended);
                }
            }
            let body = match framing {
                http1::BodyFraming::None => Some((head_len..head_len, head_len)),
                http1::BodyFraming::Length(len) => {
                    let end = head_len.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
                    (input.len() >= end).then_some((head_len..end, end))
                }
                http1::BodyFraming::Chunked => {
                    // Decoded in place as it arrives: the body collects at head_len..end and
                    // the raw bytes not yet decoded follow it.
                    let (decoder, end) = chunked.get_or_insert_with(|| {
                        (
                            http1::ChunkedDecoder::new(limits.max_body, head_len),
                            head_len,
                        )
                    });
                    let (new_end, done) = decoder.decode_vec(input, *end)?;
                    *end = new_end;
                    done.then_some((head_len..new_end, new_end))
                }
                http1::BodyFraming::UntilClose => Some((head_len..head_len, head_len)),
            };
            if let Some((body, consumed)) = body {
                return Ok(Next::Request(Request {
                    method_ok,
                    soap_action,
                    keep_alive,
                    first_byte: first_byte.unwrap_or_else(Instant::now),
                    body,
                    consumed,
                }));
            }
        }
        // Shutdown interrupts a connection only between requests; one half-read is finished.
        let between = input.is_empty();
        match reader
            .read(stream, input, shard, listener, origin, stop, between)
            .await
        {
            Got::Data => {
                first_byte.get_or_insert_with(Instant::now);
            }
            Got::Refused(cutoff) => return Ok(Next::Refused(cutoff)),
            Got::Closed | Got::TimedOut | Got::Stopped | Got::Failed(_) => return Ok(Next::Ended),
        }
    }
}

/// Handles one request body; writes the SOAP response into `out`, returns the HTTP status.
async fn handle(
    session: &mut Session<'_>,
    body: &[u8],
    soap_action: Option<&str>,
    out: &mut Vec<u8>,
) -> u16 {
    let shard = session.shard();
    session.received(body.len());
    // The Web Services rules (MessageID, Action, To, mustUnderstand, WS-Security shape) and
    // the schema rules parsing lets through are checked before anything is accepted.
    let message = match itk::parse(body).and_then(|m| m.check_strict().map(|()| m)) {
        Ok(message) => message,
        Err(error) => {
            let answer = Answer::Malformed(&error);
            let (status, code) = write_reply(&answer, Replying::default(), &shard.uuids, out);
            let about = About {
                kind: MessageKind::Itk,
                id: None,
                bytes: body,
            };
            session.told(&answer, about, code);
            return status;
        }
    };
    let request_id = message
        .soap
        .as_ref()
        .and_then(|s| s.message_id.as_ref())
        .and_then(|t| t.decoded().ok())
        .map(|t| t.into_owned());
    let action = message
        .soap
        .as_ref()
        .and_then(|s| s.action.as_ref())
        .and_then(|t| t.decoded().ok())
        .map(|t| t.into_owned())
        .or_else(|| soap_action.map(str::to_string))
        .or_else(|| {
            message
                .envelope
                .service
                .decoded()
                .ok()
                .map(|t| t.into_owned())
        })
        .unwrap_or_default();
    let tracking = &message.envelope.tracking_id;
    let control_id = tracking.offset()..tracking.offset() + tracking.raw().len();
    let inf_ack = inf_ack_target(shard, &message);
    let view = ItkView::new(message);
    let incoming = Incoming {
        bytes: body,
        kind: MessageKind::Itk,
        control_id,
        soap_action: Some(&action),
    };
    let plan = session.plan(&view, incoming).await;
    let tracking = view.message().envelope.tracking_id.raw();
    let kept = session.keep(plan, tracking);
    // The InfAck is stored and committed with the message it acknowledges, so that both or
    // neither survive a crash.
    if session.accepts(kept) {
        if let Some(target) = inf_ack {
            if let Some(ack) = inf_ack_plan(shard, session.origin(), &target).await {
                session.also(ack);
            }
        }
    }
    let batch = session.commit().await;
    let answer = batch.verdict(kept);
    let request = Replying {
        message_id: request_id.as_deref(),
        action: &action,
    };
    let (status, code) = write_reply(&answer, request, &shard.uuids, out);
    let about = About {
        kind: MessageKind::Itk,
        id: Some(tracking),
        bytes: body,
    };
    batch.told(&answer, about, code);
    status
}

/// Who gets the infrastructure ACK of an envelope, when it asks for one.
struct InfAckTarget {
    endpoint: crate::routes::EndpointId,
    sender: String,
    tracking_id_ref: String,
    service_ref: String,
}

fn inf_ack_target(shard: &Shard, message: &itk::ItkMessage<'_>) -> Option<InfAckTarget> {
    let de = &message.envelope;
    if de.inf_ack_requested() != Some(true) {
        return None;
    }
    let sender = de.sender_address.as_ref()?.uri.decoded().ok()?.into_owned();
    let endpoint = shard
        .routing()
        .table
        .lookup(Column::ItkAddress, sender.as_bytes())?;
    Some(InfAckTarget {
        endpoint,
        sender,
        tracking_id_ref: de.tracking_id.decoded().ok()?.into_owned(),
        service_ref: de.service.decoded().ok()?.into_owned(),
    })
}

/// The InfAck (a SOAP request carrying a new Distribution Envelope), planned for delivery to
/// the sender's endpoint like any other message.
async fn inf_ack_plan(
    shard: &Shard,
    origin: &ConnectionOrigin,
    target: &InfAckTarget,
) -> Option<Plan> {
    let routing = shard.routing();
    let endpoint = routing.table.endpoint(target.endpoint)?;
    let now = SystemTime::now();
    let timestamp = crate::wire_time::xml_datetime(now);
    let tracking_id = shard.uuids.next_uuid();
    let payload_uuid = shard.uuids.next_uuid();
    let message_id = shard.uuids.next_uuid();
    let to = endpoint.address.to_string();
    let ack = InfAck {
        tracking_id: &tracking_id,
        payload_uuid: &payload_uuid,
        to: Some(&target.sender),
        audit_identity: ROUTER_IDENTITY,
        sender: None,
        timestamp: &timestamp,
        tracking_id_ref: &target.tracking_id_ref,
        service_ref: &target.service_ref,
        result: InfResult::Ok,
        errors: &[],
    };
    let header = itk::RequestHeader {
        message_id: &message_id,
        action: itk::SERVICE_INF_ACK,
        to: &to,
        from: None,
        timestamp: None,
        username: None,
    };
    let mut bytes = Vec::new();
    itk::write_soap_request(&mut bytes, &header, |out| {
        itk::write_infrastructure_ack(out, &ack)
    });
    let control_id = match memchr::memmem::find(&bytes, tracking_id.as_bytes()) {
        Some(at) => at..at + tracking_id.len(),
        None => 0..0,
    };
    let made = Incoming {
        bytes: &bytes,
        kind: MessageKind::Itk,
        control_id,
        soap_action: Some(itk::SERVICE_INF_ACK),
    };
    accept::plan_made(shard, target.endpoint, made, origin, now).await
}
