//! Helpers for ganglion's integration tests: the corpus, scratch directories, the router as a
//! child process, stand-in endpoints and senders over real sockets, and test certificates.
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod fleet;
pub mod pki;
pub mod process;
pub mod scratch;
pub mod small_disk;

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
