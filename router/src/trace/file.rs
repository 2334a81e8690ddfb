//! One index file: entries appended while it is open, then sealed with a sorted key block.
//!
//! ```text
//! "GTRACE1\n" | entry… | key… | trailer
//! entry   = u32 length | u32 CRC32C(body) | body          (see `entry`)
//! key     = u64 key | u32 offset of its entry             (sorted by key, then offset)
//! trailer = u64 first time | u64 last time | u64 keys at | u64 key count | u64 entries
//!           | "GTSEAL1\n"
//! ```
//! An open file (`N.open`) has no key block: its keys are in the writer's memory, and a file
//! left open by a crash is read entry by entry up to its first damaged one, cut there and
//! sealed at the next start. A sealed file (`N.idx`) answers a key with a binary search of
//! its key block, a few `pread`s whatever its size.
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::entry::{self, Entry, FRAME};
use crate::private_fs;

pub const HEADER: &[u8; 8] = b"GTRACE1\n";
const SEAL: &[u8; 8] = b"GTSEAL1\n";
const TRAILER: u64 = 48;
const KEY: u64 = 12;
/// Larger bodies are damage, not entries (strings are cut at 1 KiB).
const MAX_BODY: u32 = 64 * 1024;

/// Time span and size of a file, from its trailer (sealed) or the writer's memory (open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: u64,
    pub last: u64,
    pub entries: u64,
}

impl Span {
    fn empty() -> Span {
        Span {
            first: u64::MAX,
            last: 0,
            entries: 0,
        }
    }

    fn add(&mut self, time: u64) {
        self.first = self.first.min(time);
        self.last = self.last.max(time);
        self.entries += 1;
    }

    /// Whether any entry may lie in `from..=to`.
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.entries > 0 && self.first <= to && self.last >= from
    }
}

/// Keys of the open file are sorted a run of this many at a time, as they come: a lookup
/// binary-searches each run and scans only the unsorted tail, instead of every key.
const RUN: usize = 64 * 1024;

/// The file being written.
pub struct OpenFile {
    pub path: PathBuf,
    file: File,
    len: u64,
    /// Sorted runs of [`RUN`] keys up to `sorted`, then the newest keys as they came.
    keys: Vec<(u64, u32)>,
    sorted: usize,
    pub span: Span,
    scratch: Vec<u64>,
}

impl OpenFile {
    /// A file of its header only, as written by [`OpenFile::create`].
    fn empty(path: PathBuf, file: File) -> OpenFile {
        OpenFile {
            path,
            file,
            len: HEADER.len() as u64,
            keys: Vec::new(),
            sorted: 0,
            span: Span::empty(),
            scratch: Vec::new(),
        }
    }

    /// Starts a new file at `path` (0600).
    pub fn create(path: PathBuf) -> io::Result<OpenFile> {
        // Read too: lookups read entries of the open file through the writer's descriptor.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(private_fs::FILE_MODE)
            .open(&path)?;
        file.write_all(HEADER)?;
        Ok(OpenFile::empty(path, file))
    }

    /// Bytes written so far, header included.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Appends the framed entries of `chunk` (their CRCs filled in here) and indexes them.
    /// Entries that do not read are dropped, never written.
    pub fn append(&mut self, chunk: &mut [u8]) -> io::Result<()> {
        let mut at = 0;
        let mut keep = 0;
        let base = self.len;
        while let Some(len) = chunk.get(at..at + 4) {
            let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
            let end = at + FRAME + len;
            let Some(body) = chunk.get(at + FRAME..end) else {
                break;
            };
            self.scratch.clear();
            if let Some(time) = entry::keys_of(body, &mut self.scratch) {
                let crc = crc32c::crc32c(body);
                // Entries are moved down over dropped ones, so the chunk is written at once.
                chunk.copy_within(at..end, keep);
                if let Some(slot) = chunk.get_mut(keep + 4..keep + 8) {
                    slot.copy_from_slice(&crc.to_le_bytes());
                }
                let offset = u32::try_from(base + keep as u64).unwrap_or(u32::MAX);
                self.keys.extend(self.scratch.iter().map(|&k| (k, offset)));
                self.span.add(time);
                keep += end - at;
            }
            at = end;
        }
        let written = chunk.get(..keep).unwrap_or_default();
        self.file.write_all(written)?;
        self.len += written.len() as u64;
        while let Some(run) = self.keys.get_mut(self.sorted..self.sorted + RUN) {
            run.sort_unstable();
            self.sorted += RUN;
        }
        Ok(())
    }

