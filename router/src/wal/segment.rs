//! One segment: its file (`<first seq, 20 digits>.wal`), its marks sidecar, and the in-memory
//! index of its records with the destinations each still waits for.
//!
//! The index holds 32 bytes per record (sequence number, file offset, and a bit set of
//! undelivered destinations, inline up to 64 destinations), never message bytes: a replay or a
//! deep queue reads records back from the file by offset. `outstanding` counts the records with
//! at least one undelivered destination; a sealed segment at zero is deleted.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::WalError;
use super::marks::MarksFile;
use super::record::{self, HEADER_LEN};
use super::types::{PendingRecord, RecordId};

pub(crate) const SEGMENT_EXT: &str = "wal";
pub(crate) const MARKS_EXT: &str = "marks";

pub(crate) fn file_name(first_seq: u64, ext: &str) -> String {
    format!("{first_seq:020}.{ext}")
}

/// `(first seq, extension)` of a log file name; other names are not the log's.
pub(crate) fn parse_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ext = [SEGMENT_EXT, MARKS_EXT].into_iter().find(|e| *e == ext)?;
    Some((stem.parse().ok()?, ext))
}

/// A segment's open file, shared with commits that fdatasync it on another thread.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub file: File,
    pub path: PathBuf,
}

/// Destinations of one record not yet done.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Remaining {
    Small(u64),
    Wide(Box<[u64]>),
}

impl Remaining {
    fn all(count: u16) -> Self {
        let count = usize::from(count);
        if count <= 64 {
            Self::Small(low_bits(count))
        } else {
            let mut words = vec![u64::MAX; count / 64];
            if count % 64 != 0 {
                words.push(low_bits(count % 64));
            }
            Self::Wide(words.into_boxed_slice())
        }
    }

    /// Clears `index`; true when it was set.
    fn clear(&mut self, index: u16) -> bool {
        let i = usize::from(index);
        let word = match self {
            Self::Small(w) if i < 64 => w,
            Self::Small(_) => return false,
            Self::Wide(words) => match words.get_mut(i / 64) {
                Some(w) => w,
                None => return false,
            },
        };
        let bit = 1u64 << (i % 64);
        let was = *word & bit != 0;
        *word &= !bit;
        was
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Small(w) => *w == 0,
            Self::Wide(words) => words.iter().all(|w| *w == 0),
        }
    }

    fn indexes(&self) -> Vec<u16> {
        let words: &[u64] = match self {
            Self::Small(w) => std::slice::from_ref(w),
            Self::Wide(words) => words,
        };
        let mut out = Vec::new();
        for (wi, &w) in words.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                let bit = w.trailing_zeros() as usize;
                // Fits: indexes come from a u16 destination count.
                out.push((wi * 64 + bit) as u16);
                w &= w - 1;
            }
        }
        out
    }
}

fn low_bits(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    offset: u64,
    remaining: Remaining,
}

/// What applying one mark did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    Done,
    Ignored,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub first_seq: u64,
    pub file: Arc<SegmentFile>,
    /// Bytes of good records: appends go here, and the file is never longer after a failure
    /// (unless it was made longer ahead of time, see `allocated`).
    pub len: u64,
    /// The file's size when it was made full of zeros ahead of time (a spare), else 0.
    pub allocated: u64,
    /// Opened at recovery when the file exists, else on the first mark.
    pub marks: Option<MarksFile>,
    entries: Vec<Entry>,
    outstanding: usize,
    /// No more appends: the segment may be deleted once `outstanding` is zero.
    pub sealed: bool,
    /// Damaged ranges that could not be copied to quarantine (the disk was full): the
    /// segment is kept, even when done, until they are.
    pub unsaved: Vec<Unsaved>,
}

/// A damaged range of a segment still to be copied aside, and what to call the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsaved {
    pub range: std::ops::Range<u64>,
    pub what: &'static str,
}

impl Segment {
    pub fn new(first_seq: u64, file: Arc<SegmentFile>, len: u64) -> Self {
        Self {
            first_seq,
            file,
            len,
            allocated: 0,
            marks: None,
            entries: Vec::new(),
            outstanding: 0,
            sealed: false,
            unsaved: Vec::new(),
        }
    }

    /// Where the segment sits in the log's map: its first record's number (the name's, when
    /// it has none yet). Not always its name: a recovered segment may have lost records at its
    /// start, and lookups by number must find the segment that holds them.
    pub fn key(&self) -> u64 {
        self.entries.first().map_or(self.first_seq, |e| e.seq)
    }

