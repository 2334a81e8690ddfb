//! One connection from the driver to the router (or relay): messages written in send order
//! without waiting for answers (pipelined), answers read as they come. MLLP ACKs are matched
//! by MSA-2; HTTP responses, which come back in request order, by position.
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use codecs::hl7v2::{AckCode, Message};
use codecs::{http1, mllp};

use crate::net::{Conn, Got};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Mllp,
    Http,
}

/// What an answer said about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Accepted (AA/CA, HTTP 2xx).
    Ok,
    /// Refused or failed, with the kind for the error table.
    Failed(&'static str),
}

pub struct Sender {
    pub addr: SocketAddr,
    pub wire: Wire,
    pub conn: Option<Conn>,
    pub decoder: mllp::Decoder,
    /// Sequence numbers sent and not yet answered, in send order.
    pub outstanding: VecDeque<u64>,
    pub writing: bool,
    /// When a failed connection may be tried again.
    pub retry_at: u64,
    /// Every address of this sender's protocol: a connection that cannot be made again goes
    /// to the next one, as a sender behind a list of nodes (or a load balancer) would.
    pub addrs: Arc<[SocketAddr]>,
}

pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_nonblocking(true)?;
    Ok(Conn::plain(tcp))
}

impl Sender {
    /// `count` senders over `addrs` in turn, each able to move on to the others.
    pub fn spread(
        addrs: &[SocketAddr],
        count: usize,
        wire: Wire,
    ) -> impl Iterator<Item = Sender> + '_ {
        let all: Arc<[SocketAddr]> = addrs.into();
        addrs
            .iter()
            .cycle()
            .take(count)
            .map(move |&addr| Sender::new(addr, Arc::clone(&all), wire))
    }

    /// A sender to `addr`, one of `addrs`.
    fn new(addr: SocketAddr, addrs: Arc<[SocketAddr]>, wire: Wire) -> Sender {
        Sender {
            addr,
            wire,
            conn: None,
            decoder: mllp::Decoder::new(16 << 20),
            outstanding: VecDeque::new(),
            writing: false,
            retry_at: 0,
            addrs,
        }
    }

    /// After a failed connect: the next address is the one to try.
    pub fn fail_over(&mut self) {
        if let Some(i) = self.addrs.iter().position(|a| *a == self.addr) {
            if let Some(next) = self.addrs.get((i + 1) % self.addrs.len()) {
                self.addr = *next;
            }
        }
    }

    /// Reads and decodes what arrived: `(seq or control id, answer)` pairs through `on`.
    /// Returns `false` when the connection ended.
    pub fn receive(&mut self, tag: u32, mut on: impl FnMut(u64, Answer)) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let open = matches!(conn.read(), Ok(Got::Open));
        match self.wire {
            Wire::Mllp => {
                let mut at = 0;
                loop {
                    let decoded = self.decoder.decode(&conn.input[at..]);
                    let frame = match decoded.event {
                        Some(mllp::Event::Frame(f)) => f,
                        Some(mllp::Event::TooLarge { .. }) => {
                            at += decoded.consumed;
                            continue;
                        }
                        None => {
                            at += decoded.consumed;
                            break;
                        }
                    };
                    let (id, answer) = read_ack(frame);
                    at += decoded.consumed;
                    match id.and_then(|i| crate::ids::parse(&i)) {
                        Some((t, seq)) if t == tag => {
                            if let Some(pos) = self.outstanding.iter().position(|s| *s == seq) {
                                self.outstanding.remove(pos);
                                on(seq, answer);
                            }
                        }
                        // An ACK we cannot tie to a message: blame the oldest one waiting.
                        _ => {
                            if let Some(seq) = self.outstanding.pop_front() {
                                on(seq, Answer::Failed("unmatched ACK"));
                            }
                        }
                    }
                }
                conn.input.drain(..at);
            }
            Wire::Http => loop {
                let parsed = {
                    let mut headers = [http1::EMPTY_HEADER; 32];
                    match http1::parse_response(
                        &conn.input,
                        &mut headers,
                        &http1::Limits::default(),
                    ) {
                        Ok(Some(h)) => Some((h.status, h.head_len, h.framing)),
                        Ok(None) => None,
                        Err(_) => return false,
                    }
                };
                let Some((status, head_len, framing)) = parsed else {
                    break;
                };
                let len = match framing {
                    http1::BodyFraming::Length(n) => n as usize,
                    _ => 0,
                };
                if conn.input.len() < head_len + len {
                    break;
                }
                conn.input.drain(..head_len + len);
                if status == 100 {
                    continue;
                }
                if let Some(seq) = self.outstanding.pop_front() {
                    let answer = if (200..300).contains(&status) {
                        Answer::Ok
                    } else if status >= 500 {
                        Answer::Failed("HTTP 5xx (SOAP fault)")
                    } else {
                        Answer::Failed("HTTP 4xx")
                    };
                    on(seq, answer);
                }
            },
        }
        let _ = tag;
        open
    }
}

/// MSA-2 and the verdict of MSA-1.
fn read_ack(frame: &[u8]) -> (Option<Vec<u8>>, Answer) {
    let Ok(message) = Message::parse(frame) else {
        return (None, Answer::Failed("unreadable ACK"));
    };
    let Some(msa) = message.segment(b"MSA") else {
        return (None, Answer::Failed("ACK without MSA"));
    };
    let code = msa.field(1).map(|f| f.raw()).unwrap_or_default();
    let id = msa.field(2).map(|f| f.raw().to_vec());
    let answer = match AckCode::from_bytes(code) {
        Some(AckCode::AA | AckCode::CA) => Answer::Ok,
        Some(AckCode::AE) => Answer::Failed("AE"),
        Some(AckCode::AR) => Answer::Failed("AR"),
        Some(AckCode::CE) => Answer::Failed("CE"),
        Some(AckCode::CR) => Answer::Failed("CR"),
        None => Answer::Failed("unknown MSA-1"),
    };
    (id, answer)
}
