//! A small proof through the real router: 50 TLS endpoints, ganglion (this package's copy of
//! the binary, `ganglion-lg`) durable and prewarmed, two seconds at a low rate. Nothing that
//! was acknowledged may be lost, and every step's figures must add up.
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use loadgen::drive::schedule::Arrivals;
use loadgen::gen::Mix;
use loadgen::proof::{self, ProofConfig, Slo, System};

#[test]
fn a_small_proof_through_ganglion_loses_nothing() {
    let workdir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("proof-small-{}", std::process::id()));
    let config = ProofConfig {
        endpoints: 50,
        rate: 100.0,
        duration: Duration::from_secs(2),
        step_duration: Duration::from_secs(1),
        step_factor: 2.0,
        // One ramp step after the target.
        max_rate: 250.0,
        // Generous: a debug build on a busy machine; this test is about losses, not speed.
        slo: Slo {
            p99_us: 5_000_000,
            max_error_ratio: 0.0,
        },
        tls: true,
        durable: true,
        mix: Mix::realistic(),
        protocols: (4, 1),
        seed: 5,
        connections: 2,
        arrivals: Arrivals::Poisson,
        baseline_relay: true,
        relay_threads: 2,
        ganglion: Some(PathBuf::from(env!("CARGO_BIN_EXE_ganglion-lg"))),
        loadgen: Some(PathBuf::from(env!("CARGO_BIN_EXE_loadgen"))),
        build: false,
        release: false,
        workers: Some(2),
        pin: false,
        fleet_procs: Some(2),
        workdir: Some(workdir.clone()),
        keep: false,
        json: Some(workdir.with_extension("json")),
        svg: Some(workdir.with_extension("svg")),
        progress: false,
        refine: 0,
        retries: 0,
        router_args: Vec::new(),
    };
    let report = proof::run(&config, &AtomicBool::new(false)).unwrap();
    let text = report.text();
    assert_eq!(report.egress_connections, 50, "{text}");
    let ganglion: Vec<_> = report.steps_of(System::Ganglion).collect();
    let relay: Vec<_> = report.steps_of(System::Relay).collect();
    assert_eq!(ganglion.len(), 2, "{text}");
    assert_eq!(relay.len(), 2, "{text}");
    for step in ganglion.iter().chain(relay.iter()) {
        let s = &step.stats;
        assert!(s.scheduled > 0, "{text}");
        assert_eq!(s.sent, s.scheduled, "{text}");
        assert_eq!(s.acked, s.sent, "{:?}\n{text}", s.errors);
        assert_eq!(s.delivered, s.acked, "{text}");
        assert_eq!(s.lost, 0, "{text}");
        assert_eq!(s.ack.len(), s.acked, "{text}");
    }
    assert!(report.passed(), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workdir.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json["endpoints"], 50);
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["steps"][0]["lost"], 0);
    assert!(
        json["router_peak_rss_bytes"].as_u64().unwrap()
            >= json["router_rss_bytes"].as_u64().unwrap()
    );
    let svg = std::fs::read_to_string(workdir.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Spine rate 3,200/s"));
    let _ = std::fs::remove_file(workdir.with_extension("json"));
    let _ = std::fs::remove_file(workdir.with_extension("svg"));
}
