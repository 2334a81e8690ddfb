//! `ganglion run`: start-up, the control loop, and shutdown.
//!
//! Start-up is a reload from nothing: the same `config::load` that `check` and every reload
//! use builds the first table. The shards are started (every runtime built before any starts
//! work) with an empty table; the first table reaches them as any reload does (a plan, prepare:
//! each shard binds its own sockets; commit), then they replay their logs and accept. This
//! thread becomes the control thread: it turns SIGHUP, a settled change to the config file
//! and admin requests into two-phase reloads, and SIGTERM/SIGINT into a graceful shutdown.
//! It also tells the service manager, when there is one (`service`), once every shard serves,
//! around each reload, and when shutdown begins.
pub mod admin;
mod cluster;
mod data_dir;
mod listeners;
pub mod plan;
mod reload;
mod service;
mod shard_listeners;
mod shard_main;
mod wal_budget;
mod watch;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Diagnostic;
use crate::deadletter::{DeadLetterId, DeadLetterStore};
use crate::egress::settings::EgressSettings;
use crate::ingress::budget::{self, InputBudget};
use crate::mailbox::{Command, Control};
use crate::metrics::Metrics;
use crate::routes::server::Workers;
use crate::routes::RouteTable;
use crate::runtime::driver::{Driver, DriverChoice};
use crate::runtime::fdtable;
use crate::runtime::mesh::Mesh;
use crate::runtime::shards::{self, ShardOptions};
use crate::shard::Routing;
use crate::tls::config::TlsConfigError;
use crate::wal::WalConfig;
use admin::AdminRequest;
pub use reload::ReloadOutcome;
use service::Service;

/// How the operator started the daemon.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: PathBuf,
    pub driver: DriverChoice,
    /// Overrides `[server] workers`.
    pub workers: Option<usize>,
    /// How long shutdown waits for queued messages to be delivered.
    pub grace: Duration,
    /// Reload when the config file changes.
    pub watch: bool,
    /// Give each shard its own descriptor table (the default): the open-files limit then
    /// applies per shard, not to the whole process.
    pub private_fds: bool,
    /// Pin each shard's thread to a core (the default).
    pub pin: bool,
    /// Start even when group or others can reach the data directory (or when `[server]
    /// allow_shared_data_dir` says so).
    pub allow_shared_data_dir: bool,
    /// Store every message before acknowledging it (the default). Off only for measuring
    /// what durability costs: then an ACK means "queued in memory".
    pub durable: bool,
    pub wal: WalConfig,
    /// The whole log's disk budget in bytes; overrides `[server] wal_budget`.
    pub wal_budget: Option<u64>,
    pub egress: EgressSettings,
}

/// Why the daemon could not start (once started, it reports problems in its log and goes on).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{} problem(s) in the configuration", .0.iter().filter(|d| d.is_error()).count())]
    Config(Vec<Diagnostic>),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// The first table could not be put in force (a listener's address taken, a certificate
    /// that cannot be used); each reason.
    #[error("the configuration could not be put in force:\n  {}", .0.join("\n  "))]
    Startup(Vec<String>),
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    #[error(transparent)]
    Shards(#[from] shard_main::ShardStartError),
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error(
        "the data directory {0}, and it holds messages: make it private (chmod 700 {path}), \
         or, if other users must reach it, set `allow_shared_data_dir = true` in [server] \
         (or run with --allow-shared-data-dir)",
        path = .0.path.display()
    )]
    SharedDataDir(crate::private_fs::Shared),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Runs the router until SIGTERM or SIGINT; returns once every shard has stopped. A service
/// manager that listens (`NOTIFY_SOCKET`) is told how start-up goes, and why it failed.
pub fn run(options: RunOptions) -> Result<(), RunError> {
    let mut service = Service::from_env();
    service.status(&format!("starting: reading {}", options.config.display()));
    let result = serve(options, &mut service);
    if let Err(e) = &result {
        service.status(&format!("failed to start: {e}"));
    }
    result
}

