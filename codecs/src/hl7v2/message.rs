//! One ER7 message as a lazy, borrowed view.
//!
//! [`Message::parse`] only checks that the input starts with `MSH` and reads the separators
//! (after an optional UTF-8 byte-order mark and blank lines, which real files carry); everything
//! else is found when asked for. [`Message::validate`] is the full structural scan, for callers
//! that want to refuse a broken message before accepting it.
//!
//! Offsets (in errors and [`Segment::offset`]) count from the start of the slice given to
//! `parse`, so they point into the caller's buffer.

use memchr::{memchr2, memchr3};

use super::error::{ErrorKind, ParseError};
use super::field::non_empty;
use super::lines::{skip_preamble, Lines};
use super::msh::Msh;
use super::path::FieldPath;
use super::segment::{is_header_line, Segment};
use super::separators::{is_id_char, Separators};

/// How many bytes of the first line `parse` looks at: `MSH`, MSH-1, and MSH-2 with room to
/// tell "5 encoding characters" from "too many".
const HEAD: usize = 16;

/// A parsed (lazily) HL7v2 message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    start: usize,
    seps: Separators,
}

impl<'a> Message<'a> {
    /// Checks for `MSH` and reads the separators from MSH-1/MSH-2. A leading UTF-8 BOM and
    /// blank lines are skipped. Cheap: looks at the first 16 bytes of the MSH line only.
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let start = skip_preamble(bytes);
        let rest = bytes.get(start..).unwrap_or_default();
        if rest.is_empty() {
            return Err(ParseError::new(bytes.len(), ErrorKind::Empty));
        }
        if !rest.starts_with(b"MSH") {
            return Err(ParseError::new(start, ErrorKind::NotMsh));
        }
        if let Some(seps) = Separators::fast_path(rest) {
            return Ok(Message { bytes, start, seps });
        }
        let head = rest.get(..HEAD).unwrap_or(rest);
        let head = match memchr2(b'\r', b'\n', head) {
            Some(end) => head.get(..end).unwrap_or(head),
            None => head,
        };
        let (seps, _) = Separators::from_header(head, start)?;
        Ok(Message { bytes, start, seps })
    }

    /// The input as given to [`parse`](Self::parse).
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Offset of `MSH` in [`bytes`](Self::bytes) (non-zero after a BOM or blank lines).
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// The separators from MSH-1/MSH-2.
    #[inline]
    pub fn separators(&self) -> &Separators {
        &self.seps
    }

    /// All segments in order, blank lines skipped.
    #[inline]
    pub fn segments(&self) -> Segments<'a> {
        Segments {
            bytes: self.bytes,
            lines: Lines::new(self.bytes, self.start),
            seps: self.seps,
        }
    }

    /// The first segment with this id.
    pub fn segment(&self, id: &[u8]) -> Option<Segment<'a>> {
        self.segments().find(|s| s.is(id))
    }

    /// The typed MSH view, computed in one pass over the MSH line.
    #[inline]
    pub fn msh(&self) -> Msh<'a> {
        Msh::scan(
            self.bytes.get(self.start..).unwrap_or_default(),
            self.start,
            self.seps,
        )
    }

    /// The raw value at `path` in the first segment with that id; `None` when absent or empty.
    /// Without a component, the whole field (all repetitions) or the named repetition.
    pub fn get(&self, path: &FieldPath) -> Option<&'a [u8]> {
        let n = usize::from(path.field());
        let mut field = if path.segment() == b"MSH" {
            self.msh().field(n)?
        } else {
            self.segment(path.segment())?.field(n)?
        };
        if let Some(r) = path.repetition() {
            field = field.repetition(usize::from(r))?;
        }
        match (path.component(), path.subcomponent()) {
            (Some(c), Some(s)) => field.subcomponent(usize::from(c), usize::from(s)),
            (Some(c), None) => field.component(usize::from(c)),
            _ => non_empty(field.raw()),
        }
    }

    /// Byte offset of `part` in [`bytes`](Self::bytes) when it is a slice of them (any value this
    /// view returned), for error reports.
    pub fn offset_of(&self, part: &[u8]) -> Option<usize> {
        let base = self.bytes.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        (at.checked_add(part.len())? <= self.bytes.len()).then_some(at)
    }

    /// The full structural check: every segment id is 3 upper-case letters or digits starting
    /// with a letter, followed by the field separator or the line end; no second
    /// `MSH`/`FHS`/`BHS`/`BTS`/`FTS` (use [`split_messages`](super::split_messages) for files);
    /// no NUL, VT or FS byte (they break MLLP framing). Required-field content is the caller's
    /// policy and is not checked. Returns the first problem found.
    pub fn validate(&self) -> Result<(), ParseError> {
        let fs = self.seps.field;
        for (index, seg) in self.segments().enumerate() {
            let raw = seg.raw();
            let id = match raw {
                [a, b, c, rest @ ..]
                    if a.is_ascii_uppercase()
                        && is_id_char(*b)
                        && is_id_char(*c)
                        && rest.first().is_none_or(|&f| f == fs) =>
                {
                    [*a, *b, *c]
                }
                _ => return Err(ParseError::new(seg.offset(), ErrorKind::BadSegmentId)),
            };
            if index > 0 && matches!(&id, b"MSH" | b"FHS" | b"BHS" | b"BTS" | b"FTS") {
                return Err(ParseError::at(
                    seg.offset(),
                    id,
                    None,
                    ErrorKind::NestedHeader,
                ));
            }
            if let Some(i) = memchr3(0x00, 0x0B, 0x1C, raw) {
                let byte = raw.get(i).copied().unwrap_or(0);
                let field = field_at(raw, i, fs);
                return Err(ParseError::at(
                    seg.offset() + i,
                    id,
                    field,
                    ErrorKind::ControlByte { byte },
                ));
            }
        }
        Ok(())
    }
}

