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
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;

use crate::metrics::Metrics;
use crate::runtime::mesh::Mesh;
use crate::signal::LocalNotify;
use crate::wal::{
    shard_dir, Commit, Durable, Log, Mark, NewRecord, RecordId, Recovery, ShardLog, WalConfig,
    WalError,
};

/// Which log, which record, which destination: enough to mark a delivery done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef {
    /// The log's number (its `shard-<n>` directory).
    pub log: u16,
    pub id: RecordId,
    pub destination: u16,
}

/// How often marks are written.
const MARK_INTERVAL: Duration = Duration::from_millis(5);

/// Why records could not be made durable; their senders must not be acknowledged.
#[derive(Debug, Clone)]
pub struct NotDurable(pub String);

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
    failed: RefCell<Option<String>>,
    /// When an append failure was last logged.
    last_complaint: Cell<Option<std::time::Instant>>,
    progress: LocalNotify,
    jobs: mpsc::Sender<Commit>,
    /// Taken by [`Durability::start`].
    receive: RefCell<Option<mpsc::Receiver<Commit>>>,
    done: Arc<Done>,
    marks: Arc<Mesh<RecordRef>>,
    /// Marks for this shard's logs made on this shard, and marks the mesh had no room for.
    local_marks: RefCell<Vec<RecordRef>>,
    overflow: RefCell<Vec<RecordRef>>,
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
    /// `shard + shards`, `shard + 2·shards`, … left by an earlier run with more shards.
    /// Returns what recovery found in each log.
    pub fn open(
        data_dir: &Path,
        shard: usize,
        shards: usize,
        config: WalConfig,
        marks: Arc<Mesh<RecordRef>>,
    ) -> Result<(Durability, Vec<(u16, Recovery)>), WalError> {
        let mut reports = Vec::new();
        let (log, report) = ShardLog::open(shard_dir(data_dir, shard), config.clone())?;
        reports.push((shard as u16, report));
        let mut adopted = Vec::new();
        let mut other = shard + shards;
        while other < existing_logs(data_dir) {
            let (log, report) = ShardLog::open(shard_dir(data_dir, other), config.clone())?;
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
                failed: RefCell::new(None),
                last_complaint: Cell::new(None),
                progress: LocalNotify::new(),
                jobs,
                receive: RefCell::new(Some(receive)),
                done,
                marks,
                local_marks: RefCell::new(Vec::new()),
                overflow: RefCell::new(Vec::new()),
            },
            reports,
        ))
    }

    /// Starts the fsync thread. Called on the shard's own thread, after it took its private
    /// descriptor table: the thread then shares that table, so the segment files the shard
    /// creates later are the files it syncs.
    /// Each fdatasync's duration goes into `metrics`.
    pub fn start(&self, metrics: Arc<Metrics>) -> std::io::Result<()> {
        let Some(receive) = self.receive.borrow_mut().take() else {
            return Ok(());
        };
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

    /// This shard's log number, for the [`RecordRef`]s of what it appends.
    pub fn log_number(&self) -> u16 {
        self.shard as u16
    }

    /// True when `bytes` more would take the log past its disk budget.
    pub fn would_exceed_budget(&self, bytes: u64) -> bool {
        self.log.borrow().would_exceed_budget(bytes)
    }

    /// Appends a batch (one write, no wait) and returns the id of its last record.
    pub fn append(&self, batch: &[NewRecord<'_>]) -> Result<Option<RecordId>, NotDurable> {
        if let Some(why) = self.failed.borrow().as_ref() {
            return Err(NotDurable(why.clone()));
        }
        let appended = self.log.borrow_mut().append(batch).map_err(|e| {
            // Loud, but not once per message: a full disk would drown the log.
            let now = std::time::Instant::now();
            if self
                .last_complaint
                .get()
                .is_none_or(|t| now - t >= Duration::from_secs(1))
            {
                self.last_complaint.set(Some(now));
                log::error!(
                    "shard {}: cannot store messages, senders are told to retry: {e}",
                    self.shard
                );
            }
            NotDurable(e.to_string())
        })?;
        let last = appended.ids().last();
        if last.is_some() {
            self.appended.set(last);
            self.progress.notify();
        }
        Ok(last)
    }

    /// Waits until every record up to `upto` is on disk.
    pub async fn wait_durable(&self, upto: RecordId) -> Result<(), NotDurable> {
        loop {
            if self.durable.get().is_some_and(|d| d >= upto) {
                return Ok(());
            }
            if let Some(why) = self.failed.borrow().as_ref() {
                return Err(NotDurable(why.clone()));
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
            if !behind || self.failed.borrow().is_some() {
                self.progress.changed(seen).await;
                continue;
            }
            let Some(commit) = self.log.borrow_mut().commit() else {
                self.progress.changed(seen).await;
                continue;
            };
            let upto = commit.upto();
            if self.jobs.send(commit).is_err() {
                *self.failed.borrow_mut() = Some("the fsync thread is gone".to_string());
                self.progress.notify();
                continue;
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
            match result {
                Ok(_) => self.durable.set(upto.max(self.durable.get())),
                Err(e) => {
                    log::error!(
                        "shard {}: the write-ahead log cannot be made durable ({e}); \
                         no further message will be acknowledged until the router restarts",
                        self.shard
                    );
                    *self.failed.borrow_mut() = Some(e.to_string());
                }
            }
            self.progress.notify();
        }
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
        let mine = for_log(own);
        if !mine.is_empty() {
            if let Err(e) = self.log.borrow_mut().mark_done(&mine) {
                log::warn!("shard {}: writing delivery marks: {e}", self.shard);
            }
        }
        for (number, log) in self.adopted.borrow_mut().iter_mut() {
            let theirs = for_log(*number);
            if !theirs.is_empty() {
                if let Err(e) = log.mark_done(&theirs) {
                    log::warn!(
                        "shard {}: writing delivery marks to log {number}: {e}",
                        self.shard
                    );
                }
            }
        }
    }

    /// Every pending record of this shard's logs (its own first, then adopted ones), each with
    /// its log number, in log order.
    pub fn pending(&self) -> Vec<(u16, crate::wal::PendingRecord)> {
        let mut out = Vec::new();
        let mut collect = |number: u16, log: &ShardLog| {
            for record in log.replay() {
                match record {
                    Ok(record) => out.push((number, record)),
                    Err(e) => log::error!("log {number}: cannot read a pending record: {e}"),
                }
            }
        };
        collect(self.shard as u16, &self.log.borrow());
        for (number, log) in self.adopted.borrow().iter() {
            collect(*number, log);
        }
        out
    }
}
