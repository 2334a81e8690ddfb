//! Helpers shared by the `wal_*` integration tests: owned messages that turn into the log's
//! borrowed records, and a look at the files of a shard directory.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};

use router::wal::{
    Appended, Log, MessageKind, NewRecord, OwnedOrigin, OwnedParsed, PendingRecord, Span, WalError,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub dests: Vec<String>,
    pub origin: OwnedOrigin,
    pub parsed: OwnedParsed,
    pub message: Vec<u8>,
}

impl Msg {
    /// Message `i`: an HL7v2-looking body padded to `len` bytes, with bytes that text
    /// handling would spoil (MLLP framing bytes, NUL, invalid UTF-8) at the end.
    pub fn new(i: u64, dests: &[&str], len: usize) -> Self {
        let mut message =
            format!("MSH|^~\\&|SEND|FAC|RECV|FAC|20240101||ADT^A01|CTL{i}|P|2.5\r").into_bytes();
        message.extend_from_slice(&[0x0B, 0x1C, 0x0D, 0x00, 0xFF, 0xFE]);
        while message.len() < len {
            message.push(b'A' + (message.len() % 26) as u8);
        }
        let control_id = format!("CTL{i}");
        let at = memchr_find(&message, control_id.as_bytes());
        Self {
            dests: dests.iter().map(|d| d.to_string()).collect(),
            origin: OwnedOrigin {
                listener: format!("mllp-{}", i % 3),
                peer: format!("10.0.0.{}:{}", i % 250, 40_000 + i % 1000),
                arrival_unix_nanos: 1_700_000_000_000_000_000 + i,
                control_id: control_id.clone(),
            },
            parsed: OwnedParsed {
                kind: Some(MessageKind::Hl7v2),
                control_id: Span {
                    offset: at as u32,
                    len: control_id.len() as u32,
                },
                soap_action: None,
            },
            message,
        }
    }

    /// What replay must hand back for this message when `pending` destinations are left.
    pub fn pending(&self, id: router::wal::RecordId, pending: &[u16]) -> PendingRecord {
        PendingRecord {
            id,
            destinations: self.dests.clone(),
            pending: pending.to_vec(),
            origin: self.origin.clone(),
            parsed: self.parsed.clone(),
            message: self.message.clone(),
        }
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the control id is in the message")
}

fn with_records<R>(msgs: &[Msg], f: impl FnOnce(&[NewRecord<'_>]) -> R) -> R {
    let dests: Vec<Vec<&str>> = msgs
        .iter()
        .map(|m| m.dests.iter().map(String::as_str).collect())
        .collect();
    let records: Vec<NewRecord<'_>> = msgs
        .iter()
        .zip(&dests)
        .map(|(m, d)| NewRecord {
            destinations: d,
            origin: m.origin.as_origin(),
            parsed: m.parsed.as_parsed(),
            message: &m.message,
        })
        .collect();
    f(&records)
}

pub fn append(log: &mut impl Log, msgs: &[Msg]) -> Result<Appended, WalError> {
    with_records(msgs, |r| log.append(r))
}

pub fn append_durably(log: &mut impl Log, msgs: &[Msg]) -> Result<Appended, WalError> {
    with_records(msgs, |r| log.append_durably(r))
}

pub fn replay(log: &impl Log) -> Vec<PendingRecord> {
    log.replay()
        .map(|r| r.expect("pending record reads back"))
        .collect()
}

/// The `.wal` files of a shard directory, in log order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".wal")
}

pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn quarantined(dir: &Path) -> Vec<PathBuf> {
    files_ending(&dir.join("quarantine"), "")
}

/// A tmpfs of `kib` KiB mounted on `dir` for a disk that fills for real, unmounted when
/// dropped; `None`, after a loud notice, where mounting is not allowed (not root). The tests
/// package has the same helper for the binary's tests (`tests::small_disk`).
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    pub fn mount(dir: &Path, kib: u32, test: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={kib}k"))
            .arg("tmpfs")
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                let notice = format!(
                    "\n!!!!!!!!!!\n!!! {test}: SKIPPED, NOT RUN: cannot mount a tmpfs on {} ({why}); \
                     it needs root or CAP_SYS_ADMIN\n!!!!!!!!!!\n",
                    dir.display()
                );
                println!("{notice}");
                eprintln!("{notice}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
