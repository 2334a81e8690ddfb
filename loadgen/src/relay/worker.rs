//! One relay thread's event loop: its senders, its endpoints, its inbox.
use std::collections::{BTreeMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use codecs::{http1, mllp};

use super::{Cmd, Inbox, Keys, Origin};
use crate::directory::Proto;
use crate::net::{Conn, Got};
use crate::poll::{Flags, Poller, READ, READ_WRITE};

const L_MLLP: u64 = 1 << 60;
const L_ITK: u64 = 2 << 60;
const WAKE: u64 = 3 << 60;
const SENDER: u64 = 4 << 60;
const ENDPOINT: u64 = 5 << 60;
const KIND: u64 = 0xF << 60;

struct SConn {
    conn: Conn,
    http: bool,
    gen: u32,
    decoder: mllp::Decoder,
    next_order: u64,
    next_out: u64,
    ready: BTreeMap<u64, Vec<u8>>,
    writing: bool,
}

struct EConn {
    index: usize,
    http: bool,
    conn: Option<Conn>,
    decoder: mllp::Decoder,
    queue: VecDeque<(Origin, Vec<u8>)>,
    in_flight: Option<Origin>,
    writing: bool,
}

pub struct Worker {
    me: usize,
    threads: usize,
    keys: Arc<Keys>,
    inboxes: Arc<Vec<Inbox>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    mllp: TcpListener,
    itk: TcpListener,
    poller: Poller,
    senders: Vec<Option<SConn>>,
    free: Vec<usize>,
    gens: u32,
    endpoints: Vec<EConn>,
    outbox: Vec<Vec<Cmd>>,
    dirty_s: Vec<usize>,
    dirty_e: Vec<usize>,
}

fn msh6(frame: &[u8]) -> Option<&[u8]> {
    let start = memchr::memmem::find(frame, b"MSH")?;
    let msh = frame.get(start..)?;
    let sep = *msh.get(3)?;
    let comp = *msh.get(4)?;
    let end = memchr::memchr2(b'\r', b'\n', msh).unwrap_or(msh.len());
    let field = msh[..end].split(|&b| b == sep).nth(5)?;
    Some(field.split(|&b| b == comp).next().unwrap_or(field))
}

fn itk_address(body: &[u8]) -> Option<&[u8]> {
    let open = b"<itk:address uri=\"";
    let at = memchr::memmem::find(body, open)? + open.len();
    let len = memchr::memchr(b'"', body.get(at..)?)?;
    body.get(at..at + len)
}

impl Worker {
    pub fn new(
        me: usize,
        threads: usize,
        keys: Arc<Keys>,
        inboxes: Arc<Vec<Inbox>>,
        tls: Option<Arc<rustls::ClientConfig>>,
        mllp: TcpListener,
        itk: TcpListener,
    ) -> anyhow::Result<Worker> {
        let poller = Poller::new(1024)?;
        poller.add(&mllp, L_MLLP, READ)?;
        poller.add(&itk, L_ITK, READ)?;
        if let Some(inbox) = inboxes.get(me) {
            poller.add(&inbox.wake, WAKE, READ)?;
        }
        let endpoints = keys
            .rows
            .iter()
            .filter(|r| r.index % threads == me)
            .map(|r| EConn {
                index: r.index,
                http: r.proto == Proto::Itk,
                conn: None,
                decoder: mllp::Decoder::new(16 << 20),
                queue: VecDeque::new(),
                in_flight: None,
                writing: false,
            })
            .collect();
        Ok(Worker {
            me,
            threads,
            keys,
            inboxes,
            tls,
            mllp,
            itk,
            poller,
            senders: Vec::new(),
            free: Vec::new(),
            gens: 0,
            endpoints,
            outbox: (0..threads).map(|_| Vec::new()).collect(),
            dirty_s: Vec::new(),
            dirty_e: Vec::new(),
        })
    }

    /// Opens every owned endpoint's connection now (prewarm), as the router is asked to.
    pub fn connect_all(&mut self) {
        for local in 0..self.endpoints.len() {
            self.connect(local);
        }
    }

    fn connect(&mut self, local: usize) {
        let Some(e) = self.endpoints.get_mut(local) else {
            return;
        };
        let Some(row) = self
            .keys
            .rows
            .iter()
            .find(|r| r.index == e.index)
            .or_else(|| self.keys.rows.get(e.index))
        else {
            return;
        };
        let Ok(tcp) = TcpStream::connect(row.addr) else {
            return;
        };
        let _ = tcp.set_nodelay(true);
        if tcp.set_nonblocking(true).is_err() {
            return;
        }
        let conn = match (&self.tls, row.tls) {
            (Some(config), true) => {
                let Ok(name) = rustls::pki_types::ServerName::try_from(row.server_name()) else {
                    return;
                };
                match rustls::ClientConnection::new(Arc::clone(config), name) {
                    Ok(c) => Conn::tls(tcp, rustls::Connection::Client(c)),
                    Err(_) => return,
                }
            }
            _ => Conn::plain(tcp),
        };
        if self
            .poller
            .add(&conn.tcp, ENDPOINT | local as u64, READ_WRITE)
            .is_ok()
        {
            e.conn = Some(conn);
            e.writing = true;
            e.decoder = mllp::Decoder::new(16 << 20);
        }
    }

    pub fn run(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        while !stop.load(Ordering::Relaxed) {
            let events = self.poller.wait(Some(100))?;
            for (token, flags) in events {
                match token & KIND {
                    L_MLLP => self.accept(false),
                    L_ITK => self.accept(true),
                    WAKE => self.take_inbox(),
                    SENDER => self.sender_event(token),
                    ENDPOINT => self.endpoint_event((token & !KIND) as usize, flags),
                    _ => {}
                }
            }
            self.post();
            self.flush_dirty();
        }
        Ok(())
    }

    fn accept(&mut self, http: bool) {
        loop {
            let listener = if http { &self.itk } else { &self.mllp };
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            if tcp.set_nonblocking(true).is_err() {
                continue;
            }
            let slot = self.free.pop().unwrap_or_else(|| {
                self.senders.push(None);
                self.senders.len() - 1
            });
            self.gens = self.gens.wrapping_add(1);
            let gen = self.gens & 0xFF_FFFF;
            if self
                .poller
                .add(&tcp, SENDER | (u64::from(gen) << 32) | slot as u64, READ)
                .is_err()
            {
                self.free.push(slot);
                continue;
            }
            self.senders[slot] = Some(SConn {
                conn: Conn::plain(tcp),
                http,
                gen,
                decoder: mllp::Decoder::new(64 << 20),
                next_order: 0,
                next_out: 0,
                ready: BTreeMap::new(),
                writing: false,
            });
        }
    }

    fn take_inbox(&mut self) {
        let Some(inbox) = self.inboxes.get(self.me) else {
            return;
        };
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&inbox.wake, &mut buf);
        inbox.notified.store(false, Ordering::SeqCst);
        let cmds = match inbox.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for cmd in cmds {
            match cmd {
                Cmd::Forward {
                    endpoint,
                    from,
                    bytes,
                } => self.enqueue(endpoint, from, bytes),
                Cmd::Reply { to, bytes } => self.reply(to, bytes),
            }
        }
    }

    /// Hands other threads their work: one lock and at most one wake-up each per turn.
    fn post(&mut self) {
        for (t, cmds) in self.outbox.iter_mut().enumerate() {
            if cmds.is_empty() {
                continue;
            }
            let Some(inbox) = self.inboxes.get(t) else {
                continue;
            };
            match inbox.queue.lock() {
                Ok(mut q) => q.append(cmds),
                Err(p) => p.into_inner().append(cmds),
            }
            if !inbox.notified.swap(true, Ordering::SeqCst) {
                let _ = rustix::io::write(&inbox.wake, &1u64.to_ne_bytes());
            }
        }
    }

    fn sender_event(&mut self, token: u64) {
        let slot = (token & 0xFFFF_FFFF) as usize;
        let gen = ((token >> 32) & 0xFF_FFFF) as u32;
        let Some(Some(s)) = self.senders.get_mut(slot) else {
            return;
        };
        if s.gen != gen {
            return;
        }
        let open = matches!(s.conn.read(), Ok(Got::Open));
        let mut jobs: Vec<(Option<usize>, Origin, Vec<u8>)> = Vec::new();
        let me = self.me;
        loop {
            let origin = Origin {
                thread: me,
                slot,
                gen,
                order: s.next_order,
            };
            if s.http {
                let mut headers = [http1::EMPTY_HEADER; 32];
                let (head_len, framing) = match http1::parse_request(
                    &s.conn.input,
                    &mut headers,
                    &http1::Limits::default(),
                ) {
                    Ok(Some(h)) => (h.head_len, h.framing),
                    _ => break,
                };
                let len = match framing {
                    http1::BodyFraming::Length(n) => n as usize,
                    _ => 0,
                };
                if s.conn.input.len() < head_len + len {
                    break;
                }
                let request: Vec<u8> = s.conn.input.drain(..head_len + len).collect();
                let endpoint = itk_address(&request[head_len..])
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|a| self.keys.by_address.get(a).copied());
                s.next_order += 1;
                jobs.push((endpoint, origin, request));
            } else {
                let decoded = s.decoder.decode(&s.conn.input);
                let consumed = decoded.consumed;
                let job = match decoded.event {
                    Some(mllp::Event::Frame(frame)) => {
                        let endpoint = msh6(frame)
                            .and_then(|f| std::str::from_utf8(f).ok())
                            .and_then(|f| self.keys.by_facility.get(f).copied());
                        // Forward the frame exactly as it came, framing included.
                        let start = consumed - frame.len() - 3;
                        Some((endpoint, s.conn.input[start..consumed].to_vec()))
                    }
                    Some(mllp::Event::TooLarge { .. }) => None,
                    None => {
                        s.conn.input.drain(..consumed);
                        break;
                    }
                };
                s.conn.input.drain(..consumed);
                if let Some((endpoint, bytes)) = job {
                    s.next_order += 1;
                    jobs.push((endpoint, origin, bytes));
                }
            }
        }
        if !open {
            if let Some(Some(s)) = self.senders.get_mut(slot).map(Option::take) {
                self.poller.delete(&s.conn.tcp);
                self.free.push(slot);
            }
        }
        for (endpoint, origin, bytes) in jobs {
            match endpoint {
                Some(e) => self.route(e, origin, bytes),
                None => self.reply(origin, unroutable(origin, &bytes)),
            }
        }
    }

    fn route(&mut self, endpoint: usize, from: Origin, bytes: Vec<u8>) {
        let owner = endpoint % self.threads;
        if owner == self.me {
            self.enqueue(endpoint, from, bytes);
        } else if let Some(out) = self.outbox.get_mut(owner) {
            out.push(Cmd::Forward {
                endpoint,
                from,
                bytes,
            });
        }
    }

    fn enqueue(&mut self, endpoint: usize, from: Origin, bytes: Vec<u8>) {
        let local = endpoint / self.threads;
        let Some(e) = self.endpoints.get_mut(local) else {
            return;
        };
        e.queue.push_back((from, bytes));
        if e.in_flight.is_none() {
            self.dispatch(local);
        }
    }

    /// Sends the endpoint's next message when nothing is in flight.
    fn dispatch(&mut self, local: usize) {
        if self.endpoints.get(local).is_some_and(|e| e.conn.is_none()) {
            self.connect(local);
        }
        let Some(e) = self.endpoints.get_mut(local) else {
            return;
        };
        if e.in_flight.is_some() {
            return;
        }
        let Some(conn) = e.conn.as_mut() else { return };
        let Some((from, bytes)) = e.queue.pop_front() else {
            return;
        };
        conn.queue(&bytes);
        e.in_flight = Some(from);
        self.dirty_e.push(local);
    }

    fn endpoint_event(&mut self, local: usize, flags: Flags) {
        let Some(e) = self.endpoints.get_mut(local) else {
            return;
        };
        let Some(conn) = e.conn.as_mut() else { return };
        if flags.contains(Flags::OUT) {
            self.dirty_e.push(local);
        }
        let open = matches!(conn.read(), Ok(Got::Open));
        let mut answer = None;
        if e.http {
            let mut headers = [http1::EMPTY_HEADER; 32];
            if let Ok(Some(h)) =
                http1::parse_response(&conn.input, &mut headers, &http1::Limits::default())
            {
                let len = match h.framing {
                    http1::BodyFraming::Length(n) => n as usize,
                    _ => 0,
                };
                let total = h.head_len + len;
                if conn.input.len() >= total {
                    answer = Some(conn.input.drain(..total).collect::<Vec<u8>>());
                }
            }
        } else {
            let decoded = e.decoder.decode(&conn.input);
            let consumed = decoded.consumed;
            if let Some(mllp::Event::Frame(frame)) = decoded.event {
                let start = consumed - frame.len() - 3;
                answer = Some(conn.input[start..consumed].to_vec());
            }
            conn.input.drain(..consumed);
        }
        if !open {
            if let Some(c) = e.conn.take() {
                self.poller.delete(&c.tcp);
            }
            // The message in flight was not answered: send it back to its sender as failed
            // rather than retry (a relay has no store to retry from).
            if answer.is_none() {
                if let Some(from) = e.in_flight.take() {
                    let http = e.http;
                    self.reply(from, failure(http));
                }
            }
        }
        if let Some(bytes) = answer {
            if let Some(e) = self.endpoints.get_mut(local) {
                if let Some(from) = e.in_flight.take() {
                    self.send_reply(from, bytes);
                }
            }
            self.dispatch(local);
        } else if !open {
            self.dispatch(local);
        }
    }

    fn send_reply(&mut self, to: Origin, bytes: Vec<u8>) {
        if to.thread == self.me {
            self.reply(to, bytes);
        } else if let Some(out) = self.outbox.get_mut(to.thread) {
            out.push(Cmd::Reply { to, bytes });
        }
    }

    /// Writes an answer to a sender of this thread (HTTP answers in request order).
    fn reply(&mut self, to: Origin, bytes: Vec<u8>) {
        if to.thread != self.me {
            self.send_reply(to, bytes);
            return;
        }
        let Some(Some(s)) = self.senders.get_mut(to.slot) else {
            return;
        };
        if s.gen != to.gen {
            return;
        }
        if s.http {
            s.ready.insert(to.order, bytes);
            while let Some(b) = s.ready.remove(&s.next_out) {
                s.conn.queue(&b);
                s.next_out += 1;
            }
        } else {
            s.conn.queue(&bytes);
        }
        if !self.dirty_s.contains(&to.slot) {
            self.dirty_s.push(to.slot);
        }
    }

    fn flush_dirty(&mut self) {
        for slot in std::mem::take(&mut self.dirty_s) {
            let Some(Some(s)) = self.senders.get_mut(slot) else {
                continue;
            };
            let _ = s.conn.flush();
            let want = s.conn.wants_write();
            if want != s.writing {
                s.writing = want;
                let token = SENDER | (u64::from(s.gen) << 32) | slot as u64;
                let _ =
                    self.poller
                        .modify(&s.conn.tcp, token, if want { READ_WRITE } else { READ });
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty_e);
        dirty.sort_unstable();
        dirty.dedup();
        for local in dirty {
            let Some(e) = self.endpoints.get_mut(local) else {
                continue;
            };
            let Some(conn) = e.conn.as_mut() else {
                continue;
            };
            let _ = conn.flush();
            let want = conn.wants_write() || conn.is_handshaking();
            if want != e.writing {
                e.writing = want;
                let _ = self.poller.modify(
                    &conn.tcp,
                    ENDPOINT | local as u64,
                    if want { READ_WRITE } else { READ },
                );
            }
        }
    }
}

/// What a sender gets for a message no endpoint takes.
fn unroutable(origin: Origin, bytes: &[u8]) -> Vec<u8> {
    let _ = origin;
    if bytes.first() == Some(&mllp::START) {
        let mut out = Vec::new();
        let frame = bytes
            .get(1..bytes.len().saturating_sub(2))
            .unwrap_or_default();
        crate::fleet::answer::hl7_ack(frame, crate::fleet::answer::Outcome::Reject, &mut out);
        out
    } else {
        failure(true)
    }
}

fn failure(http: bool) -> Vec<u8> {
    if http {
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n".to_vec()
    } else {
        let mut out = Vec::new();
        crate::fleet::answer::hl7_ack(b"", crate::fleet::answer::Outcome::Error, &mut out);
        out
    }
}
