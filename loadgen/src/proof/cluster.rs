//! `loadgen proof --cluster N`: the same fleet and traffic against N ganglion nodes sharing a
//! three-server NATS JetStream cluster, next to one node on its own write-ahead log in the same
//! run: whether the cluster holds the target rate with nothing lost, what the replicated
//! publish adds to the ACK latency compared with the single node's fsync, and how long a node's
//! partitions take to deliver again after it is killed with SIGKILL mid-stream.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::report::{self, Step, System};
use super::{
    attempt, drive_config, measure, pki_and_fleet, prewarm, routes_toml, start_ganglion,
    ProofConfig, Subject,
};
use crate::connections::metrics::{sample, scrape_text};
use crate::drive::{DriveConfig, Targets};
use crate::gen::Generator;
use crate::nats::NatsServers;
use crate::progress::Progress;
use crate::units::fmt_us;

/// Partitions of the proof's cluster: enough that two or three nodes share them evenly.
pub const PARTITIONS: u16 = 64;
/// The lease of the proof's nodes: a dead node's partitions move this long after its last
/// renewal (the router's default).
const LEASE: &str = "5s";

/// What `proof --cluster` found.
#[derive(Debug, Default)]
pub struct ClusterReport {
    pub nodes: usize,
    pub nats_servers: usize,
    pub target_rate: f64,
    pub endpoints: usize,
    /// One node, durable on its own log, at the target rate.
    pub single: Vec<Step>,
    /// The cluster at the target rate.
    pub cluster: Vec<Step>,
    /// Partitions each node owned when the traffic began.
    pub owned: Vec<u64>,
    pub failover: Option<Failover>,
}

/// The failover drill: the target rate through every node, one node killed a third of the way
/// in.
#[derive(Debug)]
pub struct Failover {
    pub killed_after: Duration,
    /// From the kill until the other nodes owned every partition; `None`: not within the step.
    pub moved_after: Option<Duration>,
    pub step: Step,
}

impl ClusterReport {
    fn held(steps: &[Step]) -> bool {
        let met = steps.iter().filter(|s| s.slo_met).count();
        met * 2 > steps.len()
    }

    fn median_p(steps: &[Step], pick: fn(&Step) -> u64) -> Option<u64> {
        report::median(steps.iter().map(|s| pick(s) as f64).collect()).map(|m| m.round() as u64)
    }

    /// Messages acknowledged and never delivered, in every step.
    pub fn lost(&self) -> u64 {
        self.single
            .iter()
            .chain(&self.cluster)
            .chain(self.failover.as_ref().map(|f| &f.step))
            .map(|s| s.stats.lost)
            .sum()
    }

