//! A small hot-endpoint run through the real router: one TLS endpoint answering 5 ms after each
//! arrival (one message at a time it could take 200 a second; it is offered 500), ganglion
//! durable with 8 in flight on each of 2 connections to it, and 5 patients, so that a patient
//! often has a message waiting behind one in flight. Every patient's messages must arrive in the
//! order sent, and nothing acknowledged may be lost. (With `order_by = "MSH-10"` in place of
//! PID-3, every message a key of its own, this run found 24 out of order.)
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use loadgen::gen::Mix;
use loadgen::hot::{self, HotConfig};
use loadgen::proof::ProofConfig;

mod common;

#[test]
fn a_small_hot_run_keeps_each_patients_order_and_loses_nothing() {
    let workdir = common::workdir("hot-small");
    let config = HotConfig {
        base: ProofConfig {
            protocols: (1, 0),
            mix: Mix::parse("hl7").unwrap(),
            endpoint_delay: Duration::from_millis(5),
            fleet_procs: Some(1),
            svg: None,
            ..common::small_run("hot-small", 1, 500.0, Duration::from_secs(2), 7)
        },
        in_flight: 8,
        connections: 2,
        patients: 5,
        // The rate is the release build's to measure; this is about order and losses.
        goal_rate: 0.0,
    };
    let report = hot::run(&config, &AtomicBool::new(false)).unwrap();
    let text = report.text();
    let s = &report.step.stats;
    assert!(s.scheduled > 0, "{text}");
    assert_eq!(s.sent, s.scheduled, "{text}");
    assert_eq!(s.acked, s.sent, "{:?}\n{text}", s.errors);
    assert_eq!(s.delivered, s.acked, "{text}");
    assert_eq!(s.lost, 0, "{text}");
    assert_eq!(s.out_of_order, 0, "{text}");
    assert!(report.passed(), "{text}");
    assert!(
        text.contains("out of order 0") && text.contains("PASS"),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workdir.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json["scenario"], "hot");
    assert_eq!(json["max_in_flight"], 8);
    assert_eq!(json["connections"], 2);
    assert_eq!(json["out_of_order"], 0);
    assert_eq!(json["passed"], true);
    assert_eq!(json["step"]["delivered"], s.delivered);
    assert_eq!(json["step"]["lost"], 0);
    let _ = std::fs::remove_file(workdir.with_extension("json"));
}
