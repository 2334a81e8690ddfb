//! The on-disk form of one log record, encoded into and checked from byte slices (no I/O here).
//!
//! ```text
//! header  (12 bytes)  magic A7 'G' 'W' 'R' | payload length u32 LE | CRC32C u32 LE
//! payload             version u8 (1) | flags u8 (0) | destination count u16 | seq u64 |
//!                     arrival unix nanos u64 | listener | peer | control id |
//!                     destinations… | message (the rest of the payload)
//! strings             u16 LE length + UTF-8 bytes
//! ```
//!
//! The CRC covers the length field and the payload, so a damaged length cannot pass for a good
//! one. The magic lets a scan find the next record after damage; a candidate only counts when
//! its length, CRC, payload structure and sequence number all check out, so message bytes that
//! happen to contain the magic are never mistaken for a record.
use super::types::{NewRecord, Origin, OwnedOrigin, PendingRecord, RecordId};

pub(crate) const MAGIC: [u8; 4] = [0xA7, b'G', b'W', b'R'];
pub(crate) const HEADER_LEN: usize = 12;
/// Larger payloads are refused on append and treated as damage when scanning.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;
const VERSION: u8 = 1;
const FIXED: usize = 1 + 1 + 2 + 8 + 8;

/// Bytes `record` takes in a segment, or why it cannot be logged.
pub(crate) fn encoded_len(record: &NewRecord<'_>) -> Result<usize, &'static str> {
    if record.destinations.is_empty() {
        return Err("a record needs at least one destination");
    }
    if record.destinations.len() > usize::from(u16::MAX) {
        return Err("more than 65535 destinations");
    }
    let o = &record.origin;
    let mut len = FIXED;
    for s in [o.listener, o.peer, o.control_id]
        .into_iter()
        .chain(record.destinations.iter().copied())
    {
        if s.len() > usize::from(u16::MAX) {
            return Err("a name or id longer than 65535 bytes");
        }
        len += 2 + s.len();
    }
    len += record.message.len();
    if len > MAX_PAYLOAD {
        return Err("message larger than 256 MiB");
    }
    Ok(HEADER_LEN + len)
}

/// Appends the encoded record to `out`; returns its length.
pub(crate) fn encode(
    seq: u64,
    record: &NewRecord<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, &'static str> {
    let total = encoded_len(record)?;
    let start = out.len();
    out.reserve(total);
    let payload_len = (total - HEADER_LEN) as u32; // fits: total <= MAX_PAYLOAD + HEADER_LEN
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&(record.destinations.len() as u16).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&record.origin.arrival_unix_nanos.to_le_bytes());
    let o = &record.origin;
    for s in [o.listener, o.peer, o.control_id]
        .into_iter()
        .chain(record.destinations.iter().copied())
    {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(record.message);
    let crc = checksum(&out[start + 4..start + 8], &out[start + HEADER_LEN..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

fn checksum(len_field: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_field), payload)
}

/// A checked record, borrowing the segment's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub seq: u64,
    pub destination_count: u16,
    pub origin: Origin<'a>,
    destinations: &'a [u8],
    pub message: &'a [u8],
}

impl<'a> View<'a> {
    pub fn destinations(&self) -> impl Iterator<Item = &'a str> {
        let mut rest = self.destinations;
        (0..self.destination_count).filter_map(move |_| {
            let (s, tail) = take_str(rest).ok()?;
            rest = tail;
            Some(s)
        })
    }

    pub fn into_pending(self, pending: Vec<u16>) -> PendingRecord {
        PendingRecord {
            id: RecordId(self.seq),
            destinations: self.destinations().map(str::to_owned).collect(),
            pending,
            origin: OwnedOrigin::from(self.origin),
            message: self.message.to_vec(),
        }
    }
}

/// Checks the record starting at `buf[0]`: header, length, CRC and payload structure. Returns
/// the record and its total length.
pub(crate) fn check(buf: &[u8]) -> Result<(View<'_>, usize), &'static str> {
    let header = buf.get(..HEADER_LEN).ok_or("truncated header")?;
    if header[..4] != MAGIC {
        return Err("no record magic");
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !(FIXED..=MAX_PAYLOAD).contains(&len) {
        return Err("impossible record length");
    }
    let payload = buf
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or("record runs past the end of the file")?;
    let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if checksum(&header[4..8], payload) != stored {
        return Err("checksum mismatch");
    }
    Ok((parse_payload(payload)?, HEADER_LEN + len))
}

fn parse_payload(p: &[u8]) -> Result<View<'_>, &'static str> {
    let (fixed, rest) = p.split_at_checked(FIXED).ok_or("payload too short")?;
    if fixed[0] != VERSION {
        return Err("unknown record version");
    }
    let destination_count = u16::from_le_bytes([fixed[2], fixed[3]]);
    let seq = u64_at(fixed, 4);
    let arrival_unix_nanos = u64_at(fixed, 12);
    let (listener, rest) = take_str(rest)?;
    let (peer, rest) = take_str(rest)?;
    let (control_id, rest) = take_str(rest)?;
    let dest_start = rest;
    let mut tail = rest;
    for _ in 0..destination_count {
        tail = take_str(tail)?.1;
    }
    let destinations = &dest_start[..dest_start.len() - tail.len()];
    Ok(View {
        seq,
        destination_count,
        origin: Origin {
            listener,
            peer,
            arrival_unix_nanos,
            control_id,
        },
        destinations,
        message: tail,
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn take_str(b: &[u8]) -> Result<(&str, &[u8]), &'static str> {
    let (len, rest) = b.split_at_checked(2).ok_or("truncated string length")?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let (s, rest) = rest.split_at_checked(len).ok_or("truncated string")?;
    let s = std::str::from_utf8(s).map_err(|_| "string is not UTF-8")?;
    Ok((s, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(dests: &'a [&'a str], message: &'a [u8]) -> NewRecord<'a> {
        NewRecord {
            destinations: dests,
            origin: Origin {
                listener: "mllp-in",
                peer: "10.1.2.3:4567",
                arrival_unix_nanos: 1_700_000_000_123_456_789,
                control_id: "MSG00001",
            },
            message,
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let dests = ["RXA", "LAB-EAST"];
        let rec = sample(&dests, b"MSH|^~\\&|A|B\rPID|1\r");
        let mut buf = vec![9, 9];
        let n = encode(42, &rec, &mut buf).unwrap();
        assert_eq!(n, buf.len() - 2);
        assert_eq!(encoded_len(&rec), Ok(n));
        let (view, len) = check(&buf[2..]).unwrap();
        assert_eq!(len, n);
        assert_eq!(view.seq, 42);
        assert_eq!(view.origin, rec.origin);
        assert_eq!(view.destinations().collect::<Vec<_>>(), dests);
        assert_eq!(view.message, rec.message);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let dests = ["A"];
        let mut buf = Vec::new();
        encode(7, &sample(&dests, b"hello"), &mut buf).unwrap();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(check(&bad).is_err(), "flip at byte {i} bit {bit} passed");
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let dests = ["A", "B"];
        let mut buf = Vec::new();
        encode(1, &sample(&dests, b"payload"), &mut buf).unwrap();
        for len in 0..buf.len() {
            assert!(check(&buf[..len]).is_err());
        }
    }

    #[test]
    fn refuses_what_the_format_cannot_hold() {
        let none: [&str; 0] = [];
        assert!(encoded_len(&sample(&none, b"x")).is_err());
        let long = "x".repeat(70_000);
        let dests = [long.as_str()];
        assert!(encoded_len(&sample(&dests, b"x")).is_err());
    }
}
