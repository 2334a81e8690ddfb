//! The control thread's side of the listeners: for each reload (start-up included), the steps
//! the shards take, with the work that can fail done before any shard is asked: each new or
//! changed TLS listener's server configuration built, port 0 resolved to a free port that every
//! shard then binds.
//!
//! An unchanged listener keeps everything; a changed one keeps its connection count (against
//! `max_connections`), its senders' shares of unfinished input (unless `max_buffered_per_peer`
//! changed) and, when its TLS files and settings are the same, its server configuration, so
//! session tickets it issued stay valid. Every listener draws on the one process-wide input
//! budget (`[server] max_buffered_input`, fixed at start-up).
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use rustls::ServerConfig;
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use super::plan::{ListenerAction, ListenerStep};
use crate::ingress::budget::{InputBudget, PeerShares};
use crate::ingress::listener::ListenerCtx;
use crate::metrics::listener::ListenerStats;
use crate::routes::table::{ClientAuth, Listener};
use crate::routes::{ListenerDiff, RouteTable};
use crate::tls::config::{server_config, ClientCerts, TlsConfigError};

/// Why a reload's listeners could not be planned; nothing was asked of the shards.
#[derive(Debug, thiserror::Error)]
pub enum ListenerPlanError {
    /// A certificate, key or CA file that exists but cannot be used: fix the file.
    #[error("listener {listener}: {source}")]
    Tls {
        listener: String,
        source: TlsConfigError,
    },
    /// No free port could be had for a listener on port 0.
    #[error("listener {listener}: cannot get a port on {addr}: {source}")]
    Port {
        listener: String,
        addr: SocketAddr,
        source: io::Error,
    },
}

/// A listener in force: its settings and the address every shard listens on.
struct InForce {
    ctx: Arc<ListenerCtx>,
    addr: SocketAddr,
}

/// The steps of one reload, and the sockets that hold ports picked for port-0 listeners until
/// every shard has bound them (drop it after the prepare phase).
pub struct Planned {
    pub steps: Vec<ListenerStep>,
    pub ports: Vec<Socket>,
}

pub struct Listeners {
    in_force: HashMap<String, InForce>,
    budget: Arc<InputBudget>,
}

/// What a changed listener keeps of the one it replaces.
struct Kept {
    tls: Option<Arc<ServerConfig>>,
    open: Arc<AtomicU32>,
    peers: Arc<PeerShares>,
    stats: Arc<ListenerStats>,
}

impl Listeners {
    /// No listener in force yet; every one will draw on `budget`.
    pub fn new(budget: Arc<InputBudget>) -> Listeners {
        Listeners {
            in_force: HashMap::new(),
            budget,
        }
    }

    /// The steps from the listeners in force (those of `old`) to those of `new`.
    pub fn plan(
        &self,
        old: &RouteTable,
        new: &RouteTable,
        diff: &ListenerDiff,
    ) -> Result<Planned, Vec<ListenerPlanError>> {
        let mut steps = Vec::new();
        let mut ports = Vec::new();
        let mut errors = Vec::new();
        let new_listener = |i: usize| new.listeners().get(i);
        for listener in diff.added.iter().filter_map(|&i| new_listener(i)) {
            let made = server_tls(listener).and_then(|tls| {
                let (addr, port) = resolve(listener)?;
                let kept = Kept {
                    tls,
                    open: Arc::new(AtomicU32::new(0)),
                    peers: PeerShares::new(listener.max_buffered_per_peer),
                    stats: self.new_stats(listener),
                };
                let ctx = self.ctx(listener, kept);
                Ok((ListenerAction::Open { ctx, addr }, port))
            });
            push(listener, made, &mut steps, &mut ports, &mut errors);
        }
        for listener in diff.moved.iter().filter_map(|&(_, i)| new_listener(i)) {
            let made = self.keep_or_build(listener).and_then(|kept| {
                let (addr, port) = resolve(listener)?;
                let ctx = self.ctx(listener, kept);
                Ok((ListenerAction::Move { ctx, addr }, port))
            });
            push(listener, made, &mut steps, &mut ports, &mut errors);
        }
        for listener in diff.changed.iter().filter_map(|&(_, i)| new_listener(i)) {
            let made = self.keep_or_build(listener).map(|kept| {
                let ctx = self.ctx(listener, kept);
                (ListenerAction::Update { ctx }, None)
            });
            push(listener, made, &mut steps, &mut ports, &mut errors);
        }
        let old_listener = |i: usize| old.listeners().get(i);
        for listener in diff.removed.iter().filter_map(|&i| old_listener(i)) {
            steps.push(ListenerStep {
                name: Arc::from(listener.name.as_str()),
                action: ListenerAction::Close,
            });
        }
        if errors.is_empty() {
            Ok(Planned { steps, ports })
        } else {
            Err(errors)
        }
    }