    /// The bytes of record `seq` as stored (header included), unchecked.
    pub fn record_bytes(&self, seq: u64) -> Result<Vec<u8>, WalError> {
        let entry = self
            .find(seq)
            .and_then(|i| self.entries.get(i))
            .ok_or(WalError::UnknownRecord(RecordId(seq)))?;
        read_record(&self.file, entry.offset)
    }

    pub fn dir(&self) -> &Path {
        self.file.path.parent().unwrap_or(Path::new("."))
    }

    pub fn marks_path(&self) -> PathBuf {
        self.dir().join(file_name(self.first_seq, MARKS_EXT))
    }

    /// Bytes this segment holds on disk, marks and preallocated zeros included.
    pub fn disk_len(&self) -> u64 {
        self.len.max(self.allocated) + self.marks.as_ref().map_or(0, |m| m.len)
    }

    pub fn push(&mut self, seq: u64, offset: u64, destination_count: u16) {
        self.entries.push(Entry {
            seq,
            offset,
            remaining: Remaining::all(destination_count),
        });
        self.outstanding += 1;
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.entries.last().map(|e| e.seq)
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.find(seq).is_some()
    }

    fn find(&self, seq: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&seq, |e| e.seq).ok()
    }

    pub fn apply(&mut self, seq: u64, destination: u16) -> Applied {
        let Some(i) = self.find(seq) else {
            return Applied::Ignored;
        };
        let Some(entry) = self.entries.get_mut(i) else {
            return Applied::Ignored;
        };
        if entry.remaining.is_empty() || !entry.remaining.clear(destination) {
            return Applied::Ignored;
        }
        if entry.remaining.is_empty() {
            self.outstanding -= 1;
        }
        Applied::Done
    }

    /// Sequence numbers of records with an undelivered destination, in log order.
    pub fn pending_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries
            .iter()
            .filter(|e| !e.remaining.is_empty())
            .map(|e| e.seq)
    }

    /// Reads a record back from the file and checks it again (the disk may have rotted since).
    pub fn read(&self, seq: u64) -> Result<PendingRecord, WalError> {
        let entry = self
            .find(seq)
            .and_then(|i| self.entries.get(i))
            .ok_or(WalError::UnknownRecord(RecordId(seq)))?;
        let path = &self.file.path;
        let corrupt = |reason| WalError::Corrupt {
            id: RecordId(seq),
            path: path.clone(),
            offset: entry.offset,
            reason,
        };
        let buf = read_record(&self.file, entry.offset).map_err(|e| match e {
            WalError::Corrupt { reason, .. } => corrupt(reason),
            e => e,
        })?;
        let (view, _) = record::check(&buf).map_err(corrupt)?;
        if view.seq != seq {
            return Err(corrupt("sequence number changed"));
        }
        Ok(view.into_pending(entry.remaining.indexes()))
    }
}

/// Reads the record at `offset` (header and payload, as its length field says), unchecked.
fn read_record(file: &SegmentFile, offset: u64) -> Result<Vec<u8>, WalError> {
    let path = &file.path;
    let mut header = [0u8; HEADER_LEN];
    file.file
        .read_exact_at(&mut header, offset)
        .map_err(|e| WalError::io("read", path, e))?;
    let payload = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if payload > record::MAX_PAYLOAD {
        return Err(WalError::Corrupt {
            id: RecordId(0),
            path: path.clone(),
            offset,
            reason: "impossible record length",
        });
    }
    let mut buf = vec![0u8; HEADER_LEN + payload];
    file.file
        .read_exact_at(&mut buf, offset)
        .map_err(|e| WalError::io("read", path, e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_tracks_narrow_and_wide_fan_out() {
        for count in [1u16, 2, 63, 64, 65, 128, 200] {
            let mut r = Remaining::all(count);
            assert_eq!(r.indexes(), (0..count).collect::<Vec<_>>());
            assert!(!r.clear(count), "index past the end must be ignored");
            for i in 0..count {
                assert!(r.clear(i));
                assert!(!r.clear(i), "second clear of {i} must report nothing");
            }
            assert!(r.is_empty(), "count {count}");
        }
    }

    #[test]
    fn names_parse_back() {
        let name = file_name(42, SEGMENT_EXT);
        assert_eq!(name, "00000000000000000042.wal");
        assert_eq!(parse_name(&name), Some((42, SEGMENT_EXT)));
        assert_eq!(
            parse_name("00000000000000000042.marks"),
            Some((42, MARKS_EXT))
        );
        assert_eq!(parse_name("42.wal"), None);
        assert_eq!(parse_name("00000000000000000042.wal.torn-12"), None);
        assert_eq!(parse_name("LOCK"), None);
    }
}
