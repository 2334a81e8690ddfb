//! `loadgen`: endpoint fleets, the open-loop driver, the bare relay, the headroom proof, the
//! connections measurement, the soak and the hot endpoint.
//! loadgen/README.md ("For performance engineers") describes every option.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use loadgen::connections::ConnectionsConfig;
use loadgen::directory;
use loadgen::drive::observer::Observer;
use loadgen::drive::schedule::Arrivals;
use loadgen::drive::{self, DriveConfig, Targets};
use loadgen::fleet::{Behaviour, Fleet, FleetConfig};
use loadgen::gen::{Generator, Mix};
use loadgen::hot::HotConfig;
use loadgen::pki::Pki;
use loadgen::proof::{self, ProofConfig, Slo};
use loadgen::soak::flap::{FlapConfig, Span};
use loadgen::soak::SoakConfig;
use loadgen::units::{parse_duration, parse_fraction, parse_rate, parse_span};

/// Endpoints of a proof and a soak by default: the systems the Spine connects.
const FLEET: usize = 28_000;

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator and headroom proof for ganglion",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stand up N endpoints on loopback and write the directory the router reads.
    Endpoints(EndpointsArgs),
    /// Send open-loop traffic to a router and measure it.
    Drive(DriveArgs),
    /// The bare relay: the ceiling ganglion is measured against.
    Relay(RelayArgs),
    /// Endpoints + ganglion + driver: hold the target rate, find the highest sustainable one.
    Proof(ProofArgs),
    /// Endpoints + ganglion: time and memory to hold every egress connection, and a forced
    /// reconnect of all of them (handshakes resumed vs full).
    Connections(ConnectionsArgs),
    /// Endpoints + ganglion + driver for a long time, endpoints flapping and the routing
    /// reloaded: nothing acknowledged lost, memory flat.
    Soak(SoakArgs),
    /// One endpoint with a round trip (`--delay`) + ganglion with many messages in flight to
    /// it + driver: the delivered rate, and every patient's messages in the order sent.
    Hot(HotArgs),
}

/// `mllp:9,itk:1` → weights.
fn parse_protocols(text: &str) -> Result<(u32, u32), String> {
    let (mut m, mut i) = (0, 0);
    for part in text.split(',') {
        let (name, w) = match part.split_once([':', '=']) {
            Some((n, w)) => (
                n.trim(),
                w.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad weight in {part:?}"))?,
            ),
            None => (part.trim(), 1),
        };
        match name {
            "mllp" => m = w,
            "itk" => i = w,
            _ => return Err(format!("unknown protocol {name:?} (mllp, itk)")),
        }
    }
    if m + i == 0 {
        return Err("no protocol".into());
    }
    Ok((m, i))
}

#[derive(clap::Args)]
struct EndpointsArgs {
    /// Number of endpoints.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Index of the first endpoint (fleets split over processes take disjoint ranges).
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Serve TLS (mutual: clients must show a certificate from the CA).
    #[arg(long)]
    tls: bool,
    /// Use the CA and certificates in this folder (made by an earlier run); implies --tls.
    #[arg(long)]
    pki: Option<PathBuf>,
    /// Protocols and their weights: `mllp`, `mllp,itk`, `mllp:9,itk:1`.
    #[arg(long, default_value = "mllp:9,itk:1", value_parser = parse_protocols)]
    protocols: (u32, u32),
    /// Fraction of messages answered AE (ITK: Server fault); the router should retry them.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction answered AR (ITK: Client fault); the router should dead-letter them.
    #[arg(long, default_value_t = 0.0)]
    reject_rate: f64,
    /// Fraction whose connection is dropped instead of answered.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Delay before answering (see --slow-rate).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    delay: Duration,
    /// Fraction of answers delayed by --delay (all of them when --delay is set and this is not).
    #[arg(long)]
    slow_rate: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Port for every endpoint (each has its own address); 0 picks one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where the report stream of arrivals listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    control: SocketAddr,
    /// Write the endpoint directory (the router's CSV) here.
    #[arg(long, default_value = "endpoints.csv")]
    directory: PathBuf,
}

