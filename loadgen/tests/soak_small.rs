//! A small soak through the real router (this package's copy, `ganglion-lg`): 60 TLS endpoints
//! over two fleet processes, a fifth of them flapping every second or two, the routing reloaded
//! by SIGHUP every 1.5 s, for 6 s. Every reload must be applied, the fleet must have done every
//! flap it was sent and be whole again at the end, and nothing acknowledged may be lost.
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use loadgen::proof::ProofConfig;
use loadgen::soak::flap::{FlapConfig, Span};
use loadgen::soak::reload::Outcome;
use loadgen::soak::{self, SoakConfig};

mod common;

#[test]
fn a_small_soak_with_flaps_and_reloads_loses_nothing() {
    let workdir = common::workdir("soak-small");
    let duration = Duration::from_secs(6);
    let config = SoakConfig {
        base: ProofConfig {
            // An endpoint that refused five times in a row is left alone for 15–30 s by
            // default: that would only make the drain, not the test, longer.
            router_args: vec!["--breaker-cooldown-ms".into(), "1000".into()],
            ..common::small_run("soak-small", 60, 100.0, duration, 3)
        },
        flap: FlapConfig {
            share: 0.2,
            down: Span {
                min: Duration::from_millis(200),
                max: Duration::from_millis(800),
            },
            up: Span {
                min: Duration::from_millis(800),
                max: Duration::from_millis(1500),
            },
        },
        reload_every: Duration::from_millis(1500),
        sample_every: Duration::from_millis(500),
        warmup: Duration::from_secs(1),
        rss_tolerance: 0.05,
        rss_tolerance_mib: 8.0,
        drain: Duration::from_secs(90),
        window: Duration::from_secs(2),
    };
    let report = soak::run(&config, &AtomicBool::new(false)).unwrap();
    let text = report.text();
    // Shown with --nocapture, or when an assertion fails.
    eprintln!("{text}");
    let st = &report.step.stats;
    assert_eq!(report.egress_connections, 60, "{text}");
    assert!(st.scheduled > 0, "{text}");
    assert_eq!(st.sent, st.scheduled, "{text}");
    assert_eq!(st.acked, st.sent, "{:?}\n{text}", st.errors);
    assert_eq!(st.delivered, st.acked, "{text}");
    assert_eq!(report.lost(), 0, "{text}");

    // Reloads at 1.5, 3 and 4.5 s, each applied and each a change of the rules.
    assert_eq!(report.reloads.len(), 3, "{text}");
    for r in &report.reloads {
        assert!(
            matches!(
                r.outcome,
                Outcome::Applied {
                    rules_changed: true,
                    ..
                }
            ),
            "{r:?}\n{text}"
        );
    }
    // Twelve endpoints flapping for 6 s: each goes down at least once; every down event sent
    // was done by a fleet process, and all came back.
    assert_eq!(report.flapping_endpoints, 12, "{text}");
    assert!(report.flaps_sent >= 12, "{text}");
    assert_eq!(report.flaps_done, report.flaps_sent as u64, "{text}");
    assert_eq!(report.down_at_end, 0, "{text}");
    assert!(report.most_down > 0, "{text}");

    // The windows account for every message; the samples for the memory.
    assert_eq!(st.windows.len(), 3, "{text}");
    assert_eq!(st.windows.iter().map(|w| w.sent).sum::<u64>(), st.sent);
    assert_eq!(st.windows.iter().map(|w| w.acked).sum::<u64>(), st.acked);
    assert!(report.samples.len() >= 12, "{text}");
    assert!(report.samples.iter().all(|s| s.rss_bytes > 0), "{text}");
    assert!(report.rss.is_some(), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workdir.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json["run"]["lost"], 0);
    assert_eq!(json["reloads_applied"], 3);
    assert_eq!(
        json["rss_samples"].as_array().map(Vec::len),
        Some(report.samples.len())
    );
    let svg = std::fs::read_to_string(workdir.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("router RSS"));
    let _ = std::fs::remove_file(workdir.with_extension("json"));
    let _ = std::fs::remove_file(workdir.with_extension("svg"));
}
