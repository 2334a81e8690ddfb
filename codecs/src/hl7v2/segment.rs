//! One segment (one line) of a message and its fields in HL7 numbering.
//!
//! The header quirk: in `MSH`, `FHS` and `BHS` the byte after the id IS field 1 (the field
//! separator) and the encoding characters are field 2, so splitting the line on the field
//! separator gives element `n` = field `n + 1`. In every other segment element `n` = field `n`.

use memchr::{memchr, memchr_iter};

use super::field::{nth_part, Field};
use super::separators::Separators;

/// One segment, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    raw: &'a [u8],
    offset: usize,
    seps: Separators,
}

impl<'a> Segment<'a> {
    pub(crate) fn new(raw: &'a [u8], offset: usize, seps: Separators) -> Self {
        Segment { raw, offset, seps }
    }

    /// The segment id: the bytes before the first field separator (`PID`, `ZU1`, …).
    #[inline]
    pub fn id(&self) -> &'a [u8] {
        match memchr(self.seps.field, self.raw) {
            Some(i) => self.raw.get(..i).unwrap_or(self.raw),
            None => self.raw,
        }
    }

    /// Whether the id is `id` (compares the first bytes only, no scan of the line).
    #[inline]
    pub fn is(&self, id: &[u8]) -> bool {
        self.raw.starts_with(id)
            && match self.raw.get(id.len()) {
                None => true,
                Some(&b) => b == self.seps.field,
            }
    }

    /// Byte offset of the segment's first byte in the input the message was parsed from.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The whole line, without its terminator.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The separators the segment is split with.
    #[inline]
    pub fn separators(&self) -> &Separators {
        &self.seps
    }

    /// Whether this is a header segment (`MSH`, `FHS`, `BHS`) with the numbering quirk.
    #[inline]
    pub fn is_header(&self) -> bool {
        is_header_line(self.raw, self.seps.field)
    }

    /// Field `n` in HL7 numbering (`MSH-1` is the field separator); `None` for `n == 0` and for
    /// fields past the end of the segment. A present but empty field is `Some`.
    pub fn field(&self, n: usize) -> Option<Field<'a>> {
        if n == 0 {
            return None;
        }
        if !self.is_header() {
            return nth_part(self.raw, self.seps.field, n + 1)
                .map(|raw| Field::new(raw, self.seps));
        }
        match n {
            1 => self.raw.get(3..4).map(|raw| Field::literal(raw, self.seps)),
            2 => nth_part(self.raw, self.seps.field, 2).map(|raw| Field::literal(raw, self.seps)),
            _ => nth_part(self.raw, self.seps.field, n).map(|raw| Field::new(raw, self.seps)),
        }
    }

    /// Number of fields (the highest field number present).
    pub fn field_count(&self) -> usize {
        let separators = memchr_iter(self.seps.field, self.raw).count();
        if self.is_header() {
            separators + 1
        } else {
            separators
        }
    }

    /// All fields from field 1, in order.
    pub fn fields(&self) -> Fields<'a> {
        let seps = self.seps;
        if self.is_header() {
            Fields {
                msh1: self.raw.get(3..4),
                rest: self.raw.get(4..),
                literal_left: 1,
                seps,
            }
        } else {
            let rest = memchr(seps.field, self.raw).and_then(|i| self.raw.get(i + 1..));
            Fields {
                msh1: None,
                rest,
                literal_left: 0,
                seps,
            }
        }
    }
}

/// Iterator over the fields of a segment.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    msh1: Option<&'a [u8]>,
    rest: Option<&'a [u8]>,
    literal_left: u8,
    seps: Separators,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        if let Some(fs) = self.msh1.take() {
            return Some(Field::literal(fs, self.seps));
        }
        let rest = self.rest?;
        let raw = match memchr(self.seps.field, rest) {
            Some(i) => {
                let (raw, tail) = rest.split_at(i);
                self.rest = tail.get(1..);
                raw
            }
            None => {
                self.rest = None;
                rest
            }
        };
        if self.literal_left > 0 {
            self.literal_left -= 1;
            return Some(Field::literal(raw, self.seps));
        }
        Some(Field::new(raw, self.seps))
    }
}

