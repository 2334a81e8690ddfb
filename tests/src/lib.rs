//! Helpers for ganglion's integration tests: the corpus, scratch directories, the router as a
//! child process, stand-in endpoints and senders over real sockets, test certificates, and a
//! real browser.
#![forbid(unsafe_code)]

pub mod admin;
pub mod browser;
pub mod endpoint;
pub mod filling;
pub mod fleet;
pub mod itk;
pub mod nats;
pub mod numbered;
pub mod pki;
pub mod process;
pub mod scratch;
pub mod small_disk;

/// How long a test waits for something the router should do: generous, since only a failing
/// test waits it out and a loaded two-core CI machine can be slow; never a pause to sit through.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The shared sample corpus, or `None` on a developer's machine without it (in CI a missing
/// corpus fails): the workspace's one finder, [`corpus::find`].
pub fn corpus() -> Option<std::path::PathBuf> {
    ::corpus::find()
}
