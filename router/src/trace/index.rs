//! The index as a whole: a folder of sealed files and the one open file, the writer that
//! appends what the shards send and seals and removes files, and lookups across them.
//!
//! Files are numbered in the order they were begun (`0000000000000042.idx`); the open one
//! ends in `.open`. The open file's keys live in memory behind a mutex shared by the writer
//! thread and the admin thread's lookups (never a shard: shards only send chunks down a
//! channel). A file is sealed once it holds [`Limits::entries`] entries or has been open for
//! [`Limits::age`], and sealed files whose last entry is older than the retention are removed.
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::entry::Entry;
use super::file::{OpenFile, SealedFile};
use crate::ingress::accept::unix_nanos;
use crate::private_fs;

/// When a file is sealed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub entries: u64,
    pub age: Duration,
    /// Offsets are 32 bits: a file is sealed well before 4 GiB.
    pub bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // The open file's keys are in memory (16 bytes each, about 2.5 an entry): 256 Ki
            // entries keep that near 10 MiB. Larger files would make lookups touch fewer files
            // at the cost of a larger saw-tooth in the router's memory.
            entries: 1 << 18,
            age: Duration::from_secs(3600),
            bytes: 1 << 30,
        }
    }
}

/// The folder and the open file, shared by the writer and lookups.
pub struct Index {
    dir: PathBuf,
    open: Mutex<Option<OpenFile>>,
}

/// The writer's side: seals, rolls over, removes old files.
pub struct Writer {
    index: Arc<Index>,
    limits: Limits,
    retention: Duration,
    next: u64,
    opened_at: SystemTime,
}

fn number_of(path: &Path) -> Option<(u64, bool)> {
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.split_once('.')?;
    let n = stem.parse().ok()?;
    match ext {
        "idx" => Some((n, true)),
        "open" => Some((n, false)),
        _ => None,
    }
}

fn sealed_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.idx"))
}

impl Index {
    /// Sealed files, oldest first.
    fn sealed(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| match number_of(&p) {
                Some((n, true)) => Some((n, p)),
                _ => None,
            })
            .collect();
        files.sort();
        Ok(files.into_iter().map(|(_, p)| p).collect())
    }

    fn open_file(&self) -> MutexGuard<'_, Option<OpenFile>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every entry with `key` whose time is in `from..=to`, oldest file first.
    pub fn find(&self, key: u64, from: u64, to: u64) -> io::Result<Vec<Entry>> {
        let mut found = Vec::new();
        for path in self.sealed()? {
            // Removed by retention between the listing and now: nothing to find there.
            let Ok(Some(file)) = SealedFile::open(&path) else {
                continue;
            };
            if !file.span.overlaps(from, to) {
                continue;
            }
            for offset in file.offsets(key)? {
                found.extend(file.entry_at(offset)?);
            }
        }
        if let Some(open) = self.open_file().as_ref() {
            if open.span.overlaps(from, to) {
                for offset in open.offsets(key) {
                    found.extend(open.entry_at(offset)?);
                }
            }
        }
        found.retain(|e| (from..=to).contains(&e.time_unix_nanos()));
        Ok(found)
    }

    /// Entries in `from..=to`, oldest file first, until `each` says stop.
    pub fn scan(&self, from: u64, to: u64, mut each: impl FnMut(Entry) -> bool) -> io::Result<()> {
        let mut going = true;
        let mut filtered = |e: Entry| {
            if (from..=to).contains(&e.time_unix_nanos()) {
                going = each(e);
            }
            going
        };
        for path in self.sealed()? {
            let Ok(Some(file)) = SealedFile::open(&path) else {
                continue;
            };
            if file.span.overlaps(from, to) {
                file.scan(&mut filtered)?;
            }
        }
        if let Some(open) = self.open_file().as_ref() {
            if open.span.overlaps(from, to) {
                open.scan(&mut filtered)?;
            }
        }
        Ok(())
    }
}

