//! Opening a shard directory after a stop or a crash: every segment is read and checked, damage
//! is saved to `quarantine/` and reported, marks are applied, and finished segments are deleted.
//!
//! What recovery may throw away is only what it can prove was never acknowledged: zeros never
//! written, and a torn tail (damage after the last record that holds no intact record). Every
//! other byte it will not use is kept in `quarantine/`: a range of damage between records is
//! copied there (once) and left in place; a tail of intact records that do not follow the log's
//! numbering is copied there and cut off; a file named like a segment that holds none of this
//! log's records, or whose records clash with the log's, is moved there whole. A file is never
//! read past its neighbours' names: each segment is read on its own, so a stray or empty file
//! beside good ones takes nothing from them. `ganglion wal inspect` lists what quarantine holds
//! and `ganglion wal replay` puts its intact records back in the log.
//!
//! Order matters for crash safety: a tail is copied to `quarantine/` and that copy fsynced
//! *before* the segment is truncated, so the bytes are never lost, only moved. Recovery needs
//! no free space: moving a file aside is a rename, and where a copy cannot be written (the disk
//! is full) the bytes stay where they are, are reported as not saved, and the segment is kept
//! until a later open or the reaping of finished segments can copy them. Nothing here fails
//! because of what a file contains; only I/O errors are errors.
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{is_no_space, WalError};
use super::marks::{self, MarksFile};
use super::private;
use super::record::MAGIC;
use super::scan::{self, Damaged, Found};
use super::segment::{self, Applied, Segment, SegmentFile, Unsaved, MARKS_EXT, SEGMENT_EXT};
use super::spare;
use crate::known::within;

pub(crate) const QUARANTINE: &str = "quarantine";

/// Larger files named like segments are not read: no segment grows this big (64 MiB and one
/// batch over), and reading one whole would take that much memory at start-up.
const LARGEST_SEGMENT: u64 = 1 << 30;

/// What opening a log found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub damage: Vec<Damage>,
    /// Segments kept (each with at least one undelivered record).
    pub segments: usize,
    pub pending_records: u64,
    /// Segments deleted because every record in them was done (or they held none).
    pub deleted_segments: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub kind: DamageKind,
    pub reason: &'static str,
    /// Intact records (checksum good) in the range: what `ganglion wal replay` can put back.
    pub intact_records: usize,
    /// Where the bytes were copied or moved; `None` when they could not be (the disk is full:
    /// they are left in place) or need not be (marks).
    pub saved_to: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// Damage running to the end of a segment that holds no intact record: a write torn by a
    /// crash, never acknowledged. Cut off (after a copy).
    TornTail,
    /// A damaged range between good records: its records are lost, the rest recovered.
    Corrupt,
    /// Bytes that are not this log's to replay: a file named like a segment that holds none of
    /// its records or whose records clash with its other segments, or intact records that do
    /// not follow the segment's numbering. Kept whole in quarantine.
    Foreign,
    /// Damaged mark entries: their destinations will receive the message again.
    Marks { entries: usize },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DamageKind::TornTail => "torn tail cut off",
            DamageKind::Corrupt => "damaged record(s) skipped",
            DamageKind::Foreign => "bytes that are not this log's set aside",
            DamageKind::Marks { .. } => "damaged delivery marks skipped",
        };
        write!(
            f,
            "{}: byte {}: {what} ({} bytes: {})",
            self.file.display(),
            self.offset,
            self.len,
            self.reason
        )?;
        if let DamageKind::Marks { entries } = self.kind {
            write!(f, ", {entries} entries")?;
        }
        if self.intact_records > 0 {
            write!(f, "; {} intact record(s) in it", self.intact_records)?;
        }
        match (&self.saved_to, self.kind) {
            (Some(to), _) => write!(f, "; saved to {}", to.display()),
            (None, DamageKind::Marks { .. }) => Ok(()),
            (None, _) => write!(f, "; NOT saved (no space): left in place until it can be"),
        }
    }
}