fn serve(options: RunOptions, service: &mut Service) -> Result<(), RunError> {
    let read = watch::read_stable(&options.config, None).map_err(|unsettled| RunError::Io {
        what: "reading the configuration".to_string(),
        source: io::Error::other(unsettled),
    })?;
    let (table, warnings) = read.loaded.map_err(RunError::Config)?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let workers = options.workers.unwrap_or(match table.server().workers {
        Workers::Auto => shards::available_cores(),
        Workers::Count(n) => n as usize,
    });
    let driver = options.driver.resolve().map_err(io_error("I/O driver"))?;
    match (options.driver, driver) {
        (DriverChoice::Auto, Driver::Epoll) => {
            tracing::warn!("io_uring is not available here; using the epoll driver")
        }
        _ => tracing::info!("I/O driver: {driver}"),
    }
    // The shards start from nothing; the start-up reload below brings the table.
    let empty = Arc::new(Routing::build(
        Arc::new(RouteTable::empty(&options.config)),
        workers,
        None,
    )?);
    let data_dir = table.data_dir();
    data_dir::prepare(
        &data_dir,
        options.allow_shared_data_dir || table.server().allow_shared_data_dir,
    )?;
    let admin_access = admin::prepare(admin::settings::AdminSettings::of(&table))?;
    let trace_settings = table.server().trace;
    let dead_letters = Arc::new(
        DeadLetterStore::open(&data_dir)
            .map_err(|e| io_error("dead-letter store")(io::Error::other(e.to_string())))?,
    );
    let marks = Arc::new(Mesh::new(workers, 64 * 1024));
    let log_budget = wal_budget::BudgetSetting::new(options.wal_budget, &table);
    // The trace helps people find messages; it must never keep the router from taking them
    // (a restart on a full disk, say), so it is left off for this run when it cannot open.
    let trace = match trace_settings
        .enabled
        .then(|| {
            crate::trace::Trace::start(&data_dir, trace_settings, Arc::clone(&log_budget.budget))
        })
        .transpose()
    {
        Ok(trace) => trace,
        Err(e) => {
            tracing::error!(
                "message trace: the index cannot be opened ({e}); running without it until the \
                 next start"
            );
            None
        }
    };
    if !options.durable {
        tracing::warn!("durability is off: messages are acknowledged before they are on disk");
    }
    let metrics = Metrics::new(workers);
    let budget = input_budget(&table, &metrics);
    let mesh = Arc::new(Mesh::new(workers, 64 * 1024));
    let control = Control::new(workers);
    let ingress_open = Arc::new(AtomicU32::new(workers as u32));
    let (ready, started) = std::sync::mpsc::channel();
    let (membership, links) = match &table.server().cluster {
        Some(settings) => {
            let (membership, links) = cluster::join(settings, &read.files, workers, &metrics)?;
            (Some(membership), Some(links))
        }
        None => (None, None),
    };
    let context = shard_main::Context {
        routing: Arc::clone(&empty),
        mesh,
        control: Arc::clone(&control),
        metrics: Arc::clone(&metrics),
        settings: options.egress,
        grace: options.grace,
        dead_letters: Arc::clone(&dead_letters),
        ingress_open,
        wal: options.durable.then(|| shard_main::WalSpec {
            data_dir: data_dir.clone(),
            config: options.wal.clone(),
            budget: Arc::clone(&log_budget.budget),
            marks,
        }),
        ready,
        trace: trace.as_ref().map(crate::trace::Trace::feed),
        cluster: links,
    };
    // The signal pipe must exist before the shards split their descriptor tables: a signal
    // may be handled on any thread, and its handler writes to the pipe by number.
    let signals = Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(io_error("signal handlers"))?;
    let open_files = fdtable::raise_open_files_limit();
    check_open_files(open_files, workers, table.endpoints().len());
    let shard_options = ShardOptions {
        driver,
        pin: options.pin,
        private_fds: options.private_fds,
    };
    let handles = shards::spawn(workers, shard_options, move |info| {
        shard_main::run(info, context.clone())
    })
    .map_err(io_error("starting shards"))?;
    let stop_shards = |handles: Vec<std::thread::JoinHandle<_>>| {
        for shard in 0..control.shards() {
            control.send(shard, Command::Shutdown);
        }
        for handle in handles {
            let _ = handle.join();
        }
    };
    // Each shard opens its own log (inside its own descriptor table); wait until all have,
    // and give up cleanly if one cannot.
    const START_TIMEOUT: Duration = Duration::from_secs(300);
    let mut failure = None;
    for _ in 0..workers {
        match started.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failure = Some(why),
            Err(_) => failure = Some(shard_main::ShardStartError::TimedOut(START_TIMEOUT)),
        }
    }
    if let Some(why) = failure {
        stop_shards(handles);
        return Err(why.into());
    }
    // Start-up is a reload from the empty table: the same plan, prepare and commit.
    service.status(&format!(
        "starting: applying {} on {workers} shard(s), then reading the write-ahead log",
        options.config.display()
    ));
    let setup = reload::Setup {
        config: options.config.clone(),
        shards: workers,
        workers_flag: options.workers,
    };
    let started = reload::Reloader::start(
        setup,
        empty,
        Arc::clone(&control),
        table,
        read.files,
        budget,
    );
    let mut reloader = match started {
        Ok(reloader) => reloader,
        Err(outcome) => {
            stop_shards(handles);
            return Err(RunError::Startup(outcome.reasons()));
        }
    };
    tracing::info!("ganglion running with {workers} shard(s)");

    let admin = admin::start(
        admin_access,
        Arc::clone(&metrics),
        Arc::clone(reloader.current()),
        Arc::clone(&dead_letters),
        Arc::clone(&log_budget.budget),
        trace.as_ref().map(|t| admin::TraceLookup {
            index: Arc::clone(&t.index),
            key: Arc::clone(&t.key),
        }),
    )
    .map_err(io_error(format!(
        "admin address {}",
        reloader.current().table.server().admin
    )));
    let admin = match admin {
        Ok(admin) => admin,
        Err(e) => {
            stop_shards(handles);
            return Err(e);
        }
    };
    let mut notice = Notice {
        service,
        runtime: format!("{workers} shard(s), {driver}"),
    };
    control_loop(
        &options,
        signals,
        &mut reloader,
        &admin,
        &dead_letters,
        &Followers {
            budget: &log_budget,
            membership: membership.as_ref(),
        },
        &mut notice,
    );
    notice.service.stopping(&format!(
        "stopping: answering senders, delivering what is queued (up to {} s)",
        options.grace.as_secs()
    ));

    for shard in 0..control.shards() {
        control.send(shard, Command::Shutdown);
    }
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("a shard failed: {e}"),
            Err(_) => tracing::error!("a shard panicked"),
        }
    }
    if let Some(membership) = membership {
        membership.leave();
    }
    if let Some(trace) = trace {
        trace.stop();
    }
    tracing::info!("ganglion stopped");
    Ok(())
}

