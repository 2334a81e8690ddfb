//! A shard's durability: its write-ahead log, the thread that fsyncs it, and the marks that
//! say which destinations are done.
//!
//! Ingress appends a whole batch of accepted messages with one write into the page cache, then
//! waits for [`Durability::wait_durable`]. One commit is in flight at a time; everything appended
//! while it runs rides on the next one, so at high rates one fdatasync covers many batches
//! (group commit) and at low rates a message waits for one fdatasync only. The fdatasync runs
//! on a thread of its own so the shard's event loop never blocks on the disk.
//!
//! Marks (delivered, dead-lettered) come back from whichever shard owns the endpoint, through a
//! mesh of their own, and are written to the log in batches a few milliseconds apart: a lost
//! mark only means a message is delivered again after a crash, which at-least-once allows.
use crate::runtime::driver::Driver;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;

use crate::metrics::{Metrics, ShardHealth};
use crate::notify::LocalNotify;
use crate::pipeline::RecordRef;
use crate::runtime::mesh::Mesh;
use crate::wal::{
    shard_dir, Commit, DiskBudget, Durable, Log, Mark, NewRecord, PendingRecord, RecordId,
    Recovery, ShardLog, WalConfig, WalError,
};

/// How often marks are written.
const MARK_INTERVAL: Duration = Duration::from_millis(5);

/// Why records could not be stored; their senders must not be acknowledged. What it says
/// ([`NotDurable::text`]) is what senders are told: plain words, nothing of the server's
/// files; the router's log has the details, once per episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.text())]
pub enum NotDurable {
    /// The log is at its disk budget (`[server] wal_budget`).
    StoreFull,
    /// The file system holding the log is full.
    DiskFull,
    /// Writing the message failed (the log, or the dead-letter store for an unrouted one); a
    /// failed log write or sync is not retried until the router restarts.
    StoreFailed,
    /// The message cannot be logged at all (a limit of the record format).
    Unstorable(&'static str),
    /// The cluster's replicated stream did not take the message in time (NATS unreachable,
    /// no JetStream quorum): a retry helps once it is back.
    ClusterUnavailable,
}

impl NotDurable {
    pub fn text(&self) -> &'static str {
        match self {
            NotDurable::StoreFull => "the router's message store is full; try again later",
            NotDurable::DiskFull => "the router's disk is full; try again later",
            NotDurable::StoreFailed => "the router cannot store messages now; try again later",
            NotDurable::Unstorable(why) => why,
            NotDurable::ClusterUnavailable => {
                "the router cannot reach its cluster's message store now; try again later"
            }
        }
    }

    /// Whether the same message may be accepted later without anyone acting: as endpoints
    /// drain the log (a full store or disk). Not after a write or fsync failed (a restart is
    /// needed), nor for a message the format cannot hold.
    pub fn retry_can_help(&self) -> bool {
        matches!(
            self,
            NotDurable::StoreFull | NotDurable::DiskFull | NotDurable::ClusterUnavailable
        )
    }

    fn of(e: &WalError) -> Self {
        match e {
            WalError::BudgetExceeded { .. } => NotDurable::StoreFull,
            WalError::NoSpace { .. } => NotDurable::DiskFull,
            WalError::InvalidRecord { reason, .. } => NotDurable::Unstorable(reason),
            _ => NotDurable::StoreFailed,
        }
    }
}

/// A run of refusals: logged when it begins and when it ends, not per message.
struct Episode {
    since: std::time::Instant,
    messages: u64,
}

/// The result slot the fsync thread fills and the shard waits on.
struct Done {
    result: Mutex<Option<Result<Durable, WalError>>>,
    waker: AtomicWaker,
}

pub struct Durability {
    shard: usize,
    shards: usize,
    /// This shard's own log (number == shard index): the only one appended to.
    log: RefCell<ShardLog>,
    /// Logs left by shards that no longer exist (the router was restarted with fewer workers),
    /// adopted to replay and mark, never appended to.
    adopted: RefCell<Vec<(u16, ShardLog)>>,
    appended: Cell<Option<RecordId>>,
    durable: Cell<Option<RecordId>>,
    /// Once a commit fails the log is poisoned: nothing after it may be acknowledged.
    failed: Cell<bool>,
    /// fsyncs go through the shard's io_uring instead of the fsync thread.
    in_ring: Cell<bool>,
    /// Messages being refused since then (appends that failed).
    refusing: RefCell<Option<Episode>>,
    /// Marks being left unwritten since then (writes that failed).
    marks_failing: RefCell<Option<Episode>>,
    progress: LocalNotify,
    jobs: mpsc::Sender<Commit>,
    /// Taken by [`Durability::start`].
    receive: RefCell<Option<mpsc::Receiver<Commit>>>,
    done: Arc<Done>,
    marks: Arc<Mesh<RecordRef>>,
    /// Marks for this shard's logs made on this shard, and marks the mesh had no room for.
    local_marks: RefCell<Vec<RecordRef>>,
    overflow: RefCell<Vec<RecordRef>>,
    /// fsync durations, and the log's health for `/readyz`.
    metrics: Arc<Metrics>,
}

