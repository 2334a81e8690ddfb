//! The admin address: `/healthz`, `/readyz`, `/metrics`, `POST /reload` (`?allow_empty=1` to
//! take a file that closes every listener or drops every route), and the dead letters:
//! `GET /dead-letters`, `GET /dead-letters/ID`, `POST /dead-letters/ID/replay`,
//! `POST /dead-letters/ID/drop`.
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
use crate::deadletter::{json, DeadLetterId, DeadLetterStore};
use crate::metrics::Metrics;
use crate::shard::Routing;

/// Something only the control thread can do, asked for through the admin address.
pub enum AdminRequest {
    /// `allow_empty`: take a file that closes every listener or drops every route.
    Reload {
        allow_empty: bool,
        reply: Sender<ReloadOutcome>,
    },
    /// Put a dead letter's message back in the log and on its way; the reply says how it went.
    Replay {
        id: DeadLetterId,
        reply: Sender<Result<String, String>>,
    },
}

/// The control thread's end of the admin server.
pub struct Admin {
    requests: Receiver<AdminRequest>,
    pub routing: Arc<Mutex<Arc<Routing>>>,
    pub address: SocketAddr,
}

impl Admin {
    /// A request made through the admin address, if any.
    pub fn next_request(&self) -> Option<AdminRequest> {
        self.requests.try_recv().ok()
    }
}

/// Binds `address` and serves it on its own thread.
pub fn start(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    routing: Arc<Routing>,
    dead_letters: Arc<DeadLetterStore>,
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
                if let Err(e) = serve(stream, &metrics, &shared, &dead_letters, &send) {
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
    dead_letters: &DeadLetterStore,
    requests: &Sender<AdminRequest>,
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
        ("GET", "/dead-letters") => list_dead_letters(dead_letters),
        (method, path) if path.starts_with("/dead-letters/") => dead_letter(
            method,
            &path["/dead-letters/".len()..],
            dead_letters,
            requests,
        ),
        ("POST", target) if target == "/reload" || target.starts_with("/reload?") => {
            match reload_query(&target["/reload".len()..]) {
                Ok(allow_empty) => reload(allow_empty, requests),
                Err(why) => (400, why),
            }
        }
        _ => (404, "not found\n".to_string()),
    };
    let mut out = Vec::new();
    let content_type = if body.starts_with('{') {
        "application/json"
    } else {
        "text/plain; version=0.0.4"
    };
    let spec = http1::ResponseSpec {
        status,
        content_type,
        keep_alive: false,
    };
    http1::write_response(&mut out, &spec, body.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    stream.write_all(&out)
}

/// `?allow_empty=1` (or `true`), or nothing.
fn reload_query(query: &str) -> Result<bool, String> {
    let mut allow_empty = false;
    for pair in query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=').unwrap_or((pair, "1")) {
            ("allow_empty", "1" | "true") => allow_empty = true,
            ("allow_empty", "0" | "false") => allow_empty = false,
            _ => {
                return Err(format!(
                    "unknown reload parameter `{pair}`: allow_empty=1 is the one there is\n"
                ))
            }
        }
    }
    Ok(allow_empty)
}

/// Asks the control thread to reload, and says how it went: 200 applied, 422 the file has
/// errors, 409 refused (it would empty the router, or needs a restart), 500 a shard could not
/// take it or did not confirm, 503 no answer.
fn reload(allow_empty: bool, requests: &Sender<AdminRequest>) -> (u16, String) {
    let (reply, outcome) = mpsc::channel();
    let _ = requests.send(AdminRequest::Reload { allow_empty, reply });
    let Ok(outcome) = outcome.recv_timeout(Duration::from_secs(60)) else {
        return (503, "the router did not answer in time\n".to_string());
    };
    let status = match outcome {
        ReloadOutcome::Applied(_) => 200,
        ReloadOutcome::Invalid(_) => 422,
        ReloadOutcome::Refused(_) => 409,
        ReloadOutcome::Aborted(_) | ReloadOutcome::Unconfirmed(_) => 500,
    };
    (status, format!("{outcome}\n"))
}

/// Every dead letter, one JSON object per line, oldest first.
fn list_dead_letters(store: &DeadLetterStore) -> (u16, String) {
    match store.list() {
        Ok(entries) => {
            let mut body = String::new();
            for summary in entries.into_iter().flatten() {
                body.push_str(&json::summary_json(&summary).to_string());
                body.push('\n');
            }
            (200, body)
        }
        Err(e) => (500, format!("{e}\n")),
    }
}

/// `GET ID`, `POST ID/replay`, `POST ID/drop`.
fn dead_letter(
    method: &str,
    rest: &str,
    store: &DeadLetterStore,
    requests: &Sender<AdminRequest>,
) -> (u16, String) {
    let (raw_id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let id = match DeadLetterId::parse(raw_id) {
        Ok(id) => id,
        Err(e) => return (400, format!("{e}\n")),
    };
    match (method, action) {
        ("GET", "") => match store.show(&id) {
            Ok((letter, state)) => (200, json::letter_json(&letter, state).to_string() + "\n"),
            Err(e) => (404, format!("{e}\n")),
        },
        ("POST", "drop") => match store.remove(&id) {
            Ok(()) => (200, format!("dropped {id}\n")),
            Err(e) => (404, format!("{e}\n")),
        },
        ("POST", "replay") => {
            let (reply, outcome) = mpsc::channel();
            let _ = requests.send(AdminRequest::Replay { id, reply });
            match outcome.recv_timeout(Duration::from_secs(60)) {
                Ok(Ok(said)) => (200, said + "\n"),
                Ok(Err(why)) => (409, why + "\n"),
                Err(_) => (503, "the router did not answer in time\n".to_string()),
            }
        }
        _ => (404, "not found\n".to_string()),
    }
}
