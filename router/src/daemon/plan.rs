//! [`Plan`]: one reload as the shards apply it, start-up included: the table diff, with what the
//! control thread built for it (the routing with its TLS client configurations, each new or
//! changed listener's settings and server certificate, the address of each socket to bind).
//!
//! Everything in it is shared, immutable and `Send`: the control thread builds it once and every
//! shard reads it. Shards exchange no descriptors: each binds its own sockets from the plan, in
//! its own descriptor table.
use std::net::SocketAddr;
use std::sync::Arc;

use crate::ingress::listener::ListenerCtx;
use crate::routes::TableDiff;
use crate::shard::Routing;

pub struct Plan {
    /// The routing to put in force.
    pub routing: Arc<Routing>,
    /// From the routing in force to `routing`: which endpoints' workers stop, which take a new
    /// definition, which are new.
    pub diff: TableDiff,
    /// The diff's listener part, with what each step needs.
    pub listeners: Vec<ListenerStep>,
}

/// What one listener needs on every shard.
pub struct ListenerStep {
    pub name: Arc<str>,
    pub action: ListenerAction,
}

pub enum ListenerAction {
    /// A new listener: bind `addr` (port 0 already resolved) at prepare, accept at commit.
    Open {
        ctx: Arc<ListenerCtx>,
        addr: SocketAddr,
    },
    /// A listener given another address: as `Open`, and the old socket is closed at commit as
    /// if the listener had been removed.
    Move {
        ctx: Arc<ListenerCtx>,
        addr: SocketAddr,
    },
    /// Other settings on the same socket, for connections accepted after the commit.
    Update { ctx: Arc<ListenerCtx> },
    /// Removed: stop accepting at commit; open connections answer what they read and close.
    Close,
}
