//! [`ShardLog`]: one shard's log in `<data>/shard-<n>/`, the file-backed [`Log`].
//!
//! Invariants: only the last segment (the *active* one) is appended to; segments recovered at
//! open are sealed, so a log always begins a fresh segment after a restart. A batch goes whole
//! into one segment, as one `pwrite` at the segment's tracked end; on failure the file is cut
//! back to that end, so no later batch ever follows a half-written record (if even the cut fails,
//! the log refuses appends until it is reopened). One process at a time holds the directory's
//! `LOCK` (flock), so an offline tool cannot write beside a running router. `LOCK` also holds the
//! next sequence number (8 bytes LE, written without fsync whenever the last segment goes), so
//! record ids keep growing across restarts even when every segment was deleted; nothing depends
//! on that for correctness, it only keeps ids unambiguous in logs and dead letters.
//!
//! Space: the log's files count against a [`DiskBudget`] shared by every shard's log. When an
//! append finds no room, in the budget or on the disk, and every record of the active segment
//! is done, that segment is deleted and the batch goes into a fresh one: a log whose budget
//! or disk is smaller than a segment would otherwise stay full for good, since only sealed
//! segments are deleted as they finish. On a full disk a ready spare is taken instead of a
//! segment that cannot grow. After a refusal (by any log sharing the budget), every log also
//! deletes its active segment as soon as its last record is done, so the room is free before
//! the next message arrives, on whichever shard it arrives.
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::{flock, FlockOperation};

use super::budget::DiskBudget;
use super::commit::{Commit, DirHandle};
use super::error::{is_no_space, WalError};
use super::marks::{self, MarksFile};
use super::private;
use super::record;
use super::recover::{self, Recovery};
use super::segment::{self, Applied, Segment, SegmentFile, SEGMENT_EXT};
use super::spare::{Spare, Taken};
use super::types::{
    Appended, Mark, MarkOutcome, NewRecord, PendingRecord, RecordId, Usage, WalConfig,
};
use super::Log;

const LOCK: &str = "LOCK";

/// `<data>/shard-<n>`: where shard `n` keeps its log.
pub fn shard_dir(data_dir: &Path, shard: usize) -> PathBuf {
    data_dir.join(format!("shard-{shard}"))
}

#[derive(Debug)]
pub struct ShardLog {
    dir: Arc<DirHandle>,
    config: WalConfig,
    lock: File,
    /// Every live segment by its first record's number; the active one, if any, is the last.
    segments: BTreeMap<u64, Segment>,
    active: Option<u64>,
    next_seq: u64,
    last_appended: Option<RecordId>,
    /// Bytes this log's segments and marks take; also counted in `budget`.
    used: u64,
    budget: Arc<DiskBudget>,
    /// Bytes of the budget reserved for the spare (0 when there is none).
    spare_reserved: u64,
    /// Segment files written since the last commit was taken.
    to_sync: Vec<Arc<SegmentFile>>,
    /// A segment file was created since the last commit was taken.
    dir_dirty: bool,
    poisoned: Arc<AtomicBool>,
    /// Reused across batches: (offset in `buf`, destination count) of each encoded record.
    buf: Vec<u8>,
    layout: Vec<(u64, u16)>,
    spare: Spare,
}

impl ShardLog {
    /// Opens (creating if needed) the log in `dir` with a budget of its own
    /// (`config.budget_bytes`), recovering what a stop or crash left. Damage found in the files
    /// is repaired as far as possible and reported, never returned as an error.
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<(Self, Recovery), WalError> {
        let budget = DiskBudget::new(config.budget_bytes);
        Self::open_shared(dir, config, budget)
    }

