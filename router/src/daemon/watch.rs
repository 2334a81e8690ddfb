//! The config-file watch, and reading the config only while it holds still.
//!
//! Editors write in pieces: a watch that reloads on the first change it sees can read half a
//! file, and a half file can be valid TOML (it once removed every route within a second). So a
//! change is acted on only once the files have kept the same size, modification time and
//! contents for [`SETTLE`]; and every reload (whoever asked for it) compares the files before
//! and after it read them, and reads them again if they changed meanwhile ([`read_stable`]).
//! Polling asks only for size and modification time; contents are hashed only when those moved,
//! or to confirm that the files settled.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Diagnostic;
use crate::routes::{ContentDigest, RouteTable};

/// How long the files must stay the same before a change is read.
pub const SETTLE: Duration = Duration::from_millis(300);

/// How many times a reload reads files that keep changing before it gives up.
const READ_ATTEMPTS: usize = 10;

/// A file's size and modification time: cheap to ask for on every poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    len: u64,
    modified: Option<SystemTime>,
}

fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stat {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// One file as it was at one moment; `None` parts when it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    path: PathBuf,
    stat: Option<Stat>,
    digest: Option<ContentDigest>,
}

/// The config file and the directory it names, as they were at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: Vec<FileState>,
}

impl Snapshot {
    pub fn take<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Snapshot {
        let files = paths
            .into_iter()
            .map(|path| FileState {
                path: path.to_path_buf(),
                stat: stat(path),
                digest: ContentDigest::of_files([path]).ok(),
            })
            .collect();
        Snapshot { files }
    }

    /// Each file with the digest of what it held (`None`: it could not be read).
    pub fn digests(&self) -> impl Iterator<Item = (&Path, Option<ContentDigest>)> {
        self.files.iter().map(|f| (f.path.as_path(), f.digest))
    }

    fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Whether every file still has the size and modification time recorded here.
    fn looks_unchanged(&self) -> bool {
        self.files.iter().all(|f| stat(&f.path) == f.stat)
    }

    /// Whether both hold the same bytes in the same files (times aside).
    fn same_contents(&self, other: &Snapshot) -> bool {
        self.files.len() == other.files.len()
            && self
                .files
                .iter()
                .zip(&other.files)
                .all(|(a, b)| a.path == b.path && a.digest == b.digest)
    }
}

/// What reading the config gave, and the files as they were read.
pub struct Read {
    pub loaded: Result<(RouteTable, Vec<Diagnostic>), Vec<Diagnostic>>,
    pub files: Snapshot,
}

/// Reads the config at `config` (and the directory it names) until the files are the same
/// after reading as before; `directory` is where the directory was last time. `Err` when they
/// kept changing.
pub fn read_stable(config: &Path, directory: Option<&Path>) -> Result<Read, Unsettled> {
    let mut directory = directory.map(Path::to_path_buf);
    for _ in 0..READ_ATTEMPTS {
        let paths = || std::iter::once(config).chain(directory.as_deref());
        let before = Snapshot::take(paths());
        let loaded = crate::config::load(config);
        let named = match &loaded {
            Ok((table, _)) => table.directory_path().map(Path::to_path_buf),
            Err(_) => directory.clone(),
        };
        if named != directory {
            // The file names another directory: read again, watching that one.
            directory = named;
            continue;
        }
        let after = Snapshot::take(paths());
        if before == after {
            return Ok(Read {
                loaded,
                files: after,
            });
        }
        tracing::info!(
            "{} changed while it was read; reading it again once it holds still",
            config.display()
        );
        std::thread::sleep(SETTLE);
    }
    Err(Unsettled {
        config: config.to_path_buf(),
        attempts: READ_ATTEMPTS,
    })
}

/// The config kept changing while it was read.
#[derive(Debug, thiserror::Error)]
#[error("{} kept changing while it was read ({attempts} attempts); try again once it is saved", config.display())]
pub struct Unsettled {
    pub config: PathBuf,
    pub attempts: usize,
}

/// Watches the files the running config was read from.
pub struct Watch {
    /// The files as the last reload read them.
    read: Snapshot,
    /// A change seen, and since when the files have looked like this.
    settling: Option<(Snapshot, Instant)>,
}

impl Watch {
    pub fn new(read: Snapshot) -> Watch {
        Watch {
            read,
            settling: None,
        }
    }

    /// Looks at the files; true when their contents differ from what the last reload read and
    /// they have held still for [`SETTLE`]: time to reload.
    pub fn poll(&mut self, now: Instant) -> bool {
        let Some((seen, since)) = self.settling.take() else {
            if !self.read.looks_unchanged() {
                self.settling = Some((Snapshot::take(self.read.paths()), now));
            }
            return false;
        };
        if !seen.looks_unchanged() {
            self.settling = Some((Snapshot::take(seen.paths()), now));
            return false;
        }
        if now.saturating_duration_since(since) < SETTLE {
            self.settling = Some((seen, since));
            return false;
        }
        let again = Snapshot::take(seen.paths());
        if again != seen {
            self.settling = Some((again, now));
            return false;
        }
        if again.same_contents(&self.read) {
            // Touched, or written back as it was: nothing to reload.
            self.read = again;
            return false;
        }
        true
    }

    /// The files as a reload (of any outcome) read them: a refused file is not read again
    /// until it changes.
    pub fn reloaded(&mut self, files: Snapshot) {
        self.read = files;
        self.settling = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_read_only_once_the_file_holds_still() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, "first").unwrap();
        let mut watch = Watch::new(Snapshot::take([path.as_path()]));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!watch.poll(at(0)), "nothing changed");

        // An editor writes in two pieces, 200 ms apart: each piece starts the wait again.
        std::fs::write(&path, "half").unwrap();
        assert!(!watch.poll(at(100)));
        assert!(!watch.poll(at(200)));
        std::fs::write(&path, "half and the rest").unwrap();
        assert!(!watch.poll(at(300)), "changed again: wait from here");
        assert!(!watch.poll(at(450)));
        assert!(!watch.poll(at(550)), "only 250 ms since the last change");
        assert!(watch.poll(at(650)), "held still for 350 ms");

        // Once reloaded, the same files are not read again.
        watch.reloaded(Snapshot::take([path.as_path()]));
        assert!(!watch.poll(at(700)));
        assert!(!watch.poll(at(2000)));
    }

    #[test]
    fn a_file_written_back_as_it_was_is_not_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, "same").unwrap();
        let mut watch = Watch::new(Snapshot::take([path.as_path()]));
        // Another modification time, the same bytes.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
        let t0 = Instant::now();
        assert!(!watch.poll(t0));
        assert!(!watch.poll(t0 + Duration::from_secs(1)));
        assert!(!watch.poll(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn a_reload_reads_a_still_file_once_and_follows_the_directory_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        std::fs::write(&config, "[directory]\nfile = \"e.csv\"\n").unwrap();
        std::fs::write(dir.path().join("e.csv"), "id,protocol,address\n").unwrap();
        let read = read_stable(&config, None).unwrap();
        assert!(read.loaded.is_ok());
        let watched: Vec<_> = read.files.paths().map(Path::to_path_buf).collect();
        assert_eq!(watched, vec![config.clone(), dir.path().join("e.csv")]);
    }
}
