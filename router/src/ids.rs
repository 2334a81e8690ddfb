//! Identifiers the router makes up: UUIDs for ITK messages, responses and errors.
//!
//! Version-4 UUIDs in the upper-case form the ITK schema requires. They need to be unique, not
//! secret, so a fast per-shard generator seeded from the clock, the process and the shard is
//! enough, and keeps a syscall off the path of every ITK response.
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// A per-shard UUID generator (not `Sync`: one per thread).
pub struct Uuids {
    state: Cell<u64>,
}

impl Uuids {
    pub fn new(shard: usize) -> Uuids {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos
            ^ (u64::from(std::process::id()) << 32)
            ^ (shard as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Uuids {
            state: Cell::new(seed | 1),
        }
    }

    /// splitmix64: every call gives a well-mixed 64-bit value.
    fn next(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A new upper-case version-4 UUID.
    pub fn next_uuid(&self) -> String {
        let hi = (self.next() & !0xF000) | 0x4000; // version 4
        let lo = (self.next() & !(0xC << 60)) | (0x8 << 60); // RFC 4122 variant
        format!(
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_itk_shape_and_do_not_repeat() {
        let ids = Uuids::new(0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next_uuid();
            assert!(codecs::itk::is_itk_uuid(id.as_bytes()), "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "A" | "B"), "{id}");
            assert!(seen.insert(id));
        }
    }
}
