//! Delivery marks: the sidecar file `<segment>.marks` that says which destinations of the
//! segment's records are done. It is append-only and deleted together with its segment.
//!
//! ```text
//! file header  8 bytes   "GGLMRK" 0x00 0x01
//! entry        16 bytes  seq u64 LE | destination u16 LE | "MK" | CRC32C u32 LE of the 12 before
//! ```
//!
//! Entries have a fixed size, so a damaged entry never shifts the ones after it; it is skipped
//! and counted. Marks are written to the page cache and not fsynced: a mark lost in a power cut
//! only makes its destination receive the message again, which at-least-once delivery allows,
//! and fsyncing per mark would double the log's fsyncs. Writes go at tracked offsets
//! (`pwrite`), so a failed, partly written entry is overwritten by the next one rather than
//! shifting the rest.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::error::WalError;
use super::private;
use super::types::Mark;

pub(crate) const HEADER: [u8; 8] = *b"GGLMRK\x00\x01";
pub(crate) const ENTRY: usize = 16;
const ENTRY_TAG: [u8; 2] = *b"MK";

pub(crate) fn encode_entry(mark: Mark, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&mark.record.0.to_le_bytes());
    out.extend_from_slice(&mark.destination.to_le_bytes());
    out.extend_from_slice(&ENTRY_TAG);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MarksScan {
    /// (seq, destination) of every intact entry, in file order.
    pub marks: Vec<(u64, u16)>,
    /// Entries whose CRC or tag did not match (their marks are lost: duplicates, not loss).
    pub bad_entries: usize,
    /// File offset of the first damaged entry.
    pub first_bad: Option<u64>,
    /// Length of the file's whole entries: a torn last entry is cut off here before appending.
    pub keep_len: u64,
}

pub(crate) fn scan(buf: &[u8]) -> MarksScan {
    let body = buf.get(HEADER.len()..).unwrap_or_default();
    let mut out = MarksScan::default();
    let chunks = body.chunks_exact(ENTRY);
    out.keep_len = (HEADER.len() + body.len() / ENTRY * ENTRY) as u64;
    for (i, e) in chunks.enumerate() {
        let crc = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        if e[10..12] != ENTRY_TAG || crc32c::crc32c(&e[..12]) != crc {
            out.bad_entries += 1;
            out.first_bad
                .get_or_insert((HEADER.len() + i * ENTRY) as u64);
            continue;
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&e[..8]);
        out.marks
            .push((u64::from_le_bytes(seq), u16::from_le_bytes([e[8], e[9]])));
    }
    out
}

/// An open marks file, appended at its tracked length.
#[derive(Debug)]
pub(crate) struct MarksFile {
    file: File,
    pub path: PathBuf,
    pub len: u64,
}

impl MarksFile {
    /// Opens (creating with its header if absent) and cuts a torn last entry off at `keep_len`.
    pub fn open(path: PathBuf, keep_len: u64) -> Result<Self, WalError> {
        let file = private::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| WalError::io("open", &path, e))?;
        private::close_up_file(&file).map_err(|e| WalError::io("chmod", &path, e))?;
        let on_disk = file
            .metadata()
            .map_err(|e| WalError::io("stat", &path, e))?
            .len();
        let mut len = keep_len.max(HEADER.len() as u64);
        if on_disk < HEADER.len() as u64 {
            file.write_all_at(&HEADER, 0)
                .map_err(|e| WalError::write(&path, 0, e))?;
        }
        if on_disk > len {
            file.set_len(len)
                .map_err(|e| WalError::io("truncate", &path, e))?;
        }
        len = len.max(HEADER.len() as u64);
        Ok(Self { file, path, len })
    }

    pub fn append(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        self.file
            .write_all_at(bytes, self.len)
            .map_err(|e| WalError::write(&self.path, self.len, e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::types::RecordId;

    #[test]
    fn entries_round_trip_and_damage_is_counted_not_fatal() {
        let mut buf = HEADER.to_vec();
        for (seq, d) in [(1u64, 0u16), (2, 3), (70_000, 65_535)] {
            encode_entry(
                Mark {
                    record: RecordId(seq),
                    destination: d,
                },
                &mut buf,
            );
        }
        let clean = scan(&buf);
        assert_eq!(clean.marks, [(1, 0), (2, 3), (70_000, 65_535)]);
        assert_eq!(clean.keep_len, buf.len() as u64);

        buf[HEADER.len() + ENTRY + 1] ^= 4; // inside the second entry
        buf.extend_from_slice(&[1, 2, 3]); // a torn fourth entry
        let damaged = scan(&buf);
        assert_eq!(damaged.marks, [(1, 0), (70_000, 65_535)]);
        assert_eq!(damaged.bad_entries, 1);
        assert_eq!(damaged.first_bad, Some((HEADER.len() + ENTRY) as u64));
        assert_eq!(damaged.keep_len, (buf.len() - 3) as u64);
    }

    #[test]
    fn short_or_empty_files_scan_to_nothing() {
        assert_eq!(scan(b"").marks, []);
        assert_eq!(scan(b"GGL").keep_len, HEADER.len() as u64);
    }
}
