//! `loadgen connections`: what holding N egress connections costs the router. Stands up the
//! proof's TLS endpoint fleet, measures `ganglion run` first with prewarm off (no connection:
//! the memory baseline), then with prewarm on every row until every connection is up (the time
//! and the memory), then tells every fleet process to drop all its connections at once and
//! measures the reconnect: its time and how many TLS handshakes resumed a session.
//!
//! Parts: [`metrics`] scrapes ganglion's admin `/metrics`; [`report`] is the result. The fleet,
//! the PKI, the routes file and the child processes are the proof's own.
pub mod metrics;
pub mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::drive::observer::Observer;
use crate::pki::Pki;
use crate::progress::Progress;
use crate::proof::procs::{self, ChildProc};
use crate::proof::{self, Fleet, ProofConfig, Slo};
pub use report::{ConnectionsReport, IdleCpu, Reconnect};

#[derive(Clone, Debug)]
pub struct ConnectionsConfig {
    pub endpoints: usize,
    /// ganglion's shard count (each shard has a private descriptor table of 20,000).
    pub workers: Option<usize>,
    /// Passed to ganglion: endpoints that refused in the reconnect storm are tried again soon.
    pub breaker_cooldown_ms: u64,
    pub ganglion: Option<PathBuf>,
    /// The loadgen binary that runs fleets (default: this executable).
    pub loadgen: Option<PathBuf>,
    pub build: bool,
    pub release: bool,
    pub fleet_procs: Option<usize>,
    pub workdir: Option<PathBuf>,
    pub keep: bool,
    pub json: Option<PathBuf>,
    pub progress: bool,
    /// How long the router's CPU is measured with no traffic, without and with connections.
    pub idle: Duration,
}

/// The proof's configuration with what its fleet code reads; the rest is never used here.
fn fleet_config(config: &ConnectionsConfig) -> ProofConfig {
    ProofConfig {
        endpoints: config.endpoints,
        rate: 0.0,
        duration: Duration::ZERO,
        step_duration: Duration::ZERO,
        step_factor: 1.5,
        max_rate: 0.0,
        slo: Slo {
            p99_us: 0,
            max_error_ratio: 0.0,
        },
        tls: true,
        durable: true,
        mix: crate::gen::Mix::realistic(),
        protocols: (9, 1),
        seed: 1,
        connections: 1,
        arrivals: crate::drive::schedule::Arrivals::Poisson,
        baseline_relay: false,
        relay_threads: 1,
        ganglion: config.ganglion.clone(),
        loadgen: config.loadgen.clone(),
        build: config.build,
        release: config.release,
        workers: config.workers,
        pin: false,
        fleet_procs: config.fleet_procs,
        workdir: None,
        keep: config.keep,
        json: None,
        svg: None,
        progress: config.progress,
        refine: 0,
        attempts: 1,
        router_args: Vec::new(),
        endpoint_delay: Duration::ZERO,
        cluster: 0,
    }
}

/// Starts `ganglion run` on the routes file in `dir` (its WAL under `dir/data`).
fn start_ganglion(
    bin: &Path,
    config: &ConnectionsConfig,
    dir: &Path,
    pki: &Pki,
    directory: &Path,
) -> anyhow::Result<(ChildProc, SocketAddr)> {
    std::fs::create_dir_all(dir)?;
    let routes = dir.join("routes.toml");
    std::fs::write(&routes, proof::routes_toml(dir, Some(pki), directory))?;
    let mut args = vec![
        "run".to_string(),
        "--config".into(),
        routes.display().to_string(),
        "--no-watch".into(),
        "--breaker-cooldown-ms".into(),
        config.breaker_cooldown_ms.to_string(),
    ];
    if let Some(w) = config.workers {
        args.push("--workers".into());
        args.push(w.to_string());
    }
    let mut child = ChildProc::spawn("ganglion", bin, &args, &dir.join("ganglion.log"))?;
    child.wait_for("", &["mllp", "itk", "admin"], Duration::from_secs(120))?;
    let admin = child.addr("admin")?;
    Ok((child, admin))
}

