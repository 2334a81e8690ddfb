//! `ganglion check` and `ganglion explain`, run as the real binary: the shipped `routes.toml`
//! and its example directory must pass; broken files and failing `[[test]]` cases must give
//! exit status 78 and say where; explanations must name the route and endpoints that the
//! shipped rules give (worked out by reading `routes.toml` and the example messages).
mod routes_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use routes_common::folder;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn ganglion(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganglion"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the ganglion binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_shipped_config_passes_check() {
    let out = ganglion(&["check", "--config", "routes.toml"], &root());
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "a clean check prints no diagnostics");
    assert_eq!(
        text(&out.stdout),
        "routes.toml: 8 endpoints, 1 group, 8 routes, 2 listeners; 6 of 6 tests passed\n"
    );
}

#[test]
fn the_shipped_config_passes_check_from_another_folder() {
    // Relative paths in routes.toml are relative to its own folder, not the caller's.
    let config = root().join("routes.toml");
    let out = ganglion(
        &["check", "--config", &config.to_string_lossy()],
        &std::env::temp_dir(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
}

#[test]
fn a_broken_config_exits_78_with_every_error() {
    let dir = folder(&[(
        "routes.toml",
        b"[server]\nworkrs = 2\n[[route]]\nto = \"nobody\"\n",
    )]);
    let out = ganglion(&["check", "--config", "routes.toml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "routes.toml:2:1: error: unknown key `workrs` in [server]\n 2 | workrs = 2\n   | ^^^^^^\n  = hint: did you mean `workers`?\n\
         routes.toml:4:6: error: unknown endpoint or group `nobody`\n 4 | to = \"nobody\"\n   |      ^^^^^^^^\n\
         routes.toml: 2 errors, 0 warnings\n"
    );
}

#[test]
fn json_diagnostics_one_object_per_line() {
    let dir = folder(&[(
        "routes.toml",
        b"[server]\nworkrs = 2\n[[route]]\nto = \"nobody\"\n",
    )]);
    let out = ganglion(&["check", "--config", "routes.toml", "--json"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(78));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"file": "routes.toml", "line": 2, "col": 1, "severity": "error",
                "message": "unknown key `workrs` in [server]", "hint": "did you mean `workers`?"}),
            serde_json::json!({"file": "routes.toml", "line": 4, "col": 6, "severity": "error",
                "message": "unknown endpoint or group `nobody`"}),
        ]
    );
}

#[test]
fn warnings_alone_exit_0() {
    let dir = folder(&[(
        "routes.toml",
        b"[[endpoint]]\nname = \"a\"\nprotocol = \"mllp\"\naddress = \"a:1\"\n[[route]]\nto = \"a\"\n[[route]]\nhl7.message_type = \"ADT\"\ndrop = true\n",
    )]);
    let out = ganglion(&["check", "--config", "routes.toml", "--json"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(v["line"], 7);
    assert_eq!(v["severity"], "warning");
}

#[test]
fn a_failing_test_case_exits_78_and_says_what_happened() {
    let dir = folder(&[
        (
            "routes.toml",
            b"[[endpoint]]\nname = \"a\"\nprotocol = \"mllp\"\naddress = \"a:1\"\n[[endpoint]]\nname = \"b\"\nprotocol = \"mllp\"\naddress = \"b:1\"\n\
[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"a\"\n\
[[test]]\nname = \"adt goes to b\"\nfile = \"m.hl7\"\nto = \"b\"\n\
[[test]]\nname = \"missing file\"\nfile = \"gone.hl7\"\nto = \"b\"\n",
        ),
        ("m.hl7", b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125093015||ADT^A01|1|P|2.4\r"),
    ]);
    let out = ganglion(&["check", "--config", "routes.toml", "--json"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(78));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2, "{}", text(&out.stdout));
    assert_eq!(lines[0]["line"], 13);
    assert_eq!(lines[0]["col"], 1);
    assert_eq!(
        lines[0]["message"],
        "test `adt goes to b` failed: expected delivery to b, got delivery to a by route `adt` (line 9)"
    );
    assert_eq!(lines[1]["line"], 17);
    let m = lines[1]["message"].as_str().unwrap_or_default();
    assert!(
        m.starts_with("test `missing file`: cannot read `") && m.contains("gone.hl7"),
        "{m}"
    );
}

#[test]
fn explain_names_the_route_endpoints_and_reasons() {
    let out = ganglion(
        &[
            "explain",
            "--config",
            "routes.toml",
            "--json",
            "examples/messages/adt-a01.hl7",
            "examples/messages/itk-cda.xml",
        ],
        &root(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({
            "file": "examples/messages/adt-a01.hl7", "index": 0,
            "rule": "admissions with an NHS number",
            "matched": ["audit copy of patient administration", "admissions with an NHS number"],
            "endpoints": [
                {"name": "audit", "address": "127.0.0.1:2576"},
                {"name": "epr-rx8", "address": "epr.rx8.example.nhs.uk:6661"}
            ],
            "action": "deliver",
            "skipped": [
                {"rule": "training and debug messages", "reason": "hl7.processing_id is \"P\", not one of \"T\", \"D\""},
                {"rule": "test systems", "reason": "hl7.sending_application is \"PAS\", not \"ZZTEST*\""}
            ]
        })
    );
    assert_eq!(
        lines[1]["rule"],
        "CDA documents to each addressee's organisation"
    );
    assert_eq!(lines[1]["action"], "deliver");
    let names: Vec<&str> = lines[1]["endpoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["itk-j82001", "itk-rx8"]);
    // Five HL7v2 routes and the InfAck route come before the CDA route.
    assert_eq!(lines[1]["skipped"].as_array().map(Vec::len), Some(6));
}

#[test]
fn explain_unrouted_and_unreadable_messages() {
    let dir = folder(&[
        (
            "routes.toml",
            b"unrouted = \"dead-letter\"\n[[endpoint]]\nname = \"a\"\nprotocol = \"mllp\"\naddress = \"a:1\"\n[[route]]\nhl7.message_type = \"ADT\"\nto = \"a\"\n",
        ),
        ("m.hl7", b"MSH|^~\\&|LAB|RX8|EPR|RX8|20261125093015||ORU^R01|1|P|2.4\rgarbage line\r"),
    ]);
    let out = ganglion(&["explain", "--config", "routes.toml", "m.hl7"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "m.hl7 #1: HL7v2 ORU^R01 from LAB/RX8 to EPR/RX8\n  passed over `route #1` (line 6): hl7.message_type is \"ORU\", not \"ADT\"\n  => no route matched: dead letter (unrouted = \"dead-letter\")\n"
    );
}

#[test]
fn explain_with_a_broken_config_exits_78() {
    let dir = folder(&[("routes.toml", b"[[route]]\n")]);
    let out = ganglion(&["explain", "--config", "routes.toml", "x.hl7"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).starts_with("routes.toml:1:1: error: [[route]] #1 has no action"),
        "{}",
        text(&out.stderr)
    );
}