/// The number of `shard-<n>` logs under `data_dir` (the highest n, plus one).
fn existing_logs(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("shard-")?
                        .parse::<usize>()
                        .ok()
                })
                .map(|n| n + 1)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

impl Durability {
    /// Opens shard `shard`'s log under `data_dir`, and adopts the logs of shards
    /// `shard + shards`, `shard + 2·shards`, … left by an earlier run with more shards; all
    /// count against `budget`, which every shard shares. Returns what recovery found in each.
    pub fn open(
        data_dir: &Path,
        (shard, shards): (usize, usize),
        config: WalConfig,
        budget: Arc<DiskBudget>,
        marks: Arc<Mesh<RecordRef>>,
        metrics: Arc<Metrics>,
    ) -> Result<(Durability, Vec<(u16, Recovery)>), WalError> {
        let mut reports = Vec::new();
        let open = |n: usize| {
            ShardLog::open_shared(shard_dir(data_dir, n), config.clone(), Arc::clone(&budget))
        };
        let (log, report) = open(shard)?;
        reports.push((shard as u16, report));
        let mut adopted = Vec::new();
        let mut other = shard + shards;
        while other < existing_logs(data_dir) {
            let (log, report) = open(other)?;
            reports.push((other as u16, report));
            adopted.push((other as u16, log));
            other += shards;
        }
        let (jobs, receive) = mpsc::channel::<Commit>();
        let done = Arc::new(Done {
            result: Mutex::new(None),
            waker: AtomicWaker::new(),
        });
        Ok((
            Durability {
                shard,
                shards,
                log: RefCell::new(log),
                adopted: RefCell::new(adopted),
                appended: Cell::new(None),
                durable: Cell::new(None),
                failed: Cell::new(false),
                in_ring: Cell::new(false),
                refusing: RefCell::new(None),
                marks_failing: RefCell::new(None),
                progress: LocalNotify::new(),
                jobs,
                receive: RefCell::new(Some(receive)),
                done,
                marks,
                local_marks: RefCell::new(Vec::new()),
                overflow: RefCell::new(Vec::new()),
                metrics,
            },
            reports,
        ))
    }

    /// Starts the fsync thread, unless the shard runs on io_uring, which takes the fsyncs
    /// itself. Called on the shard's own thread, after it took its private descriptor table:
    /// the thread then shares that table, so the segment files the shard creates later are the
    /// files it syncs.
    /// Each fdatasync's duration goes into the metrics.
    pub fn start(&self, driver: Driver) -> std::io::Result<()> {
        let Some(receive) = self.receive.borrow_mut().take() else {
            return Ok(());
        };
        if driver == Driver::Uring {
            self.in_ring.set(true);
            return Ok(());
        }
        let metrics = Arc::clone(&self.metrics);
        let done = Arc::clone(&self.done);
        let shard = self.shard;
        std::thread::Builder::new()
            .name(format!("ganglion-fsync-{}", self.shard))
            .spawn(move || {
                crate::runtime::shards::unpin_current_thread();
                for commit in receive {
                    let started = std::time::Instant::now();
                    let result = commit.run();
                    metrics.shard(shard).wal_sync.record(started.elapsed());
                    if let Ok(mut slot) = done.result.lock() {
                        *slot = Some(result);
                    }
                    done.waker.wake();
                }
            })?;
        Ok(())
    }

    /// Begins the log's spare now, so that the shard's first messages need not go into a
    /// growing file. Called on the shard's own thread (the spare's file is then in its
    /// descriptor table), by a shard that appends to its log: not by a cluster node's, whose
    /// messages go to the stream.
    pub fn prepare_for_appends(&self) {
        self.log.borrow_mut().prepare_for_appends();
    }

