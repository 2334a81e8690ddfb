//! Opening a shard directory after a stop or a crash: every segment is read and checked, damage
//! is saved to `quarantine/` and reported, marks are applied, and finished segments are deleted.
//!
//! Order matters for crash safety: a torn tail is copied to `quarantine/` and that copy fsynced
//! *before* the segment is truncated, so the bytes are never lost, only moved. A damaged range in
//! the middle of a segment cannot be cut out without rewriting the file, so it is copied (once)
//! and left in place; the scan skips it on every open and reports it again until the segment is
//! deleted. Nothing here fails because of what a file contains; only I/O errors are errors.
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::WalError;
use super::marks::{self, MarksFile};
use super::scan;
use super::segment::{self, Applied, Segment, SegmentFile, MARKS_EXT, SEGMENT_EXT};
use super::private;
use super::spare;

pub(crate) const QUARANTINE: &str = "quarantine";

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
    /// Where the damaged bytes were copied.
    pub saved_to: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// Damage running to the end of a segment: cut off (typically a write torn by a power cut).
    TornTail,
    /// A damaged range between good records: its records are lost, the rest recovered.
    Corrupt,
    /// Damaged mark entries: their destinations will receive the message again.
    Marks { entries: usize },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DamageKind::TornTail => "torn tail cut off",
            DamageKind::Corrupt => "damaged record(s) skipped",
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
        if let Some(to) = &self.saved_to {
            write!(f, "; saved to {}", to.display())?;
        }
        Ok(())
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
        next_seq: wal.last().copied().unwrap_or(0),
        report: Recovery::default(),
    };
    for (i, &first_seq) in wal.iter().enumerate() {
        let limit = wal.get(i + 1).copied().unwrap_or(u64::MAX);
        let seg = open_segment(dir, first_seq, limit, &mut out.report)?;
        if let Some(last) = seg.last_seq() {
            out.next_seq = out.next_seq.max(last + 1);
        }
        if seg.outstanding() == 0 {
            delete_files(&seg)?;
            out.report.deleted_segments += 1;
            continue;
        }
        out.report.segments += 1;
        out.report.pending_records += seg.outstanding() as u64;
        out.segments.insert(first_seq, seg);
    }
    Ok(out)
}

fn open_segment(
    dir: &Path,
    first_seq: u64,
    limit: u64,
    report: &mut Recovery,
) -> Result<Segment, WalError> {
    let path = dir.join(segment::file_name(first_seq, SEGMENT_EXT));
    let bytes = fs::read(&path).map_err(|e| WalError::io("read", &path, e))?;
    let found = scan::scan(&bytes, first_seq..limit);
    for (range, reason) in &found.corrupt {
        let (start, end) = (range.start as usize, range.end as usize);
        let saved = save_aside(dir, &path, "corrupt", range.start, bytes.get(start..end))?;
        report.damage.push(Damage {
            file: path.clone(),
            offset: range.start,
            len: range.end - range.start,
            kind: DamageKind::Corrupt,
            reason,
            saved_to: Some(saved),
        });
    }
    let mut len = bytes.len() as u64;
    if let Some(at) = found.unused_from {
        // Preallocated and never written: give the space back, nothing to report.
        cut(&path, at)?;
        len = at;
    }
    if let Some((at, reason)) = found.torn_tail {
        let saved = save_aside(dir, &path, "torn", at, bytes.get(at as usize..))?;
        cut(&path, at)?;
        report.damage.push(Damage {
            file: path.clone(),
            offset: at,
            len: len - at,
            kind: DamageKind::TornTail,
            reason,
            saved_to: Some(saved),
        });
        len = at;
    }
    let file = File::open(&path).map_err(|e| WalError::io("open", &path, e))?;
    private::close_up_file(&file).map_err(|e| WalError::io("chmod", &path, e))?;
    let mut seg = Segment::new(first_seq, Arc::new(SegmentFile { file, path }), len);
    seg.sealed = true;
    for r in &found.records {
        seg.push(r.seq, r.offset, r.destination_count);
    }
    apply_marks(&mut seg, report)?;
    Ok(seg)
}

fn apply_marks(seg: &mut Segment, report: &mut Recovery) -> Result<(), WalError> {
    let path = seg.marks_path();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WalError::io("read", &path, e)),
    };
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
            saved_to: None,
        });
    }
    // Reopened for appending, with a torn last entry cut off so new entries stay aligned.
    seg.marks = Some(MarksFile::open(path, found.keep_len)?);
    Ok(())
}

/// Copies `bytes` to `quarantine/<segment>.<what>-<offset>` durably and returns that path. A
/// copy of the same range made at an earlier open is reused.
fn save_aside(
    dir: &Path,
    segment: &Path,
    what: &str,
    offset: u64,
    bytes: Option<&[u8]>,
) -> Result<PathBuf, WalError> {
    let bytes = bytes.unwrap_or_default();
    let qdir = dir.join(QUARANTINE);
    private::create_dir(&qdir).map_err(|e| WalError::io("create", &qdir, e))?;
    let name = segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 0u32.. {
        let target = match n {
            0 => qdir.join(format!("{name}.{what}-{offset}")),
            n => qdir.join(format!("{name}.{what}-{offset}.{n}")),
        };
        match fs::read(&target) {
            Ok(existing) if existing == bytes => return Ok(target),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WalError::io("read", &target, e)),
        }
        let mut f = private::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| WalError::io("create", &target, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| WalError::write(&target, 0, e))?;
        sync_dir(&qdir)?;
        return Ok(target);
    }
    Err(WalError::io(
        "name a quarantine file for",
        segment,
        std::io::Error::other("too many quarantine files"),
    ))
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
