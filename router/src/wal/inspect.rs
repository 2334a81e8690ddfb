//! Reading a shard directory without opening the log: no lock taken, nothing written, so it
//! is safe beside a running router. For `ganglion wal inspect` (what the segments, marks and
//! quarantined files hold, with byte offsets) and `ganglion wal replay` (the intact records in
//! quarantined bytes), and for tools that must know what the log takes on disk.
use std::collections::HashSet;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::WalError;
use super::marks;
use super::record;
use super::recover::QUARANTINE;
use super::scan::{self, Intact};
use super::segment::{self, MARKS_EXT, SEGMENT_EXT};
use super::spare::SPARE_NAME;
use super::types::{OwnedOrigin, OwnedParsed};

/// The files of a shard directory, in the order they are best read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShardFiles {
    /// Segments, in log order.
    pub segments: Vec<PathBuf>,
    /// Everything in `quarantine/`, by name.
    pub quarantined: Vec<PathBuf>,
    /// The next record number `LOCK` keeps (see `ShardLog`), if it holds one.
    pub next_seq_mark: Option<u64>,
    /// Bytes a spare segment being made takes (0 when there is none).
    pub spare_bytes: u64,
}

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub len: u64,
    pub seq: u64,
    pub version: u8,
    pub destinations: Vec<String>,
    /// Per destination, whether a mark says it is done; `None` where no marks file belongs to
    /// the bytes.
    pub done: Option<Vec<bool>>,
    pub origin: OwnedOrigin,
    pub parsed: OwnedParsed,
    pub message: Vec<u8>,
}

/// A range that holds no record where one should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageInfo {
    pub range: Range<u64>,
    pub reason: &'static str,
    /// Intact records inside the range (not acceptable where they are).
    pub intact_records: usize,
    /// The range runs to the end of the file.
    pub tail: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarksInfo {
    pub path: PathBuf,
    pub entries: usize,
    pub damaged_entries: usize,
}

/// What one file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub records: Vec<StoredRecord>,
    /// Segments only: ranges a recovery would report (quarantined files have no order to
    /// keep, so all their intact records are listed instead).
    pub damage: Vec<DamageInfo>,
    /// Segments only: where zeros never written begin.
    pub unused_from: Option<u64>,
    pub marks: Option<MarksInfo>,
}

/// Lists a shard directory's log files.
pub fn shard_files(dir: &Path) -> Result<ShardFiles, WalError> {
    let mut out = ShardFiles::default();
    let mut named = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))? {
        let entry = entry.map_err(|e| WalError::io("list", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some((seq, SEGMENT_EXT)) = segment::parse_name(&name) {
            named.push((seq, entry.path()));
        } else if name == SPARE_NAME {
            out.spare_bytes = entry.metadata().map_or(0, |m| m.len());
        }
    }
    named.sort();
    out.segments = named.into_iter().map(|(_, p)| p).collect();
    let qdir = dir.join(QUARANTINE);
    if let Ok(entries) = fs::read_dir(&qdir) {
        out.quarantined = entries.flatten().map(|e| e.path()).collect();
        out.quarantined.sort();
    }
    if let Ok(bytes) = fs::read(dir.join("LOCK")) {
        if let Ok(stored) = <[u8; 8]>::try_from(bytes.as_slice()) {
            out.next_seq_mark = Some(u64::from_le_bytes(stored));
        }
    }
    Ok(out)
}

/// The shard directories of a data directory, by shard number.
pub fn shard_dirs(data_dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut out: Vec<(usize, PathBuf)> = fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let n = e
                        .file_name()
                        .to_str()?
                        .strip_prefix("shard-")?
                        .parse()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Bytes a shard directory's log takes on disk, as the disk budget counts them: segments,
/// marks and a spare (quarantined files are the operator's, and are not counted).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            segment::parse_name(&name).is_some() || name == SPARE_NAME
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// What a segment holds, read as recovery reads it (records from its name's number on, in
/// order), with its marks.
pub fn inspect_segment(path: &Path) -> Result<FileInfo, WalError> {
    let bytes = fs::read(path).map_err(|e| WalError::io("read", path, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let first_seq = name
        .as_deref()
        .and_then(segment::parse_name)
        .map_or(0, |(seq, _)| seq);
    let (done, marks) = read_marks(&path.with_extension(MARKS_EXT))?;
    // No marks file: nothing is done yet.
    let done = done.or_else(|| Some(Done::new()));
    let found = scan::scan(&bytes, first_seq);
    let records = found
        .records
        .iter()
        .filter_map(|f| {
            let at = f.offset as usize;
            let (view, _) = record::check(bytes.get(at..)?).ok()?;
            Some(stored(f.offset, f.len, &view, done.as_ref()))
        })
        .collect();
    let damage = found
        .corrupt
        .iter()
        .map(|d| (d, false))
        .chain(found.tail.iter().map(|d| (d, true)))
        .map(|(d, tail)| DamageInfo {
            range: d.range.clone(),
            reason: d.reason,
            intact_records: d.intact,
            tail,
        })
        .collect();
    Ok(FileInfo {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        records,
        damage,
        unused_from: found.unused_from,
        marks,
    })
}

/// Whether a file holds marks (a segment's marks moved aside with it) rather than records.
pub fn is_marks_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == MARKS_EXT)
}

/// Every intact record in any file (a quarantined copy, a segment moved aside whole), in file
/// order, whatever its number; with the marks of a marks file beside it (`<name>.marks`, as a
/// segment moved aside takes its marks along).
pub fn inspect_bytes_of(path: &Path) -> Result<FileInfo, WalError> {
    let bytes = fs::read(path).map_err(|e| WalError::io("read", path, e))?;
    // A whole segment moved aside took its marks along; a copied range's marks stay with
    // its segment, and are not known here.
    let (done, marks) = match path.extension().is_some_and(|e| e == SEGMENT_EXT) {
        true => {
            let (done, marks) = read_marks(&path.with_extension(MARKS_EXT))?;
            (done.or_else(|| Some(Done::new())), marks)
        }
        false => (None, None),
    };
    let records = Intact::new(&bytes)
        .map(|(offset, view, len)| stored(offset, len as u64, &view, done.as_ref()))
        .collect();
    Ok(FileInfo {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        records,
        damage: Vec::new(),
        unused_from: None,
        marks,
    })
}

fn stored(
    offset: u64,
    len: u64,
    view: &record::View<'_>,
    done: Option<&HashSet<(u64, u16)>>,
) -> StoredRecord {
    let destinations: Vec<String> = view.destinations().map(str::to_owned).collect();
    StoredRecord {
        offset,
        len,
        seq: view.seq,
        version: view.version,
        done: done.map(|d| {
            (0..destinations.len())
                .map(|i| d.contains(&(view.seq, i as u16)))
                .collect()
        }),
        destinations,
        origin: view.origin.into(),
        parsed: view.parsed.into(),
        message: view.message.to_vec(),
    }
}

type Done = HashSet<(u64, u16)>;

fn read_marks(path: &Path) -> Result<(Option<Done>, Option<MarksInfo>), WalError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(e) => return Err(WalError::io("read", path, e)),
    };
    let found = marks::scan(&bytes);
    let info = MarksInfo {
        path: path.to_path_buf(),
        entries: found.marks.len(),
        damaged_entries: found.bad_entries,
    };
    Ok((Some(found.marks.into_iter().collect()), Some(info)))
}
