//! The bare relay: the simplest forwarder that does the router's job on the wire, as the
//! ceiling to measure ganglion against. Frame in; pick the endpoint from MSH-6 (or the ITK
//! address) and nothing else; forward the bytes on the endpoint's one persistent connection
//! (TLS when the directory says so), one message in flight per endpoint; when the endpoint
//! answers, hand its answer to the sender. No parsing beyond the key, no disk, no retries.
//!
//! Threads: each owns the endpoints `index % threads == t`, its own listeners (SO_REUSEPORT,
//! so the kernel spreads senders), its own epoll and eventfd. Work for another thread's
//! endpoint, and answers for another thread's sender, go through that thread's inbox with one
//! eventfd write per batch. With more than one thread each takes a private descriptor table
//! (unshare) after every shared descriptor exists, so that together they can hold more
//! connections than one table allows.
mod worker;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustix::event::{eventfd, EventfdFlags};
use socket2::{Domain, Socket, Type};

use crate::directory::{Proto, Row};
use crate::pki::Pki;

/// Work passed between relay threads.
pub enum Cmd {
    /// Forward `bytes` to endpoint `endpoint`; answer goes back to `from`.
    Forward {
        endpoint: usize,
        from: Origin,
        bytes: Vec<u8>,
    },
    /// An endpoint's answer for a sender of this thread.
    Reply { to: Origin, bytes: Vec<u8> },
}

/// Where an answer must go: thread, sender slot and generation, and the request's place in
/// that sender's order (HTTP answers must go back in request order).
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub thread: usize,
    pub slot: usize,
    pub gen: u32,
    pub order: u64,
}

/// A thread's inbox.
pub struct Inbox {
    pub queue: Mutex<Vec<Cmd>>,
    pub notified: AtomicBool,
    pub wake: OwnedFd,
}

pub struct RelayConfig {
    pub rows: Vec<Row>,
    pub tls: Option<Pki>,
    pub threads: usize,
    pub mllp: SocketAddr,
    pub itk: SocketAddr,
}

/// The directory's keys, shared read-only by every thread.
pub struct Keys {
    pub by_facility: HashMap<String, usize>,
    pub by_address: HashMap<String, usize>,
    pub rows: Vec<Row>,
}

fn reuseport_listener(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds, connects to every endpoint, prints `listening` lines, and relays until `stop`.
pub fn run(config: RelayConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let threads = config.threads.max(1);
    let keys = Arc::new(Keys {
        by_facility: config
            .rows
            .iter()
            .filter(|r| r.proto == Proto::Mllp)
            .map(|r| (r.facility(), r.index))
            .collect(),
        by_address: config
            .rows
            .iter()
            .filter(|r| r.proto == Proto::Itk)
            .map(|r| (r.itk_address(), r.index))
            .collect(),
        rows: config.rows,
    });
    let tls = match &config.tls {
        Some(pki) => Some(pki.client(&keys.rows)?),
        None => None,
    };
    // Every shared descriptor exists before any thread takes a private table.
    let mut inboxes = Vec::new();
    for _ in 0..threads {
        inboxes.push(Inbox {
            queue: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            wake: eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?,
        });
    }
    let inboxes = Arc::new(inboxes);
    let first_mllp = reuseport_listener(config.mllp).context("binding the MLLP listener")?;
    let mllp_addr = first_mllp.local_addr()?;
    let first_itk = reuseport_listener(config.itk).context("binding the ITK listener")?;
    let itk_addr = first_itk.local_addr()?;
    let mut listeners = vec![(first_mllp, first_itk)];
    for _ in 1..threads {
        listeners.push((
            reuseport_listener(mllp_addr)?,
            reuseport_listener(itk_addr)?,
        ));
    }
    let ready = Arc::new(std::sync::Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for (t, (mllp, itk)) in listeners.into_iter().enumerate() {
        let (keys, inboxes, stop, tls, ready) = (
            Arc::clone(&keys),
            Arc::clone(&inboxes),
            Arc::clone(&stop),
            tls.clone(),
            Arc::clone(&ready),
        );
        handles.push(std::thread::spawn(move || -> anyhow::Result<()> {
            if threads > 1 {
                #[allow(deprecated)]
                rustix::thread::unshare(rustix::thread::UnshareFlags::FILES)?;
            }
            let mut w = worker::Worker::new(t, threads, keys, inboxes, tls, mllp, itk)?;
            w.connect_all();
            ready.wait();
            w.run(&stop)
        }));
    }
    ready.wait();
    println!("listening name=mllp protocol=mllp addr={mllp_addr}");
    println!("listening name=itk protocol=itk-http addr={itk_addr}");
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("a relay thread panicked"),
        }
    }
    let _ = Ordering::Relaxed;
    Ok(())
}
