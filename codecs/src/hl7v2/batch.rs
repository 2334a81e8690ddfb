//! Files and batches holding several messages.
//!
//! [`split_messages`] cuts an input into messages: each starts at a line beginning with `MSH`
//! and runs up to the next `MSH`, `FHS`, `BHS`, `BTS` or `FTS` line or the end (trailing blank
//! lines excluded, its last segment terminator included). The batch envelope lines
//! (`[FHS] { [BHS] { MSH… } [BTS] } [FTS]`) belong to no message and are skipped; blank lines,
//! a UTF-8 BOM and stray LFs are tolerated; any other line outside a message (log text before
//! the first MSH, say) is reported once per run as a [`ErrorKind::Garbage`] error at its offset,
//! and splitting goes on with the next message. Nothing here checks the messages themselves:
//! hand each slice to [`Message::parse`](super::Message::parse).
//!
//! [`Batch::scan`] additionally gives the envelope segments (FHS, BHS, BTS, FTS).

use super::error::{ErrorKind, ParseError};
use super::lines::Lines;
use super::segment::Segment;
use super::separators::Separators;

/// What a line is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Msh,
    Envelope,
    Other,
}

fn classify(line: &[u8]) -> LineKind {
    let Some(id) = line.get(..3) else {
        return if line.is_empty() {
            LineKind::Blank
        } else {
            LineKind::Other
        };
    };
    // `MSHX…` is not a header: the byte after the id must be a delimiter (or nothing).
    if line.get(3).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return LineKind::Other;
    }
    match id {
        b"MSH" => LineKind::Msh,
        b"FHS" | b"BHS" | b"BTS" | b"FTS" => LineKind::Envelope,
        _ => LineKind::Other,
    }
}

/// Splits a file, batch or stream of concatenated messages into messages. Yields
/// `(offset, bytes)` per message, or an error for each run of lines outside any message.
/// Errors from parsing a yielded message count from the message's own start: add `offset`
/// ([`ParseError::offset_by`]) to place them in the whole input.
pub fn split_messages(input: &[u8]) -> SplitMessages<'_> {
    let bom = if input.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    SplitMessages {
        input,
        lines: Lines::new(input, bom),
        message: None,
        garbage: None,
    }
}

/// Iterator returned by [`split_messages`].
#[derive(Debug, Clone)]
pub struct SplitMessages<'a> {
    input: &'a [u8],
    lines: Lines<'a>,
    /// Open message: start, and end of its last non-blank line (terminator included).
    message: Option<(usize, usize)>,
    /// Start of an open run of garbage lines.
    garbage: Option<usize>,
}

impl<'a> SplitMessages<'a> {
    /// Closes whatever is open; at most one of `message` and `garbage` is ever open.
    fn close(&mut self) -> Option<Result<(usize, &'a [u8]), ParseError>> {
        if let Some(at) = self.garbage.take() {
            return Some(Err(ParseError::new(at, ErrorKind::Garbage)));
        }
        let (start, end) = self.message.take()?;
        self.input.get(start..end).map(|m| Ok((start, m)))
    }
}

impl<'a> Iterator for SplitMessages<'a> {
    type Item = Result<(usize, &'a [u8]), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(line) = self.lines.next() else {
                return self.close();
            };
            let text = self.input.get(line.start..line.end).unwrap_or_default();
            match classify(text) {
                LineKind::Blank => {}
                LineKind::Msh => {
                    let closed = self.close();
                    self.message = Some((line.start, line.next));
                    if closed.is_some() {
                        return closed;
                    }
                }
                LineKind::Envelope => {
                    if let Some(closed) = self.close() {
                        return Some(closed);
                    }
                }
                LineKind::Other => {
                    if let Some((_, end)) = self.message.as_mut() {
                        *end = line.next;
                    } else if self.garbage.is_none() {
                        self.garbage = Some(line.start);
                    }
                }
            }
        }
    }
}

