//! [`DeadLetterStore`]: the directory operations (add, list, show, claim for replay, remove).
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::format;
use super::{DeadLetter, DeadLetterError, DeadLetterId, NewDeadLetter, State, Summary};
use crate::private_fs;

const READY: &str = "dl";
const REPLAYING: &str = "replaying";

#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    dir: PathBuf,
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> DeadLetterError {
    DeadLetterError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl DeadLetterStore {
    pub const DIR: &'static str = "dead-letters";

    /// The store of the data directory `data_dir` (created if absent, 0700: letters are
    /// patient data).
    pub fn open(data_dir: &Path) -> Result<Self, DeadLetterError> {
        let dir = data_dir.join(Self::DIR);
        private_fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &DeadLetterId, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", id.0))
    }

    /// Stores a dead letter durably (file and folder synced) and returns its id; blocks for
    /// two fsyncs, so a shard goes through its [`super::LetterWriter`] instead.
    pub fn add(&self, letter: &NewDeadLetter<'_>) -> Result<DeadLetterId, DeadLetterError> {
        let bytes = format::encode(letter).map_err(DeadLetterError::TooLarge)?;
        let id = self.write(&bytes, letter.time_unix_nanos)?;
        self.sync()?;
        Ok(id)
    }

    /// Writes an encoded letter under a new id: its file synced and linked, the folder not
    /// yet (see [`DeadLetterStore::sync`]: one folder sync covers a batch of letters).
    pub(super) fn write(&self, bytes: &[u8], time: u64) -> Result<DeadLetterId, DeadLetterError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            time,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // 0600 from the start; the name it is linked under shares the inode, so the mode.
        let mut f = private_fs::create_new(&tmp).map_err(|e| io("create", &tmp, e))?;
        let written = f.write_all(bytes).and_then(|()| f.sync_all());
        drop(f);
        let result = written
            .map_err(|e| io("write", &tmp, e))
            .and_then(|()| self.link_new(&tmp, time));
        let _ = fs::remove_file(&tmp); // the letter, if stored, lives on under its own name
        result
    }

    /// Links `tmp` under the first free id for `time`; `link` never replaces an existing file.
    fn link_new(&self, tmp: &Path, time: u64) -> Result<DeadLetterId, DeadLetterError> {
        for n in 0u32..10_000 {
            let id = DeadLetterId(match n {
                0 => format!("{time:019}"),
                n => format!("{time:019}-{n}"),
            });
            if self.path(&id, REPLAYING).exists() {
                continue;
            }
            match fs::hard_link(tmp, self.path(&id, READY)) {
                Ok(()) => return Ok(id),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io("link", &self.path(&id, READY), e)),
            }
        }
        Err(io(
            "find a free id in",
            &self.dir,
            std::io::Error::other("10,000 letters in one nanosecond"),
        ))
    }

    /// Makes the names of the letters written so far durable.
    pub(super) fn sync(&self) -> Result<(), DeadLetterError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsync", &self.dir, e))
    }

    /// Every dead letter, by id (oldest first); damaged files are listed as errors.
    pub fn list(&self) -> Result<Vec<Result<Summary, DeadLetterError>>, DeadLetterError> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io("list", &self.dir, e))? {
            let entry = entry.map_err(|e| io("list", &self.dir, e))?;
            let name = entry.file_name();
            let Some((stem, ext)) = name.to_str().and_then(|n| n.rsplit_once('.')) else {
                continue;
            };
            let state = match ext {
                READY => State::Ready,
                REPLAYING => State::Replaying,
                _ => continue,
            };
            if let Ok(id) = DeadLetterId::parse(stem) {
                found.push((id, state));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(found.len());
        for (id, state) in found {
            let ext = if state == State::Ready {
                READY
            } else {
                REPLAYING
            };
            match self.load(&id, ext) {
                Ok(l) => out.push(Ok(Summary {
                    id: l.id,
                    state,
                    time_unix_nanos: l.time_unix_nanos,
                    endpoint: l.endpoint,
                    reason: l.reason,
                    detail: l.detail,
                    control_id: l.origin.control_id,
                    message_len: l.message.len(),
                })),
                // Replayed or dropped by someone else since the directory was read.
                Err(DeadLetterError::NotFound(_)) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    }

    fn load(&self, id: &DeadLetterId, ext: &str) -> Result<DeadLetter, DeadLetterError> {
        let path = self.path(id, ext);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(DeadLetterError::NotFound(id.clone()))
            }
            Err(e) => return Err(io("read", &path, e)),
        };
        format::decode(id.clone(), &bytes).map_err(|reason| DeadLetterError::Damaged {
            id: id.clone(),
            path,
            reason,
        })
    }

    /// One dead letter in full, with its state.
    pub fn show(&self, id: &DeadLetterId) -> Result<(DeadLetter, State), DeadLetterError> {
        match self.load(id, READY) {
            Err(DeadLetterError::NotFound(_)) => {
                self.load(id, REPLAYING).map(|l| (l, State::Replaying))
            }
            other => other.map(|l| (l, State::Ready)),
        }
    }

    /// Takes a letter for replay: after this no one else can claim it. Put the message back in
    /// the log, make that durable, then [`Claimed::finish`]; on failure [`Claimed::release`].
    pub fn claim(&self, id: &DeadLetterId) -> Result<(Claimed<'_>, DeadLetter), DeadLetterError> {
        let ready = self.path(id, READY);
        match fs::rename(&ready, self.path(id, REPLAYING)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(DeadLetterError::NotFound(id.clone()))
            }
            Err(e) => return Err(io("rename", &ready, e)),
        }
        let claim = Claimed {
            store: self,
            id: id.clone(),
        };
        match self.load(id, REPLAYING) {
            Ok(letter) => Ok((claim, letter)),
            Err(e) => {
                // A damaged letter stays where it was, for someone to look at or drop.
                let _ = claim.release();
                Err(e)
            }
        }
    }

    /// Deletes a letter, ready or mid-replay.
    pub fn remove(&self, id: &DeadLetterId) -> Result<(), DeadLetterError> {
        let mut removed = false;
        for ext in [READY, REPLAYING] {
            let path = self.path(id, ext);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io("delete", &path, e)),
            }
        }
        if !removed {
            return Err(DeadLetterError::NotFound(id.clone()));
        }
        self.sync()
    }
}

/// A letter taken for replay (`<id>.replaying`).
#[derive(Debug)]
pub struct Claimed<'a> {
    store: &'a DeadLetterStore,
    id: DeadLetterId,
}

impl Claimed<'_> {
    pub fn id(&self) -> &DeadLetterId {
        &self.id
    }

    /// The message is back in the log: the letter goes.
    pub fn finish(self) -> Result<(), DeadLetterError> {
        let path = self.store.path(&self.id, REPLAYING);
        fs::remove_file(&path).map_err(|e| io("delete", &path, e))?;
        self.store.sync()
    }

    /// The replay failed: the letter is ready again (under the same id unless that id was
    /// meanwhile taken, which `link` refuses to overwrite).
    pub fn release(self) -> Result<DeadLetterId, DeadLetterError> {
        let claimed = self.store.path(&self.id, REPLAYING);
        let id = match fs::hard_link(&claimed, self.store.path(&self.id, READY)) {
            Ok(()) => self.id.clone(),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let time = self.id.0.split('-').next().and_then(|t| t.parse().ok());
                self.store.link_new(&claimed, time.unwrap_or(0))?
            }
            Err(e) => return Err(io("link", &claimed, e)),
        };
        fs::remove_file(&claimed).map_err(|e| io("delete", &claimed, e))?;
        Ok(id)
    }
}