/// Says clearly when the open-files limit cannot hold a connection to every endpoint.
fn check_open_files(limit: u64, shards: usize, endpoints: usize) {
    // Each shard has its own descriptor table, each under the limit; keep a margin for
    // listeners, senders' connections, log segments and the runtime's own descriptors.
    let per_shard_need = endpoints.div_ceil(shards.max(1)) as u64 + 1024;
    if limit < per_shard_need {
        tracing::warn!(
            "the open-files limit is {limit} per shard, but {endpoints} endpoints over {shards} \
             shard(s) need about {per_shard_need} each: raise LimitNOFILE (or the hard limit), \
             or run more shards; connections past the limit will fail"
        );
    } else {
        tracing::info!("open-files limit: {limit} per shard ({shards} descriptor tables)");
    }
}

/// The process's budget for senders' unfinished input: `[server] max_buffered_input`, or the
/// default for this machine.
fn input_budget(table: &crate::routes::RouteTable, metrics: &Arc<Metrics>) -> Arc<InputBudget> {
    let limit = match &table.server().max_buffered_input {
        Some(limit) => *limit.get_ref(),
        None => {
            let largest = table.listeners().iter().map(|l| l.max_message_bytes).max();
            budget::default_limit(largest.unwrap_or(0))
        }
    };
    tracing::info!(
        "senders' unfinished input: at most {:.0} MiB held (max_buffered_input)",
        limit as f64 / f64::from(1u32 << 20)
    );
    InputBudget::new(limit, Arc::clone(metrics))
}

/// What the service manager is told, and the part of it that does not change.
struct Notice<'a> {
    service: &'a mut Service,
    /// Shards and driver: "2 shard(s), io_uring".
    runtime: String,
}