/// `MSH`, `FHS` or `BHS` followed by the field separator.
#[inline]
pub(crate) fn is_header_line(raw: &[u8], field: u8) -> bool {
    matches!(raw, [b'M', b'S', b'H', f, ..] | [b'F', b'H', b'S', f, ..] | [b'B', b'H', b'S', f, ..] if *f == field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(raw: &[u8]) -> Segment<'_> {
        Segment::new(raw, 0, Separators::default())
    }

    #[test]
    fn msh_numbering_quirk() {
        let s = seg(b"MSH|^~\\&|APP|FAC|||20240101||ADT^A01|42|P|2.5");
        assert!(s.is_header());
        assert_eq!(s.id(), b"MSH");
        assert_eq!(s.field(1).unwrap().raw(), b"|");
        assert_eq!(s.field(2).unwrap().raw(), b"^~\\&");
        assert_eq!(s.field(2).unwrap().component(2), None, "MSH-2 is not split");
        assert_eq!(s.field(3).unwrap().raw(), b"APP");
        assert_eq!(s.field(9).unwrap().component(2), Some(&b"A01"[..]));
        assert_eq!(s.field(12).unwrap().raw(), b"2.5");
        assert!(s.field(13).is_none());
        assert!(s.field(0).is_none());
        assert_eq!(s.field_count(), 12);
        let all: Vec<&[u8]> = s.fields().map(|f| f.raw()).collect();
        assert_eq!(all.len(), 12);
        assert_eq!(all[0], b"|");
        assert_eq!(all[1], b"^~\\&");
        assert_eq!(all[8], b"ADT^A01");
        assert!(s.fields().nth(1).unwrap().component(2).is_none());
    }

    #[test]
    fn batch_headers_share_the_quirk() {
        for raw in [&b"FHS|^~\\&|SENDER"[..], b"BHS|^~\\&|SENDER"] {
            let s = seg(raw);
            assert!(s.is_header());
            assert_eq!(s.field(2).unwrap().raw(), b"^~\\&");
            assert_eq!(s.field(3).unwrap().raw(), b"SENDER");
            assert_eq!(s.field_count(), 3);
        }
        let bts = seg(b"BTS|2|");
        assert!(!bts.is_header());
        assert_eq!(bts.field(1).unwrap().raw(), b"2");
        assert_eq!(bts.field(2).unwrap().raw(), b"");
    }

    #[test]
    fn ordinary_numbering() {
        let s = seg(b"PID|1||12345^^^H^MR~999||DOE^JOHN");
        assert_eq!(s.id(), b"PID");
        assert!(s.is(b"PID") && !s.is(b"PI") && !s.is(b"PV1"));
        assert_eq!(s.field(1).unwrap().raw(), b"1");
        assert!(s.field(2).unwrap().is_empty());
        assert_eq!(s.field(3).unwrap().repetition(2).unwrap().raw(), b"999");
        assert_eq!(s.field(5).unwrap().component(2), Some(&b"JOHN"[..]));
        assert!(s.field(6).is_none());
        assert_eq!(s.field_count(), 5);
        assert_eq!(s.fields().count(), 5);
        let bare = seg(b"EVN");
        assert_eq!((bare.id(), bare.field_count()), (&b"EVN"[..], 0));
        assert!(bare.field(1).is_none());
        assert_eq!(bare.fields().count(), 0);
        let trailing = seg(b"NTE|");
        assert_eq!(trailing.field_count(), 1);
        assert!(trailing.field(1).unwrap().is_empty());
    }

    #[test]
    fn caret_as_field_separator() {
        let seps = Separators {
            field: b'^',
            component: b'~',
            repetition: b'|',
            escape: b'\\',
            subcomponent: b'&',
            truncation: None,
        };
        let s = Segment::new(b"PID^1^^11111~~~FOO&&0363~NI|22^^SMITH~JOHN", 10, seps);
        assert_eq!(s.offset(), 10);
        let f3 = s.field(3).unwrap();
        assert_eq!(f3.component(4), Some(&b"FOO&&0363"[..]));
        assert_eq!(f3.subcomponent(4, 3), Some(&b"0363"[..]));
        assert_eq!(f3.repetition(2).unwrap().raw(), b"22");
        assert_eq!(s.field(5).unwrap().component(2), Some(&b"JOHN"[..]));
    }
}
