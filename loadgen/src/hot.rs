//! `loadgen hot`: one hot endpoint. A receiver that answers each message a fixed delay after it
//! arrives (its round trip) takes at most one message per delay while the router sends them one
//! at a time; with `max_in_flight` and `connections` it takes many at once, and order is owed
//! per patient instead (docs/routes.md, "More than one in flight"). This stands up that
//! endpoint (the fleet's, TLS with client certificates by default), ganglion (durable, as the
//! proof runs it) with the endpoint's delivery keys set in a group, and drives HL7v2 traffic
//! open-loop with each message's patient drawn from a bounded pool, so that many messages
//! share a patient. Every arrival is checked against its patient's send order
//! ([`crate::order`]); the report gives the delivered rate, latency, losses, duplicates and
//! order breaks, and a verdict against the goal.
pub mod report;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;

use crate::drive::Targets;
use crate::gen::Generator;
use crate::pki::Pki;
use crate::proof::{self, Fleet, ProofConfig};
pub use report::HotReport;

#[derive(Clone, Debug)]
pub struct HotConfig {
    /// The fleet (its `endpoint_delay` is the receiver's round trip), the router, the traffic.
    pub base: ProofConfig,
    /// The endpoint's `max_in_flight`.
    pub in_flight: u32,
    /// The endpoint's `connections`.
    pub connections: u32,
    /// Patients the messages are drawn from.
    pub patients: u32,
    /// Delivered messages per second the run must reach to pass.
    pub goal_rate: f64,
}

/// The routes file: the proof's listeners, directory and HL7v2 route, and a group that gives
/// every endpoint of the fleet the delivery keys under test.
pub fn routes_toml(workdir: &Path, pki: Option<&Pki>, fleet: &Fleet, config: &HotConfig) -> String {
    let members = fleet
        .rows
        .iter()
        .map(|row| format!("\"{}\"", row.id()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{}{}\n[[group]]\nname = \"hot\"\nmembers = [{members}]\nmax_in_flight = {}\nconnections = {}\norder_by = \"PID-3\"\n",
        proof::routes_head(workdir, pki, &fleet.directory),
        proof::HL7_ROUTE,
        config.in_flight,
        config.connections,
    )
}

/// The whole scenario. Returns the report; the caller prints it and sets the exit status.
pub fn run(config: &HotConfig, stop: &AtomicBool) -> anyhow::Result<HotReport> {
    proof::in_workdir(&config.base, "hot", |workdir, nofile| {
        run_in(config, workdir, nofile, stop)
    })
}

fn run_in(
    config: &HotConfig,
    workdir: &Path,
    nofile: u64,
    stop: &AtomicBool,
) -> anyhow::Result<HotReport> {
    let base = &config.base;
    let (pki, mut fleet) = proof::pki_and_fleet(base, workdir, nofile)?;
    let targets = Targets::new(&fleet.rows);
    let generator = Generator::new(base.seed, &base.mix);
    let routes = routes_toml(workdir, pki.as_ref(), &fleet, config);
    // No wait for prewarmed connections: an endpoint with lanes opens them as messages come
    // (the first messages pay for the handshakes).
    let mut subject = proof::start_ganglion(base, workdir, &routes)?;
    let mut drive = proof::drive_config(base, &subject, base.rate, base.duration, 0);
    drive.patients = Some(config.patients);
    let step = proof::measure(
        &base.slo, &subject, &mut fleet, &generator, &targets, &drive, stop,
    );
    fleet.observer.pump();
    let egress_connections = fleet.observer.established();
    if !subject.proc_.stop(Duration::from_secs(20)) {
        eprintln!("ganglion did not stop on SIGTERM within 20 s; killed");
    }
    for p in &mut fleet.procs {
        p.stop(Duration::from_secs(5));
    }
    let report = HotReport {
        config: config.clone(),
        egress_connections,
        step: step?,
    };
    if let Some(path) = &base.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}