    fn health(&self) -> &ShardHealth {
        &self.metrics.shard(self.shard).health
    }

    /// The log is poisoned: nothing after this is acknowledged.
    fn log_failed(&self) {
        self.failed.set(true);
        self.health().log_failed.store(true, Ordering::Relaxed);
    }

    /// This shard's log number, for the [`RecordRef`]s of what it appends.
    pub fn log_number(&self) -> u16 {
        self.shard as u16
    }

    /// Appends a batch (one write, no wait) and returns the id of its last record. The disk
    /// budget is the log's to enforce: a batch it has no room for is refused whole.
    pub fn append(&self, batch: &[NewRecord<'_>]) -> Result<Option<RecordId>, NotDurable> {
        if self.failed.get() {
            self.refused(batch.len(), None);
            return Err(NotDurable::StoreFailed);
        }
        let appended = self.log.borrow_mut().append(batch);
        let appended = match appended {
            Ok(appended) => appended,
            Err(e) => {
                self.refused(batch.len(), Some(&e));
                return Err(NotDurable::of(&e));
            }
        };
        if let Some(episode) = self.refusing.borrow_mut().take() {
            self.health().log_refusing.store(false, Ordering::Relaxed);
            tracing::warn!(
                shard = self.shard,
                "accepting messages again, after refusing {} message(s) over {:.1}s",
                episode.messages,
                episode.since.elapsed().as_secs_f64()
            );
        }
        let last = appended.ids().last();
        if last.is_some() {
            self.appended.set(last);
            self.progress.notify();
        }
        Ok(last)
    }

    /// Counts `messages` refused; the first refusal of an episode is logged, with why.
    fn refused(&self, messages: usize, why: Option<&WalError>) {
        let mut refusing = self.refusing.borrow_mut();
        let episode = refusing.get_or_insert_with(|| {
            self.health().log_refusing.store(true, Ordering::Relaxed);
            match why {
                Some(e) => tracing::error!(
                    shard = self.shard,
                    "refusing messages: {e}; senders are told to try again later{}",
                    match e.is_transient() {
                        true => " (this ends by itself as endpoints drain the log)",
                        false => "",
                    }
                ),
                None => tracing::error!(
                    shard = self.shard,
                    "refusing messages: the log failed earlier; restart the router"
                ),
            }
            Episode {
                since: std::time::Instant::now(),
                messages: 0,
            }
        });
        episode.messages += messages as u64;
    }

    /// Waits until every record up to `upto` is on disk.
    pub async fn wait_durable(&self, upto: RecordId) -> Result<(), NotDurable> {
        loop {
            if self.durable.get().is_some_and(|d| d >= upto) {
                return Ok(());
            }
            if self.failed.get() {
                return Err(NotDurable::StoreFailed);
            }
            let seen = self.progress.generation();
            self.progress.changed(seen).await;
        }
    }

    /// Runs for the life of the shard: takes a commit whenever records await one, hands it to
    /// the fsync thread, and publishes the result.
    pub async fn run_committer(&self) {
        loop {
            let seen = self.progress.generation();
            let behind = self.appended.get() > self.durable.get();
            if !behind || self.failed.get() {
                self.progress.changed(seen).await;
                continue;
            }
            let Some(commit) = self.log.borrow_mut().commit() else {
                self.progress.changed(seen).await;
                continue;
            };
            let upto = commit.upto();
            let result = match self.in_ring.get() {
                true => {
                    let started = std::time::Instant::now();
                    let result = commit.run_in_ring().await;
                    let shard = self.metrics.shard(self.shard);
                    shard.wal_sync.record(started.elapsed());
                    result
                }
                false => match self.on_thread(commit).await {
                    Some(result) => result,
                    None => continue,
                },
            };
            match result {
                Ok(_) => self.durable.set(upto.max(self.durable.get())),
                Err(e) => {
                    tracing::error!(
                        shard = self.shard,
                        "the write-ahead log cannot be made durable ({e}); \
                         no further message will be acknowledged until the router restarts"
                    );
                    self.log_failed();
                }
            }
            self.progress.notify();
        }
    }

    /// Runs a commit on the fsync thread; `None` when the thread is gone (the log then failed).
    async fn on_thread(&self, commit: Commit) -> Option<Result<Durable, WalError>> {
        if self.jobs.send(commit).is_err() {
            tracing::error!(
                shard = self.shard,
                "the write-ahead log's fsync thread is gone; no further message \
                 will be acknowledged until the router restarts"
            );
            self.log_failed();
            self.progress.notify();
            return None;
        }
        let result = poll_fn(|cx| {
            let mut slot = self.done.result.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(result) = slot.take() {
                return Poll::Ready(result);
            }
            self.done.waker.register(cx.waker());
            match slot.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            }
        })
        .await;
        Some(result)
    }

