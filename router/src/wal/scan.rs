//! Reading a whole segment's bytes back into records and damaged ranges (no I/O here).
//!
//! A record is accepted only if it checks out ([`record::check`]), its sequence number is at
//! least the one the segment's name gives, and it is higher than the one before it. At damage
//! the scan looks for the next occurrence of the record magic that starts an acceptable record;
//! everything in between is one damaged range. Damage with no acceptable record after it is the
//! segment's tail, unless it is all zeros: that is space preallocated for records never written
//! (`spare`). Each damaged range also says how many intact records (checksum good, but not
//! acceptable where they are) it holds: a tail holding none is a write torn by a crash; one
//! holding some is bytes that do not belong to this log, and must not be taken for a torn tail.
use std::ops::Range;

use super::record::{self, View, MAGIC};
use crate::known::within;

/// One good record found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub offset: u64,
    pub len: u64,
    pub seq: u64,
    pub destination_count: u16,
}

/// A damaged range, why its first bytes are not a record, and the intact records inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damaged {
    pub range: Range<u64>,
    pub reason: &'static str,
    pub intact: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    pub records: Vec<Found>,
    /// Damaged ranges between good records.
    pub corrupt: Vec<Damaged>,
    /// Damage that runs to the end of the file.
    pub tail: Option<Damaged>,
    /// Where zeros begin that run to the end of the file: unused preallocated space.
    pub unused_from: Option<u64>,
}

/// Scans a segment whose records must be numbered `first_seq` (its name) or higher.
pub(crate) fn scan(buf: &[u8], first_seq: u64) -> Scan {
    let mut out = Scan::default();
    let mut at = 0usize;
    let mut last_seq: Option<u64> = None;
    while at < buf.len() {
        match accept(buf, at, last_seq, first_seq) {
            Ok(found) => {
                last_seq = Some(found.seq);
                at += found.len as usize; // a record's length fits in memory: it came from `buf`
                out.records.push(found);
            }
            Err(reason) => match resync(buf, at + 1, last_seq, first_seq) {
                Some(next) => {
                    out.corrupt.push(damaged(buf, at..next, reason));
                    at = next;
                }
                None => {
                    let rest = within(buf, at..);
                    if rest.iter().all(|&b| b == 0) {
                        out.unused_from = Some(at as u64);
                    } else {
                        out.tail = Some(damaged(buf, at..buf.len(), reason));
                    }
                    break;
                }
            },
        }
    }
    out
}

fn damaged(buf: &[u8], range: Range<usize>, reason: &'static str) -> Damaged {
    Damaged {
        intact: Intact::new(within(buf, range.clone())).count(),
        range: range.start as u64..range.end as u64,
        reason,
    }
}

fn accept(
    buf: &[u8],
    at: usize,
    last_seq: Option<u64>,
    first_seq: u64,
) -> Result<Found, &'static str> {
    let (view, len) = record::check(within(buf, at..))?;
    if last_seq.is_some_and(|last| view.seq <= last) {
        return Err("sequence number out of order");
    }
    if view.seq < first_seq {
        return Err("sequence number below the segment's first");
    }
    Ok(Found {
        offset: at as u64,
        len: len as u64,
        seq: view.seq,
        destination_count: view.destination_count,
    })
}

/// The offset of the next acceptable record at or after `from`.
fn resync(buf: &[u8], from: usize, last_seq: Option<u64>, first_seq: u64) -> Option<usize> {
    let rest = buf.get(from..)?;
    memchr::memmem::find_iter(rest, &MAGIC)
        .map(|i| from + i)
        .find(|&at| accept(buf, at, last_seq, first_seq).is_ok())
}

/// Every intact record in some bytes, whatever its number or place: what can be salvaged
/// from damaged or foreign bytes. Yields (offset, record, length); after a record the walk
/// goes on at its end, so a record's message is never searched for records.
pub(crate) struct Intact<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Intact<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }
}

