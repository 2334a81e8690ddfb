//! `loadgen proof`: the headroom report. Stands up the endpoint fleet (TLS with client
//! certificates by default) and `ganglion run` (durable, every endpoint prewarmed), runs the
//! target rate for the full duration, then steps the rate up until the service-level
//! objective breaks; optionally does the same through the bare relay in the same run, so that
//! ganglion's figures can be read as a fraction of the ceiling of this machine.
pub mod cluster;
pub mod procs;
pub mod report;
pub mod svg;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::directory::{self, Row};
use crate::drive::observer::Observer;
use crate::drive::schedule::Arrivals;
use crate::drive::{self, DriveConfig, Targets};
use crate::gen::{Generator, Mix};
use crate::pki::Pki;
use crate::progress::Progress;
use crate::stats::RunStats;
use procs::ChildProc;
use report::Majority;
pub use report::{Report, Step, System};

/// The objective a step must meet.
#[derive(Clone, Copy, Debug)]
pub struct Slo {
    pub p99_us: u64,
    /// Largest fraction of messages that may fail (0.0001 = 0.01 %).
    pub max_error_ratio: f64,
}

impl Slo {
    pub fn met(&self, s: &RunStats) -> bool {
        s.lost == 0
            && s.sent == s.scheduled
            && s.ack.percentiles().p99 <= self.p99_us
            && s.error_ratio() <= self.max_error_ratio
    }
}

#[derive(Clone, Debug)]
pub struct ProofConfig {
    pub endpoints: usize,
    pub rate: f64,
    pub duration: Duration,
    pub step_duration: Duration,
    pub step_factor: f64,
    pub max_rate: f64,
    pub slo: Slo,
    pub tls: bool,
    pub durable: bool,
    pub mix: Mix,
    pub protocols: (u32, u32),
    pub seed: u64,
    pub connections: usize,
    pub arrivals: Arrivals,
    pub baseline_relay: bool,
    pub relay_threads: usize,
    pub ganglion: Option<PathBuf>,
    /// The loadgen binary that runs fleets and the relay (default: this executable).
    pub loadgen: Option<PathBuf>,
    pub build: bool,
    pub release: bool,
    pub workers: Option<usize>,
    /// Run ganglion with its shards pinned to cores (its own default).
    pub pin: bool,
    pub fleet_procs: Option<usize>,
    pub workdir: Option<PathBuf>,
    pub keep: bool,
    pub json: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    pub progress: bool,
    /// Bisection steps after the ramp first fails.
    pub refine: usize,
    /// Attempts at each rate (odd); a rate is credited when most of them met the objective.
    pub attempts: usize,
    /// More arguments for `ganglion run` (say `--breaker-cooldown-ms 1000`).
    pub router_args: Vec<String>,
    /// The endpoints answer each message this long after it arrives (a receiver far away, or
    /// slow over each message); zero answers at once.
    pub endpoint_delay: Duration,
    /// Nodes of a ganglion cluster on NATS JetStream to prove instead of one node (0: one).
    pub cluster: usize,
}

/// The fleet processes and what the driver needs of them.
pub struct Fleet {
    pub procs: Vec<ChildProc>,
    pub rows: Vec<Row>,
    pub observer: Observer,
    pub directory: PathBuf,
}

