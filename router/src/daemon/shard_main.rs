//! The life of one shard: start its inbox, take the start-up reload and every later one, replay
//! its log (`shard::replay`), accept, drain.
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::plan::Plan as ReloadPlan;
use super::shard_listeners::ShardListeners;
use crate::deadletter::{DeadLetterStore, LetterWriter};
use crate::egress::settings::EgressSettings;
use crate::mailbox::{Command, Control, PhaseAnswer, ShardError};
use crate::metrics::Metrics;
use crate::pipeline::{Delivery, RecordRef};
use crate::runtime::mesh::Mesh;
use crate::runtime::shards::ShardInfo;
use crate::shard::durable::Durability;
use crate::shard::outcomes::ShardOutcomes;
use crate::shard::replay::{self, Backlog};
use crate::shard::stream::{self, StreamSide};
use crate::shard::{Routing, Shard};
use crate::wal::{DiskBudget, WalConfig, WalError};

/// Everything every shard starts from; cloned into each.
#[derive(Clone)]
pub struct Context {
    /// The routing a shard starts with: empty. The start-up reload brings the first table.
    pub routing: Arc<Routing>,
    pub mesh: Arc<Mesh<Delivery>>,
    pub control: Arc<Control>,
    pub metrics: Arc<Metrics>,
    pub settings: EgressSettings,
    pub grace: Duration,
    pub dead_letters: Arc<DeadLetterStore>,
    /// Shards still accepting connections; shutdown drains only once this reaches zero, so
    /// no shard stops while another may still hand it work.
    pub ingress_open: Arc<AtomicU32>,
    /// Where and how the shards keep their logs; `None` without durability.
    pub wal: Option<WalSpec>,
    /// Each shard says here whether it started (its log opened).
    pub ready: mpsc::Sender<Result<(), ShardStartError>>,
    /// The message trace's writer; `None` when `[trace] enabled = false`.
    pub trace: Option<crate::trace::Feed>,
    /// Each shard's end of the cluster link; `None` when the node runs alone.
    pub cluster: Option<super::cluster::Links>,
}

/// Why the shards could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ShardStartError {
    /// A shard's write-ahead log could not be opened (its error says which file and why).
    #[error("shard {shard}: write-ahead log: {source}")]
    Log {
        shard: usize,
        #[source]
        source: WalError,
    },
    /// A thread a shard needs could not be started (out of threads or memory).
    #[error("shard {shard}: cannot start its {what} thread: {source}")]
    Thread {
        shard: usize,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A shard said nothing within the time start-up allows (reading a huge log, a hung disk).
    #[error("a shard did not start within {0:?}")]
    TimedOut(Duration),
}

/// What a shard needs to open its write-ahead log.
#[derive(Clone)]
pub struct WalSpec {
    pub data_dir: PathBuf,
    pub config: WalConfig,
    /// The disk budget of the whole log, shared by every shard.
    pub budget: Arc<DiskBudget>,
    pub marks: Arc<Mesh<RecordRef>>,
}

/// Opens the shard's log on its own thread, inside its own descriptor table, so that the files
/// are in no other table (a deleted segment must not stay open elsewhere and keep its space).
fn open_log(
    info: ShardInfo,
    spec: &WalSpec,
    metrics: &Arc<Metrics>,
) -> Result<Durability, ShardStartError> {
    let (log, reports) = Durability::open(
        &spec.data_dir,
        (info.index, info.count),
        spec.config.clone(),
        Arc::clone(&spec.budget),
        Arc::clone(&spec.marks),
        Arc::clone(metrics),
    )
    .map_err(|source| ShardStartError::Log {
        shard: info.index,
        source,
    })?;
    for (number, report) in reports {
        for damage in &report.damage {
            tracing::error!("write-ahead log {number}: {damage}");
        }
    }
    Ok(log)
}

/// Whether the shard accepts, for `/readyz`: no longer once it is shutting down or its task
/// ended for whatever reason (a panic unwinds through this).
struct Serving {
    metrics: Arc<Metrics>,
    shard: usize,
}