impl Notice<'_> {
    /// The status line while serving: what is in force.
    fn serving(&self, reloader: &reload::Reloader) -> String {
        let table = &reloader.current().table;
        format!(
            "serving: {} listener(s), {} endpoint(s), {} route(s); {}",
            table.listeners().len(),
            table.endpoints().len(),
            table.rules().len(),
            self.runtime
        )
    }
}

/// What follows the configuration in force: the log's disk budget, and the cluster's routes
/// version when this node is in a cluster.
struct Followers<'a> {
    budget: &'a wal_budget::BudgetSetting,
    membership: Option<&'a cluster::Membership>,
}

/// Signals, the config-file watch and admin requests, until told to stop.
fn control_loop(
    options: &RunOptions,
    mut signals: Signals,
    reloader: &mut reload::Reloader,
    admin: &admin::Admin,
    dead_letters: &DeadLetterStore,
    followers: &Followers<'_>,
    notice: &mut Notice<'_>,
) {
    // The routes file and the directory it names, as the last reload read them: ops staff
    // edit either.
    let mut watch = watch::Watch::new(reloader.files().clone());
    loop {
        if !notice.service.is_ready() && reloader.serving() {
            tracing::info!("serving: every shard has read its log and accepts");
            let status = notice.serving(reloader);
            notice.service.ready(&status);
        }
        for signal in signals.pending() {
            match signal {
                SIGHUP => {
                    tracing::info!("SIGHUP: reloading {}", options.config.display());
                    reload(reloader, admin, &mut watch, false, followers, notice);
                }
                _ => {
                    tracing::info!("signal {signal}: shutting down");
                    return;
                }
            }
        }
        while let Some(request) = admin.next_request() {
            match request {
                AdminRequest::Reload { allow_empty, reply } => {
                    let outcome =
                        reload(reloader, admin, &mut watch, allow_empty, followers, notice);
                    let _ = reply.send(outcome);
                }
                AdminRequest::Replay { id, reply } => {
                    let _ = reply.send(replay(&id, reloader.control(), dead_letters));
                }
            }
        }
        if options.watch && watch.poll(Instant::now()) {
            tracing::info!("the configuration changed: reloading");
            reload(reloader, admin, &mut watch, false, followers, notice);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Takes a dead letter and has shard 0 store its message again and send it on its way; the
/// letter is deleted only once the message is back in the log.
fn replay(id: &DeadLetterId, control: &Control, store: &DeadLetterStore) -> Result<String, String> {
    let (claim, letter) = store.claim(id).map_err(|e| e.to_string())?;
    let (reply, outcome) = std::sync::mpsc::channel();
    control.send(
        0,
        Command::Replay {
            letter: Box::new(letter),
            reply,
        },
    );
    match outcome.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {
            claim.finish().map_err(|e| e.to_string())?;
            tracing::info!("dead letter {id} replayed");
            Ok(format!("replayed {id}"))
        }
        Ok(Err(why)) => {
            let _ = claim.release();
            Err(why.to_string())
        }
        Err(_) => {
            let _ = claim.release();
            Err("the router did not answer in time".to_string())
        }
    }
}

/// Reloads, lets the admin server see the routing now in force, and has the watch wait for
/// the next change of the files this reload read. The service manager sees the reload begin
/// and end (the router serves throughout, on the old configuration or the new).
fn reload(
    reloader: &mut reload::Reloader,
    admin: &admin::Admin,
    watch: &mut watch::Watch,
    allow_empty: bool,
    followers: &Followers<'_>,
    notice: &Notice<'_>,
) -> ReloadOutcome {
    let serving = notice.serving(reloader);
    notice.service.reloading(&format!("reloading; {serving}"));
    let outcome = reloader.reload(allow_empty);
    let serving = notice.serving(reloader);
    notice
        .service
        .reloaded(&format!("{serving}; last {}", outcome.headline()));
    followers.budget.follow(&reloader.current().table);
    watch.reloaded(reloader.files().clone());
    if let (Some(membership), ReloadOutcome::Applied(_)) = (followers.membership, &outcome) {
        membership.reloaded(reloader.files());
    }
    admin.reloaded(&outcome, reloader.current());
    outcome
}