/// Waits until `done` holds of the fleets' counts; returns the time it first held, or `None`
/// when it did not before the deadline or after `stall` without any change in the counts.
fn wait_until(
    observer: &mut Observer,
    what: &str,
    progress: &mut Progress,
    deadline: Instant,
    stall: Duration,
    stop: &AtomicBool,
    done: impl Fn(&Observer) -> bool,
) -> Option<Instant> {
    let mut last = (u64::MAX, Instant::now());
    loop {
        observer.pump();
        let now = Instant::now();
        if done(observer) {
            return Some(now);
        }
        let established = observer.established();
        if established != last.0 {
            last = (established, now);
        } else if now.duration_since(last.1) > stall {
            return None;
        }
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return None;
        }
        progress.show(&format!("{what}: {established} connections established"));
        // Fleets report every 0.2 s; polling faster would only re-read the same counts.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The whole measurement; the caller prints the report.
pub fn run(config: &ConnectionsConfig, stop: &AtomicBool) -> anyhow::Result<ConnectionsReport> {
    let nofile = router::runtime::fdtable::raise_open_files_limit();
    let workdir = procs::fresh_workdir(config.workdir.as_deref(), "connections")?;
    let result = run_in(config, &workdir, nofile, stop);
    procs::leave_workdir(&workdir, config.keep);
    let report = result?;
    if let Some(path) = &config.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn run_in(
    config: &ConnectionsConfig,
    workdir: &Path,
    nofile: u64,
    stop: &AtomicBool,
) -> anyhow::Result<ConnectionsReport> {
    let n = config.endpoints as u64;
    let bin = procs::find_ganglion(config.ganglion.as_deref(), config.release, config.build)?;
    let pki = Pki::create(&workdir.join("pki"))?;
    Progress::new(config.progress).result(&format!(
        "starting {} TLS endpoints (open-files limit {nofile}) …",
        config.endpoints
    ));
    let mut fleet: Fleet = proof::start_fleet(&fleet_config(config), workdir, Some(&pki))?;
    let mut report = ConnectionsReport {
        endpoints: config.endpoints,
        workers: config.workers,
        breaker_cooldown_ms: config.breaker_cooldown_ms,
        ..ConnectionsReport::default()
    };

    // The baseline: the same router and directory, prewarm off, so no connection is opened.
    let cold = workdir.join("endpoints-cold.csv");
    crate::directory::write(&cold, &fleet.rows, false)?;
    let (mut router, admin) = start_ganglion(&bin, config, &workdir.join("cold"), &pki, &cold)?;
    // Let the shards finish starting before reading their memory.
    std::thread::sleep(Duration::from_secs(2));
    let gauge = metrics::scrape(admin)?.egress_connections;
    report.baseline_rss_bytes = crate::sys::status_bytes(router.pid(), "VmRSS").unwrap_or(0);
    report.idle_cold = idle_cpu(router.pid(), config.idle);
    router.stop(Duration::from_secs(20));
    anyhow::ensure!(
        gauge == 0,
        "ganglion opened {gauge} connections with prewarm off: the baseline is not one without connections"
    );
    eprintln!(
        "baseline (prewarm off): {:.1} MiB",
        report.baseline_rss_bytes as f64 / (1024.0 * 1024.0)
    );

    // Every connection up.
    let timeout = Duration::from_secs(60 + n / 100);
    let started = Instant::now();
    let (mut router, admin) =
        start_ganglion(&bin, config, &workdir.join("warm"), &pki, &fleet.directory)?;
    let all_up = wait_until(
        &mut fleet.observer,
        "prewarm",
        &mut Progress::new(config.progress),
        started + timeout,
        Duration::from_secs(30),
        stop,
        |o| o.established() >= n,
    );
    report.established = fleet.observer.established();
    report.establish_secs = all_up
        .unwrap_or_else(Instant::now)
        .duration_since(started)
        .as_secs_f64();
    report.rss_bytes = crate::sys::status_bytes(router.pid(), "VmRSS").unwrap_or(0);
    let before = metrics::scrape(admin)?;
    report.router_gauge = before.egress_connections;
    report.initial_full = before.handshakes_full;
    report.initial_resumed = before.handshakes_resumed;
    if all_up.is_some() && !stop.load(Ordering::Relaxed) {
        // Session tickets and the last handshakes' completions settle first.
        std::thread::sleep(Duration::from_secs(2));
        report.idle_warm = idle_cpu(router.pid(), config.idle);
    }
    if all_up.is_none() {
        eprintln!(
            "not every connection was established: {}/{n}",
            report.established
        );
    }

    // The forced reconnect: every fleet process closes all its connections at once.
    if !stop.load(Ordering::Relaxed) {
        report.reconnect = reconnect(config, &mut fleet, admin, before, stop)?;
    }
    report.peak_rss_bytes = crate::sys::status_bytes(router.pid(), "VmHWM").unwrap_or(0);
    if !router.stop(Duration::from_secs(20)) {
        eprintln!("ganglion did not stop on SIGTERM within 20 s; killed");
    }
    for p in &mut fleet.procs {
        p.stop(Duration::from_secs(5));
    }
    Ok(report)
}

/// The CPU process `pid` uses over `over`, in total and per thread name.
fn idle_cpu(pid: u32, over: Duration) -> IdleCpu {
    let total = crate::sys::cpu_seconds(pid);
    let threads = crate::sys::cpu_seconds_by_thread(pid);
    let started = Instant::now();
    std::thread::sleep(over);
    let secs = started.elapsed().as_secs_f64();
    let total = crate::sys::cpu_seconds(pid)
        .zip(total)
        .map_or(0.0, |(b, a)| b - a);
    let mut by_thread: Vec<(String, f64)> = crate::sys::cpu_seconds_by_thread(pid)
        .into_iter()
        .map(|(name, after)| {
            let before = threads.get(&name).copied().unwrap_or(0.0);
            (name, (after - before).max(0.0) / secs)
        })
        .collect();
    by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
    IdleCpu {
        secs,
        cores: total / secs,
        by_thread,
    }
}

fn reconnect(
    config: &ConnectionsConfig,
    fleet: &mut Fleet,
    admin: SocketAddr,
    before: metrics::Scrape,
    stop: &AtomicBool,
) -> anyhow::Result<Reconnect> {
    use std::io::Write;
    fleet.observer.pump();
    // Per fleet process: its accept count and connections now. It has reconnected when it has
    // accepted that many more and holds that many again (one stats line carries both, so a
    // line written before the drop can never pass for one after it).
    let marks: Vec<(u64, u64)> = fleet
        .observer
        .watches
        .iter()
        .map(|w| (w.accepted, w.established))
        .collect();
    let dropped: u64 = marks.iter().map(|m| m.1).sum();
    let started = Instant::now();
    for w in &mut fleet.observer.watches {
        w.tcp
            .write_all(b"drop\n")
            .context("telling a fleet process to drop its connections")?;
    }
    let timeout = Duration::from_secs(60 + dropped / 100);
    let done = wait_until(
        &mut fleet.observer,
        "reconnect",
        &mut Progress::new(config.progress),
        started + timeout,
        Duration::from_secs(30),
        stop,
        |o| {
            o.watches
                .iter()
                .zip(&marks)
                .all(|(w, &(acc, est))| w.accepted >= acc + est && w.established >= est)
        },
    );
    let secs = done
        .unwrap_or_else(Instant::now)
        .duration_since(started)
        .as_secs_f64();
    let reestablished = match done {
        Some(_) => fleet.observer.established(),
        // Count only what came back after the drop, not a stale count from before it.
        None => fleet
            .observer
            .watches
            .iter()
            .zip(&marks)
            .map(|(w, &(acc, _))| w.established.min(w.accepted.saturating_sub(acc)))
            .sum(),
    };
    if done.is_none() {
        eprintln!("not every connection came back after the drop: {reestablished}/{dropped}");
    }
    // The router counts a handshake when it finishes its side, before the endpoint does; give
    // the counters a moment in case the two are read across that gap.
    let mut after = metrics::scrape(admin)?;
    let until = Instant::now() + Duration::from_secs(2);
    while (after.handshakes_full + after.handshakes_resumed)
        < (before.handshakes_full + before.handshakes_resumed + reestablished)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(100));
        after = metrics::scrape(admin)?;
    }
    Ok(Reconnect {
        dropped,
        reestablished,
        secs,
        full: after.handshakes_full.saturating_sub(before.handshakes_full),
        resumed: after
            .handshakes_resumed
            .saturating_sub(before.handshakes_resumed),
    })
}
