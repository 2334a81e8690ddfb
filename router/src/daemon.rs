//! `ganglion run`: start-up, the control loop, and shutdown.
//!
//! Start-up is a reload from nothing: the same `routes::load` that `check` and every reload
//! use builds the first table. The shards are started (every runtime built before any starts
//! work), each binds its share of the listeners, and this thread becomes the control thread:
//! it turns SIGHUP, a change to the config file and admin requests into two-phase reloads, and
//! SIGTERM/SIGINT into a graceful shutdown.
pub mod admin;
mod outcomes;
mod reload;
mod shard_main;
mod wal_budget;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::control::{Command, Control};
use crate::deadletter::{DeadLetterId, DeadLetterStore};
use crate::egress::settings::EgressSettings;
use crate::ingress::listener::{bind_reuseport, ListenerCtx};
use crate::metrics::Metrics;
use crate::routes::file::ClientAuth;
use crate::routes::file::Workers;
use crate::routes::{self, Diagnostic, Protocol};
use crate::runtime::driver::{Driver, DriverChoice};
use crate::runtime::fdtable;
use crate::runtime::mesh::Mesh;
use crate::runtime::shards::{self, ShardOptions};
use crate::shard::Routing;
use crate::tls::config::{server_config, ClientCerts, TlsConfigError};
use crate::wal::WalConfig;
use admin::AdminRequest;
pub use reload::ReloadOutcome;

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
    #[error("{0}")]
    Tls(#[from] TlsConfigError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Listening sockets for one shard: each listener's context and socket.
type ShardSockets = Vec<(ListenerCtx, std::net::TcpListener)>;

/// Runs the router until SIGTERM or SIGINT; returns once every shard has stopped.
pub fn run(options: RunOptions) -> Result<(), RunError> {
    let (table, warnings) = routes::load(&options.config).map_err(RunError::Config)?;
    for warning in &warnings {
        log::warn!("{warning}");
    }
    let workers = options.workers.unwrap_or(match table.server().workers {
        Workers::Auto => shards::available_cores(),
        Workers::Count(n) => n as usize,
    });
    let driver = options.driver.resolve().map_err(io_error("I/O driver"))?;
    match (options.driver, driver) {
        (DriverChoice::Auto, Driver::Epoll) => {
            log::warn!("io_uring is not available here; using the epoll driver")
        }
        _ => log::info!("I/O driver: {driver}"),
    }
    let table = Arc::new(table);
    let routing = Arc::new(Routing::build(Arc::clone(&table), workers, None)?);
    let data_dir = table.data_dir();
    std::fs::create_dir_all(&data_dir)
        .map_err(io_error(format!("data directory {}", data_dir.display())))?;
    let dead_letters = Arc::new(
        DeadLetterStore::open(&data_dir)
            .map_err(|e| io_error("dead-letter store")(io::Error::other(e.to_string())))?,
    );
    let marks = Arc::new(Mesh::new(workers, 64 * 1024));
    let budget = wal_budget::BudgetSetting::new(options.wal_budget, &table);
    if !options.durable {
        log::warn!("durability is off: messages are acknowledged before they are on disk");
    }
    let sockets = bind_listeners(&table, workers)?;
    let metrics = Metrics::new(workers);
    let mesh = Arc::new(Mesh::new(workers, 64 * 1024));
    let control = Control::new(workers);
    let ingress_open = Arc::new(AtomicU32::new(workers as u32));
    let slots: Arc<Mutex<Vec<Option<ShardSockets>>>> =
        Arc::new(Mutex::new(sockets.into_iter().map(Some).collect()));
    let (ready, started) = std::sync::mpsc::channel();
    let context = shard_main::Context {
        routing: Arc::clone(&routing),
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
            budget: Arc::clone(&budget.budget),
            marks,
        }),
        ready,
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
        let sockets = slots
            .lock()
            .ok()
            .and_then(|mut all| all.get_mut(info.index).and_then(Option::take))
            .unwrap_or_default();
        shard_main::run(info, context.clone(), sockets)
    })
    .map_err(io_error("starting shards"))?;
    // Each shard opens its own log (inside its own descriptor table); wait until all have,
    // and give up cleanly if one cannot.
    let mut failure = None;
    for _ in 0..workers {
        match started.recv_timeout(Duration::from_secs(300)) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failure = Some(why),
            Err(_) => failure = Some("a shard did not start in time".to_string()),
        }
    }
    if let Some(why) = failure {
        for shard in 0..control.shards() {
            control.send(shard, Command::Shutdown);
        }
        for handle in handles {
            let _ = handle.join();
        }
        return Err(RunError::Io {
            what: "starting the shards".to_string(),
            source: io::Error::other(why),
        });
    }
    log::info!("ganglion running with {workers} shard(s)");

    let admin = admin::start(
        table.server().admin,
        Arc::clone(&metrics),
        Arc::clone(&routing),
        Arc::clone(&dead_letters),
    )
    .map_err(io_error(format!("admin address {}", table.server().admin)))?;
    let mut reloader = reload::Reloader::new(
        options.config.clone(),
        workers,
        routing,
        Arc::clone(&control),
    );
    control_loop(
        &options,
        signals,
        &mut reloader,
        &admin,
        &dead_letters,
        &budget,
    );

    for shard in 0..control.shards() {
        control.send(shard, Command::Shutdown);
    }
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("a shard failed: {e}"),
            Err(_) => log::error!("a shard panicked"),
        }
    }
    log::info!("ganglion stopped");
    Ok(())
}

