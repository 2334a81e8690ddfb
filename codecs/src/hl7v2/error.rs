//! Errors of the HL7v2 reader. Every error carries the byte offset where it was found (from the
//! start of the slice handed to the parser) and, when known, the segment id and the field number
//! in HL7 numbering, so a log line or an ERR segment can point at the exact byte.

use std::fmt;

/// Where and why an ER7 input could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}{}: {kind}", Location(.segment, .field))]
pub struct ParseError {
    /// Byte offset of the offending byte from the start of the input.
    pub offset: usize,
    /// Segment id (`MSH`, `PID`, ...) when the error lies inside a segment with a valid id.
    pub segment: Option<[u8; 3]>,
    /// Field number in HL7 numbering (`MSH-2` is `Some(2)`).
    pub field: Option<u16>,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        ParseError {
            offset,
            segment: None,
            field: None,
            kind,
        }
    }

    pub(crate) fn at(offset: usize, segment: [u8; 3], field: Option<u16>, kind: ErrorKind) -> Self {
        ParseError {
            offset,
            segment: Some(segment),
            field,
            kind,
        }
    }

    /// The same error with its offset moved by `base`: for an error found in a message that
    /// [`split_messages`](super::split_messages) cut out at `base`, the offset in the whole
    /// input.
    pub fn offset_by(self, base: usize) -> ParseError {
        ParseError {
            offset: self.offset.saturating_add(base),
            ..self
        }
    }

    /// The HL7 table 0357 error code that best describes this error, for ERR-3 of a negative ACK.
    pub fn hl7_code(&self) -> u16 {
        self.kind.hl7_code()
    }
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing but blank lines (or nothing at all).
    #[error("no segment found: the input is empty or holds only blank lines")]
    Empty,
    /// The first segment is not `MSH`.
    #[error("a message must start with an MSH segment")]
    NotMsh,
    /// The header segment ends before its field separator.
    #[error("segment too short: the field separator must follow the segment id")]
    HeaderTooShort,
    /// A delimiter is a control byte, a space, a letter, a digit or a non-ASCII byte.
    #[error(
        "delimiter {} is not allowed: delimiters must be printable ASCII and not a letter or digit",
        Byte(*.byte)
    )]
    BadSeparator {
        /// The offending byte.
        byte: u8,
    },
    /// The same character is used for two delimiters.
    #[error("delimiter {} is used for two different purposes", Byte(*.byte))]
    DuplicateSeparator {
        /// The repeated byte.
        byte: u8,
    },
    /// MSH-2 holds fewer than 4 characters.
    #[error(
        "encoding characters must be 4 (component, repetition, escape, sub-component), found \
         {found}"
    )]
    TooFewEncodingChars {
        /// How many characters MSH-2 held.
        found: usize,
    },
    /// MSH-2 holds more than 5 characters (4, plus the v2.7 truncation character).
    #[error(
        "encoding characters must be 4 (component, repetition, escape, sub-component), or 5 with \
         the truncation character; the field separator must follow"
    )]
    TooManyEncodingChars,
    /// A segment id is not 3 upper-case letters or digits starting with a letter.
    #[error(
        "segment id must be 3 upper-case letters or digits, starting with a letter, followed by \
         the field separator"
    )]
    BadSegmentId,
    /// NUL, VT (MLLP start block) or FS (MLLP end block) inside a message.
    #[error("control byte {} is not allowed inside a message", Byte(*.byte))]
    ControlByte {
        /// The offending byte.
        byte: u8,
    },
    /// `MSH`, `FHS`, `BHS`, `BTS` or `FTS` after the first segment of one message.
    #[error("a second message or batch header inside one message: split the input first")]
    NestedHeader,
    /// Lines outside any message in a file or batch.
    #[error(
        "bytes outside any message: expected MSH, FHS, BHS, BTS or FTS at the start of a line"
    )]
    Garbage,
    /// A field the standard requires (MSH-9, MSH-10, MSH-12) is empty or absent.
    #[error("required field is empty or missing")]
    RequiredFieldMissing,
    /// An escape sequence that is not one HL7 defines: no closing escape character, hex data
    /// that is not pairs of hex digits, or an unknown code.
    #[error("malformed escape sequence")]
    BadEscape,
}