    /// The offsets of the entries with `key`, in file order.
    pub fn offsets(&self, key: u64) -> Vec<u32> {
        let (runs, tail) = self.keys.split_at(self.sorted.min(self.keys.len()));
        let mut found: Vec<u32> = Vec::new();
        for run in runs.chunks(RUN) {
            let start = run.partition_point(|&(k, _)| k < key);
            let matching = run.get(start..).unwrap_or_default();
            found.extend(
                matching
                    .iter()
                    .take_while(|&&(k, _)| k == key)
                    .map(|&(_, o)| o),
            );
        }
        found.extend(tail.iter().filter(|&&(k, _)| k == key).map(|&(_, o)| o));
        found.sort_unstable();
        found
    }

    /// Reads the entry at `offset`.
    pub fn entry_at(&self, offset: u32) -> io::Result<Option<Entry>> {
        read_entry(&self.file, offset)
    }

    /// Every entry written so far, in order, until `each` says stop.
    pub fn scan(&self, each: impl FnMut(Entry) -> bool) -> io::Result<()> {
        // Reads through its own descriptor: the writer's offset must not move.
        scan(&File::open(&self.path)?, self.len, each)
    }

    /// Writes the key block and trailer, syncs, and renames the file to `sealed`.
    pub fn seal(mut self, sealed: &Path) -> io::Result<()> {
        self.keys.sort_unstable();
        let mut block = Vec::with_capacity(self.keys.len() * KEY as usize + TRAILER as usize);
        for (key, offset) in &self.keys {
            block.extend_from_slice(&key.to_le_bytes());
            block.extend_from_slice(&offset.to_le_bytes());
        }
        for n in [
            self.span.first,
            self.span.last,
            self.len,
            self.keys.len() as u64,
            self.span.entries,
        ] {
            block.extend_from_slice(&n.to_le_bytes());
        }
        block.extend_from_slice(SEAL);
        self.file.write_all(&block)?;
        self.file.sync_data()?;
        std::fs::rename(&self.path, sealed)
    }

    /// Reopens a file left open (a crash, or a stop before its seal): its entries up to the
    /// first that does not read are kept and indexed, the rest cut off.
    pub fn recover(path: PathBuf) -> io::Result<OpenFile> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        let mut open = OpenFile::empty(path, file);
        let mut reader = BufReader::new(open.file.try_clone()?);
        let mut header = [0u8; 8];
        if reader.read_exact(&mut header).is_err() || &header != HEADER {
            open.file.set_len(0)?;
            open.file.write_all_at(HEADER, 0)?;
        } else {
            let mut frame = [0u8; FRAME];
            let mut body = Vec::new();
            while reader.read_exact(&mut frame).is_ok() {
                let (len, crc) = frame_of(&frame);
                if len > MAX_BODY {
                    break;
                }
                body.resize(len as usize, 0);
                if reader.read_exact(&mut body).is_err() || crc32c::crc32c(&body) != crc {
                    break;
                }
                open.scratch.clear();
                let Some(time) = entry::keys_of(&body, &mut open.scratch) else {
                    break;
                };
                let offset = u32::try_from(open.len).unwrap_or(u32::MAX);
                open.keys.extend(open.scratch.iter().map(|&k| (k, offset)));
                open.span.add(time);
                open.len += FRAME as u64 + u64::from(len);
            }
        }
        open.file.set_len(open.len)?;
        // The reader moved the shared file offset; appends (the seal) go at the cut.
        open.file.seek(SeekFrom::Start(open.len))?;
        Ok(open)
    }
}

fn frame_of(frame: &[u8; FRAME]) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = *frame;
    (
        u32::from_le_bytes([a, b, c, d]),
        u32::from_le_bytes([e, f, g, h]),
    )
}

fn read_entry(file: &File, offset: u32) -> io::Result<Option<Entry>> {
    let mut frame = [0u8; FRAME];
    file.read_exact_at(&mut frame, u64::from(offset))?;
    let (len, crc) = frame_of(&frame);
    if len > MAX_BODY {
        return Ok(None);
    }
    let mut body = vec![0u8; len as usize];
    file.read_exact_at(&mut body, u64::from(offset) + FRAME as u64)?;
    if crc32c::crc32c(&body) != crc {
        return Ok(None);
    }
    Ok(entry::decode(&body))
}

/// A sealed file, for reading.
pub struct SealedFile {
    file: File,
    pub span: Span,
    entries_end: u64,
    keys_at: u64,
    key_count: u64,
}

