//! Group commit: the fdatasync that makes appended records durable, packaged as a value that can
//! run on any thread, so a shard's event loop never blocks on the disk.
//!
//! A [`Commit`] holds shared handles to the segment files written since the previous commit was
//! taken (usually one; two when a batch rolled into a new segment) and, when a segment was
//! created, the directory, whose entry for the new file must be made durable too. fdatasync of a
//! file covers every write made before it through any descriptor, so one commit after many
//! appends makes all of them durable at the price of one flush.
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::WalError;
use super::segment::SegmentFile;
use super::types::{Durable, RecordId};

/// The shard directory, fsynced after a segment file is created in it.
#[derive(Debug)]
pub(crate) struct DirHandle {
    pub file: File,
    pub path: PathBuf,
}

/// Runs a commit: blocking, for a thread that may block. A shard may keep one in flight while it
/// goes on appending; everything appended before the commit was taken is covered.
pub trait CommitJob: Send + 'static {
    fn run(self) -> Result<Durable, WalError>;
}

/// Makes every record up to [`Commit::upto`] durable. `Send + 'static`: move it to a blocking
/// thread (a small pool, `std::thread`, or the runtime's `spawn_blocking`) and ACK the batch's
/// senders when it returns `Ok`.
#[derive(Debug)]
#[must_use = "records are not durable until the commit has run"]
pub struct Commit {
    pub(crate) files: Vec<Arc<SegmentFile>>,
    pub(crate) dir: Option<Arc<DirHandle>>,
    pub(crate) upto: Option<RecordId>,
    pub(crate) poisoned: Arc<AtomicBool>,
}

impl Commit {
    /// The last record this commit covers.
    pub fn upto(&self) -> Option<RecordId> {
        self.upto
    }

    /// fdatasyncs the files (and the directory, after a new segment); blocks.
    pub fn run(self) -> Result<Durable, WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        for f in &self.files {
            if let Err(source) = f.file.sync_data() {
                self.poisoned.store(true, Ordering::Release);
                return Err(WalError::Sync {
                    path: f.path.clone(),
                    source,
                });
            }
        }
        if let Some(dir) = &self.dir {
            if let Err(source) = dir.file.sync_all() {
                self.poisoned.store(true, Ordering::Release);
                return Err(WalError::Sync {
                    path: dir.path.clone(),
                    source,
                });
            }
        }
        // A failure in a commit that ran alongside this one may mean this flush skipped pages
        // that the kernel had already marked clean: do not claim durability then.
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        Ok(Durable { upto: self.upto })
    }
}

impl CommitJob for Commit {
    fn run(self) -> Result<Durable, WalError> {
        Commit::run(self)
    }
}
