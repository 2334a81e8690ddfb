//! A TCP connection, plain or TLS, driven over monoio with buffers borrowed from the shard.
//!
//! TLS is rustls' unbuffered API ([`super::unbuffered`]): the connection keeps its keys and
//! state, and every byte lives in a [`BufferPool`] buffer lent for one read or write. 28,000
//! idle endpoint connections then cost their TLS state only, not the 4 KiB receive buffer a
//! buffered rustls connection keeps (nor the two 16 KiB buffers of an async TLS adapter). A
//! connection keeps bytes between operations only while a record is half received, or when
//! a read brought more plaintext than the caller took.
//!
//! Reads are never cancelled half-way (a cancelled read would lose what it had read): callers
//! that need a timeout wait on [`Stream::readable`] with one, which holds no buffer, and read
//! only once bytes are there.
use std::io;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::CommonState;

use super::pool::BufferPool;
use super::unbuffered::{Buffers, Need, TlsConn, ToSend};

/// Plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// What [`Stream::take_unsolicited`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsolicited {
    /// The peer closed the connection.
    Closed,
    /// Bytes nobody asked for (discarded).
    Data(usize),
    /// Only protocol housekeeping.
    Nothing,
}

/// TLS state next to its socket.
pub struct TlsStream {
    tcp: TcpStream,
    conn: TlsConn,
    /// TLS bytes read and not yet processed: part of one record, or nothing (and then no
    /// memory: the buffer goes back to the pool).
    incoming: Vec<u8>,
    /// Plaintext decrypted and not yet taken; handed out before anything else.
    plaintext: Vec<u8>,
    /// The peer sent close_notify.
    peer_closed: bool,
}

/// Whether a read may grow the caller's buffer.
#[derive(Clone, Copy)]
enum Growth {
    Any,
    /// Only into its spare capacity.
    Within,
}