    /// Records what every shard now has in force, and says so: a `listening` line for each
    /// socket opened (scripts and tests read the port from it), a log line for each closed.
    pub fn committed(&mut self, steps: &[ListenerStep]) {
        for step in steps {
            let name = step.name.to_string();
            match &step.action {
                ListenerAction::Open { ctx, addr } | ListenerAction::Move { ctx, addr } => {
                    if let Some(old) = self.in_force.get(&name) {
                        tracing::info!(
                            "listener {name} moved from {} to {addr}; connections on the old \
                             address finish what they sent and close",
                            old.addr
                        );
                    }
                    println!(
                        "listening name={name} protocol={} addr={addr}",
                        ctx.config.protocol
                    );
                    let ctx = Arc::clone(ctx);
                    self.in_force.insert(name, InForce { ctx, addr: *addr });
                }
                ListenerAction::Update { ctx } => {
                    tracing::info!("listener {name}: new settings for connections from now on");
                    if let Some(in_force) = self.in_force.get_mut(&name) {
                        in_force.ctx = Arc::clone(ctx);
                    }
                }
                ListenerAction::Close => {
                    if let Some(old) = self.in_force.remove(&name) {
                        tracing::info!(
                            "listener {name} on {} closed; its connections finish what they \
                             sent and close",
                            old.addr
                        );
                    }
                }
            }
        }
        let stats = self.in_force.values().map(|l| Arc::clone(&l.ctx.stats));
        self.budget.metrics().listeners.set(stats.collect());
    }

    /// The server configuration, connection count and senders' shares for a listener that is
    /// in force under this name: each kept while what it depends on is the same, built anew
    /// otherwise.
    fn keep_or_build(&self, listener: &Listener) -> Result<Kept, ListenerPlanError> {
        let Some(old) = self.in_force.get(&listener.name) else {
            return Ok(Kept {
                tls: server_tls(listener)?,
                open: Arc::new(AtomicU32::new(0)),
                peers: PeerShares::new(listener.max_buffered_per_peer),
                stats: self.new_stats(listener),
            });
        };
        let was = &old.ctx.config;
        let same_tls = was.protocol.is_tls() == listener.protocol.is_tls()
            && was.cert == listener.cert
            && was.client_ca == listener.client_ca
            && was.client_cert == listener.client_cert
            && was.tls_contents == listener.tls_contents;
        let tls = if same_tls {
            old.ctx.tls.clone()
        } else {
            server_tls(listener)?
        };
        let peers = if was.max_buffered_per_peer == listener.max_buffered_per_peer {
            Arc::clone(&old.ctx.peers)
        } else {
            PeerShares::new(listener.max_buffered_per_peer)
        };
        Ok(Kept {
            tls,
            open: Arc::clone(&old.ctx.open),
            peers,
            stats: Arc::clone(&old.ctx.stats),
        })
    }

    fn new_stats(&self, listener: &Listener) -> Arc<ListenerStats> {
        let metrics = self.budget.metrics();
        ListenerStats::new(Arc::from(listener.name.as_str()), metrics.shards())
    }

    fn ctx(&self, listener: &Listener, kept: Kept) -> Arc<ListenerCtx> {
        Arc::new(ListenerCtx {
            name: Arc::from(listener.name.as_str()),
            config: listener.clone(),
            tls: kept.tls,
            open: kept.open,
            budget: Arc::clone(&self.budget),
            peers: kept.peers,
            stats: kept.stats,
        })
    }
}

fn push(
    listener: &Listener,
    made: Result<(ListenerAction, Option<Socket>), ListenerPlanError>,
    steps: &mut Vec<ListenerStep>,
    ports: &mut Vec<Socket>,
    errors: &mut Vec<ListenerPlanError>,
) {
    match made {
        Ok((action, port)) => {
            ports.extend(port);
            steps.push(ListenerStep {
                name: Arc::from(listener.name.as_str()),
                action,
            });
        }
        Err(e) => errors.push(e),
    }
}

/// The server configuration of a TLS listener; `None` for a plain one.
fn server_tls(listener: &Listener) -> Result<Option<Arc<ServerConfig>>, ListenerPlanError> {
    let (true, Some((cert, key))) = (listener.protocol.is_tls(), &listener.cert) else {
        return Ok(None);
    };
    let clients = match (listener.client_cert, listener.client_ca.as_deref()) {
        (ClientAuth::Required, Some(ca)) => ClientCerts::Required(ca),
        (ClientAuth::Optional, Some(ca)) => ClientCerts::Optional(ca),
        _ => ClientCerts::NotAsked,
    };
    server_config(cert, key, clients)
        .map(Some)
        .map_err(|source| ListenerPlanError::Tls {
            listener: listener.name.clone(),
            source,
        })
}

/// The address every shard binds: the configured one, or for port 0 a free port, held by a
/// socket that shares it (SO_REUSEPORT) without listening, until the shards have bound it.
fn resolve(listener: &Listener) -> Result<(SocketAddr, Option<Socket>), ListenerPlanError> {
    if listener.bind.port() != 0 {
        return Ok((listener.bind, None));
    }
    let failed = |source| ListenerPlanError::Port {
        listener: listener.name.clone(),
        addr: listener.bind,
        source,
    };
    let socket = Socket::new(
        Domain::for_address(listener.bind),
        Type::STREAM,
        Some(SockProtocol::TCP),
    )
    .map_err(failed)?;
    socket.set_reuse_address(true).map_err(failed)?;
    socket.set_reuse_port(true).map_err(failed)?;
    socket.bind(&listener.bind.into()).map_err(failed)?;
    let addr = socket
        .local_addr()
        .map_err(failed)?
        .as_socket()
        .ok_or_else(|| failed(io::Error::other("not an IP address")))?;
    Ok((addr, Some(socket)))
}
