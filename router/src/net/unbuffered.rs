//! rustls' unbuffered API, driven over buffers the caller owns: [`TlsConn::advance`] takes the
//! TLS bytes received so far, appends what they decrypt to, appends what must be sent, and says
//! what the connection needs next. No I/O here.
//!
//! Why the unbuffered API: a buffered rustls connection keeps its own receive buffer (4 KiB even
//! when idle) and plaintext queues; times 28,000 endpoint connections that is over 100 MiB held
//! by connections with nothing to say. Here the connection owns only its keys and state; the
//! bytes live in buffers the stream lends for one operation, and records are decrypted in place.
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{CommonState, Error};

/// A client or server connection, unbuffered.
pub enum TlsConn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

impl From<UnbufferedClientConnection> for TlsConn {
    fn from(conn: UnbufferedClientConnection) -> Self {
        TlsConn::Client(conn)
    }
}

impl From<UnbufferedServerConnection> for TlsConn {
    fn from(conn: UnbufferedServerConnection) -> Self {
        TlsConn::Server(conn)
    }
}

/// What the connection needs after [`TlsConn::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// More bytes from the peer (the handshake is waiting, or a record is incomplete).
    Read,
    /// Nothing: the handshake is done, whatever was to be sent is in `outgoing`.
    Ready,
    /// The peer closed the connection (close_notify).
    Closed,
}

/// What to encrypt once the handshake allows it.
#[derive(Debug, Clone, Copy)]
pub enum ToSend<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// rustls' two connection types, for code written once for both.
trait Records {
    type Data;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Records for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Records for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
}

/// Bytes in the buffers: TLS in, plaintext out, TLS out.
pub struct Buffers<'b> {
    /// TLS bytes received and not yet processed; processed records are removed from the front,
    /// so what is left is at most part of one record. Append to it, never replace it while it
    /// holds bytes: rustls keeps positions in it between calls (and panics on another buffer).
    pub incoming: &'b mut Vec<u8>,
    /// Decrypted application data is appended here.
    pub plaintext: &'b mut Vec<u8>,
    /// TLS bytes to send are appended here; send them before the next read.
    pub outgoing: &'b mut Vec<u8>,
}

impl TlsConn {
    /// The handshake's outcome and the peer's identity.
    pub fn common(&self) -> &CommonState {
        match self {
            TlsConn::Client(c) => c,
            TlsConn::Server(s) => s,
        }
    }

    /// Processes every whole record in `incoming`, and encrypts `send` if the handshake is
    /// done. On error, `outgoing` holds the alert that tells the peer why (send it, best effort).
    pub fn advance(&mut self, io: Buffers<'_>, send: ToSend<'_>) -> Result<Need, Error> {
        match self {
            TlsConn::Client(c) => advance(c, io, send),
            TlsConn::Server(s) => advance(s, io, send),
        }
    }
}

enum Step {
    Continue,
    Return(Need),
    Fail(Error),
}

fn advance<C: Records>(conn: &mut C, io: Buffers<'_>, mut send: ToSend<'_>) -> Result<Need, Error> {
    loop {
        let UnbufferedStatus { mut discard, state } = conn.records(io.incoming);
        let step = match state {
            Err(e) => Step::Fail(e),
            Ok(ConnectionState::ReadTraffic(mut records)) => {
                let mut step = Step::Continue;
                while let Some(record) = records.next_record() {
                    match record {
                        Ok(record) => {
                            io.plaintext.extend_from_slice(record.payload);
                            discard += record.discard;
                        }
                        Err(e) => {
                            step = Step::Fail(e);
                            break;
                        }
                    }
                }
                step
            }
            Ok(ConnectionState::EncodeTlsData(mut handshake)) => {
                match append(io.outgoing, HANDSHAKE_HINT, |out| {
                    encoded(handshake.encode(out))
                }) {
                    Ok(()) => Step::Continue,
                    Err(e) => Step::Fail(e),
                }
            }
            // The caller sends `outgoing` before it reads again, which is all rustls asks.
            Ok(ConnectionState::TransmitTlsData(sent)) => {
                sent.done();
                Step::Continue
            }
            Ok(ConnectionState::BlockedHandshake) => Step::Return(Need::Read),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                let written = match std::mem::replace(&mut send, ToSend::Nothing) {
                    ToSend::Nothing => Ok(()),
                    ToSend::Data(data) => append(io.outgoing, sealed_len(data.len()), |out| {
                        encrypted(traffic.encrypt(data, out))
                    }),
                    ToSend::CloseNotify => append(io.outgoing, HANDSHAKE_HINT, |out| {
                        encrypted(traffic.queue_close_notify(out))
                    }),
                };
                match written {
                    Ok(()) => Step::Return(Need::Ready),
                    Err(e) => Step::Fail(e),
                }
            }
            Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Step::Return(Need::Closed),
            // Early data is never enabled here, and other states are for later rustls versions.
            Ok(other) => Step::Fail(Error::General(format!("unexpected TLS state {other:?}"))),
        };
        io.incoming.drain(..discard.min(io.incoming.len()));
        match step {
            Step::Continue => {}
            Step::Return(need) => return Ok(need),
            Step::Fail(e) => {
                queue_alert(conn, io.incoming, io.outgoing);
                return Err(e);
            }
        }
    }
}

