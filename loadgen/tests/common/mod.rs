//! What the small end-to-end runs share: this package's copy of the router and of loadgen,
//! TLS to the endpoints, durable, two shards and two fleet processes, a realistic mix, no
//! progress lines, and an objective generous enough for a debug build on a busy machine (these
//! tests are about losses and figures that add up, not speed).
use std::path::PathBuf;
use std::time::Duration;

use loadgen::drive::schedule::Arrivals;
use loadgen::gen::Mix;
use loadgen::proof::{ProofConfig, Slo};

/// A small run called `name` (its work directory, JSON and SVG under the test's scratch
/// folder) at `rate` msgs/s for `duration` to `endpoints` endpoints; no ramp, no relay.
pub fn small_run(
    name: &str,
    endpoints: usize,
    rate: f64,
    duration: Duration,
    seed: u64,
) -> ProofConfig {
    let workdir = workdir(name);
    ProofConfig {
        endpoints,
        rate,
        duration,
        step_duration: Duration::ZERO,
        step_factor: 1.5,
        max_rate: rate,
        slo: Slo {
            p99_us: 5_000_000,
            max_error_ratio: 0.0,
        },
        tls: true,
        durable: true,
        mix: Mix::realistic(),
        protocols: (4, 1),
        seed,
        connections: 2,
        arrivals: Arrivals::Poisson,
        baseline_relay: false,
        relay_threads: 1,
        ganglion: Some(PathBuf::from(env!("CARGO_BIN_EXE_ganglion-lg"))),
        loadgen: Some(PathBuf::from(env!("CARGO_BIN_EXE_loadgen"))),
        build: false,
        release: false,
        workers: Some(2),
        pin: false,
        fleet_procs: Some(2),
        json: Some(workdir.with_extension("json")),
        svg: Some(workdir.with_extension("svg")),
        workdir: Some(workdir),
        keep: false,
        progress: false,
        refine: 0,
        attempts: 1,
        router_args: Vec::new(),
        endpoint_delay: Duration::ZERO,
        cluster: 0,
    }
}

/// Where the run called `name` keeps its files.
pub fn workdir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()))
}
