//! The on-disk form of one log record, encoded into and checked from byte slices (no I/O here).
//!
//! ```text
//! header  (12 bytes)  magic A7 'G' 'W' 'R' | payload length u32 LE | CRC32C u32 LE
//! payload, version 2  version u8 (2) | flags u8 | destination count u16 | seq u64 |
//!                     arrival unix nanos u64 | kind u8 | control id offset u32 | length u32 |
//!                     listener | peer | control id | SOAPAction |
//!                     destinations… | message (the rest of the payload)
//! payload, version 1  version u8 (1) | flags u8 (0) | destination count u16 | seq u64 |
//!                     arrival unix nanos u64 | listener | peer | control id |
//!                     destinations… | message
//! strings             u16 LE length + UTF-8 bytes
//! ```
//!
//! Version 2 keeps what ingress parsed ([`Parsed`]): the kind (0 not known, 1 HL7v2, 2 ITK),
//! where the control or tracking id sits in the message, and the SOAPAction (flags bit 0: one
//! was given; an empty string otherwise). Records are written in version 2 and read in either,
//! so a log written before it still recovers (what version 1 did not keep reads as not known).
//!
//! The CRC covers the length field and the payload, so a damaged length cannot pass for a good
//! one. The magic lets a scan find the next record after damage; a candidate only counts when
//! its length, CRC, payload structure and sequence number all check out, so message bytes that
//! happen to contain the magic are never mistaken for a record.
use super::types::{
    MessageKind, NewRecord, Origin, OwnedOrigin, Parsed, PendingRecord, RecordId, Span,
};

pub(crate) const MAGIC: [u8; 4] = [0xA7, b'G', b'W', b'R'];
pub(crate) const HEADER_LEN: usize = 12;
/// Larger payloads are refused on append and treated as damage when scanning.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;
const VERSION_1: u8 = 1;
const VERSION_2: u8 = 2;
/// Fixed part of a payload: version 1, and what version 2 adds to it.
const FIXED_V1: usize = 1 + 1 + 2 + 8 + 8;
const FIXED_V2: usize = FIXED_V1 + 1 + 4 + 4;
const FLAG_SOAP_ACTION: u8 = 1;