pub(crate) struct Recovered {
    pub segments: BTreeMap<u64, Segment>,
    pub next_seq: u64,
    pub report: Recovery,
}

pub(crate) fn recover(dir: &Path) -> Result<Recovered, WalError> {
    spare::discard_leftover(dir);
    let mut wal = Vec::new();
    let mut marks_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))? {
        let entry = entry.map_err(|e| WalError::io("list", dir, e))?;
        let name = entry.file_name();
        match name.to_str().and_then(segment::parse_name) {
            Some((seq, SEGMENT_EXT)) => wal.push(seq),
            Some((seq, _)) => marks_files.push(seq),
            None => {}
        }
    }
    wal.sort_unstable();
    // Marks whose segment is gone belong to a deletion a crash interrupted.
    for seq in marks_files.iter().filter(|s| wal.binary_search(s).is_err()) {
        remove(&dir.join(segment::file_name(*seq, MARKS_EXT)))?;
    }

    let mut out = Recovered {
        segments: BTreeMap::new(),
        next_seq: 0,
        report: Recovery::default(),
    };
    // Segments whose records are all done stay in the map until every file was read, so that
    // a copy of one found later is recognised as a copy.
    for &name_seq in &wal {
        match open_segment(dir, name_seq, &out.segments, &mut out.report)? {
            Opened::Segment(seg) => {
                if let Some(last) = seg.last_seq() {
                    out.next_seq = out.next_seq.max(last + 1);
                }
                out.next_seq = out.next_seq.max(name_seq);
                out.segments.insert(seg.key(), seg);
            }
            Opened::Gone => {}
            Opened::NumbersFrom(n) => out.next_seq = out.next_seq.max(n),
        }
    }
    let finished: Vec<u64> = out
        .segments
        .iter()
        .filter(|(_, s)| s.outstanding() == 0 && s.unsaved.is_empty())
        .map(|(k, _)| *k)
        .collect();
    for key in finished {
        if let Some(seg) = out.segments.remove(&key) {
            delete_files(&seg)?;
            out.report.deleted_segments += 1;
        }
    }
    out.report.segments = out.segments.len();
    out.report.pending_records = out.segments.values().map(|s| s.outstanding() as u64).sum();
    Ok(out)
}

enum Opened {
    Segment(Segment),
    /// Deleted (it held nothing) or moved to quarantine.
    Gone,
    /// Not used as a segment; numbers from here on must not be given out again (its name is
    /// still taken, or it was this log's own first write, torn).
    NumbersFrom(u64),
}

