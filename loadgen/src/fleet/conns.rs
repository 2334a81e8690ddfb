//! The fleet loop's state: the endpoints' listeners (closed while an endpoint is down, see
//! `flap`), accepted connections in a slab (tokens carry a generation so a late event for a
//! reused slot is ignored), answers held back for slow endpoints, and the watchers of the
//! report stream and their commands.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use codecs::mllp;

use super::answer::{self, Behaviour, Outcome};
use super::report::{self, Command};
use crate::directory::{Proto, Row};
use crate::net::{Conn, Got};
use crate::poll::{Flags, Poller, READ, READ_WRITE};
use crate::receiver::{self, Next, Whole};
use crate::rng::Rng;

pub const LISTENER: u64 = 0;
pub const CONN: u64 = 1;
pub const CONTROL: u64 = 2;
pub const TIMER: u64 = 3;
pub const WATCHER: u64 = 4;

/// Report bytes kept for watchers that are slow or absent before the oldest are dropped.
const MAX_REPORT_BACKLOG: usize = 64 << 20;

pub fn token(kind: u64, index: usize) -> u64 {
    (kind << 56) | index as u64
}

pub fn conn_token(slot: usize, gen: u32) -> u64 {
    (CONN << 56) | (u64::from(gen) << 32) | slot as u64
}

pub fn split(token: u64) -> (u64, usize) {
    (token >> 56, (token & 0xFFFF_FFFF) as usize)
}

pub struct EConn {
    conn: Conn,
    /// Which endpoint accepted it (an index into `State::rows`).
    pub endpoint: usize,
    gen: u32,
    proto: Proto,
    decoder: mllp::Decoder,
    /// Answers held back for a slow endpoint, in order: (due, bytes, close after sending).
    held: VecDeque<(u64, Vec<u8>, bool)>,
    established: bool,
    writing: bool,
}

pub struct Watcher {
    tcp: TcpStream,
    /// Command bytes read and not yet a whole line.
    input: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
}

pub struct State {
    pub rows: Vec<Row>,
    /// One per endpoint, `None` while it is down.
    pub listeners: Vec<Option<TcpListener>>,
    /// Endpoints told to come up whose address could not be bound yet (tried again each turn).
    pub unbound: Vec<usize>,
    /// Global index of `rows[0]`.
    pub first: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub behaviour: Behaviour,
    pub rng: Rng,
    pub slab: Vec<Option<EConn>>,
    pub free: Vec<usize>,
    pub later: BinaryHeap<Reverse<(u64, usize, u32)>>,
    pub report: Vec<u8>,
    pub watchers: Vec<Option<Watcher>>,
    pub accepted: u64,
    pub open: u64,
    pub established: u64,
    /// Endpoints down now, and down events so far.
    pub down: u64,
    pub flaps: u64,
}

