//! Listening sockets: one per listener per shard, all bound to the same address with
//! SO_REUSEPORT so the kernel spreads new connections across the shards.
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use monoio::net::TcpListener;
use rustls::server::UnbufferedServerConnection;
use rustls::ServerConfig;
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use super::accept::ConnectionOrigin;
use super::budget::{InputBudget, PeerShares};
use super::cutoff::{self, Cutoff};
use super::refusals::{Detail, Refusal};
use super::slot::ListenerSlot;
use crate::metrics::listener::ListenerStats;
use crate::net::stream::Stream;
use crate::routes::table::Listener;
use crate::routes::Protocol;
use crate::shard::Shard;

/// A listener's settings and state shared by its connections on one shard.
pub struct ListenerCtx {
    pub name: Arc<str>,
    pub config: Listener,
    pub tls: Option<Arc<ServerConfig>>,
    /// Open connections across all shards, against `config.max_connections`.
    pub open: Arc<AtomicU32>,
    /// The process's budget for unfinished input, shared by every listener.
    pub budget: Arc<InputBudget>,
    /// This listener's shares of unfinished input per sender address, across shards.
    pub peers: Arc<PeerShares>,
    /// What `/metrics` shows of it: a block per shard, kept while the listener's name is.
    pub stats: Arc<ListenerStats>,
}

impl ListenerCtx {
    pub fn max_message_bytes(&self) -> usize {
        usize::try_from(self.config.max_message_bytes).unwrap_or(usize::MAX)
    }
}

/// Binds `count` sockets to `addr` with SO_REUSEPORT, one per shard. When `addr` has port 0 the
/// first socket picks the port and the rest share it.
pub fn bind_reuseport(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM,
            Some(SockProtocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok(sockets)
}

/// Accepts connections until the slot is closed, serving each on this shard with the settings
/// the slot holds when it is accepted.
pub async fn run(shard: Rc<Shard>, slot: Rc<ListenerSlot>, socket: std::net::TcpListener) {
    let stop = slot.stop_signal();
    let listener = match TcpListener::from_std(socket) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(
                "{}: cannot use its socket on shard {}: {e}",
                slot.current().name,
                shard.info.index
            );
            return;
        }
    };
    let live = Rc::new(Cell::new(0usize));
    loop {
        let accepted = monoio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait() => break,
        };
        let ctx = slot.current();
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors or memory: back off briefly rather than spin.
                tracing::warn!("{}: accept: {e}", ctx.name);
                monoio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if ctx.open.fetch_add(1, Ordering::AcqRel) >= ctx.config.max_connections {
            ctx.open.fetch_sub(1, Ordering::AcqRel);
            shard.refusals.note(
                peer,
                &ctx.stats,
                Refusal::ConnectionLimit,
                Detail::why(&format_args!(
                    "{} open, the most this listener takes",
                    ctx.config.max_connections
                )),
            );
            drop(tcp);
            continue;
        }
        let stream = match &ctx.tls {
            Some(config) => match UnbufferedServerConnection::new(Arc::clone(config)) {
                Ok(conn) => Stream::tls(tcp, conn),
                Err(e) => {
                    ctx.open.fetch_sub(1, Ordering::AcqRel);
                    tracing::error!("{}: TLS setup: {e}", ctx.name);
                    continue;
                }
            },
            None => Stream::Plain(tcp),
        };
        let _ = stream.set_nodelay();
        let origin = ConnectionOrigin {
            listener: Arc::clone(&ctx.name),
            stats: Arc::clone(&ctx.stats),
            peer,
            peer_text: Arc::from(peer.to_string()),
        };
        let (shard, ctx2, stop2, live2) = (
            Rc::clone(&shard),
            Rc::clone(&ctx),
            Rc::clone(&stop),
            Rc::clone(&live),
        );
        live.set(live.get() + 1);
        let counts = ctx.stats.shard(shard.info.index);
        counts.connections_opened.fetch_add(1, Ordering::Relaxed);
        let accepted = monoio::time::Instant::now();
        let index = shard.info.index;
        monoio::spawn(async move {
            let mut stream = stream;
            // Bounded: a sender that never finishes its handshake must not hold its place.
            let limit = ctx2.config.handshake_timeout;
            let handshake = monoio::time::timeout(limit, stream.handshake(&shard.pool)).await;
            if let (Ok(Ok(())), Some(_)) = (&handshake, stream.tls_state()) {
                ctx2.stats.shard(index).handshake(stream.resumed());
            }
            match handshake {
                Err(_) => cutoff::report(
                    &shard,
                    &ctx2.stats,
                    origin.peer,
                    Cutoff::HandshakeTimeout,
                    format_args!("did not finish its TLS handshake within {limit:?}"),
                ),
                Ok(Err(e)) => {
                    tracing::info!("{}: {}: TLS handshake failed: {e}", ctx2.name, origin.peer)
                }
                Ok(Ok(())) => match ctx2.config.protocol {
                    Protocol::Mllp | Protocol::Mllps => {
                        super::mllp::serve(shard, Rc::clone(&ctx2), stream, origin, stop2, accepted)
                            .await
                    }
                    Protocol::ItkHttp | Protocol::ItkHttps => {
                        super::itk::serve(shard, Rc::clone(&ctx2), stream, origin, stop2, accepted)
                            .await
                    }
                },
            }
            ctx2.open.fetch_sub(1, Ordering::AcqRel);
            let counts = ctx2.stats.shard(index);
            counts.connections_closed.fetch_add(1, Ordering::Relaxed);
            live2.set(live2.get() - 1);
        });
    }
    // Closed: refuse new connections now, not once the open ones are done.
    drop(listener);
    // Connections finish the batch they are reading, answer it, and close on their own (they
    // watch the same signal); wait for them so shutdown knows every sender was answered.
    while live.get() > 0 {
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