fn open_segment(
    dir: &Path,
    first_seq: u64,
    kept: &BTreeMap<u64, Segment>,
    report: &mut Recovery,
) -> Result<Opened, WalError> {
    let path = dir.join(segment::file_name(first_seq, SEGMENT_EXT));
    let size = fs::metadata(&path)
        .map_err(|e| WalError::io("stat", &path, e))?
        .len();
    if size > LARGEST_SEGMENT {
        return move_aside(
            dir,
            &path,
            size,
            DamageKind::Foreign,
            "far larger than a segment",
            0,
            report,
        );
    }
    let bytes = fs::read(&path).map_err(|e| WalError::io("read", &path, e))?;
    let mut found = scan::scan(&bytes, first_seq);
    if found.records.is_empty() {
        return match &found.tail {
            // Empty, or zeros only: created or preallocated and never written.
            None => {
                remove(&path)?;
                remove(&dir.join(segment::file_name(first_seq, MARKS_EXT)))?;
                report.deleted_segments += 1;
                Ok(Opened::Gone)
            }
            Some(tail) => {
                let torn = bytes.starts_with(&MAGIC) && tail.intact == 0;
                let kind = match torn {
                    true => DamageKind::TornTail,
                    false => DamageKind::Foreign,
                };
                let opened = move_aside(dir, &path, size, kind, tail.reason, tail.intact, report)?;
                Ok(match (torn, opened) {
                    (true, Opened::Gone) => Opened::NumbersFrom(first_seq),
                    (_, opened) => opened,
                })
            }
        };
    }
    match clash(&found.records, &bytes, kept)? {
        Clash::None => {}
        Clash::Copies(n) => {
            // Byte for byte the records of a segment read before: served from there.
            found.records.drain(..n);
        }
        Clash::Conflict(reason) => {
            let intact = scan::Intact::new(&bytes).count();
            return move_aside(
                dir,
                &path,
                size,
                DamageKind::Foreign,
                reason,
                intact,
                report,
            );
        }
    }

    let mut unsaved = Vec::new();
    for d in &found.corrupt {
        let kind = match d.intact {
            0 => DamageKind::Corrupt,
            _ => DamageKind::Foreign,
        };
        let saved = save_aside(dir, &path, "corrupt", d.range.start, slice(&bytes, d))?;
        if saved.is_none() {
            unsaved.push(Unsaved {
                range: d.range.clone(),
                what: "corrupt",
            });
        }
        report.damage.push(damage(&path, d, kind, saved));
    }
    let mut len = bytes.len() as u64;
    if let Some(at) = found.unused_from {
        // Preallocated and never written: give the space back, nothing to report.
        cut(&path, at)?;
        len = at;
    }
    if let Some(d) = &found.tail {
        let (kind, what) = match d.intact {
            0 => (DamageKind::TornTail, "torn"),
            _ => (DamageKind::Foreign, "foreign"),
        };
        let saved = save_aside(dir, &path, what, d.range.start, slice(&bytes, d))?;
        match saved {
            Some(_) => cut(&path, d.range.start)?,
            // Left in place: the segment is sealed, so nothing is ever appended after it.
            None => unsaved.push(Unsaved {
                range: d.range.clone(),
                what,
            }),
        }
        report.damage.push(damage(&path, d, kind, saved));
        len = d.range.start;
    }
    drop(bytes);
    if found.records.is_empty() && unsaved.is_empty() {
        // Every record was a copy of one read before: nothing of this file is needed.
        remove(&path)?;
        remove(&dir.join(segment::file_name(first_seq, MARKS_EXT)))?;
        report.deleted_segments += 1;
        return Ok(Opened::Gone);
    }
    if found.records.is_empty() {
        // Only damage not yet copied aside: left as it is, not used.
        return Ok(Opened::NumbersFrom(first_seq.saturating_add(1)));
    }
    let file = File::open(&path).map_err(|e| WalError::io("open", &path, e))?;
    private::close_up_file(&file).map_err(|e| WalError::io("chmod", &path, e))?;
    let mut seg = Segment::new(first_seq, Arc::new(SegmentFile { file, path }), len);
    seg.sealed = true;
    seg.unsaved = unsaved;
    for r in &found.records {
        seg.push(r.seq, r.offset, r.destination_count);
    }
    apply_marks(&mut seg, report)?;
    Ok(Opened::Segment(seg))
}

fn slice<'a>(bytes: &'a [u8], d: &Damaged) -> &'a [u8] {
    within(bytes, d.range.start as usize..d.range.end as usize)
}

fn damage(path: &Path, d: &Damaged, kind: DamageKind, saved_to: Option<PathBuf>) -> Damage {
    Damage {
        file: path.to_path_buf(),
        offset: d.range.start,
        len: d.range.end - d.range.start,
        kind,
        reason: d.reason,
        intact_records: d.intact,
        saved_to,
    }
}

