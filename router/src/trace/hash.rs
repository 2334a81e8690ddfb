//! The index's keys: a keyed hash of each patient id, a plain hash of each control id and of
//! each message's place in the log.
//!
//! Patient ids are patient data, so the index holds only a keyed hash of them, SipHash-2-4
//! under a random 128-bit key kept in the data directory (`trace/key`, 0600): whoever copies
//! the index without the key cannot test it against a list of NHS numbers. SipHash is a
//! pseudo-random function made for short inputs, which is what this needs; HMAC-SHA256 (ring)
//! did the same at 600 ns a value, on the shard, for every message: SipHash takes about 20. Control ids and tracking ids are not
//! patient data and the index keeps them in clear for display; their hash (FNV-1a, a fixed
//! algorithm so the files read the same after an upgrade) only makes them a fixed-size key,
//! and every hit is checked against the clear id.
use std::io::{self, Read, Write};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use super::entry::MessageRef;
use crate::private_fs;

const KEY_BYTES: usize = 16;

/// The key patient ids are hashed with.
pub struct PatientKey {
    k0: u64,
    k1: u64,
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

    /// The key of 16 bytes (fewer are padded with zeros, more are not read).
    pub fn from_bytes(bytes: &[u8]) -> PatientKey {
        let mut key = [0u8; KEY_BYTES];
        for (k, b) in key.iter_mut().zip(bytes) {
            *k = *b;
        }
        let [a, b, c, d, e, f, g, h, rest @ ..] = key;
        PatientKey {
            k0: u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            k1: u64::from_le_bytes(rest),
        }
    }

    /// The index key of one patient id (as written in the message, escapes and all).
    pub fn patient(&self, id: &[u8]) -> u64 {
        siphash24(self.k0, self.k1, id)
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

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under the key `(k0, k1)`.
fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut compress = |m: u64| {
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    };
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        compress(u64::from_le_bytes(w));
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    // The length's low byte goes in the top byte of the last word.
    last[7] = data.len() as u8;
    compress(u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
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
    fn siphash_gives_the_reference_vectors() {
        // The paper's key 00..0f and messages 00..(n-1).
        let key: Vec<u8> = (0..16).collect();
        let k = PatientKey::from_bytes(&key);
        assert_eq!(k.patient(b""), 0x726f_db47_dd0e_0e31);
        let fifteen: Vec<u8> = (0..15).collect();
        assert_eq!(k.patient(&fifteen), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn patient_ids_are_found_by_any_repetition_and_need_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = PatientKey::load_or_create(&path).unwrap();
        let again = PatientKey::load_or_create(&path).unwrap();
        assert_eq!(key.patient(b"9434765919"), again.patient(b"9434765919"));
        let other = PatientKey::from_bytes(&[7; 16]);
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
