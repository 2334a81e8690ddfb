//! A small proof through the real router: 50 TLS endpoints, ganglion (this package's copy of
//! the binary, `ganglion-lg`) durable and prewarmed, two seconds at a low rate. Nothing that
//! was acknowledged may be lost, and every step's figures must add up.
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use loadgen::proof::{self, ProofConfig, System};

mod common;

#[test]
fn a_small_proof_through_ganglion_loses_nothing() {
    let workdir = common::workdir("proof-small");
    let config = ProofConfig {
        step_duration: Duration::from_secs(1),
        step_factor: 2.0,
        // One ramp step after the target.
        max_rate: 250.0,
        baseline_relay: true,
        relay_threads: 2,
        ..common::small_run("proof-small", 50, 100.0, Duration::from_secs(2), 5)
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