    /// As [`ShardLog::open`], counting against `budget` (shared with other shards' logs;
    /// `config.budget_bytes` is not used). Opening needs no free space.
    pub fn open_shared(
        dir: impl AsRef<Path>,
        config: WalConfig,
        budget: Arc<DiskBudget>,
    ) -> Result<(Self, Recovery), WalError> {
        let dir = dir.as_ref();
        private::create_dir(dir).map_err(|e| WalError::io("create", dir, e))?;
        let lock = lock(dir)?;
        let recovered = recover::recover(dir)?;
        let mut stored = [0u8; 8];
        let next_seq = match lock.read_exact_at(&mut stored, 0) {
            Ok(()) => recovered.next_seq.max(u64::from_le_bytes(stored)),
            Err(_) => recovered.next_seq, // new or short: no high-water mark yet
        };
        if recovered.segments.is_empty() {
            let _ = lock.write_all_at(&next_seq.to_le_bytes(), 0); // best effort, as in reap
        }
        let handle = File::open(dir).map_err(|e| WalError::io("open", dir, e))?;
        let used = recovered.segments.values().map(Segment::disk_len).sum();
        budget.take(used);
        let log = Self {
            dir: Arc::new(DirHandle {
                file: handle,
                path: dir.to_path_buf(),
            }),
            config,
            lock,
            segments: recovered.segments,
            active: None,
            next_seq,
            last_appended: None,
            used,
            budget,
            spare_reserved: 0,
            to_sync: Vec::new(),
            dir_dirty: false,
            poisoned: Arc::new(AtomicBool::new(false)),
            buf: Vec::new(),
            layout: Vec::new(),
            spare: Spare::default(),
        };
        Ok((log, recovered.report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// The budget this log counts against.
    pub fn budget(&self) -> &Arc<DiskBudget> {
        &self.budget
    }

    fn grew(&mut self, bytes: u64) {
        self.used += bytes;
    }

    fn shrank(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
        self.budget.give_back(bytes);
    }

    /// Starts a new active segment at the next sequence number, in the spare when one is ready;
    /// the old one is sealed.
    fn roll(&mut self) -> Result<(), WalError> {
        let first = self.next_seq;
        let path = self.dir.path.join(segment::file_name(first, SEGMENT_EXT));
        let mut allocated = 0;
        let file = match self.spare.take(&self.dir.path, &path) {
            Taken::Ready(file) => {
                // The spare's reservation becomes the segment's preallocated space.
                allocated = std::mem::take(&mut self.spare_reserved);
                self.grew(allocated);
                file
            }
            taken => {
                if let Taken::Lost = taken {
                    let reserved = std::mem::take(&mut self.spare_reserved);
                    self.budget.give_back(reserved);
                }
                private::options()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| match is_no_space(&e) {
                        true => WalError::write(&path, 0, e),
                        false => WalError::io("create", &path, e),
                    })?
            }
        };
        self.prepare_spare();
        if let Some(old) = self.active.and_then(|k| self.segments.get_mut(&k)) {
            old.sealed = true;
        }
        let mut seg = Segment::new(first, Arc::new(SegmentFile { file, path }), 0);
        seg.allocated = allocated;
        self.segments.insert(first, seg);
        self.active = Some(first);
        self.dir_dirty = true;
        Ok(())
    }

    /// Begins the next spare if the log preallocates and the budget has room for it and for a
    /// segment of appends besides. Made lazily, at a roll or when the router's shard starts
    /// ([`ShardLog::prepare_for_appends`]), so that tools that open a log to read it write no
    /// zeros.
    fn prepare_spare(&mut self) {
        let bytes = self.config.segment_bytes;
        if !self.config.preallocate || self.spare.exists() {
            return;
        }
        if !self.budget.try_take(bytes.saturating_mul(2)) {
            return;
        }
        self.budget.give_back(bytes);
        if self.spare.prepare(&self.dir.path, bytes) {
            self.spare_reserved = bytes;
        } else {
            self.budget.give_back(bytes);
        }
    }

    /// Begins the spare now, for a log that is about to take appends (the router's shards at
    /// start), so that the first segment need not be a growing one. Tools that only read a log
    /// never call this, and write no zeros.
    pub fn prepare_for_appends(&mut self) {
        self.prepare_spare();
    }

    /// Whether a spare is written and waiting (never waits for one).
    pub fn spare_is_ready(&mut self) -> bool {
        self.settle_spare();
        self.spare.is_ready()
    }

    /// A segment begun while no spare was ready (the log's first before its spare was
    /// written, or one after the spare fell behind) grows its file at every write, and every
    /// fdatasync then commits ext4's journal: about 180 µs and 65 µs of CPU against 100 µs
    /// and 45 µs (`bench/benches/wal.rs`), with a long tail. As soon as a spare is ready, such a
    /// segment is sealed where it is and the next batch rolls into the spare.
    fn leave_growing_segment(&mut self) {
        if !self.config.preallocate {
            return;
        }
        let growing = |s: &Segment| s.allocated == 0 && s.len > 0;
        if !self
            .active
            .and_then(|k| self.segments.get(&k))
            .is_some_and(growing)
        {
            return;
        }
        if !self.spare_is_ready() {
            return;
        }
        if let Some(seg) = self.active.take().and_then(|k| self.segments.get_mut(&k)) {
            seg.sealed = true;
        }
    }

    /// Gives back the reservation of a spare that could not be made.
    fn settle_spare(&mut self) {
        if self.spare.settle() {
            let reserved = std::mem::take(&mut self.spare_reserved);
            self.budget.give_back(reserved);
        }
    }

    /// The active segment, when every record in it is done: space that can be had back.
    fn idle_active(&self) -> Option<&Segment> {
        let seg = self.segments.get(&self.active?)?;
        (seg.outstanding() == 0 && seg.unsaved.is_empty() && seg.disk_len() > 0).then_some(seg)
    }

    /// Deletes the active segment if every record in it is done; the next append begins a
    /// fresh one. True when that freed space.
    fn reclaim_active(&mut self) -> Result<bool, WalError> {
        let Some(seg) = self.idle_active() else {
            return Ok(false);
        };
        let (key, freed) = (seg.key(), seg.disk_len());
        recover::delete_files(seg)?;
        self.segments.remove(&key);
        self.active = None;
        self.shrank(freed);
        self.note_high_water();
        Ok(true)
    }

    /// Where the batch of `total` bytes would go: the growth of the active segment's disk
    /// use, or, when it must roll, `total` (no less: the spare may not be ready).
    fn growth_of(&self, total: u64) -> (u64, bool) {
        let fits = |s: &&Segment| s.len == 0 || s.len + total <= self.config.segment_bytes;
        match self.active.and_then(|k| self.segments.get(&k)).filter(fits) {
            Some(s) => (
                (s.len + total).max(s.allocated) - s.len.max(s.allocated),
                false,
            ),
            None => (total, true),
        }
    }

    /// Writes the encoded batch in `buf` into the active segment (rolling first if needed);
    /// `Ok(false)` when the disk was full and room was made, so the batch may be tried again.
    fn write_batch(&mut self, retry: bool) -> Result<bool, WalError> {
        let total = self.buf.len() as u64;
        let (growth, rolls) = self.growth_of(total);
        if !self.budget.try_take(growth) {
            self.budget.press();
            self.settle_spare();
            if retry && self.reclaim_active()? {
                return Ok(false);
            }
            return Err(WalError::BudgetExceeded {
                needed: total,
                used: self.budget.used(),
                budget: self.budget.limit(),
            });
        }
        if rolls {
            if let Err(e) = self.roll() {
                self.budget.give_back(growth);
                return Err(self.no_room(e));
            }
        }
        let Some(seg) = self.active.and_then(|k| self.segments.get_mut(&k)) else {
            self.budget.give_back(growth);
            return Err(WalError::Poisoned); // roll() always leaves an active segment
        };
        let at = seg.len;
        let before = seg.disk_len();
        if let Err(e) = seg.file.file.write_all_at(&self.buf, at) {
            // Cut back to the last good record, preallocated zeros after it included: what
            // the failed write left there must not follow it.
            if seg.file.file.set_len(at).is_err() {
                self.poisoned.store(true, Ordering::Release);
            }
            seg.allocated = seg.allocated.min(at);
            let lost = before - seg.disk_len();
            let err = WalError::write(&seg.file.path, at, e);
            self.budget.give_back(growth);
            self.shrank(lost);
            if retry && matches!(err, WalError::NoSpace { .. }) && self.make_room()? {
                return Ok(false);
            }
            return Err(self.no_room(err));
        }
        for (i, &(offset, dests)) in self.layout.iter().enumerate() {
            seg.push(self.next_seq + i as u64, at + offset, dests);
        }
        seg.len += total;
        let after = seg.disk_len();
        if !self
            .to_sync
            .last()
            .is_some_and(|f| Arc::ptr_eq(f, &seg.file))
        {
            self.to_sync.push(seg.file.clone());
        }
        // A batch rolled into a spare takes the room reserved for it, not new room. (The
        // budget is shared by every shard: no atomic is touched when nothing is to change.)
        let grew = after.saturating_sub(before);
        if growth > grew {
            self.budget.give_back(growth - grew);
        } else if grew > growth {
            self.budget.take(grew - growth);
        }
        self.grew(grew);
        Ok(true)
    }

    /// Notes a refusal for want of space (so that space is freed as soon as it can be).
    fn no_room(&mut self, e: WalError) -> WalError {
        if e.is_transient() {
            self.budget.press();
        }
        e
    }

    /// After a write found the disk full: deletes the active segment if it is done, or else
    /// moves on to a ready spare (whose blocks are written already). True if either happened.
    fn make_room(&mut self) -> Result<bool, WalError> {
        if self.reclaim_active()? {
            return Ok(true);
        }
        self.settle_spare();
        let spare_ready = self.spare.is_ready();
        match self.active.and_then(|k| self.segments.get_mut(&k)) {
            Some(seg) if spare_ready && seg.len > 0 => {
                // Sealed here; the next attempt rolls into the spare.
                seg.sealed = true;
                self.active = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn segment_of(&self, seq: u64) -> Option<&Segment> {
        let (_, seg) = self.segments.range(..=seq).next_back()?;
        seg.contains(seq).then_some(seg)
    }

    fn write_marks(&mut self, key: u64, bytes: &[u8]) -> Result<(), WalError> {
        let Some(seg) = self.segments.get_mut(&key) else {
            return Ok(());
        };
        let mut grew = 0;
        if seg.marks.is_none() {
            seg.marks = Some(MarksFile::open(seg.marks_path(), 0)?);
            grew += marks::HEADER.len() as u64;
        }
        let appended = match seg.marks.as_mut() {
            Some(m) => m.append(bytes).map(|()| bytes.len() as u64),
            None => Ok(0),
        };
        grew += *appended.as_ref().unwrap_or(&0);
        // Marks are written whatever the budget: they are what lets space be freed.
        self.budget.take(grew);
        self.grew(grew);
        appended.map(|_| ())
    }

    /// Deletes the sealed segments whose records are all done (once damage recovery could not
    /// copy aside is copied).
    fn reap(&mut self) -> Result<usize, WalError> {
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(_, s)| s.sealed && s.outstanding() == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut deleted = 0;
        for key in &done {
            let Some(seg) = self.segments.get_mut(key) else {
                continue;
            };
            if !seg.unsaved.is_empty() && !recover::save_unsaved(seg)? {
                continue;
            }
            recover::delete_files(seg)?;
            let freed = seg.disk_len();
            self.segments.remove(key);
            self.shrank(freed);
            deleted += 1;
        }
        if deleted > 0 {
            self.note_high_water();
        }
        Ok(deleted)
    }

    /// Keeps the next number in `LOCK` once no segment holds it (see the module note). Best
    /// effort: a failure only lets ids restart lower.
    fn note_high_water(&self) {
        if self.segments.is_empty() {
            let _ = self.lock.write_all_at(&self.next_seq.to_le_bytes(), 0);
        }
    }
}

impl Drop for ShardLog {
    /// The files stay; the budget counts only the logs open in it.
    fn drop(&mut self) {
        self.budget.give_back(self.used + self.spare_reserved);
    }
}

fn lock(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK);
    let file = private::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| WalError::io("open", &path, e))?;
    private::close_up_file(&file).map_err(|e| WalError::io("chmod", &path, e))?;
    // A lock is held by an open file description, and a child forked by another thread of
    // the process that just closed the log shares it until the child execs: a refusal is
    // only believed after it lasted a moment.
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(WalError::Locked { path }),
            Err(e) => return Err(WalError::io("lock", &path, e.into())),
        }
    }
}

/// How long a held lock is waited for before the log is reported locked.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

impl Log for ShardLog {
    type Commit = Commit;

