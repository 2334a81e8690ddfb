//! The index's keys: a keyed hash of each patient id, a plain hash of each control id and of
//! each message's place in the log.
//!
//! Patient ids are patient data, so the index holds only HMAC-SHA256 of them (cut to 64 bits)
//! under a key kept in the data directory (`trace/key`, 0600): whoever copies the index without
//! the key cannot test it against a list of NHS numbers. Control ids and tracking ids are not
//! patient data and the index keeps them in clear for display; their hash (FNV-1a, a fixed
//! algorithm so the files read the same after an upgrade) only makes them a fixed-size key,
//! and every hit is checked against the clear id.
use std::io::{self, Read, Write};
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::entry::MessageRef;
use crate::private_fs;

const KEY_BYTES: usize = 32;

/// The key patient ids are hashed with.
pub struct PatientKey {
    key: hmac::Key,
}

impl PatientKey {
    /// Reads `path`, or makes it (32 random bytes, 0600) when absent.
    pub fn load_or_create(path: &Path) -> io::Result<PatientKey> {
        match std::fs::File::open(path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                if bytes.len() != KEY_BYTES {
                    return Err(io::Error::other(format!(
                        "{} holds {} bytes, not a {KEY_BYTES}-byte trace key",
                        path.display(),
                        bytes.len()
                    )));
                }
                Ok(PatientKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut bytes = [0u8; KEY_BYTES];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| io::Error::other("no random bytes for the trace key"))?;
                let mut file = private_fs::create_new(path)?;
                file.write_all(&bytes)?;
                file.sync_all()?;
                Ok(PatientKey::from_bytes(&bytes))
            }
            Err(e) => Err(e),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> PatientKey {
        PatientKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// The index key of one patient id (as written in the message, escapes and all).
    pub fn patient(&self, id: &[u8]) -> u64 {
        let tag = hmac::sign(&self.key, id);
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_le_bytes(first)
    }

    /// The keys of an HL7v2 message's patient ids: CX.1 of each PID-3 repetition (an NHS
    /// number and a hospital number are both ways to find the patient), at most `max`.
    pub fn pid3(&self, message: &[u8], out: &mut Vec<u64>, max: usize) {
        let Ok(parsed) = codecs::hl7v2::Message::parse(message) else {
            return;
        };
        let Some(field) = parsed.segment(b"PID").and_then(|pid| pid.field(3)) else {
            return;
        };
        for repetition in field.repetitions().take(max) {
            if let Some(id) = repetition.component(1) {
                out.push(self.patient(id));
            }
        }
    }
}

/// FNV-1a over `parts`, in order.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The index key of a control id or tracking id.
pub fn control_id(id: &[u8]) -> u64 {
    fnv1a(&[b"id:", id])
}

/// The index key of a message's place in the log, which links its outcomes to its arrival.
pub fn message_key(message: MessageRef) -> u64 {
    fnv1a(&[
        b"msg:",
        &message.log.to_le_bytes(),
        &message.record.to_le_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_ids_are_found_by_any_repetition_and_need_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = PatientKey::load_or_create(&path).unwrap();
        let again = PatientKey::load_or_create(&path).unwrap();
        assert_eq!(key.patient(b"9434765919"), again.patient(b"9434765919"));
        let other = PatientKey::from_bytes(&[7; 32]);
        assert_ne!(key.patient(b"9434765919"), other.patient(b"9434765919"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let msg = b"MSH|^~\\&|A|B|C|D|2026||ADT^A01|X1|P|2.4\rPID|1||H123^^^RX8^MR~9434765919^^^NHS^NH||DOE^J\r";
        let mut found = Vec::new();
        key.pid3(msg, &mut found, 4);
        assert_eq!(found, [key.patient(b"H123"), key.patient(b"9434765919")]);
        found.clear();
        key.pid3(b"not hl7", &mut found, 4);
        assert!(found.is_empty());
    }
}
