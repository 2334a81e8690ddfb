//! One non-blocking connection, plain or TLS (rustls driven by hand), with the buffers every
//! event loop in loadgen needs: plaintext received and not yet consumed, and plaintext queued
//! to send. The owner calls [`Conn::read`] when epoll says readable and [`Conn::flush`] after
//! queueing, and asks for EPOLLOUT only while [`Conn::wants_write`].
use std::io::{self, Read, Write};
use std::net::TcpStream;

thread_local! {
    /// One read buffer per thread: zeroing 64 KiB on every read showed in profiles.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 * 1024]);
}

/// Most bytes taken from one socket per readiness event, so that one busy peer cannot starve
/// the others in the same loop.
const READ_BUDGET: usize = 512 * 1024;

pub struct Conn {
    pub tcp: TcpStream,
    tls: Option<rustls::Connection>,
    /// Plaintext received and not yet consumed by the owner.
    pub input: Vec<u8>,
    /// Plaintext queued and not yet handed to the socket (or to rustls).
    output: Vec<u8>,
    /// Where the unsent part of `output` starts (plain connections).
    written: usize,
}

/// What one [`Conn::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// Some bytes (possibly none) were added to `input`; the connection is open.
    Open,
    /// The peer closed (after the bytes now in `input`).
    Closed,
}

impl Conn {
    pub fn plain(tcp: TcpStream) -> Conn {
        Conn {
            tcp,
            tls: None,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
        }
    }

    pub fn tls(tcp: TcpStream, tls: rustls::Connection) -> Conn {
        Conn {
            tls: Some(tls),
            ..Conn::plain(tcp)
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Queues plaintext; [`Conn::flush`] sends it.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Bytes queued and not yet sent.
    pub fn backlog(&self) -> usize {
        self.output.len() - self.written
    }

    /// Whether something is waiting for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        self.backlog() > 0 || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Reads what the socket has (within a budget) into `input`.
    pub fn read(&mut self) -> io::Result<Got> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            self.read_with(&mut scratch)
        })
    }

    fn read_with(&mut self, chunk: &mut [u8]) -> io::Result<Got> {
        let mut taken = 0;
        match &mut self.tls {
            None => loop {
                match self.tcp.read(chunk) {
                    Ok(0) => return Ok(Got::Closed),
                    Ok(n) => {
                        self.input.extend_from_slice(&chunk[..n]);
                        taken += n;
                        if n < chunk.len() || taken >= READ_BUDGET {
                            return Ok(Got::Open);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Got::Open),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
            Some(tls) => loop {
                let eof = match tls.read_tls(&mut self.tcp) {
                    Ok(0) => true,
                    Ok(n) => {
                        taken += n;
                        false
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Got::Open),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if let Err(e) = tls.process_new_packets() {
                    // Send the alert that says why, then give up on the connection.
                    let _ = tls.write_tls(&mut self.tcp);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                loop {
                    match tls.reader().read(chunk) {
                        Ok(0) => return Ok(Got::Closed),
                        Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                if eof {
                    return Ok(Got::Closed);
                }
                if taken >= READ_BUDGET {
                    return Ok(Got::Open);
                }
            },
        }
    }

    /// Sends as much as the socket takes; `Ok(true)` when nothing is left waiting.
    pub fn flush(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => {
                while self.written < self.output.len() {
                    match self.tcp.write(&self.output[self.written..]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if self.written == self.output.len() {
                    self.output.clear();
                    self.written = 0;
                    Ok(true)
                } else {
                    // Keep the buffer from growing without bound when the peer is slow.
                    if self.written > 1 << 20 {
                        self.output.drain(..self.written);
                        self.written = 0;
                    }
                    Ok(false)
                }
            }
            Some(tls) => {
                loop {
                    if self.written < self.output.len() && !tls.is_handshaking() {
                        let n = tls.writer().write(&self.output[self.written..])?;
                        self.written += n;
                        if self.written == self.output.len() {
                            self.output.clear();
                            self.written = 0;
                        }
                    }
                    if !tls.wants_write() {
                        break;
                    }
                    match tls.write_tls(&mut self.tcp) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(self.backlog() == 0)
            }
        }
    }
}