#[derive(clap::Args)]
struct DriveArgs {
    /// The router's MLLP listener.
    #[arg(long)]
    target: Option<SocketAddr>,
    /// The router's ITK (HTTP) listener.
    #[arg(long)]
    itk_target: Option<SocketAddr>,
    /// The endpoint directory to address messages across (as `loadgen endpoints` wrote it).
    #[arg(long, default_value = "endpoints.csv")]
    directory: PathBuf,
    /// Control addresses of `loadgen endpoints` processes, to measure delivery and losses.
    #[arg(long, value_delimiter = ',')]
    observe: Vec<SocketAddr>,
    /// Messages per second.
    #[arg(long, value_parser = parse_rate, default_value = "3200")]
    rate: f64,
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Connections per protocol.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Message kinds and weights (`realistic`, `hl7`, or `adt-a01=10,oru-r01=30,itk=5`).
    #[arg(long, default_value = "realistic", value_parser = Mix::parse)]
    mix: Mix,
    /// Arrival process: poisson or uniform.
    #[arg(long, default_value = "poisson")]
    arrivals: Arrivals,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long to wait for answers and deliveries after the last send.
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    drain: Duration,
    /// Write the run's figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct RelayArgs {
    #[arg(long, default_value = "endpoints.csv")]
    directory: PathBuf,
    /// CA and client certificate folder, for TLS endpoints.
    #[arg(long)]
    pki: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:0")]
    itk_listen: SocketAddr,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// What a proof, a soak and a hot-endpoint run all set up: the fleet, the router, the
/// traffic, the outputs.
#[derive(clap::Args)]
struct SetupArgs {
    /// Endpoints [default: 28000; hot: 1].
    #[arg(long)]
    endpoints: Option<usize>,
    /// The target rate (msgs/s) [default: 3200; hot: a tenth above --goal].
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Plain TCP to the endpoints instead of TLS.
    #[arg(long)]
    plain: bool,
    /// Run ganglion with --no-durability (ACK before the disk; for comparison only).
    #[arg(long)]
    no_durability: bool,
    #[arg(long, default_value = "realistic", value_parser = Mix::parse)]
    mix: Mix,
    /// Endpoint protocols and weights (hot: MLLP only).
    #[arg(long, default_value = "mllp:9,itk:1", value_parser = parse_protocols)]
    protocols: (u32, u32),
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sender connections per protocol.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value = "poisson")]
    arrivals: Arrivals,
    /// The ganglion binary (default: build it with cargo and use target/release/ganglion).
    #[arg(long)]
    ganglion: Option<PathBuf>,
    /// Do not run cargo; use the binary found.
    #[arg(long)]
    no_build: bool,
    /// Use the debug build of ganglion (tests only: far slower).
    #[arg(long)]
    debug_router: bool,
    /// ganglion's shard count (default: its own, one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Pin ganglion's shards to cores, as it does by default on a host of its own. Off here:
    /// the load generator and the fleet share the cores, and a pinned shard then waits for its
    /// core while the other is idle.
    #[arg(long)]
    pin: bool,
    /// Endpoint fleet processes (default: enough for the descriptor limit, at least 2 from 1,000).
    #[arg(long)]
    fleet_procs: Option<usize>,
    /// Work directory (certificates, config, WAL); default target/loadgen/<command>-<pid>.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the work directory (logs of every process are there).
    #[arg(long)]
    keep: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Plot the run here (proof and soak; hot draws none).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
    /// One more argument for `ganglion run` (repeat it: `--router-arg=--breaker-cooldown-ms
    /// --router-arg=5000`).
    #[arg(long = "router-arg", allow_hyphen_values = true)]
    router_args: Vec<String>,
}

