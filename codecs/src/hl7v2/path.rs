//! Field paths as routing rules and tools write them: `PID-3`, `PID-3.4`, `PID-3.4.1`,
//! `PID-3[2].4`. All numbers are 1-based HL7 numbers without leading zeros, so a parsed path
//! prints back exactly as it was written.

use std::fmt;
use std::str::FromStr;

use super::error::{PathError, PathErrorKind};
use super::separators::is_id_char;

/// A parsed field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segment: [u8; 3],
    field: u16,
    repetition: Option<u16>,
    component: Option<u16>,
    subcomponent: Option<u16>,
}

impl FieldPath {
    /// Parses `SEG-f[r].c.s` (`[r]`, `.c` and `.s` optional; `.s` needs `.c`).
    pub fn parse(s: &str) -> Result<FieldPath, PathError> {
        let b = s.as_bytes();
        let err = |position, kind| PathError { position, kind };
        let segment = match b {
            [x, y, z, ..] if x.is_ascii_uppercase() && is_id_char(*y) && is_id_char(*z) => {
                [*x, *y, *z]
            }
            _ => return Err(err(0, PathErrorKind::SegmentId)),
        };
        let mut at = 3;
        expect(b, &mut at, b'-')?;
        let field = number(b, &mut at)?;
        let mut repetition = None;
        if b.get(at) == Some(&b'[') {
            at += 1;
            repetition = Some(number(b, &mut at)?);
            expect(b, &mut at, b']')?;
        }
        let mut component = None;
        let mut subcomponent = None;
        if b.get(at) == Some(&b'.') {
            at += 1;
            component = Some(number(b, &mut at)?);
            if b.get(at) == Some(&b'.') {
                at += 1;
                subcomponent = Some(number(b, &mut at)?);
            }
        }
        if at != b.len() {
            return Err(err(at, PathErrorKind::Trailing));
        }
        Ok(FieldPath {
            segment,
            field,
            repetition,
            component,
            subcomponent,
        })
    }

    /// A path to a whole field.
    pub fn new(segment: [u8; 3], field: u16) -> FieldPath {
        FieldPath {
            segment,
            field,
            repetition: None,
            component: None,
            subcomponent: None,
        }
    }

    /// The segment id.
    pub fn segment(&self) -> &[u8; 3] {
        &self.segment
    }

    /// The field number.
    pub fn field(&self) -> u16 {
        self.field
    }

    /// The repetition, when the path names one (`[r]`).
    pub fn repetition(&self) -> Option<u16> {
        self.repetition
    }

    /// The component, when the path names one.
    pub fn component(&self) -> Option<u16> {
        self.component
    }

    /// The sub-component, when the path names one.
    pub fn subcomponent(&self) -> Option<u16> {
        self.subcomponent
    }
}

fn expect(b: &[u8], at: &mut usize, want: u8) -> Result<(), PathError> {
    if b.get(*at) == Some(&want) {
        *at += 1;
        Ok(())
    } else {
        Err(PathError {
            position: *at,
            kind: PathErrorKind::Expected(char::from(want)),
        })
    }
}

fn number(b: &[u8], at: &mut usize) -> Result<u16, PathError> {
    let start = *at;
    let digits = b
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|d| d.is_ascii_digit())
        .count();
    let bad = PathError {
        position: start,
        kind: PathErrorKind::Number,
    };
    let text = b.get(start..start + digits).ok_or(bad.clone())?;
    if text.first().is_none_or(|&d| d == b'0') || digits > 5 {
        return Err(bad);
    }
    let n = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    let n = u16::try_from(n).map_err(|_| bad)?;
    *at += digits;
    Ok(n)
}

impl FromStr for FieldPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.segment {
            write!(f, "{}", char::from(b))?;
        }
        write!(f, "-{}", self.field)?;
        if let Some(r) = self.repetition {
            write!(f, "[{r}]")?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "PID-3",
            "PID-3.4",
            "PID-3.4.1",
            "PID-3[2].4",
            "MSH-9.2",
            "ZU1-65535[7].1.2",
        ] {
            let p = FieldPath::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
        }
        let p: FieldPath = "PID-3[2].4.1".parse().unwrap();
        assert_eq!(p.segment(), b"PID");
        assert_eq!(
            (p.field(), p.repetition(), p.component(), p.subcomponent()),
            (3, Some(2), Some(4), Some(1))
        );
        assert_eq!(FieldPath::new(*b"MSH", 10).to_string(), "MSH-10");
    }

    #[test]
    fn rejects_with_a_position() {
        let cases: &[(&str, usize, PathErrorKind)] = &[
            ("", 0, PathErrorKind::SegmentId),
            ("pid-3", 0, PathErrorKind::SegmentId),
            ("1ID-3", 0, PathErrorKind::SegmentId),
            ("PID", 3, PathErrorKind::Expected('-')),
            ("PID3", 3, PathErrorKind::Expected('-')),
            ("PID-", 4, PathErrorKind::Number),
            ("PID-0", 4, PathErrorKind::Number),
            ("PID-03", 4, PathErrorKind::Number),
            ("PID-65536", 4, PathErrorKind::Number),
            ("PID-999999", 4, PathErrorKind::Number),
            ("PID-3[", 6, PathErrorKind::Number),
            ("PID-3[2", 7, PathErrorKind::Expected(']')),
            ("PID-3.", 6, PathErrorKind::Number),
            ("PID-3.4.", 8, PathErrorKind::Number),
            ("PID-3.4.1.2", 9, PathErrorKind::Trailing),
            ("PID-3 ", 5, PathErrorKind::Trailing),
            ("PID-3[2][3]", 8, PathErrorKind::Trailing),
            ("PÏD-3", 0, PathErrorKind::SegmentId),
        ];
        for (s, position, kind) in cases {
            let e = FieldPath::parse(s).unwrap_err();
            assert_eq!((e.position, e.kind), (*position, *kind), "{s}");
        }
    }
}
