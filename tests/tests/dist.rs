//! What `dist/` ships for installing ganglion: the sample configurations pass `ganglion check`
//! once laid out as docs/operations.md installs them (beside their TLS files in `tls/`), and
//! agree with the systemd unit on the data directory; the unit passes `systemd-analyze verify`
//! and starts the router with flags `ganglion run` has.
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::process::{bin, ganglion};
use tests::scratch::Scratch;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

fn unit() -> String {
    std::fs::read_to_string(workspace().join("dist/ganglion.service")).expect("the unit")
}

/// The values of `key=` lines in the unit, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
        .collect()
}

/// `dist/examples` laid out as in /etc/ganglion: the files side by side, the example TLS files
/// (public, for examples only) in `tls/`.
fn installed_examples() -> Scratch {
    let scratch = Scratch::new("dist-examples");
    let examples = workspace().join("dist/examples");
    for entry in std::fs::read_dir(&examples).expect("dist/examples") {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            scratch.join(&path.file_name().unwrap().to_string_lossy()),
        )
        .unwrap();
    }
    std::fs::create_dir(scratch.join("tls")).unwrap();
    for name in ["ca.pem", "hub.pem", "hub.key", "client.pem", "client.key"] {
        std::fs::copy(
            workspace().join("examples/tls").join(name),
            scratch.join("tls").join(name),
        )
        .unwrap();
    }
    scratch
}

#[test]
fn the_sample_configurations_pass_check() {
    let scratch = installed_examples();
    let data_dirs = unit_values(&unit(), "ReadWritePaths");
    for name in ["small-hospital.toml", "national-directory.toml"] {
        let config = scratch.join(name);
        let output = ganglion(&["check", "--config", &config.display().to_string()]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}:\n{stdout}\n{stderr}");
        assert!(!stderr.contains("warning"), "{name}:\n{stderr}");
        // "…; 6 of 6 tests passed": every [[test]] ran and passed, and there are some.
        let (passed, total) = stdout
            .trim()
            .rsplit_once("; ")
            .and_then(|(_, tail)| tail.strip_suffix(" tests passed"))
            .and_then(|counts| counts.split_once(" of "))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        assert_eq!(passed, total, "{name}: {stdout}");
        assert_ne!(total, "0", "{name} has no [[test]]");

        // The unit lets the router write where the sample keeps its data.
        let text = std::fs::read_to_string(&config).unwrap();
        let data_dir = text
            .lines()
            .find_map(|l| l.strip_prefix("data_dir = "))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{name} names no data_dir"));
        assert_eq!(data_dirs, vec![data_dir], "{name} and ganglion.service");
    }
}

#[test]
fn the_unit_runs_flags_that_exist() {
    let unit = unit();
    let exec_start = unit_values(&unit, "ExecStart");
    assert_eq!(exec_start.len(), 1, "{exec_start:?}");
    let words: Vec<&str> = exec_start[0].split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"run"), "{exec_start:?}");
    let help = ganglion(&["run", "--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in words.iter().filter(|w| w.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")),
            "ExecStart uses {flag}, which `ganglion run --help` does not list:\n{help}"
        );
    }
    // The stop timeout outlasts the shutdown grace.
    let grace: u64 = words
        .iter()
        .skip_while(|w| **w != "--grace")
        .nth(1)
        .and_then(|g| g.parse().ok())
        .expect("ExecStart sets --grace");
    let stop = unit_values(&unit, "TimeoutStopSec");
    let stop: u64 = stop[0]
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop > grace, "TimeoutStopSec={stop}s, --grace {grace}");
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let found = Command::new("systemd-analyze").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: systemd-analyze not installed (Debian's `systemd` package has it)");
        return;
    }
    // verify checks that ExecStart's program exists: point it at the binary these tests run.
    let unit = unit();
    let installed = "/usr/local/bin/ganglion ";
    assert_eq!(unit.matches(installed).count(), 1, "one ExecStart");
    let unit = unit.replace(installed, &format!("{} ", bin().display()));
    let scratch = Scratch::new("dist-unit");
    let path = scratch.file("ganglion.service", unit);
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    // verify only warns (and exits 0) about a value it cannot parse or a key it does not
    // know; each such line names the file.
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("ganglion.service"))
        .collect();
    assert!(about_unit.is_empty(), "{}", about_unit.join("\n"));
    if !said.trim().is_empty() {
        eprintln!("systemd-analyze said, about other units:\n{said}");
    }
}