impl SetupArgs {
    /// The proof's configuration with this set-up, `endpoints` and `rate` where the command
    /// line left them out; the ramp and the objective are the caller's to fill in.
    fn config(self, duration: Duration, endpoints: usize, rate: f64) -> ProofConfig {
        let rate = self.rate.unwrap_or(rate);
        ProofConfig {
            endpoints: self.endpoints.unwrap_or(endpoints),
            rate,
            duration,
            step_duration: Duration::ZERO,
            step_factor: 1.5,
            max_rate: rate,
            slo: Slo {
                p99_us: 10_000,
                max_error_ratio: 0.0001,
            },
            tls: !self.plain,
            durable: !self.no_durability,
            mix: self.mix,
            protocols: self.protocols,
            seed: self.seed,
            connections: self.connections,
            arrivals: self.arrivals,
            baseline_relay: false,
            relay_threads: 2,
            ganglion: self.ganglion,
            loadgen: None,
            build: !self.no_build,
            release: !self.debug_router,
            workers: self.workers,
            pin: self.pin,
            fleet_procs: self.fleet_procs,
            workdir: self.workdir,
            keep: self.keep,
            json: self.json,
            svg: self.svg,
            progress: !self.quiet,
            refine: 0,
            attempts: 1,
            router_args: self.router_args,
            endpoint_delay: Duration::ZERO,
            cluster: 0,
        }
    }
}

#[derive(clap::Args)]
struct ProofArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// Length of step 0, at the target rate.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    duration: Duration,
    /// Length of each step of the ramp (default: a sixth of --duration, 5 to 10 s).
    #[arg(long, value_parser = parse_duration)]
    step_duration: Option<Duration>,
    /// Each ramp step offers this many times the last.
    #[arg(long, default_value_t = 1.5)]
    step_factor: f64,
    /// Do not offer more than this.
    #[arg(long, value_parser = parse_rate, default_value = "200k")]
    max_rate: f64,
    /// Bisection steps between the last rate that held and the first that did not.
    #[arg(long, default_value_t = 2)]
    refine: usize,
    /// Attempts at each rate, for ganglion and the relay alike; a rate is credited when most of
    /// them met the objective (stopping once the majority is known: 2 of 3 when the first two
    /// agree). 1 for a quick run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    attempts: u64,
    /// The objective: p99 ACK latency at most this.
    #[arg(long, value_parser = parse_duration, default_value = "10ms")]
    slo_p99: Duration,
    /// The objective: at most this fraction of messages may fail.
    #[arg(long, default_value_t = 0.0001)]
    slo_errors: f64,
    /// Also measure the bare relay in the same run: `relay`.
    #[arg(long)]
    baseline: Option<String>,
    /// Threads of the bare relay.
    #[arg(long, default_value_t = 2)]
    relay_threads: usize,
    /// What makes the exit status non-zero: `target` (the target rate not held, or anything
    /// ACKed lost) or `lost` (only losses: for CI on shared machines, where latency is noise).
    #[arg(long, default_value = "target")]
    gate: String,
    /// Prove a cluster of this many ganglion nodes on three NATS JetStream servers (started
    /// here; `nats-server` on the PATH or `NATS_SERVER`), next to one node on its own log at
    /// the target rate, then kill one node mid-stream (docs/cluster.md).
    #[arg(long, default_value_t = 0)]
    cluster: usize,
}

