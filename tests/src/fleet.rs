//! Thousands of MLLP endpoints on one thread: a monoio runtime with a listener per endpoint on
//! its own loopback address (loadgen's [`addr_for`], spread over 127/8 as a real directory of
//! many hosts would be), TLS optional on the router's own streams, answering AA with MSA-2 =
//! MSH-10 and recording what each received. Endpoints can be taken down (connections dropped,
//! new ones refused) and brought back, to test churn, or have their connections closed and
//! nothing else (a kick), to test reconnecting. What arrives is framed and answered by
//! [`loadgen::receiver`], as in loadgen's own fleet; the I/O differs on purpose (loadgen's is
//! epoll and rustls' buffered API, here the router's monoio streams are the server side too).
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codecs::hl7v2::AckCode;
use codecs::mllp;
use loadgen::directory::Proto;
use loadgen::fleet::addr_for;
use loadgen::receiver::{self, reply, Next, Whole};
use monoio::net::TcpListener;
use router::net::pool::{BufferPool, IO_BUFFER};
use router::net::stream::Stream;
use rustls::server::UnbufferedServerConnection;
use rustls::ServerConfig;

/// What one endpoint saw.
#[derive(Default)]
pub struct Seen {
    /// MSH-10 of every message, in arrival order.
    pub control_ids: Mutex<Vec<String>>,
    pub connections: AtomicUsize,
    /// Connections open right now: taking an endpoint down is done only when this reaches 0.
    pub live: AtomicUsize,
    pub down: AtomicBool,
    /// Bumped by [`Fleet::kick`]: connections accepted before the bump close.
    pub kicks: AtomicUsize,
}

impl Seen {
    /// Whether a connection accepted at kick generation `kicks` must close now.
    fn must_close(&self, kicks: usize) -> bool {
        self.down.load(Ordering::SeqCst) || self.kicks.load(Ordering::SeqCst) != kicks
    }
}

pub struct Fleet {
    pub addrs: Vec<SocketAddr>,
    pub seen: Arc<Vec<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fleet {
    /// Starts `count` endpoints (TLS when `tls` is given).
    pub fn start(count: usize, tls: Option<Arc<ServerConfig>>) -> Fleet {
        router::runtime::fdtable::raise_open_files_limit();
        let listeners: Vec<std::net::TcpListener> = (0..count)
            .map(|i| {
                let listener =
                    std::net::TcpListener::bind((addr_for(i), 0)).expect("bind endpoint");
                listener.set_nonblocking(true).expect("nonblocking");
                listener
            })
            .collect();
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr().expect("address"))
            .collect();
        let seen: Arc<Vec<Seen>> = Arc::new((0..count).map(|_| Seen::default()).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let driver = router::runtime::driver::DriverChoice::Auto
                .resolve()
                .expect("a driver");
            let mut runtime = router::runtime::driver::build_runtime(driver).expect("runtime");
            runtime.block_on(async move {
                let pool = Rc::new(BufferPool::new(IO_BUFFER, 256));
                for (i, listener) in listeners.into_iter().enumerate() {
                    let listener = TcpListener::from_std(listener).expect("monoio listener");
                    monoio::spawn(serve(
                        listener,
                        i,
                        Arc::clone(&seen2),
                        tls.clone(),
                        Rc::clone(&pool),
                    ));
                }
                while !stop2.load(Ordering::SeqCst) {
                    monoio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        });
        Fleet {
            addrs,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Connections accepted so far, over every endpoint.
    pub fn connections(&self) -> usize {
        self.seen
            .iter()
            .map(|s| s.connections.load(Ordering::SeqCst))
            .sum()
    }

    /// Messages received so far, over every endpoint.
    pub fn received(&self) -> usize {
        self.seen
            .iter()
            .map(|s| s.control_ids.lock().map(|v| v.len()).unwrap_or(0))
            .sum()
    }

    /// Takes endpoint `i` down (its connections close, new ones are refused) or brings it back.
    /// The connections close asynchronously: see [`Fleet::open_connections`].
    pub fn set_down(&self, i: usize, down: bool) {
        if let Some(seen) = self.seen.get(i) {
            seen.down.store(down, Ordering::SeqCst);
        }
    }

    /// Closes endpoint `i`'s connections (asynchronously) and goes on accepting new ones.
    pub fn kick(&self, i: usize) {
        if let Some(seen) = self.seen.get(i) {
            seen.kicks.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Connections endpoint `i` holds open now.
    pub fn open_connections(&self, i: usize) -> usize {
        self.seen
            .get(i)
            .map_or(0, |s| s.live.load(Ordering::SeqCst))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    i: usize,
    seen: Arc<Vec<Seen>>,
    tls: Option<Arc<ServerConfig>>,
    pool: Rc<BufferPool>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        if seen[i].down.load(Ordering::SeqCst) {
            drop(tcp);
            continue;
        }
        seen[i].connections.fetch_add(1, Ordering::SeqCst);
        seen[i].live.fetch_add(1, Ordering::SeqCst);
        let kicks = seen[i].kicks.load(Ordering::SeqCst);
        let stream = match &tls {
            Some(config) => match UnbufferedServerConnection::new(Arc::clone(config)) {
                Ok(conn) => Stream::tls(tcp, conn),
                Err(_) => {
                    seen[i].live.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
            },
            None => Stream::Plain(tcp),
        };
        monoio::spawn(connection(
            stream,
            (i, kicks),
            Arc::clone(&seen),
            Rc::clone(&pool),
        ));
    }
}

/// Serves one connection of endpoint `i`, accepted at kick generation `kicks`.
async fn connection(
    stream: Stream,
    (i, kicks): (usize, usize),
    seen: Arc<Vec<Seen>>,
    pool: Rc<BufferPool>,
) {
    serve_connection(stream, &seen[i], kicks, &pool).await;
    seen[i].live.fetch_sub(1, Ordering::SeqCst);
}

async fn serve_connection(mut stream: Stream, seen: &Seen, kicks: usize, pool: &BufferPool) {
    if stream.handshake(pool).await.is_err() {
        return;
    }
    let mut decoder = mllp::Decoder::new(1 << 20);
    let mut input = Vec::new();
    let mut acks = Vec::new();
    loop {
        // Wake now and then to notice being taken down.
        match monoio::time::timeout(Duration::from_millis(50), stream.readable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                if seen.must_close(kicks) {
                    return;
                }
                continue;
            }
        }
        if seen.must_close(kicks) {
            return;
        }
        match stream.read_into(&mut input, pool).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut at = 0;
        acks.clear();
        loop {
            match receiver::next(Proto::Mllp, &mut decoder, &input[at..]) {
                Next::Whole(Whole { consumed, body, .. }) => {
                    let frame = &input[at..][body];
                    if let Some(id) = reply::hl7_ack(frame, AckCode::AA, &mut acks) {
                        if let Ok(mut ids) = seen.control_ids.lock() {
                            ids.push(String::from_utf8_lossy(id).into_owned());
                        }
                    }
                    at += consumed;
                }
                Next::TooLarge { consumed } => at += consumed,
                Next::Partial { consumed } => {
                    at += consumed;
                    break;
                }
                Next::Malformed => return,
            }
        }
        input.drain(..at);
        if !acks.is_empty() && stream.write_all(&acks, pool).await.is_err() {
            return;
        }
    }
}
