//! Real nats-server processes for cluster-mode tests ([`loadgen::nats`]), in a temporary
//! folder, failing the test when a server does not start.
//!
//! ```no_run
//! let mut nats = tests::nats::NatsCluster::start(3);
//! let urls = nats.urls();
//! nats.kill(0);
//! nats.restart(0);
//! ```
use std::ops::{Deref, DerefMut};

pub use loadgen::nats::missing;
use loadgen::nats::NatsServers;

pub struct NatsCluster {
    servers: NatsServers,
    // Dropped after the servers (fields drop in order): their stores are inside.
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` servers (1: a lone JetStream server; more: a JetStream cluster) and waits
    /// until JetStream answers on every one.
    pub fn start(n: usize) -> NatsCluster {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let servers = NatsServers::start(dir.path(), n).expect("nats-server starts");
        NatsCluster { servers, _dir: dir }
    }

    /// One JetStream server, no clustering.
    pub fn single() -> NatsCluster {
        NatsCluster::start(1)
    }

    /// Starts server `i` again on the same ports and store; waits until it serves JetStream.
    pub fn restart(&mut self, i: usize) {
        self.servers.restart(i).expect("nats-server restarts");
    }
}

impl Deref for NatsCluster {
    type Target = NatsServers;
    fn deref(&self) -> &NatsServers {
        &self.servers
    }
}

impl DerefMut for NatsCluster {
    fn deref_mut(&mut self) -> &mut NatsServers {
        &mut self.servers
    }
}