/// The envelope of a batch file: its first FHS, BHS, BTS and FTS segments.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    input: &'a [u8],
    fhs: Option<Segment<'a>>,
    bhs: Option<Segment<'a>>,
    bts: Option<Segment<'a>>,
    fts: Option<Segment<'a>>,
}

impl<'a> Batch<'a> {
    /// Finds the envelope segments. FHS and BHS carry their own separators (FHS-1/FHS-2,
    /// BHS-1/BHS-2, the MSH quirk); BTS and FTS use those of the header before them (or the
    /// defaults). Fails only when an FHS or BHS has unusable separators.
    pub fn scan(input: &'a [u8]) -> Result<Batch<'a>, ParseError> {
        let mut batch = Batch {
            input,
            fhs: None,
            bhs: None,
            bts: None,
            fts: None,
        };
        let mut seps = Separators::default();
        let bom = if input.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        for line in Lines::new(input, bom) {
            let text = input.get(line.start..line.end).unwrap_or_default();
            if classify(text) != LineKind::Envelope {
                continue;
            }
            let slot = match text.get(..3) {
                Some(b"FHS") => &mut batch.fhs,
                Some(b"BHS") => &mut batch.bhs,
                Some(b"BTS") => &mut batch.bts,
                _ => &mut batch.fts,
            };
            if text.starts_with(b"FHS") || text.starts_with(b"BHS") {
                seps = Separators::from_header(text, line.start)?.0;
            }
            if slot.is_none() {
                *slot = Some(Segment::new(text, line.start, seps));
            }
        }
        Ok(batch)
    }

    /// File header.
    pub fn fhs(&self) -> Option<Segment<'a>> {
        self.fhs
    }

