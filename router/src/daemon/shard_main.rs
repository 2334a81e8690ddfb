//! The life of one shard: start its inbox and listeners, obey the control thread, drain.
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::outcomes::ShardOutcomes;
use super::ShardSockets;
use crate::control::{Command, Control};
use crate::egress::settings::EgressSettings;
use crate::ingress::listener;
use crate::metrics::Metrics;
use crate::pipeline::Delivery;
use crate::runtime::mesh::Mesh;
use crate::runtime::shards::ShardInfo;
use crate::shard::{Routing, Shard};
use crate::signal::LocalSignal;

/// Everything every shard starts from; cloned into each.
#[derive(Clone)]
pub struct Context {
    pub routing: Arc<Routing>,
    pub mesh: Arc<Mesh<Delivery>>,
    pub control: Arc<Control>,
    pub metrics: Arc<Metrics>,
    pub settings: EgressSettings,
    pub grace: Duration,
    /// Shards still accepting connections; shutdown drains only once this reaches zero, so
    /// no shard stops while another may still hand it work.
    pub ingress_open: Arc<AtomicU32>,
}

pub async fn run(info: ShardInfo, context: Context, sockets: ShardSockets) {
    let outcomes = Rc::new(ShardOutcomes {
        shard: info.index,
        metrics: Arc::clone(&context.metrics),
    });
    let shard = Shard::new(
        info,
        Arc::clone(&context.routing),
        Arc::clone(&context.mesh),
        context.settings,
        outcomes,
        Arc::clone(&context.metrics),
    );
    monoio::spawn(Rc::clone(&shard).run_inbox());
    let stop = Rc::new(LocalSignal::new());
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|(ctx, socket)| {
            monoio::spawn(listener::run(
                Rc::clone(&shard),
                Rc::new(ctx),
                socket,
                Rc::clone(&stop),
            ))
        })
        .collect();
    let mut prepared: Option<Arc<Routing>> = None;
    loop {
        for command in context.control.recv(info.index).await {
            match command {
                Command::Prepare { routing, reply } => {
                    prepared = Some(routing);
                    let _ = reply.send(Ok(()));
                }
                Command::Commit => {
                    if let Some(routing) = prepared.take() {
                        shard.install(routing);
                    }
                }
                Command::Abort => prepared = None,
                Command::Shutdown => {
                    stop.raise();
                    for task in listeners {
                        task.await;
                    }
                    context.ingress_open.fetch_sub(1, Ordering::AcqRel);
                    drain(&shard, &context).await;
                    return;
                }
            }
        }
    }
}

/// Waits until every shard has stopped accepting and every queued message is delivered, or
/// the grace period is over; messages still queued then are logged (the durable log keeps
/// them for the next start once it is in place).
async fn drain(shard: &Shard, context: &Context) {
    let deadline = monoio::time::Instant::now() + context.grace;
    loop {
        let queued: u64 = shard
            .routing()
            .endpoints
            .iter()
            .map(|h| u64::from(h.queued.load(Ordering::Acquire)))
            .sum();
        let accepting = context.ingress_open.load(Ordering::Acquire);
        if accepting == 0 && queued == 0 {
            break;
        }
        if monoio::time::Instant::now() >= deadline {
            if shard.queued_here() > 0 {
                log::warn!(
                    "shard {}: grace period over with {} message(s) still queued",
                    shard.info.index,
                    shard.queued_here()
                );
            }
            break;
        }
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    shard.stop_workers();
}
