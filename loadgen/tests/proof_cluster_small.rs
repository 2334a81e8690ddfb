//! `proof --cluster 2` end to end at a small size: one node, then two nodes on three real NATS
//! servers, then the failover drill; nothing acknowledged may be lost anywhere, the nodes share
//! the partitions, the killed node's partitions move, and the figures add up.
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use loadgen::proof::{self, ProofConfig};

mod common;

#[test]
fn a_two_node_cluster_holds_a_small_rate_and_survives_a_kill() {
    if loadgen::nats::missing() {
        return;
    }
    let base = common::small_run("proof-cluster-small", 40, 100.0, Duration::from_secs(3), 9);
    let workdir = base.workdir.clone().unwrap();
    let config = ProofConfig { cluster: 2, ..base };
    let report = proof::run_cluster(&config, &AtomicBool::new(false)).unwrap();
    let text = report.text();
    println!("{text}");
    assert_eq!(report.single.len(), 1, "{text}");
    assert_eq!(report.cluster.len(), 1, "{text}");
    assert_eq!(report.owned.len(), 2, "{text}");
    assert!(
        report.owned.iter().all(|&n| n > 0),
        "both nodes own partitions: {text}"
    );
    for step in report.single.iter().chain(&report.cluster) {
        let s = &step.stats;
        assert!(s.scheduled > 0, "{text}");
        assert_eq!(s.acked, s.sent, "{:?}\n{text}", s.errors);
        assert_eq!(s.delivered, s.acked, "{text}");
    }
    let failover = report.failover.as_ref().expect("a failover drill");
    assert!(
        failover.moved_after.is_some(),
        "the partitions moved: {text}"
    );
    assert!(failover.step.stats.acked > 0, "{text}");
    assert_eq!(report.lost(), 0, "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workdir.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json["nodes"], 2);
    assert_eq!(json["lost"], 0);
    let _ = std::fs::remove_file(workdir.with_extension("json"));
    let _ = std::fs::remove_file(workdir.with_extension("svg"));
}