/// Reads at least this much room into a receive buffer, so small reads do not become a
/// syscall per few bytes.
const READ_CHUNK: usize = 16 * 1024;

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Stream {
    /// Wraps `tcp` in TLS (an unbuffered rustls client or server connection); call
    /// [`Stream::handshake`] before exchanging data.
    pub fn tls(tcp: TcpStream, tls: impl Into<TlsConn>) -> Stream {
        Stream::Tls(Box::new(TlsStream {
            tcp,
            conn: tls.into(),
            incoming: Vec::new(),
            plaintext: Vec::new(),
            peer_closed: false,
        }))
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.tcp,
        }
    }

    /// True when the TLS handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        matches!(
            self.tls_state().and_then(|c| c.handshake_kind()),
            Some(rustls::HandshakeKind::Resumed)
        )
    }

    /// The TLS connection's state, for the peer's certificates or the resumption state.
    pub fn tls_state(&self) -> Option<&CommonState> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => Some(tls.conn.common()),
        }
    }

    /// Waits until the socket has bytes (or an error, or end of stream) to read. Holds no
    /// buffer while it waits, so it is what idle connections sleep in, and it may be cancelled.
    pub async fn readable(&mut self) -> io::Result<()> {
        if let Stream::Tls(tls) = self {
            // An earlier read may have brought more than was taken.
            if !tls.plaintext.is_empty() || tls.peer_closed {
                return Ok(());
            }
        }
        self.tcp().readable(false).await
    }

    /// Completes a TLS handshake; a no-op for plain TCP.
    pub async fn handshake(&mut self, pool: &BufferPool) -> io::Result<()> {
        if let Stream::Tls(tls) = self {
            let eof = || {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection during the TLS handshake",
                )
            };
            loop {
                match tls.advance(pool, ToSend::Nothing).await? {
                    Need::Ready => break,
                    Need::Closed => return Err(eof()),
                    Need::Read => {
                        if tls.fill(pool).await? == 0 {
                            return Err(eof());
                        }
                    }
                }
            }
            tls.settle(pool);
        }
        Ok(())
    }

    /// After [`Stream::readable`] fired on a connection that is not waiting for a reply: reads
    /// once and says what came. A peer that closes an idle connection is seen here, and so is
    /// TLS housekeeping (session tickets, key updates), which is consumed and ignored.
    pub async fn take_unsolicited(&mut self, pool: &BufferPool) -> io::Result<Unsolicited> {
        // Waits for a turn before taking a buffer: see the pool's note on reconnect storms.
        let _turn = pool.idle_reads().acquire().await;
        match self {
            Stream::Plain(tcp) => {
                let scratch = pool.take();
                let (result, scratch) = tcp.read(scratch).await;
                pool.give(scratch);
                Ok(match result? {
                    0 => Unsolicited::Closed,
                    n => Unsolicited::Data(n),
                })
            }
            Stream::Tls(tls) => {
                if !tls.plaintext.is_empty() {
                    let n = tls.plaintext.len();
                    tls.plaintext = Vec::new();
                    return Ok(Unsolicited::Data(n));
                }
                if tls.peer_closed || tls.fill(pool).await? == 0 {
                    return Ok(Unsolicited::Closed);
                }
                let need = tls.advance(pool, ToSend::Nothing).await?;
                let n = tls.plaintext.len();
                tls.plaintext = Vec::new();
                tls.settle(pool);
                Ok(match (need, n) {
                    (Need::Closed, _) => Unsolicited::Closed,
                    (_, 0) => Unsolicited::Nothing,
                    (_, n) => Unsolicited::Data(n),
                })
            }
        }
    }

    /// Reads what arrives next and appends it to `buf`; `Ok(0)` means the peer closed.
    pub async fn read_into(&mut self, buf: &mut Vec<u8>, pool: &BufferPool) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => {
                let len = buf.len();
                buf.reserve(READ_CHUNK);
                let owned = std::mem::take(buf);
                let (result, slice) = tcp.read(owned.slice_mut(len..)).await;
                *buf = slice.into_inner();
                result
            }
            Stream::Tls(tls) => tls.read_plaintext(buf, pool, Growth::Any).await,
        }
    }

    /// Reads what arrives next into the spare capacity of `buf`, never growing it: the caller
    /// decides how much memory a connection may hold. `Ok(0)` means the peer closed. TLS
    /// plaintext beyond the spare room stays in the stream for the next read.
    pub async fn read_within(&mut self, buf: &mut Vec<u8>, pool: &BufferPool) -> io::Result<usize> {
        if buf.capacity() == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no room in the buffer to read into",
            ));
        }
        match self {
            Stream::Plain(tcp) => {
                let len = buf.len();
                let owned = std::mem::take(buf);
                let (result, slice) = tcp.read(owned.slice_mut(len..)).await;
                *buf = slice.into_inner();
                result
            }
            Stream::Tls(tls) => tls.read_plaintext(buf, pool, Growth::Within).await,
        }
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8], pool: &BufferPool) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => {
                let mut out = pool.take();
                out.extend_from_slice(bytes);
                let (result, out) = tcp.write_all(out).await;
                pool.give(out);
                result.map(drop)
            }
            Stream::Tls(tls) => {
                let need = tls.advance(pool, ToSend::Data(bytes)).await;
                tls.settle(pool);
                match need? {
                    Need::Ready => Ok(()),
                    Need::Closed => Err(io::ErrorKind::BrokenPipe.into()),
                    Need::Read => Err(io::Error::other("TLS handshake not complete")),
                }
            }
        }
    }

    /// Writes all of `buf`, a buffer taken from `pool`, and gives it back: the way to send
    /// something built in place (a framed message, an ACK) without copying it again.
    pub async fn write_pooled(&mut self, buf: Vec<u8>, pool: &BufferPool) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => {
                let (result, buf) = tcp.write_all(buf).await;
                pool.give(buf);
                result.map(drop)
            }
            Stream::Tls(_) => {
                let result = self.write_all(&buf, pool).await;
                pool.give(buf);
                result
            }
        }
    }

    /// Says goodbye properly (TLS close_notify) and closes the write side.
    pub async fn shutdown(&mut self, pool: &BufferPool) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.shutdown().await,
            Stream::Tls(tls) => {
                let sent = tls.advance(pool, ToSend::CloseNotify).await;
                tls.settle(pool);
                sent?;
                tls.tcp.shutdown().await
            }
        }
    }

    /// Sets TCP_NODELAY: every write here is a whole message or ACK that the peer is waiting
    /// for, so Nagle's algorithm would only add latency.
    pub fn set_nodelay(&self) -> io::Result<()> {
        self.tcp().set_nodelay(true)
    }
}