enum Clash {
    None,
    /// The first n records are byte-for-byte copies of records a kept segment holds.
    Copies(usize),
    Conflict(&'static str),
}

/// Whether a segment's records collide with those of the segments read before it. Each
/// number must belong to one segment, and segments' ranges must not interleave, for a record
/// (and its marks) to be found by number.
fn clash(
    records: &[Found],
    bytes: &[u8],
    kept: &BTreeMap<u64, Segment>,
) -> Result<Clash, WalError> {
    let Some(highest) = kept.values().filter_map(Segment::last_seq).max() else {
        return Ok(Clash::None);
    };
    let mut copies = 0;
    for r in records.iter().take_while(|r| r.seq <= highest) {
        let owner = kept
            .range(..=r.seq)
            .next_back()
            .map(|(_, s)| s)
            .filter(|s| s.contains(r.seq));
        let Some(owner) = owner else {
            return Ok(Clash::Conflict(
                "its records interleave with another segment's",
            ));
        };
        let ours = within(bytes, r.offset as usize..(r.offset + r.len) as usize);
        if owner.record_bytes(r.seq)? != ours {
            return Ok(Clash::Conflict(
                "its records are numbered like another segment's, with other contents",
            ));
        }
        copies += 1;
    }
    Ok(match copies {
        0 => Clash::None,
        n => Clash::Copies(n),
    })
}

/// Moves a whole file (and its marks) into quarantine: a rename, which needs no free space.
fn move_aside(
    dir: &Path,
    path: &Path,
    size: u64,
    kind: DamageKind,
    reason: &'static str,
    intact: usize,
    report: &mut Recovery,
) -> Result<Opened, WalError> {
    let name = file_name(path);
    let saved = match quarantine_dir(dir)? {
        None => None,
        Some(qdir) => {
            let target = free_name(&qdir, &name)?;
            fs::rename(path, &target).map_err(|e| WalError::io("move", path, e))?;
            let marks = path.with_extension(MARKS_EXT);
            if marks.exists() {
                let to = free_name(&qdir, &file_name(&marks))?;
                fs::rename(&marks, &to).map_err(|e| WalError::io("move", &marks, e))?;
            }
            sync_dir(&qdir)?;
            sync_dir(dir)?;
            Some(target)
        }
    };
    let moved = saved.is_some();
    report.damage.push(Damage {
        file: path.to_path_buf(),
        offset: 0,
        len: size,
        kind,
        reason,
        intact_records: intact,
        saved_to: saved,
    });
    let name_seq = segment::parse_name(&name).map_or(0, |(seq, _)| seq);
    Ok(if moved {
        Opened::Gone
    } else {
        Opened::NumbersFrom(name_seq.saturating_add(1))
    })
}

fn apply_marks(seg: &mut Segment, report: &mut Recovery) -> Result<(), WalError> {
    let path = seg.marks_path();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WalError::io("read", &path, e)),
    };
    if bytes.len() < marks::HEADER.len() {
        // Created, and its header never written (a crash, or a full disk): it holds no mark.
        // Made again on the first mark; writing the header now could fail for lack of space.
        return remove(&path);
    }
    let found = marks::scan(&bytes);
    for (seq, dest) in found.marks {
        let _: Applied = seg.apply(seq, dest);
    }
    if let Some(offset) = found.first_bad {
        report.damage.push(Damage {
            file: path.clone(),
            offset,
            len: (found.bad_entries * marks::ENTRY) as u64,
            kind: DamageKind::Marks {
                entries: found.bad_entries,
            },
            reason: "checksum mismatch",
            intact_records: 0,
            saved_to: None,
        });
    }
    // Reopened for appending, with a torn last entry cut off so new entries stay aligned.
    seg.marks = Some(MarksFile::open(path, found.keep_len)?);
    Ok(())
}

/// Copies the damaged ranges of a finished segment that could not be copied when it was
/// opened; true when none is left, so the segment may go. With no room for the copies, the
/// blocks of the segment's records (all done) are given back first, by punching a hole around
/// the damage, and the copies tried again: the order is read, deliver, free, then write.
pub(crate) fn save_unsaved(seg: &mut Segment) -> Result<bool, WalError> {
    if copy_unsaved(seg)? {
        return Ok(true);
    }
    if punch_around_unsaved(seg).is_err() {
        return Ok(false); // a file system without holes: tried again at the next reaping
    }
    copy_unsaved(seg)
}