impl Writer {
    /// Opens the index in `dir` (made 0700 if absent): a file left open is recovered and
    /// sealed, and a new one begun.
    pub fn open(dir: &Path, limits: Limits, retention: Duration) -> io::Result<Writer> {
        private_fs::create_dir_all(dir)?;
        let mut next = 0;
        let mut left_open = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if let Some((n, sealed)) = number_of(&path) {
                next = next.max(n + 1);
                if !sealed {
                    left_open.push((n, path));
                }
            }
        }
        for (n, path) in left_open {
            let file = OpenFile::recover(path)?;
            file.seal(&sealed_name(dir, n))?;
        }
        let mut writer = Writer {
            index: Arc::new(Index {
                dir: dir.to_path_buf(),
                open: Mutex::new(None),
            }),
            limits,
            retention,
            next,
            opened_at: SystemTime::now(),
        };
        writer.begin()?;
        writer.remove_expired(SystemTime::now())?;
        Ok(writer)
    }

    pub fn index(&self) -> Arc<Index> {
        Arc::clone(&self.index)
    }

    fn begin(&mut self) -> io::Result<()> {
        let path = self.index.dir.join(format!("{:016}.open", self.next));
        let file = OpenFile::create(path)?;
        *self.index.open_file() = Some(file);
        self.opened_at = SystemTime::now();
        self.next += 1;
        Ok(())
    }

    /// Appends a chunk of framed entries from a shard.
    pub fn append(&mut self, chunk: &mut [u8]) -> io::Result<()> {
        let full = {
            let mut open = self.index.open_file();
            let Some(file) = open.as_mut() else {
                return Ok(());
            };
            file.append(chunk)?;
            file.span.entries >= self.limits.entries || file.bytes() >= self.limits.bytes
        };
        if full {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the open file (if it holds anything), begins the next, and removes what the
    /// retention no longer keeps.
    pub fn roll(&mut self) -> io::Result<()> {
        let taken = self.index.open_file().take();
        match taken {
            Some(file) if file.span.entries == 0 => {
                *self.index.open_file() = Some(file);
                self.opened_at = SystemTime::now();
            }
            taken => {
                if let Some(file) = taken {
                    // Lookups miss this file's entries for the milliseconds the seal and
                    // rename take: the trace is an operator's view, not a delivery record.
                    let n = self.next - 1;
                    file.seal(&sealed_name(&self.index.dir, n))?;
                }
                self.begin()?;
            }
        }
        self.remove_expired(SystemTime::now())
    }

    /// Seals a file open for longer than the limit (which also applies the retention).
    pub fn tick(&mut self, now: SystemTime) -> io::Result<()> {
        if now.duration_since(self.opened_at).unwrap_or_default() >= self.limits.age {
            self.roll()?;
        }
        Ok(())
    }

    /// Removes sealed files whose every entry is older than the retention.
    pub fn remove_expired(&mut self, now: SystemTime) -> io::Result<()> {
        let Some(cutoff) = now.checked_sub(self.retention) else {
            return Ok(());
        };
        let cutoff = unix_nanos(cutoff);
        for path in self.index.sealed()? {
            let expired = match SealedFile::open(&path)? {
                Some(file) => file.span.last < cutoff,
                None => false,
            };
            if expired {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Seals the open file at shutdown, so the next start needs no recovery.
    pub fn close(mut self) -> io::Result<()> {
        let taken = self.index.open_file().take();
        match taken {
            Some(file) if file.span.entries > 0 => {
                let n = self.next - 1;
                file.seal(&sealed_name(&self.index.dir, n))
            }
            Some(file) => std::fs::remove_file(&file.path),
            None => {
                self.next = 0;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::entry::{
        encode_outcome, encode_received, MessageKind, MessageRef, NewOutcome, NewReceived, What,
    };
    use crate::trace::hash;
    use std::os::unix::fs::PermissionsExt;

    fn received(out: &mut Vec<u8>, record: u64, time: u64, id: &str, patient: u64) {
        encode_received(
            out,
            &NewReceived {
                time_unix_nanos: time,
                message: MessageRef { log: 0, record },
                kind: MessageKind::Hl7v2,
                id_hash: hash::control_id(id.as_bytes()),
                patient_hashes: &[patient],
                control_id: id,
                listener: "in",
                peer: "127.0.0.1:1",
                rules: &["r"],
                destinations: &["epr"],
            },
        );
    }

    fn delivered(out: &mut Vec<u8>, record: u64, time: u64, id: &str) {
        encode_outcome(
            out,
            &NewOutcome {
                time_unix_nanos: time,
                message: MessageRef { log: 0, record },
                id_hash: hash::control_id(id.as_bytes()),
                what: What::Delivered,
                endpoint: "epr",
                detail: "AA",
                dead_letter: None,
                control_id: id,
            },
        );
    }

    fn ids(entries: &[Entry]) -> Vec<(u64, bool)> {
        entries
            .iter()
            .map(|e| (e.message().record, matches!(e, Entry::Received(_))))
            .collect()
    }

    const ALL: (u64, u64) = (0, u64::MAX);

    #[test]
    fn entries_are_found_open_sealed_and_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let limits = Limits {
            entries: 4,
            ..Limits::default()
        };
        let week = Duration::from_secs(7 * 86_400);
        let mut writer = Writer::open(&trace, limits, week).unwrap();
        let index = writer.index();
        let now = unix_nanos(SystemTime::now());
        for record in 0..10 {
            let mut chunk = Vec::new();
            received(
                &mut chunk,
                record,
                now + record,
                &format!("M{record}"),
                100 + record % 2,
            );
            delivered(&mut chunk, record, now + record + 1, &format!("M{record}"));
            writer.append(&mut chunk).unwrap();
        }
        // Two entries a message, four a file: five files sealed, one open (empty).
        let sealed = index.sealed().unwrap();
        assert_eq!(sealed.len(), 5);
        for path in &sealed {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let mode = std::fs::metadata(&trace).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let m7 = index.find(hash::control_id(b"M7"), ALL.0, ALL.1).unwrap();
        assert_eq!(ids(&m7), [(7, true), (7, false)]);
        let odd = index.find(101, ALL.0, ALL.1).unwrap();
        assert_eq!(
            ids(&odd),
            [(1, true), (3, true), (5, true), (7, true), (9, true)]
        );
        // A time range narrows what is read.
        let late = index.find(101, now + 5, now + 7).unwrap();
        assert_eq!(ids(&late), [(5, true), (7, true)]);
        assert!(index
            .find(hash::control_id(b"nope"), ALL.0, ALL.1)
            .unwrap()
            .is_empty());

        // Entries still in the open file are found too.
        let mut chunk = Vec::new();
        received(&mut chunk, 50, now + 50, "OPEN", 7);
        writer.append(&mut chunk).unwrap();
        let open = index.find(hash::control_id(b"OPEN"), ALL.0, ALL.1).unwrap();
        assert_eq!(ids(&open), [(50, true)]);
        let mut seen = Vec::new();
        index
            .scan(now + 8, now + 50, |e| {
                seen.push(e.message().record);
                true
            })
            .unwrap();
        // Outcomes count by their own time: record 7 was delivered at now + 8.
        assert_eq!(seen, [7, 8, 8, 9, 9, 50]);

        // A crash: the writer is gone without sealing, and half an entry is on the disk.
        let open_path = std::fs::read_dir(&trace)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "open"))
            .unwrap();
        drop(writer);
        let mut torn = Vec::new();
        received(&mut torn, 51, now + 51, "TORN", 7);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&open_path)
            .unwrap();
        std::io::Write::write_all(&mut file, &torn[..torn.len() / 2]).unwrap();
        drop(file);

        let writer = Writer::open(&trace, limits, week).unwrap();
        let index = writer.index();
        let open = index.find(hash::control_id(b"OPEN"), ALL.0, ALL.1).unwrap();
        assert_eq!(ids(&open), [(50, true)], "recovered and sealed");
        assert!(index
            .find(hash::control_id(b"TORN"), ALL.0, ALL.1)
            .unwrap()
            .is_empty());
        assert_eq!(index.sealed().unwrap().len(), 6);
        writer.close().unwrap();
        // Closing an empty open file leaves no file behind.
        assert!(std::fs::read_dir(&trace).unwrap().all(|e| e
            .unwrap()
            .path()
            .extension()
            .is_none_or(|x| x != "open")));
    }

    #[test]
    fn files_past_the_retention_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            entries: 2,
            ..Limits::default()
        };
        let hour = Duration::from_secs(3600);
        let mut writer = Writer::open(dir.path(), limits, hour).unwrap();
        let index = writer.index();
        let now = SystemTime::now();
        let old = unix_nanos(now - 3 * hour);
        let recent = unix_nanos(now - hour / 2);
        for (record, time) in [(1, old), (2, old + 1), (3, recent), (4, recent + 1)] {
            let mut chunk = Vec::new();
            received(&mut chunk, record, time, &format!("R{record}"), 9);
            writer.append(&mut chunk).unwrap();
        }
        // The old file went at the second roll; the recent one stays.
        assert_eq!(index.sealed().unwrap().len(), 1);
        assert_eq!(
            ids(&index.find(9, ALL.0, ALL.1).unwrap()),
            [(3, true), (4, true)]
        );
        writer.remove_expired(now + 2 * hour).unwrap();
        assert!(index.sealed().unwrap().is_empty());
    }
}
