//! `loadgen connections` end to end on 100 TLS endpoints through this package's copy of the
//! router (`ganglion-lg`, debug build): every connection comes up, every one comes back after
//! the fleet drops them all, and every reconnect was one TLS handshake, resumed or full.
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use loadgen::connections::{self, ConnectionsConfig};

#[test]
fn every_connection_comes_up_and_comes_back_after_a_drop() {
    let workdir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("connections-small-{}", std::process::id()));
    let json_path = workdir.with_extension("json");
    let config = ConnectionsConfig {
        endpoints: 100,
        workers: Some(2),
        breaker_cooldown_ms: 2_000,
        ganglion: Some(PathBuf::from(env!("CARGO_BIN_EXE_ganglion-lg"))),
        loadgen: Some(PathBuf::from(env!("CARGO_BIN_EXE_loadgen"))),
        build: false,
        release: false,
        // Two processes, so the drop command is shown to reach every one of them.
        fleet_procs: Some(2),
        workdir: Some(workdir.clone()),
        keep: false,
        json: Some(json_path.clone()),
        progress: false,
        idle: std::time::Duration::from_secs(1),
    };
    let report = connections::run(&config, &AtomicBool::new(false)).unwrap();
    let text = report.text();
    assert_eq!(report.established, 100, "{text}");
    assert_eq!(report.router_gauge, 100, "{text}");
    assert_eq!(report.initial_full + report.initial_resumed, 100, "{text}");
    let r = &report.reconnect;
    assert_eq!(r.dropped, 100, "{text}");
    assert_eq!(r.reestablished, 100, "{text}");
    assert_eq!(r.resumed + r.full, 100, "{text}");
    assert!(report.passed(), "{text}");
    assert!(report.baseline_rss_bytes > 0, "{text}");
    assert!(report.peak_rss_bytes >= report.rss_bytes, "{text}");
    // Both idle stretches were measured, on a live router with its shards among its threads.
    for idle in [&report.idle_cold, &report.idle_warm] {
        assert!(idle.secs >= 1.0, "{text}");
        assert!(
            idle.by_thread
                .iter()
                .any(|(name, _)| name == "ganglion-shard"),
            "{text}"
        );
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["endpoints"], 100);
    assert_eq!(json["established"], 100);
    assert_eq!(json["reconnect"]["reestablished"], 100);
    assert!(json["router_idle_cpu"]["with_connections"]["cores"].is_number());
    let handshakes = json["reconnect"]["handshakes_full"].as_u64().unwrap()
        + json["reconnect"]["handshakes_resumed"].as_u64().unwrap();
    assert_eq!(handshakes, 100);
    let _ = std::fs::remove_file(&json_path);
}
