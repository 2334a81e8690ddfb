#![no_main]
//! Any text as `routes.toml` and any bytes as its endpoint directory: parse, schema walk,
//! compile, then route, explain and diff with whatever table came out. Every problem must come
//! back as a diagnostic positioned inside the file it names; nothing may panic.
//!
//! The input is the config, then a NUL byte, then the directory CSV (written beside the config
//! as `endpoints.csv`, which the seeds' `[directory]` names).
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use router::inspect::Item;
use router::config::{directory, load_str, Diagnostic};
use router::routes::{diff, Decision, ParsedMessage};

const ADT: &[u8] = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.4|||AL|NE||8859/1\rPID|1||9434765919^^^NHS^NH||SMITH^JOHN\r";
const ORU: &[u8] = b"MSH|^~\\&|LAB|RX8|GP|A81001|20260101120000||ORU^R01|L1|P|2.5\rOBR|1\r";

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ganglion-fuzz-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder for the directory file");
        dir
    })
}

/// A diagnostic's position must name a place that exists in the text it was found in.
fn check_position(d: &Diagnostic, text: &str) {
    let _ = (d.to_string(), d.to_json());
    if let (Some(line), Some(col)) = (d.line, d.col) {
        let lines = text.split('\n').count() as u32;
        assert!(line >= 1 && line <= lines.max(1), "line {line} of {lines}: {d}");
        let width = text.split('\n').nth(line as usize - 1).map_or(0, |l| l.chars().count());
        assert!(col >= 1 && col as usize <= width + 1, "col {col} of {width}: {d}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (config, csv) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let rows = directory::read(Path::new("endpoints.csv"), csv);
    for d in &rows.diags {
        let _ = (d.to_string(), d.to_json());
    }

    let Ok(text) = std::str::from_utf8(config) else {
        return;
    };
    // Certificate and directory paths are opened as written: keep the fuzzer off devices and
    // kernel files (reading /dev/zero as a certificate would never end).
    if ["/dev", "/proc", "/sys", ".."].iter().any(|p| text.contains(p)) {
        return;
    }
    let dir = scratch();
    if std::fs::write(dir.join("endpoints.csv"), csv).is_err() {
        return;
    }
    let path = dir.join("routes.toml");
    let diagnostics = match load_str(&path, text) {
        Ok((table, warnings)) => {
            let mut decision = Decision::default();
            for bytes in [ADT, ORU] {
                let item = Item::Hl7v2(Cow::Borrowed(bytes));
                if let Ok(message) = ParsedMessage::parse(&item) {
                    table.route(&message, &mut decision);
                    let explained = table.explain(&message);
                    assert_eq!(explained.decision, decision, "explain disagrees with route");
                }
            }
            let _ = diff(Some(&table), &table);
            let _ = diff(None, &table);
            warnings
        }
        Err(errors) => {
            assert!(errors.iter().any(Diagnostic::is_error), "Err without an error");
            errors
        }
    };
    for d in &diagnostics {
        if d.file == path {
            check_position(d, text);
        }
    }
});
