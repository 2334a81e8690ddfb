//! The message trace: where each message is. An index beside the log (`<data>/trace/`) of
//! what each message did: "received" (when, from which peer and listener, which rules, which
//! endpoints) and "outcome" (delivered with which ACK, retrying and why, dead-lettered in which
//! letter), looked up by control id / tracking id, by patient id (PID-3, hashed under a key of
//! the data directory) and by time.
//!
//! The parts: `entry` (the two entries and their bytes), `hash` (the lookup keys), `file` (one
//! index file: open, sealed, read), `index` (the folder, the writer's roll-over and retention,
//! lookups across files), `recorder` (a shard's buffer), `query` (a lookup's messages, each
//! with its entries), `room` (the trace stops writing before the log runs short of disk). Shards never wait for the index: they fill a buffer of their own and
//! hand it to the writer thread every [`recorder::TICK`], and the index is not synced before
//! an ACK — after a crash it lacks at most the last tick's entries (see `recorder`).
pub mod entry;
pub mod file;
pub mod hash;
pub mod index;
pub mod query;
pub mod recorder;
pub mod room;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::wal::DiskBudget;
use hash::PatientKey;
use index::{Index, Limits, Writer};
use recorder::Recorder;
use room::{Change, DiskRoom};

/// `[trace]` in `routes.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSettings {
    pub enabled: bool,
    /// How long entries are kept (whole files are removed once all their entries are older).
    pub retention: Duration,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            enabled: true,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Where the index lives in a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("trace")
}

/// The running index: the writer thread, and what lookups need.
pub struct Trace {
    sink: Sender<Vec<u8>>,
    stopping: Arc<AtomicBool>,
    pub key: Arc<PatientKey>,
    pub index: Arc<Index>,
    thread: JoinHandle<()>,
}

impl Trace {
    /// Opens (or makes) the index in `data_dir` and starts its writer thread.
    /// `log_budget` is what the log may grow to: the trace leaves it the disk.
    pub fn start(
        data_dir: &Path,
        settings: TraceSettings,
        log_budget: Arc<DiskBudget>,
    ) -> io::Result<Trace> {
        let dir = dir(data_dir);
        let writer = Writer::open(&dir, Limits::default(), settings.retention)?;
        let key = Arc::new(PatientKey::load_or_create(&dir.join("key"))?);
        let index = writer.index();
        let (sink, chunks) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("ganglion-trace".into())
            .spawn(move || write(writer, chunks, &stop, &dir, &log_budget))?;
        Ok(Trace {
            sink,
            stopping,
            key,
            index,
            thread,
        })
    }

    /// What each shard makes its recorder from.
    pub fn feed(&self) -> Feed {
        Feed {
            sink: self.sink.clone(),
            key: Arc::clone(&self.key),
        }
    }

    /// Waits for the writer to write what the shards sent and seal its file. Call once the
    /// shards have stopped (their recorders hand over what they hold as they stop).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        // An empty chunk wakes the writer to see the flag.
        let _ = self.sink.send(Vec::new());
        let _ = self.thread.join();
    }
}

/// The writer's channel and the patient key: what a shard needs to record.
#[derive(Clone)]
pub struct Feed {
    sink: Sender<Vec<u8>>,
    key: Arc<PatientKey>,
}

impl Feed {
    pub fn recorder(&self) -> Recorder {
        Recorder::new(self.sink.clone(), Arc::clone(&self.key))
    }
}

/// Whether the writer may write now, saying once when that changes (see [`room`]).
fn admit(room: &mut DiskRoom, dir: &Path, log_budget: &DiskBudget) -> bool {
    match room.check(Instant::now(), || room::space_of(dir, log_budget)) {
        Some(Change::Paused(space)) => tracing::warn!(
            free_bytes = space.free,
            kept_for_the_log_bytes = space.needed,
            "message trace paused: the disk's free space is what the log may still need; \
             lookups miss messages until it resumes"
        ),
        Some(Change::Resumed(space)) => tracing::info!(
            free_bytes = space.free,
            "message trace resumed; messages accepted while it was paused are not in it"
        ),
        None => {}
    }
    room.may_write()
}

/// The writer thread: appends chunks as they come while the disk has room for the log too;
/// seals and removes files by age.
fn write(
    mut writer: Writer,
    chunks: Receiver<Vec<u8>>,
    stopping: &AtomicBool,
    dir: &Path,
    log_budget: &DiskBudget,
) {
    let mut room = DiskRoom::default();
    let mut complained = false;
    let mut report = |result: io::Result<()>| match result {
        Ok(()) => complained = false,
        // Said once per episode: a full disk would otherwise log a line per chunk.
        Err(e) if !complained => {
            complained = true;
            tracing::error!("message trace: the index cannot be written ({e}); lookups miss what is not written");
        }
        Err(_) => {}
    };
    loop {
        match chunks.recv_timeout(Duration::from_secs(1)) {
            Ok(chunk) if chunk.is_empty() && stopping.load(Ordering::Acquire) => {
                while let Ok(mut chunk) = chunks.try_recv() {
                    if admit(&mut room, dir, log_budget) {
                        report(writer.append(&mut chunk));
                    }
                }
                break;
            }
            Ok(mut chunk) => {
                if admit(&mut room, dir, log_budget) {
                    report(writer.append(&mut chunk));
                }
            }
            Err(RecvTimeoutError::Timeout) => report(writer.tick(SystemTime::now())),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Err(e) = writer.close() {
        tracing::error!("message trace: the index could not be sealed at shutdown ({e}); it is recovered at the next start");
    }
}