impl ErrorKind {
    /// HL7 table 0357 code: 100 = segment sequence error, 101 = required field missing,
    /// 102 = data type error.
    pub fn hl7_code(&self) -> u16 {
        match self {
            ErrorKind::Empty
            | ErrorKind::NotMsh
            | ErrorKind::BadSegmentId
            | ErrorKind::NestedHeader
            | ErrorKind::Garbage => 100,
            ErrorKind::HeaderTooShort
            | ErrorKind::BadSeparator { .. }
            | ErrorKind::DuplicateSeparator { .. }
            | ErrorKind::TooFewEncodingChars { .. }
            | ErrorKind::TooManyEncodingChars
            | ErrorKind::ControlByte { .. }
            | ErrorKind::BadEscape => 102,
            ErrorKind::RequiredFieldMissing => 101,
        }
    }
}

/// Why a [`FieldPath`](super::FieldPath) string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field path, character {position}: {kind}")]
pub struct PathError {
    /// Character (byte) index in the path string.
    pub position: usize,
    /// What was wrong.
    pub kind: PathErrorKind,
}

/// The kinds of [`PathError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathErrorKind {
    /// The segment id is not 3 upper-case letters or digits starting with a letter.
    #[error("expected a segment id of 3 upper-case letters or digits, starting with a letter")]
    SegmentId,
    /// Something other than the expected punctuation.
    #[error("expected `{0}`")]
    Expected(char),
    /// A number is missing, has a leading zero, is zero or does not fit in 16 bits.
    #[error("expected a number from 1 to 65535 without leading zeros")]
    Number,
    /// Characters after a complete path.
    #[error("unexpected characters after the path")]
    Trailing,
}

/// Renders `, MSH-2`, `, PID` or nothing.
struct Location<'e>(&'e Option<[u8; 3]>, &'e Option<u16>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(id) = self.0 else {
            return match self.1 {
                Some(field) => write!(f, ", field {field}"),
                None => Ok(()),
            };
        };
        f.write_str(", ")?;
        for &b in id {
            write!(f, "{}", b.escape_ascii())?;
        }
        match self.1 {
            Some(field) => write!(f, "-{field}"),
            None => Ok(()),
        }
    }
}

/// Renders a byte as `'|'` when printable, else `0x0B`.
struct Byte(u8);

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "0x{:02X}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_byte_segment_and_field() {
        let e = ParseError::at(
            17,
            *b"MSH",
            Some(2),
            ErrorKind::TooFewEncodingChars { found: 3 },
        );
        assert_eq!(
            e.to_string(),
            "byte 17, MSH-2: encoding characters must be 4 (component, repetition, escape, \
             sub-component), found 3"
        );
        let e = ParseError::at(40, *b"PID", None, ErrorKind::ControlByte { byte: 0x0B });
        assert_eq!(
            e.to_string(),
            "byte 40, PID: control byte 0x0B is not allowed inside a message"
        );
        let e = ParseError::new(0, ErrorKind::NotMsh);
        assert_eq!(
            e.to_string(),
            "byte 0: a message must start with an MSH segment"
        );
        let e = ParseError::new(3, ErrorKind::BadSeparator { byte: b'A' });
        assert!(e.to_string().contains("'A'"), "{e}");
    }

    #[test]
    fn offset_by_moves_only_the_offset() {
        let e = ParseError::at(
            7,
            *b"MSH",
            Some(2),
            ErrorKind::TooFewEncodingChars { found: 3 },
        );
        let moved = e.clone().offset_by(100);
        assert_eq!(moved.offset, 107);
        assert_eq!(
            (moved.segment, moved.field, moved.kind),
            (e.segment, e.field, e.kind)
        );
    }

    #[test]
    fn hl7_codes_follow_table_0357() {
        assert_eq!(ParseError::new(0, ErrorKind::NotMsh).hl7_code(), 100);
        assert_eq!(
            ParseError::new(0, ErrorKind::DuplicateSeparator { byte: b'^' }).hl7_code(),
            102
        );
        assert_eq!(ErrorKind::RequiredFieldMissing.hl7_code(), 101);
        assert_eq!(ErrorKind::BadEscape.hl7_code(), 102);
    }
}