    fn append(&mut self, batch: &[NewRecord<'_>]) -> Result<Appended, WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(WalError::Poisoned);
        }
        let count = u32::try_from(batch.len()).map_err(|_| WalError::InvalidRecord {
            index: 0,
            reason: "more than 2^32 records in one batch",
        })?;
        let first = RecordId(self.next_seq);
        if batch.is_empty() {
            return Ok(Appended { first, count });
        }
        self.buf.clear();
        self.layout.clear();
        for (index, rec) in batch.iter().enumerate() {
            let at = self.buf.len() as u64;
            record::encode(self.next_seq + index as u64, rec, &mut self.buf)
                .map_err(|reason| WalError::InvalidRecord { index, reason })?;
            self.layout.push((at, rec.destinations.len() as u16));
        }
        self.leave_growing_segment();
        // A second try only after room was made (a finished segment deleted, a spare taken).
        if !self.write_batch(true)? {
            self.write_batch(false)?;
        }
        self.budget.relieve();
        self.next_seq += u64::from(count);
        self.last_appended = Some(RecordId(self.next_seq - 1));
        Ok(Appended { first, count })
    }

    fn commit(&mut self) -> Option<Commit> {
        if self.to_sync.is_empty() && !self.dir_dirty {
            return None;
        }
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        Some(Commit {
            files: std::mem::take(&mut self.to_sync),
            dir,
            upto: self.last_appended,
            poisoned: self.poisoned.clone(),
        })
    }