pub(crate) fn wait_established(
    observer: &mut Observer,
    want: u64,
    what: &str,
    timeout: Duration,
    progress: &mut Progress,
) -> u64 {
    let start = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        observer.pump();
        let now = observer.established();
        if now >= want || start.elapsed() >= timeout {
            progress.finish();
            return now;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(20) && now > 0 {
            // No progress for a long while: report what there is rather than hang.
            progress.finish();
            return now;
        }
        progress.show(&format!("{what}: {now}/{want} connections established"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn loadgen_exe(config: &ProofConfig) -> anyhow::Result<PathBuf> {
    match &config.loadgen {
        Some(p) => Ok(p.clone()),
        None => Ok(std::env::current_exe()?),
    }
}

/// Starts the fleets: `count` endpoints over enough processes for the descriptor limit.
pub fn start_fleet(
    config: &ProofConfig,
    workdir: &Path,
    pki: Option<&Pki>,
) -> anyhow::Result<Fleet> {
    let exe = loadgen_exe(config)?;
    let per = crate::fleet::MAX_PER_PROCESS;
    let procs_wanted = config
        .fleet_procs
        .unwrap_or_else(|| {
            config
                .endpoints
                .div_ceil(per)
                .max(if config.endpoints >= 1000 { 2 } else { 1 })
        })
        .max(config.endpoints.div_ceil(per))
        .max(1);
    let mut procs = Vec::new();
    let mut first = 0;
    for k in 0..procs_wanted {
        let count = (config.endpoints - first).div_ceil(procs_wanted - k);
        let csv = workdir.join(format!("fleet-{k}.csv"));
        let mut args = vec![
            "endpoints".to_string(),
            "--count".into(),
            count.to_string(),
            "--first".into(),
            first.to_string(),
            "--protocols".into(),
            format!("mllp:{},itk:{}", config.protocols.0, config.protocols.1),
            "--seed".into(),
            config.seed.to_string(),
            "--directory".into(),
            csv.display().to_string(),
        ];
        if let Some(pki) = pki {
            args.push("--pki".into());
            args.push(pki.dir.display().to_string());
        }
        if !config.endpoint_delay.is_zero() {
            args.push("--delay".into());
            args.push(format!("{}us", config.endpoint_delay.as_micros()));
        }
        let mut child = ChildProc::spawn(
            &format!("fleet {k}"),
            &exe,
            &args,
            &workdir.join(format!("fleet-{k}.log")),
        )?;
        child.wait_for("ready", &["control"], Duration::from_secs(120))?;
        procs.push(child);
        first += count;
    }
    let mut rows = Vec::new();
    for k in 0..procs_wanted {
        rows.extend(directory::read(&workdir.join(format!("fleet-{k}.csv")))?);
    }
    let directory = workdir.join("endpoints.csv");
    directory::write(&directory, &rows, true)?;
    let addrs: Vec<SocketAddr> = procs
        .iter()
        .map(|p| p.addr("control"))
        .collect::<Result<_, _>>()?;
    let observer = Observer::connect(&addrs)?;
    Ok(Fleet {
        procs,
        rows,
        observer,
        directory,
    })
}

/// The route that sends each HL7v2 message to the endpoint its receiving facility names.
pub const HL7_ROUTE: &str = "[[route]]\nname = \"HL7v2 by receiving facility\"\nhl7.message_type = [\"ADT\", \"ORU\", \"ORM\", \"SIU\"]\nto = { lookup = \"hl7.receiving_facility\" }\n";

/// The route that sends each ITK message to the endpoint its address names.
pub const ITK_ROUTE: &str = "[[route]]\nname = \"ITK by address\"\nitk.service = \"urn:nhs-itk:services:201005:*\"\nto = { lookup = \"itk.address\" }\n";

/// The routes file for the proof: one MLLP and one ITK listener on loopback, the fleet's
/// directory, lookups by receiving facility and by ITK address.
pub fn routes_toml(workdir: &Path, pki: Option<&Pki>, directory: &Path) -> String {
    format!(
        "{}{HL7_ROUTE}\n{ITK_ROUTE}",
        routes_head(workdir, pki, directory)
    )
}

/// Everything of [`routes_toml`] but the routes: the listeners, the server, the TLS profile
/// and the directory.
pub fn routes_head(workdir: &Path, pki: Option<&Pki>, directory: &Path) -> String {
    let mut text = format!(
        "# written by loadgen proof\nunrouted = \"reject\"\n\n[server]\nworkers = \"auto\"\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"mllp\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\nmax_connections = 1000\n\n\
         [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.2:0\"\nmax_connections = 1000\n\n",
        workdir.join("data").display()
    );
    if let Some(pki) = pki {
        text.push_str(&format!(
            "[tls.{}]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\n",
            directory::TLS_PROFILE,
            pki.path("ca.crt").display(),
            pki.path("client.crt").display(),
            pki.path("client.key").display()
        ));
    }
    text.push_str(&format!(
        "[directory]\nfile = \"{}\"\n\n",
        directory.display()
    ));
    text
}

/// One system under test (ganglion, the relay, or a ganglion cluster), running.
pub(crate) struct Subject {
    pub proc_: ChildProc,
    /// A cluster's other nodes, whose CPU counts too.
    pub others: Vec<ChildProc>,
    /// A cluster's NATS servers, whose CPU counts too.
    pub nats: Vec<u32>,
    pub kind: System,
    /// The MLLP listener of each node senders are spread over.
    pub mllp: Vec<SocketAddr>,
    pub itk: Vec<SocketAddr>,
}

impl Subject {
    /// CPU seconds of every process of the system (a process gone meanwhile counts nothing).
    fn cpu_seconds(&self) -> Option<f64> {
        let own = crate::sys::cpu_seconds(self.proc_.pid())?;
        let peers: f64 = self
            .others
            .iter()
            .map(ChildProc::pid)
            .chain(self.nats.iter().copied())
            .filter_map(crate::sys::cpu_seconds)
            .sum();
        Some(own + peers)
    }
}

/// Writes `routes` to `workdir/routes.toml` and starts `ganglion run` on it (durable unless
/// the configuration says otherwise; it reloads on SIGHUP only, not when the file changes).
pub(crate) fn start_ganglion(
    config: &ProofConfig,
    workdir: &Path,
    routes: &str,
) -> anyhow::Result<Subject> {
    let bin = procs::find_ganglion(config.ganglion.as_deref(), config.release, config.build)?;
    let text = routes;
    let routes = workdir.join("routes.toml");
    std::fs::write(&routes, text)?;
    let mut args = vec![
        "run".to_string(),
        "--config".into(),
        routes.display().to_string(),
        "--no-watch".into(),
    ];
    if !config.durable {
        args.push("--no-durability".into());
    }
    if let Some(w) = config.workers {
        args.push("--workers".into());
        args.push(w.to_string());
    }
    if !config.pin {
        args.push("--no-pin".into());
    }
    args.extend(config.router_args.iter().cloned());
    let mut child = ChildProc::spawn("ganglion", &bin, &args, &workdir.join("ganglion.log"))?;
    child.wait_for("", &["mllp", "itk", "admin"], Duration::from_secs(120))?;
    Ok(Subject {
        mllp: vec![child.addr("mllp")?],
        itk: child.addr("itk").ok().into_iter().collect(),
        proc_: child,
        others: Vec::new(),
        nats: Vec::new(),
        kind: System::Ganglion,
    })
}

fn start_relay(
    config: &ProofConfig,
    workdir: &Path,
    pki: Option<&Pki>,
    fleet: &Fleet,
) -> anyhow::Result<Subject> {
    let exe = loadgen_exe(config)?;
    let mut args = vec![
        "relay".to_string(),
        "--directory".into(),
        fleet.directory.display().to_string(),
        "--threads".into(),
        config.relay_threads.to_string(),
    ];
    if let Some(pki) = pki {
        args.push("--pki".into());
        args.push(pki.dir.display().to_string());
    }
    let mut child = ChildProc::spawn("relay", &exe, &args, &workdir.join("relay.log"))?;
    child.wait_for("", &["mllp", "itk"], Duration::from_secs(120))?;
    Ok(Subject {
        mllp: vec![child.addr("mllp")?],
        itk: child.addr("itk").ok().into_iter().collect(),
        proc_: child,
        others: Vec::new(),
        nats: Vec::new(),
        kind: System::Relay,
    })
}

/// CPU seconds of the fleet processes.
fn fleet_cpu(fleet: &Fleet) -> f64 {
    fleet
        .procs
        .iter()
        .filter_map(|p| crate::sys::cpu_seconds(p.pid()))
        .sum()
}

/// The driver's configuration for step `index` of a run against `subject`: each step has a
/// tag of its own, so an arrival from an earlier step is never counted in a later one.
pub(crate) fn drive_config(
    config: &ProofConfig,
    subject: &Subject,
    rate: f64,
    duration: Duration,
    index: usize,
) -> DriveConfig {
    let run_tag = (config.seed as u32).wrapping_mul(0x9E37) & 0x00FF_FFFF;
    let system = match subject.kind {
        System::Ganglion => 0,
        System::Cluster => 64,
        System::Relay => 128,
    };
    let tag = (run_tag << 8) | ((index as u32 + system) & 0xFF);
    DriveConfig {
        mllp: subject.mllp.clone(),
        itk: subject.itk.clone(),
        rate,
        duration,
        connections: config.connections,
        mix: config.mix.clone(),
        seed: config.seed,
        arrivals: config.arrivals,
        tag,
        drain: Duration::from_secs(15),
        progress: config
            .progress
            .then(|| format!("[{} {:.0}/s]", subject.kind.name(), rate)),
        window: None,
        patients: None,
    }
}

/// Runs the driver against `subject` and measures who used the cores meanwhile.
pub(crate) fn measure(
    slo: &Slo,
    subject: &Subject,
    fleet: &mut Fleet,
    generator: &Generator,
    targets: &Targets,
    drive: &DriveConfig,
    stop: &AtomicBool,
) -> anyhow::Result<Step> {
    let me = std::process::id();
    let wall = Instant::now();
    let cpu0 = (
        subject.cpu_seconds(),
        crate::sys::cpu_seconds(me),
        fleet_cpu(fleet),
    );
    let stats = drive::run(drive, generator, targets, &mut fleet.observer, stop)?;
    let secs = wall.elapsed().as_secs_f64().max(1e-9);
    let cpu1 = (
        subject.cpu_seconds(),
        crate::sys::cpu_seconds(me),
        fleet_cpu(fleet),
    );
    let subject_cpu_s = match (cpu0.0, cpu1.0) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let slo_met = slo.met(&stats);
    Ok(Step {
        system: subject.kind,
        stats,
        slo_met,
        subject_cores: subject_cpu_s / secs,
        subject_cpu_s,
        driver_cores: (cpu1.1.unwrap_or(0.0) - cpu0.1.unwrap_or(0.0)) / secs,
        fleet_cores: (cpu1.2 - cpu0.2) / secs,
    })
}

/// Runs one step against `subject` and measures who used the cores.
#[allow(clippy::too_many_arguments)]
fn step(
    config: &ProofConfig,
    subject: &Subject,
    fleet: &mut Fleet,
    generator: &Generator,
    targets: &Targets,
    rate: f64,
    duration: Duration,
    index: usize,
    stop: &AtomicBool,
) -> anyhow::Result<Step> {
    let drive = drive_config(config, subject, rate, duration, index);
    measure(
        &config.slo,
        subject,
        fleet,
        generator,
        targets,
        &drive,
        stop,
    )
}

/// Runs one rate up to `config.attempts` times and credits it when most attempts met the
/// objective, stopping as soon as the majority is known: on a machine shared with other work a
/// single step can be spoiled (or flattered) by someone else's burst, so neither one lucky nor
/// one unlucky attempt decides, and ganglion and the relay are judged alike. A loss ends the
/// rate at once: it is a fault, not noise. Every attempt is kept in `steps`.
#[allow(clippy::too_many_arguments)]
fn attempt(
    config: &ProofConfig,
    subject: &Subject,
    fleet: &mut Fleet,
    generator: &Generator,
    targets: &Targets,
    rate: f64,
    duration: Duration,
    steps: &mut Vec<Step>,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let mut tally = Majority::of(config.attempts);
    while tally.undecided() {
        if !steps.is_empty() {
            settle(fleet);
        }
        let s = step(
            config,
            subject,
            fleet,
            generator,
            targets,
            rate,
            duration,
            steps.len(),
            stop,
        )?;
        Progress::new(config.progress).result(&report::step_line(&s));
        let (met, lost) = (s.slo_met, s.stats.lost);
        steps.push(s);
        tally.count(met);
        if lost > 0 || stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
    }
    Ok(tally.credited())
}

/// The target step, then the ramp; returns the steps in order.
fn ramp(
    config: &ProofConfig,
    subject: &Subject,
    fleet: &mut Fleet,
    generator: &Generator,
    targets: &Targets,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let (rate0, dur0) = (config.rate, config.duration);
    let held = attempt(
        config, subject, fleet, generator, targets, rate0, dur0, &mut steps, stop,
    )?;
    let mut good = held.then_some(config.rate);
    let mut bad = None;
    let mut rate = config.rate;
    while bad.is_none() && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        rate *= config.step_factor;
        if rate > config.max_rate {
            break;
        }
        let d = config.step_duration;
        if attempt(
            config, subject, fleet, generator, targets, rate, d, &mut steps, stop,
        )? {
            good = Some(rate);
        } else {
            bad = Some(rate);
        }
    }
    // Narrow the gap between the last rate that held and the first that did not.
    if let (Some(mut lo), Some(mut hi)) = (good, bad) {
        for _ in 0..config.refine {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let mid = ((lo * hi).sqrt() / 100.0).round() * 100.0;
            if mid <= lo || mid >= hi {
                break;
            }
            let d = config.step_duration;
            if attempt(
                config, subject, fleet, generator, targets, mid, d, &mut steps, stop,
            )? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    Ok(steps)
}

/// A pause between steps so that retries and queues of the last one are gone.
fn settle(fleet: &mut Fleet) {
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        fleet.observer.pump();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 30 s) until the fleet has no connection left from the system stopped last.
fn wait_closed(fleet: &mut Fleet) {
    let until = Instant::now() + Duration::from_secs(30);
    while fleet.observer.established() > 0 && Instant::now() < until {
        fleet.observer.pump();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `proof --cluster N`: see [`cluster`].
pub fn run_cluster(
    config: &ProofConfig,
    stop: &AtomicBool,
) -> anyhow::Result<cluster::ClusterReport> {
    in_workdir(config, "proof-cluster", |workdir, nofile| {
        cluster::run_in(config, workdir, nofile, stop)
    })
}

/// The whole proof. Returns the report; the caller prints it and sets the exit status.
pub fn run(config: &ProofConfig, stop: &AtomicBool) -> anyhow::Result<Report> {
    in_workdir(config, "proof", |workdir, nofile| {
        run_in(config, workdir, nofile, stop)
    })
}

/// Runs `body` in a fresh work directory (`target/loadgen/<name>-<pid>` unless the
/// configuration names one) with the open-files limit raised, and removes the directory
/// afterwards unless asked to keep it.
pub(crate) fn in_workdir<T>(
    config: &ProofConfig,
    name: &str,
    body: impl FnOnce(&Path, u64) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let nofile = router::runtime::fdtable::raise_open_files_limit();
    let workdir = procs::fresh_workdir(config.workdir.as_deref(), name)?;
    if crate::sys::is_tmpfs(&workdir) {
        eprintln!(
            "warning: {} is on tmpfs: fsync costs nothing there, durability figures flatter",
            workdir.display()
        );
    }
    let result = body(&workdir, nofile);
    procs::leave_workdir(&workdir, config.keep);
    result
}

fn prewarm_timeout(config: &ProofConfig) -> Duration {
    Duration::from_secs(60 + config.endpoints as u64 / 200)
}

/// Waits until the router has connected to every endpoint (prewarm); returns how many
/// connections the fleet counts.
pub(crate) fn prewarm(config: &ProofConfig, fleet: &mut Fleet) -> u64 {
    wait_established(
        &mut fleet.observer,
        config.endpoints as u64,
        "prewarm",
        prewarm_timeout(config),
        &mut Progress::new(config.progress),
    )
}

/// The PKI (when the fleet is TLS) and the running endpoint fleet.
pub(crate) fn pki_and_fleet(
    config: &ProofConfig,
    workdir: &Path,
    nofile: u64,
) -> anyhow::Result<(Option<Pki>, Fleet)> {
    let pki = if config.tls {
        Some(Pki::create(&workdir.join("pki"))?)
    } else {
        None
    };
    Progress::new(config.progress).result(&format!(
        "starting {} endpoints ({}, open-files limit {nofile}) …",
        config.endpoints,
        if config.tls {
            "TLS, client certificates"
        } else {
            "plain TCP"
        }
    ));
    let fleet = start_fleet(config, workdir, pki.as_ref())?;
    Ok((pki, fleet))
}

fn run_in(
    config: &ProofConfig,
    workdir: &Path,
    nofile: u64,
    stop: &AtomicBool,
) -> anyhow::Result<Report> {
    let (pki, mut fleet) = pki_and_fleet(config, workdir, nofile)?;
    let targets = Targets::new(&fleet.rows);
    let generator = Generator::new(config.seed, &config.mix);
    let mut report = Report::new(config);

    // ganglion
    let routes = routes_toml(workdir, pki.as_ref(), &fleet.directory);
    let subject = start_ganglion(config, workdir, &routes)?;
    report.egress_connections = prewarm(config, &mut fleet);
    report.router_rss_bytes = crate::sys::status_bytes(subject.proc_.pid(), "VmRSS").unwrap_or(0);
    let mut subject = subject;
    let steps = ramp(config, &subject, &mut fleet, &generator, &targets, stop);
    report.router_peak_rss_bytes =
        crate::sys::status_bytes(subject.proc_.pid(), "VmHWM").unwrap_or(0);
    report.router_rss_after_bytes =
        crate::sys::status_bytes(subject.proc_.pid(), "VmRSS").unwrap_or(0);
    if !subject.proc_.stop(Duration::from_secs(20)) {
        eprintln!("ganglion did not stop on SIGTERM within 20 s; killed");
    }
    report.steps.extend(steps?);

    if config.baseline_relay && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // Let the router's connections close before counting the relay's.
        wait_closed(&mut fleet);
        let mut relay = start_relay(config, workdir, pki.as_ref(), &fleet)?;
        let n = wait_established(
            &mut fleet.observer,
            config.endpoints as u64,
            "relay connections",
            prewarm_timeout(config),
            &mut Progress::new(config.progress),
        );
        report.relay_connections = Some(n);
        let steps = ramp(config, &relay, &mut fleet, &generator, &targets, stop);
        relay.proc_.stop(Duration::from_secs(5));
        report.steps.extend(steps?);
    }
    for p in &mut fleet.procs {
        p.stop(Duration::from_secs(5));
    }
    report.finish();
    if let Some(path) = &config.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &config.svg {
        std::fs::write(path, svg::plot(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}