/// Bytes `record` takes in a segment, or why it cannot be logged.
pub(crate) fn encoded_len(record: &NewRecord<'_>) -> Result<usize, &'static str> {
    if record.destinations.is_empty() {
        return Err("a record needs at least one destination");
    }
    if record.destinations.len() > usize::from(u16::MAX) {
        return Err("more than 65535 destinations");
    }
    let mut len = FIXED_V2;
    for s in strings(record) {
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

/// The record's strings, in the order they are written.
fn strings<'a>(record: &NewRecord<'a>) -> impl Iterator<Item = &'a str> {
    let o = record.origin;
    let action = record.parsed.soap_action.unwrap_or("");
    [o.listener, o.peer, o.control_id, action]
        .into_iter()
        .chain(record.destinations.iter().copied())
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
    let parsed = &record.parsed;
    let flags = if parsed.soap_action.is_some() {
        FLAG_SOAP_ACTION
    } else {
        0
    };
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(VERSION_2);
    out.push(flags);
    out.extend_from_slice(&(record.destinations.len() as u16).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&record.origin.arrival_unix_nanos.to_le_bytes());
    out.push(match parsed.kind {
        None => 0,
        Some(MessageKind::Hl7v2) => 1,
        Some(MessageKind::Itk) => 2,
    });
    out.extend_from_slice(&parsed.control_id.offset.to_le_bytes());
    out.extend_from_slice(&parsed.control_id.len.to_le_bytes());
    for s in strings(record) {
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
    /// The format version the record was written in.
    pub version: u8,
    pub seq: u64,
    pub destination_count: u16,
    pub origin: Origin<'a>,
    pub parsed: Parsed<'a>,
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
            parsed: self.parsed.into(),
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
    if !(FIXED_V1..=MAX_PAYLOAD).contains(&len) {
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
    let fixed_len = match p.first() {
        Some(&VERSION_1) => FIXED_V1,
        Some(&VERSION_2) => FIXED_V2,
        _ => return Err("unknown record version"),
    };
    let (fixed, rest) = p.split_at_checked(fixed_len).ok_or("payload too short")?;
    let flags = fixed[1];
    let destination_count = u16::from_le_bytes([fixed[2], fixed[3]]);
    let seq = u64_at(fixed, 4);
    let arrival_unix_nanos = u64_at(fixed, 12);
    let (listener, rest) = take_str(rest)?;
    let (peer, rest) = take_str(rest)?;
    let (control_id, rest) = take_str(rest)?;
    let (parsed, rest) = if fixed[0] == VERSION_2 {
        let kind = match fixed[20] {
            0 => None,
            1 => Some(MessageKind::Hl7v2),
            2 => Some(MessageKind::Itk),
            _ => return Err("unknown message kind"),
        };
        let span = Span {
            offset: u32_at(fixed, 21),
            len: u32_at(fixed, 25),
        };
        let (action, rest) = take_str(rest)?;
        let parsed = Parsed {
            kind,
            control_id: span,
            soap_action: (flags & FLAG_SOAP_ACTION != 0).then_some(action),
        };
        (parsed, rest)
    } else {
        (Parsed::default(), rest)
    };
    let dest_start = rest;
    let mut tail = rest;
    for _ in 0..destination_count {
        tail = take_str(tail)?.1;
    }
    let destinations = &dest_start[..dest_start.len() - tail.len()];
    Ok(View {
        version: fixed[0],
        seq,
        destination_count,
        origin: Origin {
            listener,
            peer,
            arrival_unix_nanos,
            control_id,
        },
        parsed,
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

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
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
            parsed: Parsed {
                kind: Some(MessageKind::Itk),
                control_id: Span { offset: 3, len: 8 },
                soap_action: Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0"),
            },
            message,
        }
    }

    /// What a cluster node publishes reads back whole, and nothing but a whole record passes.
    #[test]
    fn a_standalone_record_reads_back_with_every_destination_pending() {
        let dests = ["RXA", "LAB-EAST"];
        let rec = sample(&dests, b"MSH|^~\\&|A|B\rPID|1\r");
        let bytes = crate::wal::record_bytes(7, &rec).unwrap();
        let back = crate::wal::record_from_bytes(&bytes).unwrap();
        assert_eq!(back.id, RecordId(7));
        assert_eq!(back.destinations, ["RXA", "LAB-EAST"]);
        assert_eq!(back.pending, [0, 1]);
        assert_eq!(back.message, rec.message);
        assert_eq!(back.origin.control_id, "MSG00001");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            crate::wal::record_from_bytes(&longer),
            Err("bytes after the record")
        );
        let mut flipped = bytes;
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            crate::wal::record_from_bytes(&flipped),
            Err("checksum mismatch")
        );
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
        assert_eq!(view.parsed, rec.parsed);
        assert_eq!(view.destinations().collect::<Vec<_>>(), dests);
        assert_eq!(view.message, rec.message);
    }

    #[test]
    fn no_soap_action_and_an_empty_one_stay_apart() {
        let dests = ["A"];
        for action in [None, Some("")] {
            let mut rec = sample(&dests, b"x");
            rec.parsed.soap_action = action;
            let mut buf = Vec::new();
            encode(1, &rec, &mut buf).unwrap();
            assert_eq!(check(&buf).unwrap().0.parsed.soap_action, action);
        }
    }

    /// A version 1 record, laid out as the encoder before version 2 wrote it (the integration
    /// tests read a whole segment written by that encoder).
    #[test]
    fn a_version_1_record_reads_with_nothing_parsed() {
        let mut payload = vec![1, 0];
        payload.extend_from_slice(&1u16.to_le_bytes());
        payload.extend_from_slice(&9u64.to_le_bytes());
        payload.extend_from_slice(&77u64.to_le_bytes());
        for s in ["in", "10.0.0.1:1", "CTL1", "EPR"] {
            payload.extend_from_slice(&(s.len() as u16).to_le_bytes());
            payload.extend_from_slice(s.as_bytes());
        }
        payload.extend_from_slice(b"MSH|^~\\&|A");
        let len = (payload.len() as u32).to_le_bytes();
        let crc = checksum(&len, &payload);
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf.extend_from_slice(&payload);
        let (view, n) = check(&buf).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!((view.seq, view.origin.control_id), (9, "CTL1"));
        assert_eq!(view.parsed, Parsed::default());
        assert_eq!(view.destinations().collect::<Vec<_>>(), ["EPR"]);
        assert_eq!(view.message, b"MSH|^~\\&|A");
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