#[derive(clap::Args)]
struct SoakArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// How long the load runs (the drain comes after).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    duration: Duration,
    /// Share of the endpoints that flap (`0.05` or `5%`).
    #[arg(long, value_parser = parse_fraction, default_value = "0.05")]
    flap: f64,
    /// How long a flapping endpoint stays down, drawn from this range each time.
    #[arg(long, value_parser = parse_span, default_value = "5s-20s")]
    flap_down: Span,
    /// How long it stays up between downs.
    #[arg(long, value_parser = parse_span, default_value = "20s-60s")]
    flap_up: Span,
    /// Time between reloads (each changes the routing rules); 0 for none.
    #[arg(long, value_parser = parse_duration, default_value = "1m")]
    reload_every: Duration,
    /// Time between samples of the router's memory and load.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    sample_every: Duration,
    /// Samples before this are not judged (default: a fifth of --duration, at most 1m).
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// How much the RSS of the last third may exceed that of the first (`0.05` or `5%`) ...
    #[arg(long, value_parser = parse_fraction, default_value = "0.05")]
    rss_tolerance: f64,
    /// ... or this many MiB, whichever is larger.
    #[arg(long, default_value_t = 8.0)]
    rss_tolerance_mib: f64,
    /// Longest wait after the last send for everything ACKed to be delivered.
    #[arg(long, value_parser = parse_duration, default_value = "3m")]
    drain: Duration,
    /// Length of each row of the per-minute table.
    #[arg(long, value_parser = parse_duration, default_value = "1m")]
    window: Duration,
}

#[derive(clap::Args)]
struct HotArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// How long the load runs (the drain comes after).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// The endpoint answers each message this long after it arrives: its round trip.
    #[arg(long, value_parser = parse_duration, default_value = "1ms")]
    delay: Duration,
    /// The endpoint's `max_in_flight`: frames written before their ACKs come, per connection.
    #[arg(long, default_value_t = 32)]
    in_flight: u32,
    /// The endpoint's `connections` (the router's to it; the senders' are --connections).
    #[arg(long, default_value_t = 4)]
    endpoint_connections: u32,
    /// Patients (PID-3 values) the messages are drawn from; each one's must arrive in order.
    #[arg(long, default_value_t = 1000)]
    patients: u32,
    /// Delivered msgs/s the run must reach to pass.
    #[arg(long, value_parser = parse_rate, default_value = "20000")]
    goal: f64,
}

#[derive(clap::Args)]
struct ConnectionsArgs {
    #[arg(long, default_value_t = 28_000)]
    endpoints: usize,
    /// ganglion's shard count (each has a private table of 20,000 descriptors).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Passed to ganglion, so endpoints that refused in the reconnect storm are retried soon.
    #[arg(long, default_value_t = 2_000)]
    breaker_cooldown_ms: u64,
    /// How long the router's CPU is measured without traffic, before and after connecting.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    idle: Duration,
    /// The ganglion binary (default: build it with cargo).
    #[arg(long)]
    ganglion: Option<PathBuf>,
    /// Do not run cargo; use the binary found.
    #[arg(long)]
    no_build: bool,
    /// Use the debug build of ganglion (tests only).
    #[arg(long)]
    debug_router: bool,
    /// Endpoint fleet processes (default: enough for the descriptor limit, at least 2 from 1,000).
    #[arg(long)]
    fleet_procs: Option<usize>,
    /// Work directory; default target/loadgen/connections-<pid>.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the work directory (logs of every process are there).
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    stop
}

fn endpoints(args: EndpointsArgs) -> anyhow::Result<ExitCode> {
    router::runtime::fdtable::raise_open_files_limit();
    let pki = match (&args.pki, args.tls) {
        (Some(dir), _) => Some(Pki::open(dir)),
        (None, true) => {
            let dir = args.directory.with_extension("pki");
            eprintln!("making a CA and certificates in {}", dir.display());
            Some(Pki::create(&dir)?)
        }
        (None, false) => None,
    };
    let behaviour = Behaviour {
        error: args.error_rate,
        reject: args.reject_rate,
        drop: args.drop_rate,
        slow: args
            .slow_rate
            .unwrap_or(if args.delay.is_zero() { 0.0 } else { 1.0 }),
        delay_ns: args.delay.as_nanos() as u64,
    };
    let fleet = Fleet::bind(FleetConfig {
        first: args.first,
        count: args.count,
        protocols: args.protocols,
        tls: pki,
        behaviour,
        seed: args.seed,
        port: args.port,
        control: args.control,
    })?;
    directory::write(&args.directory, &fleet.rows, true)
        .with_context(|| format!("writing {}", args.directory.display()))?;
    println!("control addr={}", fleet.control_addr);
    println!(
        "ready endpoints={} directory={}",
        fleet.rows.len(),
        args.directory.display()
    );
    let stop = stop_flag();
    fleet.run(&stop)?;
    Ok(ExitCode::SUCCESS)
}