    /// Whether the cluster held the target rate and nothing acknowledged was lost anywhere.
    pub fn passed(&self) -> bool {
        Self::held(&self.cluster) && self.lost() == 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "\nganglion cluster proof: {} nodes, {} NATS servers (JetStream, 3 replicas), \
             {} endpoints, {PARTITIONS} partitions (owned at start: {:?})\n\n{}\n",
            self.nodes,
            self.nats_servers,
            self.endpoints,
            self.owned,
            report::header()
        );
        for s in self.single.iter().chain(&self.cluster) {
            out.push_str(&report::step_line(s));
            out.push('\n');
        }
        if let Some(f) = &self.failover {
            out.push_str(&report::step_line(&f.step));
            out.push_str("   <- failover drill\n");
        }
        let p50 = |s: &Step| s.stats.ack.percentiles().p50;
        let p99 = |s: &Step| s.stats.ack.percentiles().p99;
        out.push_str(&format!(
            "\ncluster at {:.0} msgs/s: {} ({} of {} attempts met the objective), lost {}\n",
            self.target_rate,
            if Self::held(&self.cluster) {
                "HELD"
            } else {
                "NOT HELD"
            },
            self.cluster.iter().filter(|s| s.slo_met).count(),
            self.cluster.len(),
            self.lost()
        ));
        if let (Some(s50), Some(s99), Some(c50), Some(c99)) = (
            Self::median_p(&self.single, p50),
            Self::median_p(&self.single, p99),
            Self::median_p(&self.cluster, p50),
            Self::median_p(&self.cluster, p99),
        ) {
            out.push_str(&format!(
                "ACK latency, median of attempts: single node (fsync) p50 {} p99 {}; cluster \
                 (replicated publish) p50 {} p99 {}: the publish adds {} at p50, {} at p99\n",
                fmt_us(s50),
                fmt_us(s99),
                fmt_us(c50),
                fmt_us(c99),
                signed_us(c50, s50),
                signed_us(c99, s99),
            ));
        }
        if let Some(f) = &self.failover {
            let d = f.step.stats.delivery.percentiles();
            out.push_str(&format!(
                "failover: a node killed with SIGKILL {:.1} s into the step; its partitions \
                 owned by the others after {}; lost {}, duplicates {}, senders' errors {} \
                 (answers lost with the killed node's connections, before they moved to another \
                 node); longest delivery {}\n",
                f.killed_after.as_secs_f64(),
                f.moved_after.map_or_else(
                    || "(not within the step)".to_string(),
                    |d| format!("{:.1} s", d.as_secs_f64())
                ),
                f.step.stats.lost,
                f.step.stats.duplicates,
                f.step.stats.error_count(),
                fmt_us(d.max),
            ));
        }
        out
    }

    pub fn json(&self) -> Value {
        json!({
            "nodes": self.nodes,
            "nats_servers": self.nats_servers,
            "partitions": PARTITIONS,
            "owned_at_start": self.owned,
            "target_rate": self.target_rate,
            "endpoints": self.endpoints,
            "single": self.single.iter().map(report::step_json).collect::<Vec<_>>(),
            "cluster": self.cluster.iter().map(report::step_json).collect::<Vec<_>>(),
            "held": Self::held(&self.cluster),
            "lost": self.lost(),
            "failover": self.failover.as_ref().map(|f| json!({
                "killed_after_s": f.killed_after.as_secs_f64(),
                "partitions_moved_after_s": f.moved_after.map(|d| d.as_secs_f64()),
                "step": report::step_json(&f.step),
            })),
        })
    }
}

fn signed_us(a: u64, b: u64) -> String {
    if a >= b {
        format!("+{}", fmt_us(a - b))
    } else {
        format!("-{}", fmt_us(b - a))
    }
}

/// One node's routes: the proof's routes with a data folder of its own and `[cluster]`.
fn node_routes(base: &str, workdir: &Path, node: &str, nats: &[String]) -> String {
    let data = workdir.join("data");
    let own = workdir.join(format!("data-{node}"));
    let servers: Vec<String> = nats.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "{}\n[cluster]\nservers = [{}]\nnode = \"{node}\"\npartitions = {PARTITIONS}\n\
         lease = \"{LEASE}\"\n",
        base.replace(
            &format!("data_dir = \"{}\"", data.display()),
            &format!("data_dir = \"{}\"", own.display())
        ),
        servers.join(", ")
    )
}

fn owned_by(admin: SocketAddr) -> u64 {
    scrape_text(admin)
        .ok()
        .and_then(|text| sample(&text, "ganglion_cluster_partitions_owned"))
        .unwrap_or(0)
}