/// Field number (HL7 numbering) holding byte `i` of a segment line.
fn field_at(raw: &[u8], i: usize, fs: u8) -> Option<u16> {
    let before = raw.get(..i).unwrap_or(raw);
    let k = memchr::memchr_iter(fs, before).count();
    let n = if is_header_line(raw, fs) { k + 1 } else { k };
    (n > 0).then(|| u16::try_from(n).unwrap_or(u16::MAX))
}

/// Iterator over the segments of a message.
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    bytes: &'a [u8],
    lines: Lines<'a>,
    seps: Separators,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    #[inline]
    fn next(&mut self) -> Option<Segment<'a>> {
        loop {
            let line = self.lines.next()?;
            if line.end > line.start {
                let raw = self.bytes.get(line.start..line.end)?;
                return Some(Segment::new(raw, line.start, self.seps));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|SEND|FAC|RECV|RFAC|20240101||ADT^A01^ADT_A01|MSG1|P|2.5\rEVN|A01|20240101\rPID|1||123^^^H^MR~456^^^N^NH||DOE^JOHN^^^^^L||19700101|M\rPV1|1|I\rOBX|1|TX|||a\\F\\b\\.br\\c\r";

    #[test]
    fn parse_and_walk() {
        let m = Message::parse(ADT).unwrap();
        assert_eq!(m.separators(), &Separators::default());
        let ids: Vec<&[u8]> = m.segments().map(|s| s.id()).collect();
        assert_eq!(ids, [&b"MSH"[..], b"EVN", b"PID", b"PV1", b"OBX"]);
        let pid = m.segment(b"PID").unwrap();
        assert_eq!(
            pid.offset(),
            ADT.windows(4).position(|w| w == b"PID|").unwrap()
        );
        assert_eq!(pid.field(5).unwrap().component(2), Some(&b"JOHN"[..]));
        assert!(m.segment(b"ZZZ").is_none());
        assert!(m.segment(b"PI").is_none());
        assert_eq!(m.msh().control_id(), Some(&b"MSG1"[..]));
        m.validate().unwrap();
    }

    #[test]
    fn every_line_ending() {
        let lf: Vec<u8> = ADT
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect();
        let crlf = String::from_utf8(ADT.to_vec())
            .unwrap()
            .replace('\r', "\r\n");
        let mut mixed = ADT.to_vec();
        // CR, LF, CRLF and a blank line, all in one message.
        let positions: Vec<usize> = mixed
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\r')
            .map(|(i, _)| i)
            .collect();
        mixed[positions[0]] = b'\n';
        mixed.splice(positions[1]..=positions[1], *b"\r\n");
        mixed.splice(positions[2] + 1..=positions[2] + 1, *b"\n\n");
        for input in [ADT, &lf[..], crlf.as_bytes(), &mixed[..]] {
            let m = Message::parse(input).unwrap();
            let ids: Vec<&[u8]> = m.segments().map(|s| s.id()).collect();
            assert_eq!(ids, [&b"MSH"[..], b"EVN", b"PID", b"PV1", b"OBX"]);
            let pid = m.segment(b"PID").unwrap();
            assert_eq!(pid.raw().last(), Some(&b'M'));
            assert_eq!(m.msh().version(), Some(&b"2.5"[..]));
            assert_eq!(m.msh().line().last(), Some(&b'5'));
            m.validate().unwrap();
        }
    }

    #[test]
    fn preamble_is_skipped_and_offsets_stay_in_the_input() {
        let mut input = b"\xEF\xBB\xBF\r\n".to_vec();
        input.extend_from_slice(ADT);
        let m = Message::parse(&input).unwrap();
        assert_eq!(m.start(), 5);
        assert_eq!(m.segments().next().unwrap().offset(), 5);
        assert_eq!(m.msh().offset(), 5);
        let cid = m.msh().control_id().unwrap();
        assert_eq!(m.offset_of(cid), Some(5 + 54));
        assert_eq!(&input[5 + 54..5 + 58], b"MSG1");
        assert_eq!(m.offset_of(b"MSG1"), None, "not a slice of the input");
    }

    #[test]
    fn get_by_path() {
        let m = Message::parse(ADT).unwrap();
        let get = |p: &str| m.get(&FieldPath::parse(p).unwrap());
        assert_eq!(get("MSH-1"), Some(&b"|"[..]));
        assert_eq!(get("MSH-2"), Some(&b"^~\\&"[..]));
        assert_eq!(get("MSH-9"), Some(&b"ADT^A01^ADT_A01"[..]));
        assert_eq!(get("MSH-9.2"), Some(&b"A01"[..]));
        assert_eq!(get("PID-3"), Some(&b"123^^^H^MR~456^^^N^NH"[..]));
        assert_eq!(get("PID-3.1"), Some(&b"123"[..]));
        assert_eq!(get("PID-3[2]"), Some(&b"456^^^N^NH"[..]));
        assert_eq!(get("PID-3[2].5"), Some(&b"NH"[..]));
        assert_eq!(get("PID-3[2].5.1"), Some(&b"NH"[..]));
        assert_eq!(get("PID-3[3]"), None);
        assert_eq!(get("PID-3.2"), None, "empty component");
        assert_eq!(get("PID-2"), None, "empty field");
        assert_eq!(get("PID-99"), None, "absent field");
        assert_eq!(get("ZZZ-1"), None, "absent segment");
        assert_eq!(get("OBX-5"), Some(&b"a\\F\\b\\.br\\c"[..]));
        let obx5 = m.segment(b"OBX").unwrap().field(5).unwrap();
        assert_eq!(obx5.decoded(m.separators()).as_ref(), b"a|b\nc");
    }

    #[test]
    fn caret_separated_message() {
        let input = b"MSH^~|\\&^SENDING^200M^RECEIVING^200^20120918173931-0500^^ADT~A24^2003582144^T^2.4^^^AL^AL^^M\nPID^1^^11111~~~FOO&&0363~NI|22^^SMITH~JOHN\n";
        let m = Message::parse(input).unwrap();
        let msh = m.msh();
        assert_eq!(msh.message_type(), Some(&b"ADT"[..]));
        assert_eq!(msh.trigger_event(), Some(&b"A24"[..]));
        assert_eq!(msh.sending_application(), Some(&b"SENDING"[..]));
        assert_eq!(msh.control_id(), Some(&b"2003582144"[..]));
        let get = |p: &str| m.get(&FieldPath::parse(p).unwrap());
        assert_eq!(get("MSH-1"), Some(&b"^"[..]));
        assert_eq!(get("MSH-2"), Some(&b"~|\\&"[..]));
        assert_eq!(get("PID-3.4.3"), Some(&b"0363"[..]));
        assert_eq!(get("PID-3[2]"), Some(&b"22"[..]));
        m.validate().unwrap();
    }

    #[test]
    fn malformed_msh() {
        let cases: &[(&[u8], usize, ErrorKind)] = &[
            (b"", 0, ErrorKind::Empty),
            (b"\r\n\n", 3, ErrorKind::Empty),
            (b"PID|1", 0, ErrorKind::NotMsh),
            (b"\nXMSH|^~\\&|", 1, ErrorKind::NotMsh),
            (b"MS", 0, ErrorKind::NotMsh),
            (b"MSH", 3, ErrorKind::HeaderTooShort),
            (b"MSH\r|^~\\&", 3, ErrorKind::HeaderTooShort),
            (b"MSH|^~\r", 6, ErrorKind::TooFewEncodingChars { found: 2 }),
            (b"MSH|^~\\&#!|", 9, ErrorKind::TooManyEncodingChars),
            (b"MSH|^~\\&#!%$&*()|", 9, ErrorKind::TooManyEncodingChars),
            (
                b"MSH|^^\\&|",
                5,
                ErrorKind::DuplicateSeparator { byte: b'^' },
            ),
            (
                b"MSH|^~\\|||",
                7,
                ErrorKind::TooFewEncodingChars { found: 3 },
            ),
            (b"MSH\x00^~\\&", 3, ErrorKind::BadSeparator { byte: 0 }),
            (b"MSH|^~\\\t", 7, ErrorKind::BadSeparator { byte: b'\t' }),
        ];
        for (input, offset, kind) in cases {
            let e = Message::parse(input).unwrap_err();
            assert_eq!(
                (e.offset, e.kind),
                (*offset, *kind),
                "{:?}",
                input.escape_ascii().to_string()
            );
        }
        let e = Message::parse(b"MSH|^~\\").unwrap_err();
        assert_eq!((e.segment, e.field), (Some(*b"MSH"), Some(2)));
        assert!(e.to_string().starts_with("byte 7, MSH-2: "), "{e}");
    }

    #[test]
    fn validate_reports_where() {
        let e = Message::parse(b"MSH|^~\\&|A\rPID|1\rpv1|x\r")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            (e.offset, e.kind, e.segment),
            (17, ErrorKind::BadSegmentId, None)
        );
        let e = Message::parse(b"MSH|^~\\&|A\rPIDX|1\r")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!((e.offset, e.kind), (11, ErrorKind::BadSegmentId));
        let e = Message::parse(b"MSH|^~\\&|A\rPI\r")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!((e.offset, e.kind), (11, ErrorKind::BadSegmentId));
        let e = Message::parse(b"MSH|^~\\&|A\rPID|1|a\x0Bb\r")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            (e.offset, e.kind, e.segment, e.field),
            (
                18,
                ErrorKind::ControlByte { byte: 0x0B },
                Some(*b"PID"),
                Some(2)
            )
        );
        let e = Message::parse(b"MSH|^~\\&|A\x1C\r")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!((e.offset, e.segment, e.field), (10, Some(*b"MSH"), Some(3)));
        let e = Message::parse(b"MSH|^~\\&|A\rEVN|1\rMSH|^~\\&|B\r")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(
            (e.offset, e.kind, e.segment),
            (17, ErrorKind::NestedHeader, Some(*b"MSH"))
        );
        // A segment with no fields is fine, and so is a Z-segment.
        Message::parse(b"MSH|^~\\&|A\rEVN\rZU1|x\r")
            .unwrap()
            .validate()
            .unwrap();
    }
}