impl SealedFile {
    /// Opens `path`; `Ok(None)` when it is not a sealed index file.
    pub fn open(path: &Path) -> io::Result<Option<SealedFile>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < HEADER.len() as u64 + TRAILER {
            return Ok(None);
        }
        let mut trailer = [0u8; TRAILER as usize];
        file.read_exact_at(&mut trailer, len - TRAILER)?;
        let n = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&trailer[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let (first, last, keys_at, key_count, entries) = (n(0), n(1), n(2), n(3), n(4));
        let fits = key_count
            .checked_mul(KEY)
            .and_then(|k| k.checked_add(keys_at))
            .and_then(|k| k.checked_add(TRAILER))
            == Some(len);
        if &trailer[40..] != SEAL || !fits {
            return Ok(None);
        }
        Ok(Some(SealedFile {
            file,
            span: Span {
                first,
                last,
                entries,
            },
            entries_end: keys_at,
            keys_at,
            key_count,
        }))
    }

    fn key(&self, i: u64) -> io::Result<(u64, u32)> {
        let mut b = [0u8; KEY as usize];
        self.file.read_exact_at(&mut b, self.keys_at + i * KEY)?;
        let [k @ .., o0, o1, o2, o3] = b;
        Ok((u64::from_le_bytes(k), u32::from_le_bytes([o0, o1, o2, o3])))
    }

    /// The offsets of the entries with `key`, in file order: a binary search of the key block.
    pub fn offsets(&self, key: u64) -> io::Result<Vec<u32>> {
        let (mut lo, mut hi) = (0, self.key_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid)?.0 < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut found = Vec::new();
        while lo < self.key_count {
            let (k, offset) = self.key(lo)?;
            if k != key {
                break;
            }
            found.push(offset);
            lo += 1;
        }
        Ok(found)
    }

    pub fn entry_at(&self, offset: u32) -> io::Result<Option<Entry>> {
        read_entry(&self.file, offset)
    }

    /// Every entry, in file order (for a time range), until `each` says stop.
    pub fn scan(&self, each: impl FnMut(Entry) -> bool) -> io::Result<()> {
        scan(&self.file, self.entries_end, each)
    }
}

/// Reads the entries of `file` up to `end`, in order, until `each` says stop.
fn scan(file: &File, end: u64, mut each: impl FnMut(Entry) -> bool) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut header = [0u8; 8];
    reader.read_exact(&mut header)?;
    let mut at = HEADER.len() as u64;
    let mut frame = [0u8; FRAME];
    let mut body = Vec::new();
    while at < end {
        reader.read_exact(&mut frame)?;
        let (len, crc) = frame_of(&frame);
        if len > MAX_BODY {
            break;
        }
        body.resize(len as usize, 0);
        reader.read_exact(&mut body)?;
        at += FRAME as u64 + u64::from(len);
        if crc32c::crc32c(&body) != crc {
            continue;
        }
        if let Some(entry) = entry::decode(&body) {
            if !each(entry) {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::entry::{encode_outcome, MessageRef, NewOutcome, What};
    use crate::trace::hash;

    #[test]
    fn the_open_file_finds_keys_in_sorted_runs_and_the_tail_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut open = OpenFile::create(dir.path().join("0.open")).unwrap();
        // Two keys an entry: three runs and a tail. Ids repeat every 1,000 entries.
        for batch in 0..100u64 {
            let mut chunk = Vec::new();
            for i in 0..1_000u64 {
                let id = format!("M{i}");
                encode_outcome(
                    &mut chunk,
                    &NewOutcome {
                        time_unix_nanos: batch,
                        message: MessageRef {
                            log: 1,
                            record: batch * 1_000 + i,
                        },
                        id_hash: hash::control_id(id.as_bytes()),
                        what: What::Retrying,
                        endpoint: "e",
                        detail: "",
                        dead_letter: None,
                        control_id: &id,
                    },
                );
            }
            open.append(&mut chunk).unwrap();
        }
        assert_eq!(open.sorted, 3 * RUN);
        let found = open.offsets(hash::control_id(b"M7"));
        assert_eq!(found.len(), 100);
        assert!(found.windows(2).all(|w| w[0] < w[1]), "in file order");
        let records: Vec<u64> = found
            .iter()
            .map(|&o| open.entry_at(o).unwrap().unwrap().message().record)
            .collect();
        assert_eq!(records, (0..100).map(|b| b * 1_000 + 7).collect::<Vec<_>>());
        let one = open.offsets(hash::message_key(MessageRef {
            log: 1,
            record: 99_999,
        }));
        assert_eq!(one.len(), 1);
    }
}