/// Starts the nodes, each in a folder of its own; the first carries the others and the NATS
/// servers' ids, so that the system's CPU is theirs together.
fn start_nodes(
    config: &ProofConfig,
    workdir: &Path,
    base: &str,
    nats: &NatsServers,
) -> anyhow::Result<(Subject, Vec<SocketAddr>)> {
    let mut nodes = Vec::new();
    for k in 0..config.cluster {
        let node = format!("node-{}", (b'a' + k as u8) as char);
        let dir = workdir.join(&node);
        std::fs::create_dir_all(&dir)?;
        let routes = node_routes(base, workdir, &node, &nats.urls());
        let subject =
            start_ganglion(config, &dir, &routes).with_context(|| format!("starting {node}"))?;
        nodes.push(subject);
    }
    let admins = nodes
        .iter()
        .map(|n| n.proc_.addr("admin"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut nodes = nodes.into_iter();
    let mut first = nodes.next().context("a cluster of no node")?;
    first.kind = System::Cluster;
    for other in nodes {
        first.mllp.extend(other.mllp.iter().copied());
        first.itk.extend(other.itk.iter().copied());
        first.others.push(other.proc_);
    }
    first.nats = nats.pids();
    Ok((first, admins))
}

/// Waits until the nodes own every partition between them.
fn wait_owned(admins: &[SocketAddr], timeout: Duration) -> anyhow::Result<Vec<u64>> {
    let deadline = Instant::now() + timeout;
    loop {
        let owned: Vec<u64> = admins.iter().map(|&a| owned_by(a)).collect();
        if owned.iter().sum::<u64>() == u64::from(PARTITIONS) {
            return Ok(owned);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the nodes did not own every partition within {timeout:?}: {owned:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn run_in(
    config: &ProofConfig,
    workdir: &Path,
    nofile: u64,
    stop: &AtomicBool,
) -> anyhow::Result<ClusterReport> {
    let (pki, mut fleet) = pki_and_fleet(config, workdir, nofile)?;
    let targets = Targets::new(&fleet.rows);
    let generator = Generator::new(config.seed, &config.mix);
    let base = routes_toml(workdir, pki.as_ref(), &fleet.directory);
    let mut report = ClusterReport {
        nodes: config.cluster,
        target_rate: config.rate,
        endpoints: config.endpoints,
        ..ClusterReport::default()
    };
    let mut progress = Progress::new(config.progress);

    // One node on its own log, the baseline.
    progress.result("one node, durable on its own write-ahead log …");
    let mut single = start_ganglion(config, workdir, &base)?;
    prewarm(config, &mut fleet);
    let (rate, duration) = (config.rate, config.duration);
    attempt(
        config,
        &single,
        &mut fleet,
        &generator,
        &targets,
        rate,
        duration,
        &mut report.single,
        stop,
    )?;
    single.proc_.stop(Duration::from_secs(20));
    super::wait_closed(&mut fleet);

    let nats = NatsServers::start(&workdir.join("nats"), 3)?;
    report.nats_servers = nats.urls().len();
    progress.result(&format!(
        "{} nodes on {} NATS servers …",
        config.cluster, report.nats_servers
    ));
    let (mut cluster, admins) = start_nodes(config, workdir, &base, &nats)?;
    report.owned = wait_owned(&admins, Duration::from_secs(120))?;
    prewarm(config, &mut fleet);
    let mut steps = Vec::new();
    attempt(
        config, &cluster, &mut fleet, &generator, &targets, rate, duration, &mut steps, stop,
    )?;
    report.cluster = steps;

    if !stop.load(Ordering::Relaxed) && config.cluster > 1 {
        report.failover = Some(failover(
            config, &cluster, &admins, &mut fleet, &generator, &targets, stop,
        )?);
    }
    for node in cluster.others.iter_mut() {
        node.stop(Duration::from_secs(20));
    }
    cluster.proc_.stop(Duration::from_secs(20));
    drop(nats);
    for p in &mut fleet.procs {
        p.stop(Duration::from_secs(5));
    }
    if let Some(path) = &config.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// The target rate through every node for a step; the last node is killed with SIGKILL a third
/// of the way in, and the others are watched until they own its partitions. The driver waits
/// long enough after the last send for a takeover to deliver what the dead node held.
fn failover(
    config: &ProofConfig,
    cluster: &Subject,
    admins: &[SocketAddr],
    fleet: &mut super::Fleet,
    generator: &Generator,
    targets: &Targets,
    stop: &AtomicBool,
) -> anyhow::Result<Failover> {
    super::settle(fleet);
    let duration = config.duration.max(Duration::from_secs(20));
    let killed_after = duration / 3;
    let victim = cluster
        .others
        .last()
        .context("a cluster of one node")?
        .pid();
    let (survivors, _) = admins.split_at(admins.len() - 1);
    let survivors = survivors.to_vec();
    let moved: Arc<Mutex<Option<Duration>>> = Arc::default();
    let watcher = {
        let moved = Arc::clone(&moved);
        std::thread::spawn(move || {
            std::thread::sleep(killed_after);
            if let Some(pid) = rustix::process::Pid::from_raw(victim as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let killed = Instant::now();
            while killed.elapsed() < Duration::from_secs(120) {
                let owned: u64 = survivors.iter().map(|&a| owned_by(a)).sum();
                if owned == u64::from(PARTITIONS) {
                    *moved.lock().unwrap_or_else(|p| p.into_inner()) = Some(killed.elapsed());
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut drive: DriveConfig = drive_config(config, cluster, config.rate, duration, 200);
    drive.drain = Duration::from_secs(60);
    drive.progress = drive.progress.map(|p| format!("{p} failover"));
    let step = measure(
        &config.slo,
        cluster,
        fleet,
        generator,
        targets,
        &drive,
        stop,
    )?;
    let _ = watcher.join();
    let moved_after = *moved.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Failover {
        killed_after,
        moved_after,
        step,
    })
}
