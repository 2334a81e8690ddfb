//! The admin address: `/healthz`, `/readyz`, `/metrics` and `POST /reload`.
//!
//! Served by one plain thread with blocking sockets: it answers operators and scrapers a few
//! times a minute, so it stays off the shards entirely and cannot disturb message traffic.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codecs::http1;

use super::reload::ReloadOutcome;
use crate::metrics::Metrics;
use crate::shard::Routing;

/// A `POST /reload` waiting for the control thread.
pub struct ReloadRequest {
    reply: Sender<ReloadOutcome>,
}

impl ReloadRequest {
    pub fn answer(self, outcome: ReloadOutcome) {
        let _ = self.reply.send(outcome);
    }
}

/// The control thread's end of the admin server.
pub struct Admin {
    requests: Receiver<ReloadRequest>,
    pub routing: Arc<Mutex<Arc<Routing>>>,
    pub address: SocketAddr,
}

impl Admin {
    /// A reload asked for through the admin address, if any.
    pub fn next_request(&self) -> Option<ReloadRequest> {
        self.requests.try_recv().ok()
    }
}

/// Binds `address` and serves it on its own thread.
pub fn start(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    routing: Arc<Routing>,
) -> io::Result<Admin> {
    let listener = TcpListener::bind(address)?;
    let address = listener.local_addr()?;
    println!("listening name=admin protocol=http addr={address}");
    let (send, requests) = mpsc::channel();
    let routing = Arc::new(Mutex::new(routing));
    let shared = Arc::clone(&routing);
    std::thread::Builder::new()
        .name("ganglion-admin".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = serve(stream, &metrics, &shared, &send) {
                    log::debug!("admin: {e}");
                }
            }
        })?;
    Ok(Admin {
        requests,
        routing,
        address,
    })
}

fn serve(
    mut stream: TcpStream,
    metrics: &Metrics,
    routing: &Mutex<Arc<Routing>>,
    reloads: &Sender<ReloadRequest>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let limits = http1::Limits {
        max_body: 0,
        ..http1::Limits::default()
    };
    let (method, target) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [http1::EMPTY_HEADER; 32];
        match http1::parse_request(&buf, &mut headers, &limits) {
            Ok(Some(head)) => break (head.method.to_string(), head.target.to_string()),
            Ok(None) => continue,
            Err(e) => {
                let mut out = Vec::new();
                http1::write_error_response(&mut out, &e);
                return stream.write_all(&out);
            }
        }
    };
    let (status, body) = match (method.as_str(), target.as_str()) {
        ("GET", "/healthz") => (200, "ok\n".to_string()),
        ("GET", "/readyz") => (200, "ready\n".to_string()),
        ("GET", "/metrics") => {
            let current = Arc::clone(&routing.lock().unwrap_or_else(|p| p.into_inner()));
            let queued = current
                .endpoints
                .iter()
                .map(|h| u64::from(h.queued.load(Ordering::Relaxed)))
                .sum();
            (200, metrics.render(queued))
        }
        ("POST", "/reload") => {
            let (reply, outcome) = mpsc::channel();
            let _ = reloads.send(ReloadRequest { reply });
            match outcome.recv_timeout(Duration::from_secs(60)) {
                Ok(ReloadOutcome::Applied { .. }) => (200, "reload applied\n".to_string()),
                Ok(ReloadOutcome::Invalid(diagnostics)) => (422, diagnostics.join("\n") + "\n"),
                Ok(ReloadOutcome::Aborted(why)) => (409, why + "\n"),
                Err(_) => (503, "the router did not answer in time\n".to_string()),
            }
        }
        _ => (404, "not found\n".to_string()),
    };
    let mut out = Vec::new();
    let spec = http1::ResponseSpec {
        status,
        content_type: "text/plain; version=0.0.4",
        keep_alive: false,
    };
    http1::write_response(&mut out, &spec, body.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    stream.write_all(&out)
}
