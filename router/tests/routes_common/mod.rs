//! Helpers for the `routes_*` tests: a temp folder per case, and diagnostics as short strings.
#![allow(dead_code)] // each test crate uses a different part

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use router::config::{load, Diagnostic};

/// An endpoint table to paste into configs that need one: lines 1 to 4.
pub const EP: &str =
    "[[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n";

/// A fresh folder under the system temp dir holding the files given (paths relative to it).
pub fn folder(files: &[(&str, &[u8])]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ganglion-routes-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the temp dir is writable");
        }
        std::fs::write(path, bytes).expect("the temp dir is writable");
    }
    dir
}

/// `routes.toml:3:7: error: message`, with the temp folder written as `TMP`.
pub fn short(d: &Diagnostic, dir: &std::path::Path) -> String {
    let tmp = dir.display().to_string();
    let file = d
        .file
        .strip_prefix(dir)
        .unwrap_or(&d.file)
        .display()
        .to_string();
    let mut s = file;
    if let Some(l) = d.line {
        s += &format!(":{l}");
    }
    if let Some(c) = d.col {
        s += &format!(":{c}");
    }
    format!("{s}: {}: {}", d.severity, d.message.replace(&tmp, "TMP"))
}

/// Loads `routes.toml` from a folder of `files`: (diagnostics, their hints, whether it loaded).
pub fn load_in(files: &[(&str, &[u8])]) -> (Vec<String>, Vec<Option<String>>, bool) {
    let dir = folder(files);
    let result = load(&dir.join("routes.toml"));
    let (diags, ok) = match result {
        Ok((_, warnings)) => (warnings, true),
        Err(errors) => (errors, false),
    };
    let tmp = dir.display().to_string();
    let out = (
        diags.iter().map(|d| short(d, &dir)).collect(),
        diags
            .iter()
            .map(|d| d.hint.as_ref().map(|h| h.replace(&tmp, "TMP")))
            .collect(),
        ok,
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Asserts that loading this `routes.toml` fails with exactly these diagnostics.
#[track_caller]
pub fn errors(toml: &str, expected: &[&str]) {
    errors_with(&[("routes.toml", toml.as_bytes())], expected);
}

#[track_caller]
pub fn errors_with(files: &[(&str, &[u8])], expected: &[&str]) {
    let (got, _, ok) = load_in(files);
    assert!(
        !ok,
        "expected the load to fail; it loaded with warnings {got:#?}"
    );
    assert_eq!(got, expected);
}

/// Asserts that the first diagnostic for this `routes.toml` carries this hint.
#[track_caller]
pub fn first_hint(toml: &str, hint: &str) {
    let (_, hints, _) = load_in(&[("routes.toml", toml.as_bytes())]);
    assert_eq!(hints.first().cloned().flatten().as_deref(), Some(hint));
}

/// Asserts that loading succeeds with exactly these warnings.
#[track_caller]
pub fn warnings(files: &[(&str, &[u8])], expected: &[&str]) {
    let (got, _, ok) = load_in(files);
    assert!(ok, "expected the load to succeed; got {got:#?}");
    assert_eq!(got, expected);
}
