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
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::{flock, FlockOperation};

use super::commit::{Commit, DirHandle};
use super::error::{is_no_space, WalError};
use super::marks::{self, MarksFile};
use super::private;
use super::record;
use super::recover::{self, Recovery};
use super::segment::{self, Applied, Segment, SegmentFile, SEGMENT_EXT};
use super::spare::Spare;
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
    /// Every live segment by first sequence number; the active one, if any, is the last.
    segments: BTreeMap<u64, Segment>,
    active: Option<u64>,
    next_seq: u64,
    last_appended: Option<RecordId>,
    used: u64,
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
    /// Opens (creating if needed) the log in `dir`, recovering what a stop or crash left. Damage
    /// found in the files is repaired as far as possible and reported, never returned as an error.
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<(Self, Recovery), WalError> {
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

    /// Starts a new active segment at the next sequence number, in the spare when one is ready;
    /// the old one is sealed.
    fn roll(&mut self) -> Result<(), WalError> {
        let first = self.next_seq;
        let path = self.dir.path.join(segment::file_name(first, SEGMENT_EXT));
        let file = match self.spare.take(&self.dir.path, &path) {
            Some(file) => file,
            None => private::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| match is_no_space(&e) {
                    true => WalError::write(&path, 0, e),
                    false => WalError::io("create", &path, e),
                })?,
        };
        if self.config.preallocate {
            // Made lazily, at the first roll, so that tools that open a log to read it
            // write no zeros.
            self.spare
                .prepare(&self.dir.path, self.config.segment_bytes);
        }
        if let Some(old) = self.active.and_then(|k| self.segments.get_mut(&k)) {
            old.sealed = true;
        }
        let seg = Segment::new(first, Arc::new(SegmentFile { file, path }), 0);
        self.segments.insert(first, seg);
        self.active = Some(first);
        self.dir_dirty = true;
        Ok(())
    }

    fn segment_of(&self, seq: u64) -> Option<&Segment> {
        let (_, seg) = self.segments.range(..=seq).next_back()?;
        seg.contains(seq).then_some(seg)
    }

    fn write_marks(&mut self, key: u64, bytes: &[u8]) -> Result<(), WalError> {
        let Some(seg) = self.segments.get_mut(&key) else {
            return Ok(());
        };
        if seg.marks.is_none() {
            seg.marks = Some(MarksFile::open(seg.marks_path(), 0)?);
            self.used += marks::HEADER.len() as u64;
        }
        if let Some(m) = seg.marks.as_mut() {
            m.append(bytes)?;
            self.used += bytes.len() as u64;
        }
        Ok(())
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
            self.used = self.used.saturating_sub(seg.disk_len());
            self.segments.remove(key);
            deleted += 1;
        }
        if deleted > 0 && self.segments.is_empty() {
            // Best effort (see the module note): a failure only lets ids restart lower.
            let _ = self.lock.write_all_at(&self.next_seq.to_le_bytes(), 0);
        }
        Ok(deleted)
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
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(WalError::Locked { path }),
        Err(e) => Err(WalError::io("lock", &path, e.into())),
    }
}

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
        let total = self.buf.len() as u64;
        if self.would_exceed_budget(total) {
            return Err(WalError::BudgetExceeded {
                needed: total,
                used: self.used,
                budget: self.config.budget_bytes,
            });
        }
        let fits = |s: &Segment| s.len == 0 || s.len + total <= self.config.segment_bytes;
        if !self
            .active
            .and_then(|k| self.segments.get(&k))
            .is_some_and(fits)
        {
            self.roll()?;
        }
        let Some(seg) = self.active.and_then(|k| self.segments.get_mut(&k)) else {
            return Err(WalError::Poisoned); // roll() always leaves an active segment
        };
        let at = seg.len;
        if let Err(e) = seg.file.file.write_all_at(&self.buf, at) {
            if seg.file.file.set_len(at).is_err() {
                self.poisoned.store(true, Ordering::Release);
            }
            return Err(WalError::write(&seg.file.path, at, e));
        }
        for (i, &(offset, dests)) in self.layout.iter().enumerate() {
            seg.push(self.next_seq + i as u64, at + offset, dests);
        }
        seg.len += total;
        if !self
            .to_sync
            .last()
            .is_some_and(|f| Arc::ptr_eq(f, &seg.file))
        {
            self.to_sync.push(seg.file.clone());
        }
        self.used += total;
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
            budget_bytes: self.config.budget_bytes,
            segments: self.segments.len(),
            pending_records: self.segments.values().map(|s| s.outstanding() as u64).sum(),
        }
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
