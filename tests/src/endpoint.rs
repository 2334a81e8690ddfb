//! Endpoints that stand in for hospital systems: real sockets, real (optional) TLS, and a
//! script that says how to answer each message. Everything they receive is recorded. A thread
//! per connection, blocking: few connections, and a script may take its time. Messages are
//! framed and answered by [`loadgen::receiver`], as in loadgen's fleet.
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codecs::hl7v2::{AckCode, Message};
use codecs::{http1, mllp};
use loadgen::directory::Proto;
use loadgen::receiver::{self, reply, Next, Whole};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How an MLLP endpoint answers the n-th message it receives (counted from 0 over all
/// connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An ACK with this code and MSA-2 = the message's MSH-10.
    Ack(AckCode),
    /// An AA that acknowledges some other message.
    WrongId,
    /// Close the connection without answering.
    Close,
    /// Say nothing (the sender times out).
    Silent,
    /// First the AA of every message received earlier on this connection again, then an ACK
    /// with this code for this one: a server seen in the field that replays its history.
    ReplayingEarlier(AckCode),
}

/// How an ITK endpoint answers: HTTP status and body.
pub type HttpReply = (u16, Vec<u8>);

/// A test's answer to the n-th message, given its bytes.
type Answer<R> = Arc<dyn Fn(usize, &[u8]) -> R + Send + Sync>;

/// How an endpoint answers, by protocol.
#[derive(Clone)]
enum Script {
    Mllp(Answer<Reply>),
    Itk(Answer<HttpReply>),
}

impl Script {
    fn proto(&self) -> Proto {
        match self {
            Script::Mllp(_) => Proto::Mllp,
            Script::Itk(_) => Proto::Itk,
        }
    }
}

/// What a script's answer comes to on the connection.
enum Then {
    Continue,
    Close,
}

/// What an endpoint received, in order.
#[derive(Clone, Default)]
pub struct Inbox {
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: Arc<AtomicUsize>,
}