    fn mark_done(&mut self, marks: &[Mark]) -> Result<MarkOutcome, WalError> {
        let mut out = MarkOutcome::default();
        let mut first_error = None;
        let mut pending: Option<(u64, Vec<u8>)> = None;
        for m in marks {
            let key = self
                .segments
                .range(..=m.record.0)
                .next_back()
                .map(|(k, _)| *k);
            let applied = key
                .and_then(|k| self.segments.get_mut(&k))
                .map_or(Applied::Ignored, |s| s.apply(m.record.0, m.destination));
            let (Applied::Done, Some(key)) = (applied, key) else {
                out.ignored += 1;
                continue;
            };
            out.applied += 1;
            if let Some((k, bytes)) = pending.take_if(|(k, _)| *k != key) {
                if let Err(e) = self.write_marks(k, &bytes) {
                    first_error.get_or_insert(e);
                }
            }
            let (_, bytes) = pending.get_or_insert_with(|| (key, Vec::new()));
            marks::encode_entry(*m, bytes);
        }
        if let Some((k, bytes)) = pending {
            if let Err(e) = self.write_marks(k, &bytes) {
                first_error.get_or_insert(e);
            }
        }
        match self.reap() {
            Ok(n) => out.segments_deleted = n,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        // Some log is refusing for want of room: free the active segment the moment it is
        // done, rather than at this log's next append (which may never come).
        if self.budget.is_pressed() {
            match self.reclaim_active() {
                Ok(true) => out.segments_deleted += 1,
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(out),
            Some(e) => Err(e),
        }
    }

    fn pending_ids(&self) -> Vec<RecordId> {
        self.segments
            .values()
            .flat_map(Segment::pending_seqs)
            .map(RecordId)
            .collect()
    }

    fn read(&self, id: RecordId) -> Result<PendingRecord, WalError> {
        self.segment_of(id.0)
            .ok_or(WalError::UnknownRecord(id))?
            .read(id.0)
    }

    fn usage(&self) -> Usage {
        Usage {
            used_bytes: self.used,
            budget_bytes: self.budget.limit(),
            segments: self.segments.len(),
            pending_records: self.segments.values().map(|s| s.outstanding() as u64).sum(),
        }
    }

    /// Against the whole budget (every log sharing it), counting a finished active segment as
    /// free: the append would delete it.
    fn would_exceed_budget(&self, bytes: u64) -> bool {
        let reclaimable = self.idle_active().map_or(0, Segment::disk_len);
        self.budget
            .used()
            .saturating_sub(reclaimable)
            .saturating_add(bytes)
            > self.budget.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::types::Origin;
    use std::fs;

    fn record<'a>(dests: &'a [&'a str], message: &'a [u8]) -> NewRecord<'a> {
        NewRecord {
            destinations: dests,
            origin: Origin {
                listener: "in",
                peer: "127.0.0.1:1",
                arrival_unix_nanos: 1,
                control_id: "c",
            },
            parsed: Default::default(),
            message,
        }
    }

    /// A segment file that refuses writes (opened read-only) stands in for a failing disk: the
    /// error must surface, nothing may be half-written, and the log must stay usable.
    #[test]
    fn a_failed_write_surfaces_and_leaves_the_log_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        let first = log.append_durably(&[record(&["A"], b"one")]).unwrap();
        let key = log.active.unwrap();
        let seg = log.segments.get_mut(&key).unwrap();
        let good_len = seg.len;
        let path = seg.file.path.clone();
        let read_only = File::open(&path).unwrap();
        let writable = std::mem::replace(
            &mut seg.file,
            Arc::new(SegmentFile {
                file: read_only,
                path: path.clone(),
            }),
        );

        let err = log.append(&[record(&["A"], b"two")]).unwrap_err();
        assert!(
            matches!(err, WalError::Write { offset, .. } if offset == good_len),
            "{err}"
        );
        assert!(!err.is_transient());
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(log.usage().used_bytes, good_len);
        assert_eq!(log.pending_ids(), [first.first]);

        // Cutting the file back failed too (the descriptor is read-only), so the log cannot
        // vouch for its tail: it refuses appends until reopened.
        let err = log.append(&[record(&["A"], b"three")]).unwrap_err();
        assert!(matches!(err, WalError::Poisoned), "{err}");
        drop((log, writable));
        let (mut log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
        let next = log.append_durably(&[record(&["A"], b"three")]).unwrap();
        assert_eq!(next.first, RecordId(first.first.0 + 1));
        let messages: Vec<Vec<u8>> = log.replay().map(|r| r.unwrap().message).collect();
        assert_eq!(messages, [b"one".to_vec(), b"three".to_vec()]);
    }

    fn preallocating() -> WalConfig {
        WalConfig {
            segment_bytes: 1 << 20,
            preallocate: true,
            ..WalConfig::default()
        }
    }

    /// Waits (bounded) for the spare being written to be ready.
    fn spare_ready(log: &mut ShardLog) -> bool {
        for _ in 0..1_000 {
            if log.spare_is_ready() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    fn active(log: &ShardLog) -> &Segment {
        &log.segments[&log.active.unwrap()]
    }

    #[test]
    fn a_log_prepared_for_appends_writes_its_first_segment_into_a_spare() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = ShardLog::open(dir.path(), preallocating()).unwrap();
        log.prepare_for_appends();
        assert!(spare_ready(&mut log), "the spare was never written");
        log.append_durably(&[record(&["A"], b"one")]).unwrap();
        assert_eq!(active(&log).allocated, 1 << 20);
        assert_eq!(log.segments.len(), 1);
    }

    #[test]
    fn a_growing_segment_gives_way_to_the_spare_once_it_is_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = ShardLog::open(dir.path(), preallocating()).unwrap();
        // No spare yet: the first segment grows, and its roll begins the spare.
        log.append_durably(&[record(&["A"], b"one")]).unwrap();
        let first = log.active.unwrap();
        assert_eq!(active(&log).allocated, 0);
        assert!(spare_ready(&mut log), "the spare was never written");

        log.append_durably(&[record(&["A"], b"two")]).unwrap();
        assert_ne!(log.active.unwrap(), first, "still in the growing segment");
        assert_eq!(active(&log).allocated, 1 << 20);
        assert!(log.segments[&first].sealed);
        log.append_durably(&[record(&["A"], b"three")]).unwrap();
        assert_eq!(log.segments.len(), 2);

        // Both segments are the log: everything replays in order, after a restart too.
        let replayed =
            |log: &ShardLog| -> Vec<Vec<u8>> { log.replay().map(|r| r.unwrap().message).collect() };
        let all = [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        assert_eq!(replayed(&log), all);
        drop(log);
        let (log, recovery) = ShardLog::open(dir.path(), preallocating()).unwrap();
        assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
        assert_eq!(replayed(&log), all);
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, _) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        let err = ShardLog::open(dir.path(), WalConfig::default()).unwrap_err();
        assert!(matches!(err, WalError::Locked { .. }), "{err}");
    }

    #[test]
    fn a_failed_fsync_poisons_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        log.append(&[record(&["A"], b"x")]).unwrap();
        let commit = log.commit().unwrap();
        // What a failed fdatasync leaves behind; the next append must be refused.
        commit.poisoned.store(true, Ordering::Release);
        assert!(matches!(commit.run(), Err(WalError::Poisoned)));
        let err = log.append(&[record(&["A"], b"y")]).unwrap_err();
        assert!(matches!(err, WalError::Poisoned));
    }
}
