//! The file form of one dead letter (no I/O here).
//!
//! ```text
//! header   "GGLDEAD" 0x01 | payload length u32 LE | CRC32C u32 LE of length field + payload
//! payload  time unix nanos u64 | reason u8 | has reply u8 | source shard u32 (MAX: none) |
//!          source seq u64 | endpoint | detail | listener | peer | arrival unix nanos u64 |
//!          control id | reply (u32 LE length + bytes, when present) | message (the rest)
//! strings  u16 LE length + UTF-8 bytes
//! ```
use super::{DeadLetter, DeadLetterId, NewDeadLetter, Reason, Source};
use crate::wal::{OwnedOrigin, RecordId};

const MAGIC: [u8; 8] = *b"GGLDEAD\x01";
const HEADER_LEN: usize = 16;
const NO_SHARD: u32 = u32::MAX;

pub(super) fn encode(letter: &NewDeadLetter<'_>) -> Result<Vec<u8>, &'static str> {
    let mut p = Vec::with_capacity(128 + letter.message.len());
    p.extend_from_slice(&letter.time_unix_nanos.to_le_bytes());
    p.push(letter.reason.code());
    p.push(u8::from(letter.reply.is_some()));
    let (shard, seq) = letter
        .source
        .map_or((NO_SHARD, 0), |s| (s.shard, s.record.0));
    p.extend_from_slice(&shard.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut p, letter.endpoint)?;
    put_str(&mut p, clip(letter.detail, usize::from(u16::MAX)))?;
    let o = &letter.origin;
    put_str(&mut p, o.listener)?;
    put_str(&mut p, o.peer)?;
    p.extend_from_slice(&o.arrival_unix_nanos.to_le_bytes());
    put_str(&mut p, o.control_id)?;
    if let Some(reply) = letter.reply {
        let len = u32::try_from(reply.len()).map_err(|_| "reply larger than 4 GiB")?;
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(reply);
    }
    p.extend_from_slice(letter.message);
    let len = u32::try_from(p.len()).map_err(|_| "dead letter larger than 4 GiB")?;
    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), &p);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&p);
    Ok(out)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), &'static str> {
    let len = u16::try_from(s.len()).map_err(|_| "a name or id longer than 65535 bytes")?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub(super) fn decode(id: DeadLetterId, buf: &[u8]) -> Result<DeadLetter, &'static str> {
    let (header, payload) = buf.split_at_checked(HEADER_LEN).ok_or("file too short")?;
    if header[..8] != MAGIC {
        return Err("not a dead letter (bad magic)");
    }
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if payload.len() != len as usize {
        return Err("length does not match the file size");
    }
    let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    if crc32c::crc32c_append(crc32c::crc32c(&header[8..12]), payload) != crc {
        return Err("checksum mismatch");
    }
    let mut r = Reader(payload);
    let time_unix_nanos = r.u64()?;
    let reason = Reason::from_code(r.u8()?);
    let has_reply = r.u8()? != 0;
    let shard = r.u32()?;
    let seq = r.u64()?;
    let endpoint = r.str()?;
    let detail = r.str()?;
    let listener = r.str()?;
    let peer = r.str()?;
    let arrival_unix_nanos = r.u64()?;
    let control_id = r.str()?;
    let reply = if has_reply {
        let n = r.u32()? as usize;
        Some(r.take(n)?.to_vec())
    } else {
        None
    };
    Ok(DeadLetter {
        id,
        time_unix_nanos,
        endpoint,
        reason,
        detail,
        reply,
        source: (shard != NO_SHARD).then_some(Source {
            shard,
            record: RecordId(seq),
        }),
        origin: OwnedOrigin {
            listener,
            peer,
            arrival_unix_nanos,
            control_id,
        },
        message: r.0.to_vec(),
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let (head, rest) = self.0.split_at_checked(n).ok_or("truncated field")?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        self.array().map(u64::from_le_bytes)
    }

    fn str(&mut self) -> Result<String, &'static str> {
        let n = usize::from(u16::from_le_bytes(self.array()?));
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "string is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::Origin;

    #[test]
    fn round_trip_and_every_flip_detected() {
        let letter = NewDeadLetter {
            time_unix_nanos: 5,
            endpoint: "PAS",
            reason: Reason::Rejected,
            detail: "MSA-1 AR: unknown patient",
            reply: Some(b"MSH|...\rMSA|AR|1\r"),
            source: Some(Source {
                shard: 1,
                record: RecordId(9),
            }),
            origin: Origin {
                listener: "in",
                peer: "1.2.3.4:5",
                arrival_unix_nanos: 4,
                control_id: "1",
            },
            message: b"MSH|^~\\&|\r",
        };
        let bytes = encode(&letter).unwrap();
        let id = DeadLetterId("x".into());
        let back = decode(id.clone(), &bytes).unwrap();
        assert_eq!(back.endpoint, "PAS");
        assert_eq!(back.reason, Reason::Rejected);
        assert_eq!(back.detail, letter.detail);
        assert_eq!(back.reply.as_deref(), letter.reply);
        assert_eq!(back.source, letter.source);
        assert_eq!(back.origin.as_origin(), letter.origin);
        assert_eq!(back.message, letter.message);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(id.clone(), &bad).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(decode(id.clone(), &bytes[..n]).is_err());
        }
    }

    #[test]
    fn long_details_are_clipped_on_a_character_boundary() {
        let s = "é".repeat(40_000); // 80,000 bytes
        let c = clip(&s, 65_535);
        assert_eq!(c.len(), 65_534);
    }
}
