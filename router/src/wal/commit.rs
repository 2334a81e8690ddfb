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
        self.check()?;
        for f in &self.files {
            f.file
                .sync_data()
                .map_err(|source| self.failed(&f.path, source))?;
        }
        if let Some(dir) = &self.dir {
            dir.file
                .sync_all()
                .map_err(|source| self.failed(&dir.path, source))?;
        }
        self.check()?;
        Ok(Durable { upto: self.upto })
    }

    /// The same through the shard's io_uring (`IORING_OP_FSYNC`): the shard is woken by the
    /// completion itself, with no thread of ours to hand the commit to and back. Only on the
    /// io_uring driver: the epoll driver would make the call inline and block the shard.
    pub async fn run_in_ring(self) -> Result<Durable, WalError> {
        self.check()?;
        for f in &self.files {
            ring_sync(&f.file, false)
                .await
                .map_err(|source| self.failed(&f.path, source))?;
        }
        if let Some(dir) = &self.dir {
            ring_sync(&dir.file, true)
                .await
                .map_err(|source| self.failed(&dir.path, source))?;
        }
        self.check()?;
        Ok(Durable { upto: self.upto })
    }

    /// A failure in a commit that ran alongside this one may mean this flush skipped pages
    /// that the kernel had already marked clean: never claim durability then.
    fn check(&self) -> Result<(), WalError> {
        match self.poisoned.load(Ordering::Acquire) {
            true => Err(WalError::Poisoned),
            false => Ok(()),
        }
    }

    fn failed(&self, path: &std::path::Path, source: std::io::Error) -> WalError {
        self.poisoned.store(true, Ordering::Release);
        WalError::Sync {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// fdatasync (or fsync, `all`) of `file` as an io_uring operation, on a duplicate of its
/// descriptor: the original stays shared with the log, the duplicate is the operation's own.
async fn ring_sync(file: &File, all: bool) -> std::io::Result<()> {
    let own = monoio::fs::File::from_std(file.try_clone()?)?;
    let synced = match all {
        true => own.sync_all().await,
        false => own.sync_data().await,
    };
    let closed = own.close().await;
    synced.and(closed)
}

impl CommitJob for Commit {
    fn run(self) -> Result<Durable, WalError> {
        Commit::run(self)
    }
}
