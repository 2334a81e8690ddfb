//! The delimiters of one message (or batch), read from a header segment: the byte after `MSH`
//! (or `FHS`/`BHS`) is the field separator and the next 4 bytes are, in order, the component,
//! repetition, escape and sub-component characters; a 5th is the v2.7 truncation character.
//!
//! Invariant of a [`Separators`] returned by [`Separators::from_header`]: every delimiter is a
//! printable ASCII byte that is neither a letter nor a digit, and no two are equal. HL7 allows
//! "any printable character"; letters and digits are refused because segment ids and the `\X0D\`
//! style escape sequences could then not be told apart from delimiters.

use super::error::{ErrorKind, ParseError};

/// The six delimiters of an ER7 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Separators {
    /// MSH-1, `|` by default.
    pub field: u8,
    /// MSH-2 character 1, `^` by default.
    pub component: u8,
    /// MSH-2 character 2, `~` by default.
    pub repetition: u8,
    /// MSH-2 character 3, `\` by default.
    pub escape: u8,
    /// MSH-2 character 4, `&` by default.
    pub subcomponent: u8,
    /// MSH-2 character 5 (v2.7+), usually `#`; `None` when MSH-2 has 4 characters.
    pub truncation: Option<u8>,
}

impl Default for Separators {
    fn default() -> Self {
        Separators::DEFAULT
    }
}

impl Separators {
    /// `|^~\&` without a truncation character.
    pub const DEFAULT: Separators = Separators {
        field: b'|',
        component: b'^',
        repetition: b'~',
        escape: b'\\',
        subcomponent: b'&',
        truncation: None,
    };

    /// Reads the delimiters from a header segment line (`MSH`, `FHS` or `BHS`, without its
    /// terminator). `base` is the line's offset in the input, used in errors. Returns the
    /// separators and the length of the `XXX|^~\&` prefix (the end of field 2 in the line).
    pub fn from_header(line: &[u8], base: usize) -> Result<(Separators, usize), ParseError> {
        let id = header_id(line);
        let err = |at: usize, field: u16, kind| match id {
            Some(id) => ParseError::at(base + at, id, Some(field), kind),
            None => ParseError::new(base + at, kind),
        };
        let Some(&field) = line.get(3) else {
            return Err(err(line.len(), 1, ErrorKind::HeaderTooShort));
        };
        if !is_allowed(field) {
            return Err(err(3, 1, ErrorKind::BadSeparator { byte: field }));
        }
        let rest = line.get(4..).unwrap_or_default();
        let count = rest.iter().position(|&b| b == field).unwrap_or(rest.len());
        // Report the first offending byte before complaining about the count.
        let mut seen = [field, 0, 0, 0, 0, 0];
        for (i, &b) in rest.iter().take(count.min(5)).enumerate() {
            if !is_allowed(b) {
                return Err(err(4 + i, 2, ErrorKind::BadSeparator { byte: b }));
            }
            if seen.iter().take(i + 1).any(|&s| s == b) {
                return Err(err(4 + i, 2, ErrorKind::DuplicateSeparator { byte: b }));
            }
            if let Some(slot) = seen.get_mut(i + 1) {
                *slot = b;
            }
        }
        if count < 4 {
            return Err(err(
                4 + count,
                2,
                ErrorKind::TooFewEncodingChars { found: count },
            ));
        }
        if count > 5 {
            return Err(err(4 + 5, 2, ErrorKind::TooManyEncodingChars));
        }
        let seps = Separators {
            field,
            component: seen[1],
            repetition: seen[2],
            escape: seen[3],
            subcomponent: seen[4],
            truncation: (count == 5).then_some(seen[5]),
        };
        Ok((seps, 4 + count))
    }

    /// The common case of [`from_header`](Self::from_header) without its error bookkeeping:
    /// `XXX` + 5 distinct allowed delimiters, then the field separator, a line end or the end.
    /// `None` means "take the slow path", which also explains what is wrong.
    #[inline]
    pub(crate) fn fast_path(line: &[u8]) -> Option<Separators> {
        let [_, _, _, field, component, repetition, escape, subcomponent, rest @ ..] = line else {
            return None;
        };
        let next = rest.first().copied();
        if !(next.is_none() || next == Some(*field) || next == Some(b'\r') || next == Some(b'\n')) {
            return None;
        }
        let mut set = 0u128;
        for &b in [field, component, repetition, escape, subcomponent] {
            // A byte >= 128 has no bit, and is not allowed either.
            let bit = 1u128.checked_shl(u32::from(b)).unwrap_or(0);
            if bit & ALLOWED == 0 || set & bit != 0 {
                return None;
            }
            set |= bit;
        }
        Some(Separators {
            field: *field,
            component: *component,
            repetition: *repetition,
            escape: *escape,
            subcomponent: *subcomponent,
            truncation: None,
        })
    }

    /// The MSH-2 value: 4 bytes, or 5 with the truncation character.
    pub fn encoding_characters(&self) -> EncodingChars {
        let bytes = [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
            self.truncation.unwrap_or(0),
        ];
        EncodingChars {
            bytes,
            len: if self.truncation.is_some() { 5 } else { 4 },
        }
    }

    /// Whether `b` is one of the delimiters (the truncation character included), i.e. a byte
    /// that [`escape`](super::escape) must encode.
    #[inline]
    pub fn is_delimiter(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || b == self.repetition
            || b == self.escape
            || b == self.subcomponent
            || Some(b) == self.truncation
    }
}

/// The encoding characters (MSH-2) as a short byte string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingChars {
    bytes: [u8; 5],
    len: usize,
}

impl EncodingChars {
    /// The 4 or 5 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }
}

