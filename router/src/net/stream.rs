//! A TCP connection, plain or TLS, driven over monoio with buffers borrowed from the shard.
//!
//! rustls is sans-I/O: it takes TLS bytes in and gives TLS bytes out. We drive it ourselves
//! rather than through an adapter that keeps two 16 KiB buffers per stream, because 28,000
//! idle endpoint connections must cost kilobytes, not megabytes: TLS bytes pass through a
//! [`BufferPool`] buffer only while a read or write is in flight.
//!
//! Reads are never cancelled half-way (a cancelled read would lose what it had read): callers
//! that need a timeout wait on [`Stream::readable`] with one, which holds no buffer, and read
//! only once bytes are there.
use std::io::{self, Read, Write};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::Connection;

use super::pool::BufferPool;

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
    tls: Connection,
    /// Plaintext taken out of rustls to make room while a large read was being decrypted
    /// (rustls holds at most 16 KiB); handed out before anything else. Empty, and holding no
    /// memory, whenever the connection is idle.
    spill: Vec<u8>,
}

/// Reads at least this much room into a receive buffer, so small reads do not become a
/// syscall per few bytes.
const READ_CHUNK: usize = 16 * 1024;

impl Stream {
    /// Wraps `tcp` in TLS; call [`Stream::handshake`] before exchanging data.
    pub fn tls(tcp: TcpStream, tls: impl Into<Connection>) -> Stream {
        Stream::Tls(Box::new(TlsStream {
            tcp,
            tls: tls.into(),
            spill: Vec::new(),
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

    /// The TLS connection, for inspecting the peer's certificates or the resumption state.
    pub fn tls_state(&self) -> Option<&Connection> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => Some(&tls.tls),
        }
    }

    /// Waits until the socket has bytes (or an error, or end of stream) to read. Holds no
    /// buffer while it waits, so it is what idle connections sleep in, and it may be cancelled.
    pub async fn readable(&mut self) -> io::Result<()> {
        if let Stream::Tls(tls) = self {
            // rustls may already hold decrypted bytes from an earlier read.
            if tls.has_plaintext() {
                return Ok(());
            }
        }
        self.tcp().readable(false).await
    }

    /// Completes a TLS handshake; a no-op for plain TCP.
    pub async fn handshake(&mut self, pool: &BufferPool) -> io::Result<()> {
        if let Stream::Tls(tls) = self {
            while tls.tls.is_handshaking() {
                if tls.tls.wants_write() {
                    tls.flush(pool).await?;
                } else if tls.read_tls(pool).await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection during the TLS handshake",
                    ));
                }
            }
            tls.flush(pool).await?;
        }
        Ok(())
    }

    /// After [`Stream::readable`] fired on a connection that is not waiting for a reply: reads
    /// once and says what came. A peer that closes an idle connection is seen here, and so is
    /// TLS housekeeping (session tickets, key updates), which is consumed and ignored.
    pub async fn take_unsolicited(&mut self, pool: &BufferPool) -> io::Result<Unsolicited> {
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
                let before = tls.spill.len();
                if tls.read_tls(pool).await? == 0 {
                    return Ok(Unsolicited::Closed);
                }
                tls.spill_plaintext();
                let n = tls.spill.len() - before;
                tls.spill = Vec::new();
                if tls
                    .tls
                    .process_new_packets()
                    .is_ok_and(|s| s.peer_has_closed())
                {
                    return Ok(Unsolicited::Closed);
                }
                Ok(if n > 0 {
                    Unsolicited::Data(n)
                } else {
                    Unsolicited::Nothing
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
            Stream::Tls(tls) => tls.read_plaintext(buf, pool).await,
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
                let mut rest = bytes;
                while !rest.is_empty() {
                    let n = tls.tls.writer().write(rest)?;
                    rest = &rest[n..];
                    tls.flush(pool).await?;
                }
                Ok(())
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
                tls.tls.send_close_notify();
                tls.flush(pool).await?;
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
    /// True when a read would return without touching the socket: decrypted bytes are
    /// waiting, the peer closed, or the TLS state is broken (the read reports why).
    fn has_plaintext(&mut self) -> bool {
        if !self.spill.is_empty() {
            return true;
        }
        match self.tls.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true,
        }
    }

    /// Sends everything rustls wants to send.
    async fn flush(&mut self, pool: &BufferPool) -> io::Result<()> {
        while self.tls.wants_write() {
            let mut out = pool.take();
            while self.tls.wants_write() && out.len() < READ_CHUNK {
                self.tls.write_tls(&mut out)?;
            }
            let (result, out) = self.tcp.write_all(out).await;
            pool.give(out);
            result?;
        }
        Ok(())
    }

    /// Reads one batch of TLS bytes from the socket into rustls; returns how many were read.
    async fn read_tls(&mut self, pool: &BufferPool) -> io::Result<usize> {
        let scratch = pool.take();
        let (result, scratch) = self.tcp.read(scratch).await;
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                pool.give(scratch);
                return Err(e);
            }
        };
        let mut input = &scratch[..n];
        let mut outcome = Ok(n);
        while !input.is_empty() {
            if let Err(e) = self.tls.read_tls(&mut input) {
                // rustls refuses more input while its plaintext buffer is full: move the
                // plaintext aside and carry on.
                if self.spill_plaintext() > 0 {
                    continue;
                }
                outcome = Err(e);
                break;
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Tell the peer why before giving up; the alert is best-effort.
                let _ = self.flush(pool).await;
                outcome = Err(io::Error::new(io::ErrorKind::InvalidData, e));
                break;
            }
        }
        pool.give(scratch);
        outcome
    }

    /// Moves the plaintext rustls holds into `spill`; returns how much moved.
    fn spill_plaintext(&mut self) -> usize {
        let before = self.spill.len();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.tls.reader().read(&mut chunk) {
            if n == 0 {
                break;
            }
            self.spill.extend_from_slice(&chunk[..n]);
        }
        self.spill.len() - before
    }

    async fn read_plaintext(&mut self, buf: &mut Vec<u8>, pool: &BufferPool) -> io::Result<usize> {
        if !self.spill.is_empty() {
            let n = self.spill.len();
            buf.append(&mut self.spill);
            self.spill = Vec::new();
            return Ok(n);
        }
        loop {
            let len = buf.len();
            buf.resize(len + READ_CHUNK, 0);
            let read = self.tls.reader().read(&mut buf[len..]);
            match read {
                Ok(n) => {
                    buf.truncate(len + n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf.truncate(len),
                Err(e) => {
                    buf.truncate(len);
                    return Err(e);
                }
            }
            if self.tls.wants_write() {
                self.flush(pool).await?;
            }
            if self.read_tls(pool).await? == 0 {
                // End of stream without close_notify: treat as closed; the framing above
                // decides whether a message was cut short.
                return Ok(0);
            }
        }
    }
}