fn drive_cmd(args: DriveArgs) -> anyhow::Result<ExitCode> {
    let rows = directory::read(&args.directory)
        .with_context(|| format!("reading {}", args.directory.display()))?;
    anyhow::ensure!(
        !rows.is_empty(),
        "{} lists no loadgen endpoint",
        args.directory.display()
    );
    let targets = Targets::new(&rows);
    let generator = Generator::new(args.seed, &args.mix);
    let mut observer = Observer::connect(&args.observe)?;
    let config = DriveConfig {
        mllp: args.target.into_iter().collect(),
        itk: args.itk_target.into_iter().collect(),
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        mix: args.mix,
        seed: args.seed,
        arrivals: args.arrivals,
        tag: (std::process::id() << 8) & 0x7FFF_FF00,
        drain: args.drain,
        progress: (!args.quiet).then(|| format!("[drive {:.0}/s]", args.rate)),
        window: None,
        patients: None,
    };
    let stop = stop_flag();
    let stats = drive::run(&config, &generator, &targets, &mut observer, &stop)?;
    let step = proof::Step {
        system: proof::System::Ganglion,
        slo_met: stats.lost == 0,
        stats,
        subject_cores: 0.0,
        subject_cpu_s: 0.0,
        driver_cores: 0.0,
        fleet_cores: 0.0,
    };
    println!("{}", proof::report::header());
    println!("{}", proof::report::step_line(&step));
    if !step.stats.errors.is_empty() {
        println!("errors: {:?}", step.stats.errors);
    }
    if args.observe.is_empty() {
        println!("(no --observe: deliveries and losses were not measured)");
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&proof::report::step_json(&step))?,
        )?;
    }
    Ok(if step.stats.lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn relay_cmd(args: RelayArgs) -> anyhow::Result<ExitCode> {
    router::runtime::fdtable::raise_open_files_limit();
    let rows = directory::read(&args.directory)
        .with_context(|| format!("reading {}", args.directory.display()))?;
    let stop = stop_flag();
    loadgen::relay::run(
        loadgen::relay::RelayConfig {
            rows,
            tls: args.pki.as_deref().map(Pki::open),
            threads: args.threads,
            mllp: args.listen,
            itk: args.itk_listen,
        },
        stop,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn proof_cmd(args: ProofArgs) -> anyhow::Result<ExitCode> {
    let baseline_relay = match args.baseline.as_deref() {
        None => false,
        Some("relay") => true,
        Some(other) => anyhow::bail!("unknown baseline {other:?}: the only one is `relay`"),
    };
    let step_duration = args.step_duration.unwrap_or_else(|| {
        (args.duration / 6).clamp(Duration::from_secs(5), Duration::from_secs(10))
    });
    let config = ProofConfig {
        step_duration,
        step_factor: args.step_factor.max(1.05),
        max_rate: args.max_rate,
        slo: Slo {
            p99_us: args.slo_p99.as_micros() as u64,
            max_error_ratio: args.slo_errors,
        },
        baseline_relay,
        relay_threads: args.relay_threads,
        refine: args.refine,
        attempts: args.attempts as usize,
        ..args
            .setup
            .config(args.duration, FLEET, proof::report::SPINE_RATE)
    };
    let losses_only = match args.gate.as_str() {
        "target" => false,
        "lost" => true,
        other => anyhow::bail!("--gate must be target or lost, not {other:?}"),
    };
    let stop = stop_flag();
    if args.cluster > 0 {
        let config = ProofConfig {
            cluster: args.cluster,
            ..config
        };
        let report = proof::run_cluster(&config, &stop)?;
        print!("{}", report.text());
        if report.lost() > 0 {
            eprintln!(
                "FAILED: {} acknowledged messages were never delivered",
                report.lost()
            );
        }
        let passed = report.lost() == 0 && (losses_only || report.passed());
        return Ok(if passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let report = proof::run(&config, &stop)?;
    print!("{}", report.text());
    if !report.target_held {
        eprintln!("FAILED: the target rate was not held");
    }
    if report.lost_total > 0 {
        eprintln!(
            "FAILED: {} acknowledged messages were never delivered",
            report.lost_total
        );
    }
    let passed = report.lost_total == 0 && (losses_only || report.target_held);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn soak_cmd(args: SoakArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.flap_down.max >= args.flap_down.min && args.flap_up.max >= args.flap_up.min,
        "--flap-down and --flap-up are ranges from the shorter to the longer"
    );
    anyhow::ensure!(
        !args.flap_up.max.is_zero(),
        "--flap-up must allow some time up"
    );
    let duration = args.duration;
    let config = SoakConfig {
        base: args
            .setup
            .config(duration, FLEET, proof::report::SPINE_RATE),
        flap: FlapConfig {
            share: args.flap,
            down: args.flap_down,
            up: args.flap_up,
        },
        reload_every: args.reload_every,
        sample_every: args.sample_every.max(Duration::from_millis(200)),
        warmup: args
            .warmup
            .unwrap_or_else(|| (duration / 5).min(Duration::from_secs(60))),
        rss_tolerance: args.rss_tolerance,
        rss_tolerance_mib: args.rss_tolerance_mib.max(0.0),
        drain: args.drain,
        window: args.window.max(Duration::from_secs(1)),
    };
    let stop = stop_flag();
    let report = loadgen::soak::run(&config, &stop)?;
    print!("{}", report.text());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        for why in report.failures() {
            eprintln!("FAILED: {why}");
        }
        ExitCode::FAILURE
    })
}

fn hot_cmd(args: HotArgs) -> anyhow::Result<ExitCode> {
    for (what, n) in [
        ("--in-flight", args.in_flight),
        ("--endpoint-connections", args.endpoint_connections),
    ] {
        anyhow::ensure!((1..=256).contains(&n), "{what} must be between 1 and 256");
    }
    anyhow::ensure!(args.patients > 0, "--patients must be at least 1");
    // Offered a tenth above the goal by default, so that meeting it is not decided by whether
    // the last few milliseconds' messages were delivered before the clock stopped.
    let base = args.setup.config(args.duration, 1, args.goal * 1.1);
    let config = HotConfig {
        base: ProofConfig {
            protocols: (1, 0),
            endpoint_delay: args.delay,
            ..base
        },
        in_flight: args.in_flight,
        connections: args.endpoint_connections,
        patients: args.patients,
        goal_rate: args.goal,
    };
    let stop = stop_flag();
    let report = loadgen::hot::run(&config, &stop)?;
    print!("{}", report.text());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn connections_cmd(args: ConnectionsArgs) -> anyhow::Result<ExitCode> {
    let config = ConnectionsConfig {
        endpoints: args.endpoints,
        workers: Some(args.workers),
        breaker_cooldown_ms: args.breaker_cooldown_ms,
        ganglion: args.ganglion,
        loadgen: None,
        build: !args.no_build,
        release: !args.debug_router,
        fleet_procs: args.fleet_procs,
        workdir: args.workdir,
        keep: args.keep,
        json: args.json,
        progress: !args.quiet,
        idle: args.idle,
    };
    let stop = stop_flag();
    let report = loadgen::connections::run(&config, &stop)?;
    print!("{}", report.text());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: not every connection was established, or not every one came back");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Endpoints(a) => endpoints(a),
        Command::Drive(a) => drive_cmd(a),
        Command::Relay(a) => relay_cmd(a),
        Command::Proof(a) => proof_cmd(a),
        Command::Connections(a) => connections_cmd(a),
        Command::Soak(a) => soak_cmd(a),
        Command::Hot(a) => hot_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
