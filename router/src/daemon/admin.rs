//! The admin address: the status page at `/` (`page`; per-shard figures for it at `/shards`),
//! `/healthz`, `/readyz` (503 with the reasons when the router cannot take
//! messages), `/metrics`, `/endpoints` and `/endpoints/NAME` (each endpoint's connection,
//! circuit, queue and last error), `/routes` (the table in force: version, files, rule hits), `POST /reload` (`?allow_empty=1` to
//! take a file that closes every listener or drops every route), and the dead letters:
//! `GET /dead-letters`, `GET /dead-letters/ID`, `POST /dead-letters/ID/replay`,
//! `POST /dead-letters/ID/drop`.
//!
//! It can read, replay and drop patient data, so everything but the probes needs the admin
//! token and a Host that names it (`access`), optionally over TLS with client certificates.
//! It runs on a thread of its own with a small tokio runtime (axum's router on hyper, `serve`),
//! entirely off the shards: nothing an admin client does can disturb message traffic. What only
//! the control thread may do (reload, replay) is asked for through a channel it polls.
mod access;
mod endpoints;
mod in_force;
mod page;
mod ready;
mod routes;
pub mod scrape;
mod serve;
pub mod settings;
mod shards;
pub mod token;

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use axum::middleware;
use rustls::ServerConfig;

use super::reload::ReloadOutcome;
use crate::deadletter::{DeadLetterId, DeadLetterStore};
use crate::metrics::Metrics;
use crate::shard::Routing;
use crate::tls::config::{server_config, ClientCerts, TlsConfigError};
use crate::wal::DiskBudget;
use settings::AdminSettings;
use token::{Token, TokenError};

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
    metrics: Arc<Metrics>,
}

impl Admin {
    /// A request made through the admin address, if any.
    pub fn next_request(&self) -> Option<AdminRequest> {
        self.requests.try_recv().ok()
    }

    /// A reload ended: the admin address shows the routing in force and counts the outcome.
    pub fn reloaded(&self, outcome: &ReloadOutcome, routing: &Arc<Routing>) {
        if let Ok(mut current) = self.routing.lock() {
            *current = Arc::clone(routing);
        }
        let reloads = &self.metrics.reloads;
        Metrics::bump(match outcome {
            ReloadOutcome::Applied(_) => &reloads.applied,
            ReloadOutcome::Invalid(_) => &reloads.invalid,
            ReloadOutcome::Refused(_) => &reloads.refused,
            ReloadOutcome::Aborted(_) | ReloadOutcome::Unconfirmed(_) => &reloads.failed,
        });
    }
}

/// Why the admin address cannot be served; the router does not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The cause (which file, what is wrong) follows in the error's chain.
    #[error("TLS on the admin address")]
    Tls(#[from] TlsConfigError),
}

/// The token and TLS configuration, read before anything else starts, so that a bad file
/// stops the router before it opens its logs.
pub struct Prepared {
    settings: AdminSettings,
    token: Token,
    tls: Option<Arc<ServerConfig>>,
}

pub fn prepare(settings: AdminSettings) -> Result<Prepared, AdminError> {
    let token = token::load(&settings.token_file, settings.make_token)?;
    let tls = match &settings.tls {
        Some(t) => {
            let clients = match &t.client_ca {
                Some(ca) => ClientCerts::Required(ca),
                None => ClientCerts::NotAsked,
            };
            Some(server_config(&t.cert, &t.key, clients)?)
        }
        None => None,
    };
    Ok(Prepared {
        settings,
        token,
        tls,
    })
}

/// Binds the admin address and serves it on its own thread.
pub fn start(
    prepared: Prepared,
    metrics: Arc<Metrics>,
    routing: Arc<Routing>,
    dead_letters: Arc<DeadLetterStore>,
    log_budget: Arc<DiskBudget>,
) -> io::Result<Admin> {
    let Prepared {
        settings,
        token,
        tls,
    } = prepared;
    let listener = std::net::TcpListener::bind(settings.address)?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .thread_name("ganglion-admin-work")
        .build()?;
    let (send, requests) = mpsc::channel();
    let routing = Arc::new(Mutex::new(routing));
    let shared = routes::Shared {
        metrics: Arc::clone(&metrics),
        log_budget,
        routing: Arc::clone(&routing),
        dead_letters,
        requests: send,
    };
    let access = Arc::new(access::Access::new(token, settings.names));
    let app = routes::router(shared)
        .layer(middleware::from_fn(serve::bounded_body))
        .layer(middleware::from_fn_with_state(access, access::guard));
    let protocol = if tls.is_some() { "https" } else { "http" };
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    std::thread::Builder::new()
        .name("ganglion-admin".into())
        .spawn(move || runtime.block_on(serve::accept_loop(listener, acceptor, app)))?;
    println!("listening name=admin protocol={protocol} addr={address}");
    Ok(Admin {
        requests,
        routing,
        address,
        metrics,
    })
}
