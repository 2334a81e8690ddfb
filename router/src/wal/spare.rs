//! The next segment, made ready before it is needed: a file already written full of zeros and
//! synced, so that appending to it and fdatasyncing never changes the file's size or extents.
//!
//! Why: on ext4, an fdatasync after a write that grows a file must commit the journal (the new
//! size and blocks), and that commit queues behind every other metadata change on the disk. A
//! write into blocks that already hold data needs no journal commit. Measured here
//! (`bench/benches/wal.rs`): 1 KB + fdatasync into a pre-zeroed file 116 µs p50 and ≤ 188 µs p99,
//! against 179 µs p50 and up to 3.9 ms p99 when the write grows the file. Writing zeros (not
//! `fallocate`) is what gives this: an fallocated extent is "unwritten", and the first write
//! into it is again a metadata change.
//!
//! The zeros are written on a thread of its own, one segment ahead, so the shard never waits for
//! them, and trickled (a chunk, its fdatasync, a pause): written in one burst, 64 MiB of zeros
//! sit in the disk's queue ahead of the log's own fdatasyncs, and those then take tens of
//! milliseconds (measured here: p99 19 ms, max 57 ms during bursts; p99 0.6 ms trickled, as
//! without). If the spare is not ready when a segment fills (or the disk has no room for one), the
//! log begins an ordinary growing segment instead. A spare is made only while the filesystem
//! keeps [`HEADROOM_SEGMENTS`] segments' worth free beyond it, so preallocating never takes the
//! room that appends need. Recovery treats zeros after the last record as unused space, not
//! damage, and deletes a spare left over from a crash.
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::thread::JoinHandle;

/// The spare's name in the shard directory (not a segment name, so recovery never reads it).
pub(crate) const SPARE_NAME: &str = "next.spare";

/// Free space, in segments, that must remain after the spare is written.
pub(crate) const HEADROOM_SEGMENTS: u64 = 4;

/// Zeros written, and synced, at a time while filling a spare.
const CHUNK: usize = 1 << 20;

/// The pause after each chunk: at most ~40 MB/s of zeros, a 64 MiB spare in about two seconds,
/// well ahead of a segment's filling even at ten times the national message rate.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// A spare being made, or ready. Its bytes count against the disk budget from the moment it
/// is begun (the log reserves them); [`Taken::Lost`] tells the log to give them back.
#[derive(Debug, Default)]
pub(crate) struct Spare {
    making: Option<JoinHandle<io::Result<File>>>,
    ready: Option<File>,
}

/// What [`Spare::take`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The spare, renamed to be the new segment.
    Ready(File),
    /// None yet (none asked for, or still being written).
    NotReady,
    /// The spare could not be made, or not renamed: there is none now.
    Lost,
}

impl Spare {
    /// Starts making a spare of `bytes` in `dir`; false when one is being made or ready
    /// already, or no thread could be started.
    pub fn prepare(&mut self, dir: &Path, bytes: u64) -> bool {
        if self.making.is_some() || self.ready.is_some() {
            return false;
        }
        let path = dir.join(SPARE_NAME);
        let made = std::thread::Builder::new()
            .name("ganglion-wal-spare".into())
            .spawn(move || make(&path, bytes));
        // No thread, no spare: the log grows its segments as it would without one.
        self.making = made.ok();
        self.making.is_some()
    }

    /// True when a spare is being made or ready (its bytes are reserved).
    pub fn exists(&self) -> bool {
        self.making.is_some() || self.ready.is_some()
    }

    /// True when a spare is written and waiting to be taken (after [`Spare::settle`]).
    pub fn is_ready(&self) -> bool {
        self.ready.is_some()
    }

    /// Joins a finished maker (never waits); true when it failed, so there is no spare now.
    pub fn settle(&mut self) -> bool {
        if !self.making.as_ref().is_some_and(JoinHandle::is_finished) {
            return false;
        }
        match self.making.take().map(JoinHandle::join) {
            Some(Ok(Ok(file))) => {
                self.ready = Some(file);
                false
            }
            _ => true,
        }
    }

    /// The spare if it is ready now (never waits), renamed to `to` so that it is a segment.
    pub fn take(&mut self, dir: &Path, to: &Path) -> Taken {
        if self.settle() {
            return Taken::Lost;
        }
        let Some(file) = self.ready.take() else {
            return Taken::NotReady;
        };
        match std::fs::rename(dir.join(SPARE_NAME), to) {
            Ok(()) => Taken::Ready(file),
            Err(_) => {
                drop(file);
                let _ = std::fs::remove_file(dir.join(SPARE_NAME));
                Taken::Lost
            }
        }
    }
}

fn make(path: &Path, bytes: u64) -> io::Result<File> {
    let _ = std::fs::remove_file(path);
    if !room_for(path, bytes) {
        return Err(io::ErrorKind::StorageFull.into());
    }
    let file = super::private::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let filled = fill(&file, bytes).and_then(|()| file.sync_all());
    match filled {
        Ok(()) => Ok(file),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

fn fill(file: &File, bytes: u64) -> io::Result<()> {
    let zeros = vec![0u8; CHUNK];
    let mut at = 0;
    while at < bytes {
        let n = (bytes - at).min(CHUNK as u64) as usize; // at most CHUNK
        file.write_all_at(&zeros[..n], at)?;
        file.sync_data()?;
        at += n as u64;
        if at < bytes {
            std::thread::sleep(PAUSE);
        }
    }
    Ok(())
}

/// Whether the filesystem holding `path` keeps enough free space after a spare of `bytes`.
fn room_for(path: &Path, bytes: u64) -> bool {
    let dir = path.parent().unwrap_or(Path::new("."));
    match rustix::fs::statvfs(dir) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            free >= bytes.saturating_mul(1 + HEADROOM_SEGMENTS)
        }
        Err(_) => false,
    }
}

/// Removes a spare a crash left behind.
pub(crate) fn discard_leftover(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(SPARE_NAME));
}