fn copy_unsaved(seg: &mut Segment) -> Result<bool, WalError> {
    let dir = seg.dir().to_path_buf();
    let path = seg.file.path.clone();
    while let Some(u) = seg.unsaved.first() {
        let mut bytes = vec![0u8; (u.range.end - u.range.start) as usize];
        seg.file
            .file
            .read_exact_at(&mut bytes, u.range.start)
            .map_err(|e| WalError::io("read", &path, e))?;
        if save_aside(&dir, &path, u.what, u.range.start, &bytes)?.is_none() {
            return Ok(false);
        }
        seg.unsaved.remove(0);
    }
    Ok(true)
}

/// Frees every block of the segment outside its unsaved ranges (the file keeps its size).
fn punch_around_unsaved(seg: &Segment) -> std::io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    let file = OpenOptions::new().write(true).open(&seg.file.path)?;
    let end = file.metadata()?.len();
    let mut at = 0;
    let mut keep: Vec<_> = seg.unsaved.iter().map(|u| u.range.clone()).collect();
    keep.sort_by_key(|r| r.start);
    keep.push(end..end);
    for k in keep {
        if k.start > at {
            let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
            fallocate(&file, flags, at, k.start - at)?;
        }
        at = at.max(k.end);
    }
    Ok(())
}

/// `quarantine/`, made if needed; `None` when the disk has no room for it.
fn quarantine_dir(dir: &Path) -> Result<Option<PathBuf>, WalError> {
    let qdir = dir.join(QUARANTINE);
    match private::create_dir(&qdir) {
        Ok(()) => Ok(Some(qdir)),
        Err(e) if is_no_space(&e) => Ok(None),
        Err(e) => Err(WalError::io("create", &qdir, e)),
    }
}

/// Copies `bytes` to `quarantine/<segment>.<what>-<offset>` durably and returns that path; a
/// copy of the same range made at an earlier open is reused. `None` when the disk has no room
/// for the copy (nothing of it is left behind).
fn save_aside(
    dir: &Path,
    segment: &Path,
    what: &str,
    offset: u64,
    bytes: &[u8],
) -> Result<Option<PathBuf>, WalError> {
    let Some(qdir) = quarantine_dir(dir)? else {
        return Ok(None);
    };
    let name = format!("{}.{what}-{offset}", file_name(segment));
    for n in 0u32..1000 {
        let target = match n {
            0 => qdir.join(&name),
            n => qdir.join(format!("{name}.{n}")),
        };
        match fs::read(&target) {
            Ok(existing) if existing == bytes => return Ok(Some(target)),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WalError::io("read", &target, e)),
        }
        let mut f = private::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| WalError::io("create", &target, e))?;
        let written = f.write_all(bytes).and_then(|()| f.sync_all());
        if let Err(e) = written {
            drop(f);
            let _ = fs::remove_file(&target);
            return match is_no_space(&e) {
                true => Ok(None),
                false => Err(WalError::write(&target, 0, e)),
            };
        }
        sync_dir(&qdir)?;
        return Ok(Some(target));
    }
    Err(WalError::io(
        "name a quarantine file for",
        segment,
        std::io::Error::other("too many quarantine files"),
    ))
}

/// `name` in `qdir`, or `name.1`, `name.2`, … if taken.
fn free_name(qdir: &Path, name: &str) -> Result<PathBuf, WalError> {
    for n in 0u32..1000 {
        let target = match n {
            0 => qdir.join(name),
            n => qdir.join(format!("{name}.{n}")),
        };
        if !target.exists() {
            return Ok(target);
        }
    }
    Err(WalError::io(
        "name a quarantine file for",
        qdir.join(name),
        std::io::Error::other("too many quarantine files"),
    ))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn cut(path: &Path, at: u64) -> Result<(), WalError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("open", path, e))?;
    f.set_len(at)
        .and_then(|()| f.sync_all())
        .map_err(|e| WalError::io("truncate", path, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync", dir, e))
}

/// Deletes a segment and then its marks (a crash in between leaves orphan marks, which the
/// next open removes; the reverse order could resurrect delivered records).
pub(crate) fn delete_files(seg: &Segment) -> Result<(), WalError> {
    remove(&seg.file.path)?;
    remove(&seg.marks_path())
}

fn remove(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io("delete", path, e)),
    }
}