    /// Records that a destination is done, on whichever shard owns its log.
    pub fn mark(&self, done: RecordRef) {
        let owner = usize::from(done.log) % self.shards;
        if owner == self.shard {
            self.local_marks.borrow_mut().push(done);
        } else if let Err(back) = self.marks.try_send(self.shard, owner, done) {
            self.overflow.borrow_mut().push(back);
        }
    }

    /// Runs for the life of the shard: every few milliseconds, writes the marks that arrived.
    pub async fn run_marks(&self) {
        loop {
            monoio::time::sleep(MARK_INTERVAL).await;
            self.flush_marks();
        }
    }

    /// Writes every mark that has arrived for this shard's logs, and retries handing on marks
    /// that found another shard's queue full.
    pub fn flush_marks(&self) {
        let retry: Vec<RecordRef> = self.overflow.borrow_mut().drain(..).collect();
        for done in retry {
            self.mark(done);
        }
        let mut batch = Vec::new();
        self.marks.drain(self.shard, &mut batch);
        batch.append(&mut self.local_marks.borrow_mut());
        if !batch.is_empty() {
            self.apply_marks(&batch);
        }
    }

    fn apply_marks(&self, marks: &[RecordRef]) {
        let own = self.shard as u16;
        let for_log = |log: u16| -> Vec<Mark> {
            marks
                .iter()
                .filter(|m| m.log == log)
                .map(|m| Mark {
                    record: m.id,
                    destination: m.destination,
                })
                .collect()
        };
        let mut first_error = None;
        let mine = for_log(own);
        if !mine.is_empty() {
            if let Err(e) = self.log.borrow_mut().mark_done(&mine) {
                first_error.get_or_insert((own, e));
            }
        }
        for (number, log) in self.adopted.borrow_mut().iter_mut() {
            let theirs = for_log(*number);
            if !theirs.is_empty() {
                if let Err(e) = log.mark_done(&theirs) {
                    first_error.get_or_insert((*number, e));
                }
            }
        }
        // Marks that cannot be written still took effect in memory (finished segments still
        // go); only a crash before they are written again would deliver those messages twice.
        // A full disk fails every write: said once, when it starts and when it ends.
        let mut failing = self.marks_failing.borrow_mut();
        match (first_error, failing.as_mut()) {
            (Some((number, e)), None) => {
                tracing::warn!(
                    shard = self.shard,
                    "delivery marks cannot be written to log {number}: {e}; after a \
                     crash now, those messages would be delivered again"
                );
                *failing = Some(Episode {
                    since: std::time::Instant::now(),
                    messages: marks.len() as u64,
                });
            }
            (Some(_), Some(episode)) => episode.messages += marks.len() as u64,
            (None, Some(episode)) => {
                tracing::warn!(
                    shard = self.shard,
                    "delivery marks are written again, after {} went unwritten over {:.1}s",
                    episode.messages,
                    episode.since.elapsed().as_secs_f64()
                );
                *failing = None;
            }
            (None, None) => {}
        }
    }

    /// Every record of this shard's logs with an undelivered destination (its own log first,
    /// then adopted ones), each with its log number, in log order. Ids only: at start-up the
    /// records are read one at a time, so a large backlog is never all in memory.
    pub fn pending_ids(&self) -> Vec<(u16, RecordId)> {
        let mut out: Vec<(u16, RecordId)> = (self.log.borrow().pending_ids().into_iter())
            .map(|id| (self.shard as u16, id))
            .collect();
        for (number, log) in self.adopted.borrow().iter() {
            out.extend(log.pending_ids().into_iter().map(|id| (*number, id)));
        }
        out
    }

    /// Reads record `id` of log `number` back, with its destinations not yet done.
    pub fn read(&self, number: u16, id: RecordId) -> Result<PendingRecord, WalError> {
        if usize::from(number) == self.shard {
            return self.log.borrow().read(id);
        }
        match self.adopted.borrow().iter().find(|(n, _)| *n == number) {
            Some((_, log)) => log.read(id),
            None => Err(WalError::UnknownRecord(id)),
        }
    }
}