impl Inbox {
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.messages.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` until at least `n` messages have arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.len() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn push(&self, message: Vec<u8>) -> usize {
        let mut all = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        all.push(message);
        all.len() - 1
    }
}

/// A running endpoint; stops when dropped.
pub struct Endpoint {
    pub addr: SocketAddr,
    pub inbox: Inbox,
    stop: Arc<AtomicBool>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Endpoint {
    /// An MLLP endpoint on a fresh loopback port.
    pub fn mllp(
        tls: Option<Arc<ServerConfig>>,
        script: impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static,
    ) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind endpoint");
        Endpoint::mllp_on(listener, tls, script)
    }

    /// An MLLP endpoint on a socket the test bound (to come up on a known port later).
    pub fn mllp_on(
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        script: impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static,
    ) -> Endpoint {
        serve(listener, tls, Script::Mllp(Arc::new(script)))
    }

    /// An ITK (HTTP) endpoint on a fresh loopback port.
    pub fn itk(
        tls: Option<Arc<ServerConfig>>,
        script: impl Fn(usize, &[u8]) -> HttpReply + Send + Sync + 'static,
    ) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind endpoint");
        serve(listener, tls, Script::Itk(Arc::new(script)))
    }
}

/// A blocking connection, plain or TLS.
pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

fn serve(listener: TcpListener, tls: Option<Arc<ServerConfig>>, script: Script) -> Endpoint {
    let addr = listener.local_addr().expect("endpoint address");
    listener.set_nonblocking(true).expect("nonblocking accept");
    let inbox = Inbox::default();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let inbox = inbox.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        inbox.connections.fetch_add(1, Ordering::SeqCst);
                        let _ = tcp.set_nonblocking(false);
                        let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
                        let (inbox, stop, script, tls) = (
                            inbox.clone(),
                            Arc::clone(&stop),
                            script.clone(),
                            tls.clone(),
                        );
                        std::thread::spawn(move || {
                            let conn: Box<dyn Conn> = match tls {
                                Some(config) => match ServerConnection::new(config) {
                                    Ok(server) => Box::new(StreamOwned::new(server, tcp)),
                                    Err(_) => return,
                                },
                                None => Box::new(tcp),
                            };
                            let conn: Box<dyn Conn> = Box::new(Stoppable { inner: conn, stop });
                            let _ = answer_connection(conn, &inbox, &script);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }
    Endpoint { addr, inbox, stop }
}

/// A connection whose reads retry on timeout until the endpoint is stopped, so that idle
/// connections notice a stop without blocking forever.
struct Stoppable {
    inner: Box<dyn Conn>,
    stop: Arc<AtomicBool>,
}

impl Read for Stoppable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(0);
            }
            match self.inner.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                other => return other,
            }
        }
    }
}

impl Write for Stoppable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Answers every message on one connection, as the script says, until the sender or the
/// script closes it.
fn answer_connection(mut conn: Box<dyn Conn>, inbox: &Inbox, script: &Script) -> io::Result<()> {
    let mut decoder = mllp::Decoder::new(64 * 1024 * 1024);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // Messages received on this connection, for `Reply::ReplayingEarlier`.
    let mut earlier: Vec<Vec<u8>> = Vec::new();
    loop {
        let Whole {
            consumed,
            body,
            keep_alive,
        } = match receiver::next(script.proto(), &mut decoder, &buf) {
            Next::Whole(whole) => whole,
            Next::Partial { consumed } | Next::TooLarge { consumed } => {
                buf.drain(..consumed);
                let n = conn.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
                continue;
            }
            Next::Malformed => return Err(io::ErrorKind::InvalidData.into()),
        };
        let mut out = Vec::new();
        let then = match script {
            Script::Mllp(script) => {
                let frame = &buf[body];
                let index = inbox.push(frame.to_vec());
                let then = mllp_reply(script(index, frame), frame, &earlier, &mut out);
                earlier.push(frame.to_vec());
                then
            }
            Script::Itk(script) => {
                // The whole request, head included, so tests can check headers too.
                let index = inbox.push(buf[..body.end].to_vec());
                let (status, reply) = script(index, &buf[body]);
                reply::http(status, &reply, keep_alive, &mut out)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if keep_alive {
                    Then::Continue
                } else {
                    Then::Close
                }
            }
        };
        buf.drain(..consumed);
        conn.write_all(&out)?;
        conn.flush()?;
        if let Then::Close = then {
            return Ok(());
        }
    }
}

/// What `reply` to `frame` writes to `out`; `earlier` are the messages this connection had
/// before it.
fn mllp_reply(reply: Reply, frame: &[u8], earlier: &[Vec<u8>], out: &mut Vec<u8>) -> Then {
    match reply {
        Reply::Ack(code) => {
            reply::hl7_ack(frame, code, out);
        }
        Reply::WrongId => {
            reply::hl7_ack(SOMEONE_ELSE, AckCode::AA, out);
        }
        Reply::Close => return Then::Close,
        Reply::Silent => {}
        Reply::ReplayingEarlier(code) => {
            for old in earlier {
                reply::hl7_ack(old, AckCode::AA, out);
            }
            reply::hl7_ack(frame, code, out);
        }
    }
    Then::Continue
}

/// The message a [`Reply::WrongId`] acknowledges instead.
const SOMEONE_ELSE: &[u8] =
    b"MSH|^~\\&|EPR|RX8|PAS|RX8|20261125000000||ADT^A01^ADT_A01|SOMEONE-ELSE|P|2.4\r";

/// A TCP connection to `addr` from the local address `local` (port chosen by the kernel).
pub fn tcp_from(local: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(local, 0).into())?;
    socket.connect(&addr.into())?;
    Ok(socket.into())
}

/// A sender's MLLP connection to the router.
pub struct Sender {
    conn: Box<dyn Conn>,
    decoder: mllp::Decoder,
    buf: Vec<u8>,
    local: Option<SocketAddr>,
}

impl Sender {
    pub fn connect(addr: SocketAddr) -> io::Result<Sender> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let local = tcp.local_addr().ok();
        Ok(Sender {
            local,
            ..Sender::over(Box::new(tcp))
        })
    }

    /// As [`Sender::connect`], from the loopback address `local` (`127.0.0.2`, …): another
    /// peer, as far as the router can tell.
    pub fn connect_from(local: IpAddr, addr: SocketAddr) -> io::Result<Sender> {
        let tcp = tcp_from(local, addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Sender::over(Box::new(tcp)))
    }

    pub fn over(conn: Box<dyn Conn>) -> Sender {
        Sender {
            conn,
            decoder: mllp::Decoder::new(1 << 20),
            buf: Vec::new(),
            local: None,
        }
    }

    /// The sender's own address (as the router's logs name it), for plain connections.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Sends raw bytes (framing included).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.write_all(bytes)?;
        self.conn.flush()
    }

    /// Sends `message` in an MLLP frame.
    pub fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let mut framed = Vec::new();
        mllp::encode(message, &mut framed);
        self.send_raw(&framed)
    }

    /// The next ACK's payload.
    pub fn ack(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let decoded = self.decoder.decode(&self.buf);
            let frame = match decoded.event {
                Some(mllp::Event::Frame(frame)) => Some(frame.to_vec()),
                _ => None,
            };
            self.buf.drain(..decoded.consumed);
            if let Some(frame) = frame {
                return Ok(frame);
            }
            let n = self.conn.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `message` and returns its ACK.
    pub fn exchange(&mut self, message: &[u8]) -> io::Result<Vec<u8>> {
        self.send(message)?;
        self.ack()
    }
}

/// MSA-1 and MSA-2 of an ACK.
pub fn msa(ack: &[u8]) -> (String, String) {
    let parsed = Message::parse(ack).expect("ACK parses");
    let msa = parsed.segment(b"MSA").expect("ACK has MSA");
    let field = |n: usize| {
        String::from_utf8_lossy(msa.field(n).map(|f| f.raw()).unwrap_or_default()).into_owned()
    };
    (field(1), field(2))
}

/// A sender's HTTP/1.1 connection to the router (keep-alive).
pub struct HttpClient {
    conn: Box<dyn Conn>,
    buf: Vec<u8>,
    local: Option<SocketAddr>,
}

/// An HTTP response as the client saw it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub keep_alive: bool,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl HttpClient {
    pub fn connect(addr: SocketAddr) -> io::Result<HttpClient> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let local = tcp.local_addr().ok();
        let mut client = HttpClient::over(Box::new(tcp));
        client.local = local;
        Ok(client)
    }

    pub fn over(conn: Box<dyn Conn>) -> HttpClient {
        HttpClient {
            local: None,
            conn,
            buf: Vec::new(),
        }
    }

    /// The client's own address (as the router's logs name it).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// POSTs `body` with `SOAPAction: "action"` and returns the response.
    pub fn post(&mut self, path: &str, action: &str, body: &[u8]) -> io::Result<HttpResponse> {
        let mut request = Vec::new();
        let spec = http1::PostSpec {
            path,
            host: "ganglion",
            soap_action: action,
            content_type: "text/xml; charset=utf-8",
            keep_alive: true,
        };
        http1::write_post(&mut request, &spec, body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.send_raw(&request)?;
        self.response()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.write_all(bytes)?;
        self.conn.flush()
    }

    /// Reads the next response (Content-Length framed, as the router sends).
    pub fn response(&mut self) -> io::Result<HttpResponse> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let parsed = {
                let mut headers = [http1::EMPTY_HEADER; 64];
                http1::parse_response(&self.buf, &mut headers, &http1::Limits::default())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                    .map(|h| (h.status, h.head_len, h.framing, h.keep_alive))
            };
            if let Some((status, head_len, framing, keep_alive)) = parsed {
                let len = match framing {
                    http1::BodyFraming::Length(n) => n as usize,
                    _ => 0,
                };
                if self.buf.len() >= head_len + len {
                    let body = self.buf[head_len..head_len + len].to_vec();
                    self.buf.drain(..head_len + len);
                    return Ok(HttpResponse {
                        status,
                        keep_alive,
                        body,
                    });
                }
            }
            let n = self.conn.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The body of an HTTP request as an endpoint recorded it (head and body together).
pub fn request_body(request: &[u8]) -> &[u8] {
    match request.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => &request[at + 4..],
        None => &[],
    }
}

/// A loopback address with nothing listening on it (yet): an endpoint that is down, which a
/// test may bring up there later. The port was the kernel's to give and was given back.
pub fn unused_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}