impl TlsStream {
    /// Runs rustls over what has arrived (decrypting into `plaintext`), encrypts `send` when
    /// the handshake allows, and sends what rustls produced. On a TLS error the alert that says
    /// why is sent (best effort) and the error returned.
    async fn advance(&mut self, pool: &BufferPool, send: ToSend<'_>) -> io::Result<Need> {
        let mut outgoing = pool.take();
        let result = self.conn.advance(
            Buffers {
                incoming: &mut self.incoming,
                plaintext: &mut self.plaintext,
                outgoing: &mut outgoing,
            },
            send,
        );
        if matches!(result, Ok(Need::Closed)) {
            self.peer_closed = true;
        }
        let sent = if outgoing.is_empty() {
            pool.give(outgoing);
            Ok(())
        } else {
            let (sent, outgoing) = self.tcp.write_all(outgoing).await;
            pool.give(outgoing);
            sent.map(drop)
        };
        let need = result.map_err(tls_error)?;
        sent?;
        Ok(need)
    }

    /// Reads once from the socket, after any part-record already held; returns the bytes read
    /// (0: end of stream).
    async fn fill(&mut self, pool: &BufferPool) -> io::Result<usize> {
        let mut buf = if self.incoming.is_empty() {
            pool.take()
        } else {
            std::mem::take(&mut self.incoming)
        };
        let len = buf.len();
        buf.reserve(READ_CHUNK);
        let (result, slice) = self.tcp.read(buf.slice_mut(len..)).await;
        self.incoming = slice.into_inner();
        result
    }

    /// Gives the receive buffer back to the pool when it holds nothing, so that an idle
    /// connection holds no buffer.
    fn settle(&mut self, pool: &BufferPool) {
        if self.incoming.is_empty() && self.incoming.capacity() > 0 {
            pool.give(std::mem::take(&mut self.incoming));
        }
        if self.plaintext.is_empty() && self.plaintext.capacity() > 0 {
            self.plaintext = Vec::new();
        }
    }

    /// Appends plaintext to `buf`: what an earlier read left, or else what the next records
    /// decrypt to; `Ok(0)` means the peer closed.
    async fn read_plaintext(
        &mut self,
        buf: &mut Vec<u8>,
        pool: &BufferPool,
        growth: Growth,
    ) -> io::Result<usize> {
        loop {
            if !self.plaintext.is_empty() {
                let n = match growth {
                    Growth::Any => {
                        let n = self.plaintext.len();
                        if buf.is_empty() {
                            std::mem::swap(buf, &mut self.plaintext);
                        } else {
                            buf.append(&mut self.plaintext);
                        }
                        n
                    }
                    Growth::Within => {
                        let n = self.plaintext.len().min(buf.capacity() - buf.len());
                        buf.extend_from_slice(&self.plaintext[..n]);
                        self.plaintext.drain(..n);
                        n
                    }
                };
                self.settle(pool);
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            if self.fill(pool).await? == 0 {
                // End of stream without close_notify: treat as closed; the framing above
                // decides whether a message was cut short.
                self.settle(pool);
                return Ok(0);
            }
            self.advance(pool, ToSend::Nothing).await?;
        }
    }
}