impl Serving {
    fn set(&self, serving: bool) {
        let health = &self.metrics.shard(self.shard).health;
        health.serving.store(serving, Ordering::Relaxed);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Runs one shard: from the empty routing it is built with, through the start-up reload and
/// every reload after it, to shutdown.
pub async fn run(info: ShardInfo, context: Context) {
    let durability = match context
        .wal
        .as_ref()
        .map(|spec| open_log(info, spec, &context.metrics))
        .transpose()
    {
        Ok(log) => log.map(Rc::new),
        Err(why) => {
            let _ = context.ready.send(Err(why));
            return;
        }
    };
    let letters = LetterWriter::start(
        Arc::clone(&context.dead_letters),
        format!("ganglion-letters-{}", info.index),
    );
    let letters = match letters {
        Ok(letters) => letters,
        Err(source) => {
            let _ = context.ready.send(Err(ShardStartError::Thread {
                shard: info.index,
                what: "dead-letter writer",
                source,
            }));
            return;
        }
    };
    let _ = context.ready.send(Ok(()));
    let trace = context.trace.as_ref().map(|feed| Rc::new(feed.recorder()));
    let outcomes = ShardOutcomes::new(
        info.index,
        Arc::clone(&context.metrics),
        durability.clone(),
        letters,
        trace.clone(),
    );
    let shard = Shard::new(
        info,
        Arc::clone(&context.routing),
        Arc::clone(&context.mesh),
        context.settings,
        outcomes,
        Arc::clone(&context.metrics),
        durability.clone(),
    );
    monoio::spawn(Rc::clone(&shard).run_inbox());
    // In a cluster, ingress publishes from the start; the partitions' messages are taken once
    // the shard serves (its routing is in force by then).
    let mut feed = None;
    if let Some(links) = &context.cluster {
        if let Some(link) = links.take(info.index) {
            let (publisher, consumed) = link.split();
            shard.set_stream(StreamSide::new(publisher, links.partitions));
            feed = Some(consumed);
        }
    }
    if let Some(trace) = &trace {
        shard.set_trace(Rc::clone(trace));
        let trace = Rc::downgrade(trace);
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(crate::trace::recorder::TICK).await;
                match trace.upgrade() {
                    Some(trace) => trace.flush(),
                    None => return,
                }
            }
        });
    }
    if let Some(durability) = &durability {
        if let Err(e) = durability.start(info.driver) {
            tracing::error!(shard = info.index, "cannot start its fsync thread: {e}");
        }
        if context.cluster.is_none() {
            durability.prepare_for_appends();
        }
        let committer = Rc::clone(durability);
        monoio::spawn(async move { committer.run_committer().await });
        let marks = Rc::clone(durability);
        monoio::spawn(async move { marks.run_marks().await });
    }
    let mut listeners = ShardListeners::new(info.index);
    let mut prepared: Option<Arc<ReloadPlan>> = None;
    let mut backlog = Backlog::default();
    let serving = Serving {
        metrics: Arc::clone(&context.metrics),
        shard: info.index,
    };
    let answer = |result| PhaseAnswer {
        shard: info.index,
        result,
    };
    loop {
        for command in context.control.recv(info.index).await {
            match command {
                Command::Prepare { plan, reply } => {
                    let result = listeners.prepare(&plan.listeners);
                    if result.is_ok() {
                        shard.prepare(Arc::clone(&plan.routing));
                        prepared = Some(plan);
                    }
                    let _ = reply.send(answer(result));
                }
                Command::Commit { reply } => {
                    let result = match prepared.take() {
                        Some(plan) => {
                            shard.install(Arc::clone(&plan.routing), &plan.diff);
                            listeners.commit(&shard, &plan.listeners);
                            Ok(())
                        }
                        None => Err(ShardError::NothingPrepared),
                    };
                    let _ = reply.send(answer(result));
                }
                Command::Abort => {
                    prepared = None;
                    listeners.abort();
                    shard.forget_prepared();
                }
                Command::Start { reply } => {
                    // Messages the log still holds go to their endpoints before any new one,
                    // so each endpoint gets them in the order they came: every endpoint they
                    // are for is held before any shard serves.
                    if let Some(durability) = &durability {
                        backlog = replay::first_pass(&shard, durability).await;
                    }
                    let _ = reply.send(answer(Ok(())));
                }
                Command::Serve { reply } => {
                    listeners.serve(&shard);
                    serving.set(true);
                    let _ = reply.send(answer(Ok(())));
                    if let Some(feed) = feed.take() {
                        monoio::spawn(stream::run_feed(Rc::clone(&shard), feed));
                        monoio::spawn(stream::run_ownership(Rc::clone(&shard)));
                    }
                    if let Some(durability) = &durability {
                        let backlog = std::mem::take(&mut backlog);
                        let (shard, durability) = (Rc::clone(&shard), Rc::clone(durability));
                        monoio::spawn(async move {
                            replay::drain(&shard, &durability, backlog).await;
                        });
                    }
                }
                Command::Replay { letter, reply } => {
                    let _ = reply.send(replay::letter(&shard, &letter).await);
                }
                Command::Shutdown => {
                    serving.set(false);
                    shard.release_waiters();
                    listeners.shut_down().await;
                    context.ingress_open.fetch_sub(1, Ordering::AcqRel);
                    drain(&shard, &context).await;
                    if let Some(trace) = &trace {
                        trace.flush();
                    }
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
        if accepting == 0 && queued == 0 && shard.letters_pending() == 0 {
            break;
        }
        if monoio::time::Instant::now() >= deadline {
            if shard.queued_here() > 0 {
                tracing::warn!(
                    shard = shard.info.index,
                    "grace period over with {} message(s) still queued",
                    shard.queued_here()
                );
            }
            break;
        }
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    shard.stop_workers();
    if let Some(durability) = &shard.durability {
        // Marks from other shards' last deliveries may still be on their way; a mark lost
        // here only means a message is delivered again after the restart.
        monoio::time::sleep(Duration::from_millis(20)).await;
        durability.flush_marks();
    }
}