/// After an error rustls has the alert to send queued; encode it. rustls must be shown the
/// same receive buffer as before (it keeps positions in it), never another.
fn queue_alert<C: Records>(conn: &mut C, incoming: &mut Vec<u8>, outgoing: &mut Vec<u8>) {
    // An alert is one record; a few rounds are enough to get it out or see there is none.
    for _ in 0..4 {
        let UnbufferedStatus { discard, state } = conn.records(incoming);
        let more = match state {
            Ok(ConnectionState::EncodeTlsData(mut alert)) => {
                append(outgoing, HANDSHAKE_HINT, |out| encoded(alert.encode(out))).is_ok()
            }
            Ok(ConnectionState::TransmitTlsData(sent)) => {
                sent.done();
                true
            }
            _ => false,
        };
        incoming.drain(..discard.min(incoming.len()));
        if !more {
            return;
        }
    }
}

fn encoded(result: Result<usize, EncodeError>) -> Result<Result<usize, usize>, Error> {
    match result {
        Ok(n) => Ok(Ok(n)),
        Err(EncodeError::InsufficientSize(s)) => Ok(Err(s.required_size)),
        Err(e) => Err(Error::General(e.to_string())),
    }
}

fn encrypted(result: Result<usize, EncryptError>) -> Result<Result<usize, usize>, Error> {
    match result {
        Ok(n) => Ok(Ok(n)),
        Err(EncryptError::InsufficientSize(s)) => Ok(Err(s.required_size)),
        Err(e) => Err(Error::General(e.to_string())),
    }
}

/// Room first offered for a handshake record or an alert; rustls says when it needs more.
const HANDSHAKE_HINT: usize = 4096;

/// Room for `len` bytes of application data once sealed: each record of up to 16 KiB adds a
/// header, the content type and the AEAD tag (under 64 bytes).
fn sealed_len(len: usize) -> usize {
    len + (len / 16_384 + 1) * 64
}

/// Appends what `write` puts into a slice at the end of `out`: `write` returns the bytes it
/// wrote, or (as `Err`) the room it needs, and is called again with that much. The room is
/// zeroed before use, so it starts at `hint`, not at the buffer's capacity.
fn append(
    out: &mut Vec<u8>,
    hint: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<Result<usize, usize>, Error>,
) -> Result<(), Error> {
    let start = out.len();
    let mut room = hint.max(64);
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(Ok(n)) => {
                out.truncate(start + n);
                return Ok(());
            }
            Ok(Err(needed)) if needed > room => room = needed,
            Ok(Err(_)) => {
                out.truncate(start);
                return Err(Error::General("a TLS record did not fit its buffer".into()));
            }
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_grows_the_room_to_what_the_writer_asks_for() {
        let mut out = b"head".to_vec();
        let mut calls = Vec::new();
        append(&mut out, 100, |room| {
            calls.push(room.len());
            if room.len() < 10_000 {
                return Ok(Err(10_000));
            }
            room[..3].copy_from_slice(b"abc");
            Ok(Ok(3))
        })
        .unwrap();
        assert_eq!(out, b"headabc");
        assert_eq!(calls, [100, 10_000]);

        // A writer that keeps asking for no more than it was given is an error, not a loop.
        let err = append(&mut out, 100, |_| Ok(Err(50))).unwrap_err();
        assert!(err.to_string().contains("did not fit"), "{err}");
        assert_eq!(out, b"headabc");
    }

    #[test]
    fn sealed_room_covers_every_record_s_overhead() {
        assert!(sealed_len(0) >= 64);
        assert!(sealed_len(16_384) >= 16_384 + 2 * 22);
        assert!(sealed_len(100_000) >= 100_000 + 7 * 22);
    }
}
