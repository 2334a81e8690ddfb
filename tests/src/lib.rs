//! Helpers for ganglion's integration tests: where the corpus is, how to run the binary.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The shared sample corpus: `$GANGLION_CORPUS`, else `../shared/corpus` beside the workspace.
/// `None` (after printing a notice) when it is absent, so a clone elsewhere still passes.
pub fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("GANGLION_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("corpus not found, skipped ({})", dir.display());
        None
    }
}
