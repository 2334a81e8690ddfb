//! The endpoint fleet: N endpoints on loopback, each on its own 127.x.y.z address, answering
//! like hospital systems (HL7v2 over MLLP, ITK over HTTP, plain or TLS with client
//! certificates), all served by ONE thread's epoll loop per process. Every arrival is stamped
//! on the shared monotonic clock and reported on the control stream ([`report`]).
//!
//! Descriptors: each endpoint costs a listener and (normally) one accepted connection, so a
//! process holds at most [`MAX_PER_PROCESS`] endpoints under this machine's 20,000-descriptor
//! hard limit; bigger fleets are several processes (see `proof`).
//!
//! A watcher of the control address may make endpoints flap (`down <index>`, `up <index>`:
//! see [`report::Command`]); the soak does, to a share of the fleet.
pub mod answer;
mod conns;
mod flap;
pub mod report;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::clock::now_ns;
use crate::directory::{Proto, Row};
use crate::pki::Pki;
use crate::poll::{Poller, Timer, READ};
use crate::rng::Rng;
pub use answer::Behaviour;

/// Endpoints one process serves at most (two descriptors each, with room for reconnects).
pub const MAX_PER_PROCESS: usize = 8_000;

/// The loopback address of endpoint `index`: 127.1.0.1, 127.1.0.2, … (all of 127/8 is
/// routed to `lo`, so nothing needs setting up).
pub fn addr_for(index: usize) -> Ipv4Addr {
    let i = index as u32;
    Ipv4Addr::new(
        127,
        (1 + i / 62_500) as u8,
        ((i / 250) % 250) as u8,
        (1 + i % 250) as u8,
    )
}

/// Which protocol endpoint `index` speaks, given `mllp:itk` weights.
pub fn proto_for(index: usize, mllp: u32, itk: u32) -> Proto {
    let period = (mllp + itk).max(1) as usize;
    if (index % period) < mllp as usize {
        Proto::Mllp
    } else {
        Proto::Itk
    }
}

/// What one fleet process runs.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Index of the first endpoint (fleets in several processes take disjoint ranges).
    pub first: usize,
    pub count: usize,
    /// Protocol weights: `(mllp, itk)`.
    pub protocols: (u32, u32),
    pub tls: Option<Pki>,
    pub behaviour: Behaviour,
    pub seed: u64,
    /// Port for every endpoint (0: take whatever the first bind gets, then reuse it).
    pub port: u16,
    /// Where the control stream listens.
    pub control: SocketAddr,
}

/// A bound fleet, ready to run.
pub struct Fleet {
    pub rows: Vec<Row>,
    pub control_addr: SocketAddr,
    listeners: Vec<TcpListener>,
    control: TcpListener,
    config: FleetConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Fleet {
    /// Binds every endpoint's listener and the control listener.
    pub fn bind(config: FleetConfig) -> anyhow::Result<Fleet> {
        let mut rows = Vec::with_capacity(config.count);
        let mut listeners = Vec::with_capacity(config.count);
        let mut port = config.port;
        for index in config.first..config.first + config.count {
            let ip = addr_for(index);
            let listener = match TcpListener::bind(SocketAddrV4::new(ip, port)) {
                Ok(l) => l,
                Err(_) if port != 0 => TcpListener::bind(SocketAddrV4::new(ip, 0))
                    .with_context(|| format!("binding endpoint {index} on {ip}"))?,
                Err(e) => return Err(e).context(format!("binding endpoint {index} on {ip}")),
            };
            let addr = listener.local_addr()?;
            if port == 0 {
                port = addr.port();
            }
            listener.set_nonblocking(true)?;
            let (m, i) = config.protocols;
            rows.push(Row {
                index,
                proto: proto_for(index, m, i),
                addr,
                tls: config.tls.is_some(),
            });
            listeners.push(listener);
        }
        let control = TcpListener::bind(config.control).context("binding the control address")?;
        control.set_nonblocking(true)?;
        let tls = match &config.tls {
            Some(pki) => Some(pki.server()?),
            None => None,
        };
        Ok(Fleet {
            rows,
            control_addr: control.local_addr()?,
            listeners,
            control,
            config,
            tls,
        })
    }

    /// Serves until `stop` is raised.
    pub fn run(self, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut poller = Poller::new(1024)?;
        for (i, l) in self.listeners.iter().enumerate() {
            poller.add(l, conns::token(conns::LISTENER, i), READ)?;
        }
        let first = self.config.first;
        poller.add(&self.control, conns::token(conns::CONTROL, 0), READ)?;
        let mut timer = Timer::new()?;
        poller.add(timer.fd(), conns::token(conns::TIMER, 0), READ)?;
        let mut state = conns::State {
            rows: self.rows,
            listeners: self.listeners.into_iter().map(Some).collect(),
            unbound: Vec::new(),
            first,
            tls: self.tls,
            behaviour: self.config.behaviour.clone(),
            rng: Rng::derive(self.config.seed, 0xF1EE7 + self.config.first as u64),
            slab: Vec::new(),
            free: Vec::new(),
            later: BinaryHeap::<Reverse<(u64, usize, u32)>>::new(),
            report: Vec::new(),
            watchers: Vec::new(),
            accepted: 0,
            open: 0,
            established: 0,
            down: 0,
            flaps: 0,
        };
        let mut next_stats = 0;
        while !stop.load(Ordering::Relaxed) {
            let events = poller.wait(Some(100))?;
            let now = now_ns();
            for (token, flags) in events {
                let (kind, index) = conns::split(token);
                match kind {
                    conns::LISTENER => state.accept(&mut poller, index),
                    conns::CONTROL => state.accept_watchers(&mut poller, &self.control),
                    conns::TIMER => timer.clear(),
                    conns::WATCHER => state.watcher_event(&mut poller, index),
                    _ => state.conn_event(&mut poller, token, flags, now),
                }
            }
            state.release_due(&mut poller, now_ns());
            if !state.unbound.is_empty() {
                state.bind_unbound(&mut poller);
            }
            if let Some(Reverse((due, _, _))) = state.later.peek() {
                timer.arm(*due)?;
            }
            if now >= next_stats {
                next_stats = now + 200_000_000;
                state.write_stats();
            }
            state.publish(&mut poller);
        }
        Ok(())
    }
}