/// Says clearly when the open-files limit cannot hold a connection to every endpoint.
fn check_open_files(limit: u64, shards: usize, endpoints: usize) {
    // Each shard has its own descriptor table, each under the limit; keep a margin for
    // listeners, senders' connections, log segments and the runtime's own descriptors.
    let per_shard_need = endpoints.div_ceil(shards.max(1)) as u64 + 1024;
    if limit < per_shard_need {
        log::warn!(
            "the open-files limit is {limit} per shard, but {endpoints} endpoints over {shards} \
             shard(s) need about {per_shard_need} each: raise LimitNOFILE (or the hard limit), \
             or run more shards; connections past the limit will fail"
        );
    } else {
        log::info!("open-files limit: {limit} per shard ({shards} descriptor tables)");
    }
}

/// Binds every listener once per shard and prints where each listens (port 0 picks one).
fn bind_listeners(
    table: &routes::RouteTable,
    workers: usize,
) -> Result<Vec<ShardSockets>, RunError> {
    let mut per_shard: Vec<ShardSockets> = (0..workers).map(|_| Vec::new()).collect();
    for listener in table.listeners() {
        let tls = match (&listener.protocol, &listener.cert) {
            (Protocol::Mllps | Protocol::ItkHttps, Some((cert, key))) => {
                let clients = match (listener.client_cert, listener.client_ca.as_deref()) {
                    (ClientAuth::Required, Some(ca)) => ClientCerts::Required(ca),
                    (ClientAuth::Optional, Some(ca)) => ClientCerts::Optional(ca),
                    _ => ClientCerts::NotAsked,
                };
                Some(server_config(cert, key, clients)?)
            }
            _ => None,
        };
        let sockets = bind_reuseport(listener.bind, workers).map_err(io_error(format!(
            "listener {} on {}",
            listener.name, listener.bind
        )))?;
        let bound: SocketAddr = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(listener.bind);
        // A fixed, parseable line: tests and scripts read the port when the config says 0.
        println!(
            "listening name={} protocol={} addr={bound}",
            listener.name, listener.protocol
        );
        let open = Arc::new(AtomicU32::new(0));
        let name: Arc<str> = Arc::from(listener.name.as_str());
        for (shard, socket) in sockets.into_iter().enumerate() {
            per_shard[shard].push((
                ListenerCtx {
                    name: Arc::clone(&name),
                    config: listener.clone(),
                    tls: tls.clone(),
                    open: Arc::clone(&open),
                },
                socket,
            ));
        }
    }
    Ok(per_shard)
}

/// Signals, the config-file watch and admin requests, until told to stop.
fn control_loop(
    options: &RunOptions,
    mut signals: Signals,
    reloader: &mut reload::Reloader,
    admin: &admin::Admin,
    dead_letters: &DeadLetterStore,
    budget: &wal_budget::BudgetSetting,
) {
    // Both the routes file and the directory it names: ops staff edit either.
    let watched = |reloader: &reload::Reloader| -> Vec<Option<SystemTime>> {
        let table = &reloader.current().table;
        std::iter::once(options.config.as_path())
            .chain(table.directory_path())
            .map(modified)
            .collect()
    };
    let mut seen = watched(reloader);
    let mut last_check = Instant::now();
    loop {
        for signal in signals.pending() {
            match signal {
                SIGHUP => {
                    log::info!("SIGHUP: reloading {}", options.config.display());
                    reload(reloader, admin, budget);
                }
                _ => {
                    log::info!("signal {signal}: shutting down");
                    return;
                }
            }
        }
        while let Some(request) = admin.next_request() {
            match request {
                AdminRequest::Reload(reply) => {
                    let _ = reply.send(reload(reloader, admin, budget));
                }
                AdminRequest::Replay { id, reply } => {
                    let _ = reply.send(replay(&id, reloader.control(), dead_letters));
                }
            }
        }
        if options.watch && last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            let now = watched(reloader);
            if now != seen {
                log::info!("the configuration changed: reloading");
                reload(reloader, admin, budget);
                seen = watched(reloader);
            }
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
            log::info!("dead letter {id} replayed");
            Ok(format!("replayed {id}"))
        }
        Ok(Err(why)) => {
            let _ = claim.release();
            Err(why)
        }
        Err(_) => {
            let _ = claim.release();
            Err("the router did not answer in time".to_string())
        }
    }
}

/// Reloads and lets the admin server see the routing now in force.
fn reload(
    reloader: &mut reload::Reloader,
    admin: &admin::Admin,
    budget: &wal_budget::BudgetSetting,
) -> ReloadOutcome {
    let outcome = reloader.reload();
    budget.follow(&reloader.current().table);
    if let Ok(mut current) = admin.routing.lock() {
        *current = Arc::clone(reloader.current());
    }
    outcome
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