impl<'a> Iterator for Intact<'a> {
    type Item = (u64, View<'a>, usize);

    fn next(&mut self) -> Option<Self::Item> {
        while self.at < self.buf.len() {
            let rest = self.buf.get(self.at..)?;
            let i = memchr::memmem::find(rest, &MAGIC)?;
            let at = self.at + i;
            match record::check(self.buf.get(at..)?) {
                Ok((view, len)) => {
                    self.at = at + len;
                    return Some((at as u64, view, len));
                }
                Err(_) => self.at = at + 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::types::{NewRecord, Origin};

    fn segment(seqs: &[u64]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for &seq in seqs {
            let start = buf.len();
            // The message holds the magic on purpose: the scan must not take it for a record.
            let message = [b"abc".as_slice(), &MAGIC, b"def"].concat();
            let rec = NewRecord {
                destinations: &["E1"],
                origin: Origin {
                    listener: "l",
                    peer: "p",
                    arrival_unix_nanos: seq,
                    control_id: "c",
                },
                parsed: Default::default(),
                message: &message,
            };
            record::encode(seq, &rec, &mut buf).unwrap();
            spans.push(start..buf.len());
        }
        (buf, spans)
    }

    #[test]
    fn clean_segment_yields_every_record() {
        let (buf, spans) = segment(&[5, 6, 7]);
        let s = scan(&buf, 0);
        assert_eq!(
            s.records.iter().map(|f| f.seq).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        assert_eq!(s.records[2].offset, spans[2].start as u64);
        assert!(s.corrupt.is_empty() && s.tail.is_none());
    }

    #[test]
    fn damage_in_the_middle_is_skipped_to_the_next_record() {
        let (mut buf, spans) = segment(&[1, 2, 3]);
        buf[spans[1].start + 20] ^= 0xFF;
        let s = scan(&buf, 0);
        assert_eq!(s.records.iter().map(|f| f.seq).collect::<Vec<_>>(), [1, 3]);
        let expected = spans[1].start as u64..spans[2].start as u64;
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].range, expected);
        assert_eq!(s.corrupt[0].intact, 0);
        assert!(s.tail.is_none());
    }

    #[test]
    fn a_replayed_old_sequence_number_counts_as_damage() {
        let (mut buf, _) = segment(&[4, 5]);
        let (older, _) = segment(&[3]);
        buf.extend_from_slice(&older);
        let s = scan(&buf, 0);
        assert_eq!(s.records.len(), 2);
        let tail = s.tail.unwrap();
        assert_eq!(tail.range.start, (buf.len() - older.len()) as u64);
        assert_eq!(
            tail.intact, 1,
            "an intact record out of order is not a torn write"
        );
    }

    #[test]
    fn records_below_the_segment_name_are_damage_that_keeps_count_of_them() {
        let (buf, spans) = segment(&[8, 9, 10]);
        let s = scan(&buf, 9);
        assert_eq!(s.records.iter().map(|f| f.seq).collect::<Vec<_>>(), [9, 10]);
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].range, 0..spans[1].start as u64);
        assert_eq!(s.corrupt[0].intact, 1);
    }

    #[test]
    fn garbage_only_is_all_tail() {
        let s = scan(&[0x55u8; 100], 0);
        assert!(s.records.is_empty());
        assert_eq!(s.tail.map(|t| (t.range, t.intact)), Some((0..100, 0)));
        assert_eq!(s.unused_from, None);
    }

    #[test]
    fn zeros_after_the_last_record_are_unused_space_not_damage() {
        let (mut buf, spans) = segment(&[1, 2]);
        buf.resize(4096, 0);
        let s = scan(&buf, 0);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.unused_from, Some(spans[1].end as u64));
        assert!(s.tail.is_none() && s.corrupt.is_empty());

        // Nothing written at all: a preallocated segment a crash left empty.
        let s = scan(&[0u8; 4096], 0);
        assert!(s.records.is_empty() && s.tail.is_none());
        assert_eq!(s.unused_from, Some(0));
    }

    #[test]
    fn a_torn_record_in_preallocated_space_is_still_a_torn_tail() {
        let (whole, spans) = segment(&[1, 2]);
        // Record 2's first half reached the disk; the rest of the file is still zeros.
        let mut buf = whole[..spans[1].start + (spans[1].len() / 2)].to_vec();
        buf.resize(4096, 0);
        let s = scan(&buf, 0);
        assert_eq!(s.records.len(), 1);
        let tail = s.tail.unwrap();
        assert_eq!((tail.range.start, tail.intact), (spans[1].start as u64, 0));
        assert_eq!(s.unused_from, None);
    }
}