impl State {
    pub fn accept(&mut self, poller: &mut Poller, endpoint: usize) {
        let Some(Some(listener)) = self.listeners.get(endpoint) else {
            return;
        };
        while let Ok((tcp, _)) = listener.accept() {
            if tcp.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = tcp.set_nodelay(true);
            let conn = match &self.tls {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(s) => Conn::tls(tcp, rustls::Connection::Server(s)),
                    Err(_) => continue,
                },
                None => Conn::plain(tcp),
            };
            let proto = self
                .rows
                .get(endpoint)
                .map(|r| r.proto)
                .unwrap_or(Proto::Mllp);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slab.push(None);
                self.slab.len() - 1
            });
            let gen = self.accepted as u32;
            if poller.add(&conn.tcp, conn_token(slot, gen), READ).is_err() {
                self.free.push(slot);
                continue;
            }
            self.accepted += 1;
            self.open += 1;
            let established = !conn.is_tls();
            if established {
                self.established += 1;
            }
            self.slab[slot] = Some(EConn {
                conn,
                endpoint,
                gen,
                proto,
                decoder: mllp::Decoder::new(64 << 20),
                held: VecDeque::new(),
                established,
                writing: false,
            });
        }
    }

    pub(super) fn close(&mut self, poller: &mut Poller, slot: usize) {
        if let Some(Some(c)) = self.slab.get_mut(slot).map(Option::take) {
            poller.delete(&c.conn.tcp);
            self.open = self.open.saturating_sub(1);
            if c.established {
                self.established = self.established.saturating_sub(1);
            }
            self.free.push(slot);
        }
    }

    pub fn conn_event(&mut self, poller: &mut Poller, token: u64, flags: Flags, now: u64) {
        let slot = (token & 0xFFFF_FFFF) as usize;
        let gen = ((token >> 32) & 0xFF_FFFF) as u32;
        let Some(Some(c)) = self.slab.get_mut(slot) else {
            return;
        };
        if c.gen & 0xFF_FFFF != gen {
            return;
        }
        let mut closed = false;
        if flags.intersects(Flags::IN | Flags::RDHUP | Flags::HUP | Flags::ERR) {
            match c.conn.read() {
                Ok(Got::Open) => {}
                Ok(Got::Closed) | Err(_) => closed = true,
            }
            if !c.established && !c.conn.is_handshaking() {
                c.established = true;
                self.established += 1;
            }
            if self.serve(slot, now) {
                closed = true;
            }
        }
        if closed {
            self.close(poller, slot);
            return;
        }
        self.flush(poller, slot);
    }

    /// Answers every whole message in the connection's input; `true` to close it.
    fn serve(&mut self, slot: usize, now: u64) -> bool {
        let Some(Some(c)) = self.slab.get_mut(slot) else {
            return true;
        };
        let mut out = Vec::new();
        loop {
            out.clear();
            let Whole {
                consumed,
                body,
                keep_alive,
            } = match receiver::next(c.proto, &mut c.decoder, &c.conn.input) {
                Next::Whole(whole) => whole,
                Next::Partial { consumed } => {
                    c.conn.input.drain(..consumed);
                    return false;
                }
                Next::TooLarge { .. } | Next::Malformed => return true,
            };
            let (outcome, delay) = self.behaviour.decide(&mut self.rng);
            let body = &c.conn.input[body];
            let id = match c.proto {
                Proto::Mllp => answer::hl7_ack(body, outcome, &mut out),
                Proto::Itk => {
                    answer::itk_response(body, outcome, keep_alive, &mut out);
                    crate::gen::itk::tracking_id(body).unwrap_or_default()
                }
            };
            report::write_arrival(&mut self.report, now, outcome.letter(), id);
            c.conn.input.drain(..consumed);
            if outcome == Outcome::Drop {
                return true;
            }
            let close = !keep_alive;
            if delay > 0 || !c.held.is_empty() {
                let due = now + delay;
                c.held.push_back((due, out.clone(), close));
                self.later.push(Reverse((due, slot, c.gen)));
            } else {
                c.conn.queue(&out);
                if close {
                    return true;
                }
            }
        }
    }

    fn flush(&mut self, poller: &mut Poller, slot: usize) {
        let Some(Some(c)) = self.slab.get_mut(slot) else {
            return;
        };
        let failed = c.conn.flush().is_err();
        let want = c.conn.wants_write();
        if failed {
            self.close(poller, slot);
            return;
        }
        if want != c.writing {
            c.writing = want;
            let flags = if want { READ_WRITE } else { READ };
            let _ = poller.modify(&c.conn.tcp, conn_token(slot, c.gen), flags);
        }
    }

    /// Sends held answers that are due.
    pub fn release_due(&mut self, poller: &mut Poller, now: u64) {
        while let Some(Reverse((due, slot, gen))) = self.later.peek().copied() {
            if due > now {
                break;
            }
            self.later.pop();
            let mut close = false;
            match self.slab.get_mut(slot) {
                Some(Some(c)) if c.gen == gen => {
                    while let Some((d, _, _)) = c.held.front() {
                        if *d > now {
                            break;
                        }
                        if let Some((_, bytes, cl)) = c.held.pop_front() {
                            c.conn.queue(&bytes);
                            close |= cl;
                        }
                    }
                }
                _ => continue,
            }
            self.flush(poller, slot);
            if close {
                self.close(poller, slot);
            }
        }
    }

    pub fn accept_watchers(&mut self, poller: &mut Poller, control: &TcpListener) {
        while let Ok((tcp, _)) = control.accept() {
            if tcp.set_nonblocking(true).is_err() {
                continue;
            }
            let index = self.watchers.len();
            if poller
                .add(&tcp, super::conns::token(WATCHER, index), READ)
                .is_ok()
            {
                self.watchers.push(Some(Watcher {
                    tcp,
                    input: Vec::new(),
                    out: Vec::new(),
                    sent: 0,
                }));
            }
        }
    }

    /// A watcher said something or closed. Commands ([`Command`]), one a line: `drop` closes
    /// every accepted connection at once, so that a measurement can watch the router reconnect
    /// to all of its endpoints together (the storm after a network blip or an endpoint-side
    /// restart); `down` and `up` make one endpoint flap (see `flap`).
    pub fn watcher_event(&mut self, poller: &mut Poller, index: usize) {
        let mut buf = [0u8; 4096];
        let mut commands = Vec::new();
        let gone = match self.watchers.get_mut(index) {
            Some(Some(w)) => match std::io::Read::read(&mut w.tcp, &mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    w.input.extend_from_slice(&buf[..n]);
                    let mut start = 0;
                    while let Some(nl) = memchr::memchr(b'\n', &w.input[start..]) {
                        commands.extend(Command::parse(&w.input[start..start + nl]));
                        start += nl + 1;
                    }
                    w.input.drain(..start);
                    // A watcher that never ends a line is not one of ours.
                    w.input.len() > 4096
                }
                Err(_) => false,
            },
            _ => false,
        };
        for command in commands {
            match command {
                Command::Drop => {
                    for slot in 0..self.slab.len() {
                        self.close(poller, slot);
                    }
                }
                Command::Down(i) => self.take_down(poller, i),
                Command::Up(i) => self.bring_up(poller, i),
            }
            // Say so at once: whoever asked waits for the counts to change.
            self.write_stats();
        }
        if gone {
            if let Some(Some(w)) = self.watchers.get_mut(index).map(Option::take) {
                poller.delete(&w.tcp);
            }
        }
    }

    pub fn write_stats(&mut self) {
        report::write_stats(
            &mut self.report,
            self.accepted,
            self.open,
            self.established,
            self.down,
            self.flaps,
        );
    }

    /// Hands the report lines gathered this turn to every watcher.
    pub fn publish(&mut self, _poller: &mut Poller) {
        for w in self.watchers.iter_mut().flatten() {
            if w.out.len() - w.sent + self.report.len() <= MAX_REPORT_BACKLOG {
                w.out.extend_from_slice(&self.report);
            }
            while w.sent < w.out.len() {
                match w.tcp.write(&w.out[w.sent..]) {
                    Ok(n) if n > 0 => w.sent += n,
                    _ => break,
                }
            }
            if w.sent == w.out.len() {
                w.out.clear();
                w.sent = 0;
            } else if w.sent > 1 << 20 {
                w.out.drain(..w.sent);
                w.sent = 0;
            }
        }
        self.report.clear();
    }
}