    /// Batch header.
    pub fn bhs(&self) -> Option<Segment<'a>> {
        self.bhs
    }

    /// Batch trailer.
    pub fn bts(&self) -> Option<Segment<'a>> {
        self.bts
    }

    /// File trailer.
    pub fn fts(&self) -> Option<Segment<'a>> {
        self.fts
    }

    /// BTS-1, the message count the sender declared, when it is a number.
    pub fn declared_count(&self) -> Option<usize> {
        let raw = self.bts?.field(1)?.value()?;
        let text = std::str::from_utf8(raw).ok()?;
        text.trim().parse().ok()
    }

    /// The messages of the batch (see [`split_messages`]).
    pub fn messages(&self) -> SplitMessages<'a> {
        split_messages(self.input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7v2::Message;

    fn split(input: &[u8]) -> Vec<Result<(usize, &[u8]), ParseError>> {
        split_messages(input).collect()
    }

    const BATCH: &[u8] = b"FHS|^~\\&|SENDER|\nBHS|^~\\&|SENDER|\nMSH|^~\\&|A||B||1||ORU^R01|1|T|2.5|\nPID|||1|\nMSH|^~\\&|A||B||1||ORU^R01|2|T|2.5|\nPID|||2|\nBTS|2|\nFTS|1|\n";

    #[test]
    fn batch_file() {
        let got = split(BATCH);
        assert_eq!(got.len(), 2);
        let (o1, m1) = got[0].clone().unwrap();
        let (o2, m2) = got[1].clone().unwrap();
        assert_eq!(o1, 34);
        assert_eq!(m1, b"MSH|^~\\&|A||B||1||ORU^R01|1|T|2.5|\nPID|||1|\n");
        assert_eq!(o2, o1 + m1.len());
        assert_eq!(m2, b"MSH|^~\\&|A||B||1||ORU^R01|2|T|2.5|\nPID|||2|\n");
        assert_eq!(
            Message::parse(m2).unwrap().msh().control_id(),
            Some(&b"2"[..])
        );
        let batch = Batch::scan(BATCH).unwrap();
        assert_eq!(batch.fhs().unwrap().field(3).unwrap().raw(), b"SENDER");
        assert_eq!(batch.bhs().unwrap().field(2).unwrap().raw(), b"^~\\&");
        assert_eq!(batch.bhs().unwrap().offset(), 17);
        assert_eq!(batch.declared_count(), Some(2));
        assert_eq!(batch.fts().unwrap().field(1).unwrap().raw(), b"1");
        assert_eq!(batch.messages().count(), 2);
    }

    #[test]
    fn concatenated_with_blank_lines_and_stray_lfs() {
        let input = b"\n\r\nMSH|^~\\&|A\rEVN|1\r\n\n\nMSH|^~\\&|B\nEVN|2\n\n";
        let got = split(input);
        assert_eq!(got.len(), 2);
        let (o1, m1) = got[0].clone().unwrap();
        assert_eq!((o1, m1), (3, &b"MSH|^~\\&|A\rEVN|1\r\n"[..]));
        let (o2, m2) = got[1].clone().unwrap();
        assert_eq!((o2, m2), (23, &b"MSH|^~\\&|B\nEVN|2\n"[..]));
        // A blank line inside a message stays inside it.
        let got = split(b"MSH|^~\\&|A\r\rEVN|1\r");
        assert_eq!(got, [Ok((0, &b"MSH|^~\\&|A\r\rEVN|1\r"[..]))]);
        // No terminator at the very end.
        let got = split(b"MSH|^~\\&|A\rEVN|1");
        assert_eq!(got, [Ok((0, &b"MSH|^~\\&|A\rEVN|1"[..]))]);
    }

    #[test]
    fn garbage_is_reported_and_splitting_goes_on() {
        let input = b"log: starting\nmore log\nMSH|^~\\&|A\rEVN|1\rBTS|1\rjunk\rMSH|^~\\&|B\r";
        let got = split(input);
        assert_eq!(got.len(), 4);
        let e = got[0].clone().unwrap_err();
        assert_eq!((e.offset, e.kind), (0, ErrorKind::Garbage));
        assert_eq!(got[1].clone().unwrap(), (23, &b"MSH|^~\\&|A\rEVN|1\r"[..]));
        let e = got[2].clone().unwrap_err();
        assert_eq!((e.offset, e.kind), (46, ErrorKind::Garbage));
        assert_eq!(got[3].clone().unwrap(), (51, &b"MSH|^~\\&|B\r"[..]));
    }

    #[test]
    fn msh_lookalikes_are_not_boundaries() {
        let got = split(b"MSHH0\r");
        assert!(matches!(&got[..], [Err(e)] if e.offset == 0));
        let got = split(b"\x00\x00\x02MSH|0000|\r");
        assert!(matches!(&got[..], [Err(e)] if e.kind == ErrorKind::Garbage));
        // `MSH` alone is a (broken) message for Message::parse to reject.
        let got = split(b"MSH\r");
        assert_eq!(got, [Ok((0, &b"MSH\r"[..]))]);
        assert!(Message::parse(b"MSH\r").is_err());
    }

    #[test]
    fn bom_and_empty_inputs() {
        let got = split(b"\xEF\xBB\xBFMSH|^~\\&|A\n");
        assert_eq!(got, [Ok((3, &b"MSH|^~\\&|A\n"[..]))]);
        assert!(split(b"").is_empty());
        assert!(split(b"\n\r\n").is_empty());
        assert!(split(b"FHS|^~\\&\rFTS|0\r").is_empty());
    }

    #[test]
    fn batch_with_odd_separators_and_bad_headers() {
        let input = b"BHS^~|\\&^SENDER\rMSH^~|\\&^A\rBTS^1\r";
        let batch = Batch::scan(input).unwrap();
        assert_eq!(batch.bhs().unwrap().field(3).unwrap().raw(), b"SENDER");
        assert_eq!(batch.declared_count(), Some(1));
        assert_eq!(split(input).len(), 1);
        let e = Batch::scan(b"FHS|^^\\&|\r").unwrap_err();
        assert_eq!((e.offset, e.segment), (5, Some(*b"FHS")));
    }
}