/// A delimiter must be printable ASCII (no space) and neither a letter nor a digit.
#[inline]
const fn is_allowed(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

/// Bit `b` set for every byte `b` that [`is_allowed`].
const ALLOWED: u128 = {
    let mut set = 0u128;
    let mut b = 0u8;
    while b < 128 {
        if is_allowed(b) {
            set |= 1 << b;
        }
        b += 1;
    }
    set
};

/// `Some(id)` when the line starts with a plausible 3-character segment id, for error locations.
pub(crate) fn header_id(line: &[u8]) -> Option<[u8; 3]> {
    match line {
        [a, b, c, ..] if a.is_ascii_uppercase() && is_id_char(*b) && is_id_char(*c) => {
            Some([*a, *b, *c])
        }
        _ => None,
    }
}

#[inline]
pub(crate) fn is_id_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> Result<(Separators, usize), ParseError> {
        Separators::from_header(line, 0)
    }

    #[test]
    fn default_separators() {
        let (s, end) = parse(b"MSH|^~\\&|APP").unwrap();
        assert_eq!(s, Separators::default());
        assert_eq!(end, 8);
        assert_eq!(s.encoding_characters().as_bytes(), b"^~\\&");
    }

    #[test]
    fn odd_choice_caret_as_field_separator() {
        // From the HAPI corpus: `^` separates fields, `~` components and `|` repetitions.
        let (s, end) = parse(b"MSH^~|\\&^SENDING").unwrap();
        assert_eq!(
            s,
            Separators {
                field: b'^',
                component: b'~',
                repetition: b'|',
                escape: b'\\',
                subcomponent: b'&',
                truncation: None
            }
        );
        assert_eq!(end, 8);
    }

    #[test]
    fn truncation_character_is_the_fifth() {
        let (s, end) = parse(b"MSH|^~\\&#|APP").unwrap();
        assert_eq!(s.truncation, Some(b'#'));
        assert_eq!(end, 9);
        assert_eq!(s.encoding_characters().as_bytes(), b"^~\\&#");
        // Header line that stops right after MSH-2.
        let (s, _) = parse(b"MSH|^~\\&#").unwrap();
        assert_eq!(s.truncation, Some(b'#'));
        let (s, end) = parse(b"BHS|^~\\&").unwrap();
        assert_eq!((s.truncation, end), (None, 8));
    }

    #[test]
    fn too_short_or_missing_encoding_characters() {
        let e = parse(b"MSH").unwrap_err();
        assert_eq!((e.offset, e.kind), (3, ErrorKind::HeaderTooShort));
        assert_eq!(e.field, Some(1));
        let e = parse(b"MSH|^~\\|APP").unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooFewEncodingChars { found: 3 });
        assert_eq!((e.offset, e.segment, e.field), (7, Some(*b"MSH"), Some(2)));
        let e = parse(b"MSH|").unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooFewEncodingChars { found: 0 });
        let e = parse(b"MSH|^~\\&#$|").unwrap_err();
        assert_eq!((e.offset, e.kind), (9, ErrorKind::TooManyEncodingChars));
    }

    #[test]
    fn duplicate_and_non_printable_separators() {
        let e = parse(b"MSH|^~^&|").unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (6, ErrorKind::DuplicateSeparator { byte: b'^' })
        );
        // The field separator ends MSH-2, so `||` is an empty MSH-3, not a duplicate.
        assert!(parse(b"MSH|^~\\&||").is_ok());
        let e = parse(b"MSH\x01^~\\&|").unwrap_err();
        assert_eq!((e.offset, e.kind), (3, ErrorKind::BadSeparator { byte: 1 }));
        let e = parse(b"MSH|^~\x7f&|").unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (6, ErrorKind::BadSeparator { byte: 0x7f })
        );
        let e = parse(b"MSH| ~\\&|").unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (4, ErrorKind::BadSeparator { byte: b' ' })
        );
        let e = parse(b"MSH|0000|").unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (4, ErrorKind::BadSeparator { byte: b'0' })
        );
        let e = parse(b"MSHH0").unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (3, ErrorKind::BadSeparator { byte: b'H' })
        );
        let e = parse(b"MSH|^~\\&\xc3|").unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (8, ErrorKind::BadSeparator { byte: 0xc3 })
        );
    }

    #[test]
    fn fast_path_agrees_with_the_full_check() {
        let mut line = *b"MSH|^~\\&|";
        for b in 0..=255u8 {
            for at in 3..line.len() {
                let saved = line[at];
                line[at] = b;
                let fast = Separators::fast_path(&line);
                // As Message::parse does: the header line stops at CR or LF.
                let cut = line.iter().position(|&b| b == b'\r' || b == b'\n');
                let head = &line[..cut.unwrap_or(line.len())];
                let full = Separators::from_header(head, 0).ok().map(|(s, _)| s);
                if let Some(fast) = fast {
                    assert_eq!(Some(fast), full, "{}", line.escape_ascii());
                } else if at < 8 {
                    assert!(full.is_none() || full.unwrap().truncation.is_some());
                }
                line[at] = saved;
            }
        }
        assert!(Separators::fast_path(b"MSH|^~\\&").is_some());
        assert!(Separators::fast_path(b"MSH|^~\\&\r").is_some());
        assert!(
            Separators::fast_path(b"MSH|^~\\&#|").is_none(),
            "5 characters: slow path"
        );
    }

    #[test]
    fn is_delimiter_covers_all_six() {
        let (s, _) = parse(b"MSH|^~\\&#").unwrap();
        for b in *b"|^~\\&#" {
            assert!(s.is_delimiter(b));
        }
        assert!(!s.is_delimiter(b'A'));
    }
}
