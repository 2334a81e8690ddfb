//! A field value and its inner structure: repetitions, components (of one repetition) and
//! sub-components, each a slice of the input found by `memchr` only when asked for.
//!
//! Numbering is HL7's: every index is 1-based. Accessors that return bytes (`component`,
//! `subcomponent`, `value`) give `None` both when the part is absent and when it is empty, so a
//! routing key is either a non-empty slice or nothing; structural accessors (`repetition`) give
//! `Some` for a present but empty part. `""` (the HL7 explicit null) is returned as its two
//! bytes; [`Field::is_null`] tells it apart.
//!
//! MSH-1 and MSH-2 (and FHS/BHS-1/2) are *literal* fields: they hold delimiters, so they are never
//! split or unescaped.

use std::borrow::Cow;

use memchr::{memchr, memchr_iter};

use super::escape::unescape;
use super::separators::Separators;

/// One field (or one repetition of a field) of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    raw: &'a [u8],
    seps: Separators,
    literal: bool,
}

impl<'a> Field<'a> {
    pub(crate) fn new(raw: &'a [u8], seps: Separators) -> Self {
        Field {
            raw,
            seps,
            literal: false,
        }
    }

    pub(crate) fn literal(raw: &'a [u8], seps: Separators) -> Self {
        Field {
            raw,
            seps,
            literal: true,
        }
    }

    /// The bytes of the field as written, escapes undecoded.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The raw bytes, or `None` when the field is empty.
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        non_empty(self.raw)
    }

    /// Whether the field is empty (HL7: "not sent", leave the stored value alone).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether the field is `""` (HL7: explicit null, delete the stored value).
    #[inline]
    pub fn is_null(&self) -> bool {
        self.raw == b"\"\""
    }

    /// The separators this field was split with.
    #[inline]
    pub fn separators(&self) -> &Separators {
        &self.seps
    }

    /// Repetition `r` (1-based); `None` when absent. An empty field has no repetitions.
    pub fn repetition(&self, r: usize) -> Option<Field<'a>> {
        if self.literal {
            return (r == 1 && !self.raw.is_empty()).then_some(*self);
        }
        nth_part(self.raw, self.seps.repetition, r).map(|raw| Field::new(raw, self.seps))
    }

    /// All repetitions, in order; none for an empty field.
    pub fn repetitions(&self) -> Repetitions<'a> {
        let sep = if self.literal {
            None
        } else {
            Some(self.seps.repetition)
        };
        Repetitions {
            parts: Parts::new(self.raw, sep),
            seps: self.seps,
            literal: self.literal,
        }
    }

    /// Number of repetitions (0 for an empty field).
    pub fn repetition_count(&self) -> usize {
        match (self.raw.is_empty(), self.literal) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => memchr_iter(self.seps.repetition, self.raw).count() + 1,
        }
    }

    /// The first repetition's raw bytes.
    #[inline]
    fn first_repetition(&self) -> &'a [u8] {
        if self.literal {
            return self.raw;
        }
        first_part(self.raw, self.seps.repetition)
    }

    /// Component `c` (1-based) of the first repetition; `None` when absent or empty.
    #[inline]
    pub fn component(&self, c: usize) -> Option<&'a [u8]> {
        self.component_raw(c).and_then(non_empty)
    }

    fn component_raw(&self, c: usize) -> Option<&'a [u8]> {
        if self.literal {
            return (c == 1).then_some(self.raw);
        }
        component_of_first_repetition(self.raw, &self.seps, c)
    }

    /// Components of the first repetition, empty ones included; none for an empty field.
    pub fn components(&self) -> Parts<'a> {
        let sep = if self.literal {
            None
        } else {
            Some(self.seps.component)
        };
        Parts::new(self.first_repetition(), sep)
    }

    /// Sub-component `s` of component `c` (both 1-based) of the first repetition; `None` when
    /// absent or empty.
    pub fn subcomponent(&self, c: usize, s: usize) -> Option<&'a [u8]> {
        let component = self.component_raw(c)?;
        if self.literal {
            return (s == 1).then_some(component).and_then(non_empty);
        }
        nth_part(component, self.seps.subcomponent, s).and_then(non_empty)
    }

    /// The whole field with its escape sequences decoded (see [`unescape`]); borrowed when it
    /// holds no escape character. Literal fields (MSH-1, MSH-2) are returned as they are.
    pub fn decoded(&self, seps: &Separators) -> Cow<'a, [u8]> {
        if self.literal {
            return Cow::Borrowed(self.raw);
        }
        unescape(self.raw, seps)
    }
}

/// Iterator over the repetitions of a field.
#[derive(Debug, Clone)]
pub struct Repetitions<'a> {
    parts: Parts<'a>,
    seps: Separators,
    literal: bool,
}

impl<'a> Iterator for Repetitions<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let raw = self.parts.next()?;
        Some(Field {
            raw,
            seps: self.seps,
            literal: self.literal,
        })
    }
}

/// Iterator over the parts of a value split on one delimiter (components or sub-components),
/// empty parts included. An empty value has no parts.
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    rest: Option<&'a [u8]>,
    sep: Option<u8>,
}

impl<'a> Parts<'a> {
    /// Splits `raw` on `sep`; `None` means "do not split" (literal values).
    pub(crate) fn new(raw: &'a [u8], sep: Option<u8>) -> Self {
        Parts {
            rest: (!raw.is_empty()).then_some(raw),
            sep,
        }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let at = self.sep.and_then(|sep| memchr(sep, rest));
        match at {
            Some(i) => {
                let (part, tail) = rest.split_at(i);
                self.rest = Some(tail.get(1..).unwrap_or_default());
                Some(part)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[inline]
pub(crate) fn non_empty(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty()).then_some(v)
}

/// Position of `sep` in `raw`. Values are mostly a few bytes long, where a plain loop beats
/// `memchr`'s set-up; long ones (free text, embedded documents) go to `memchr`.
#[inline]
pub(crate) fn find(sep: u8, raw: &[u8]) -> Option<usize> {
    if raw.len() <= 32 {
        raw.iter().position(|&b| b == sep)
    } else {
        memchr(sep, raw)
    }
}

/// The bytes before the first `sep` (all of `raw` when there is none).
#[inline]
pub(crate) fn first_part(raw: &[u8], sep: u8) -> &[u8] {
    match find(sep, raw) {
        Some(i) => raw.get(..i).unwrap_or(raw),
        None => raw,
    }
}

/// Component `c` (1-based) of the first repetition of `raw`, in one scan that stops at the
/// component (or at the end of the first repetition), however long the rest of the field is.
#[inline]
pub(crate) fn component_of_first_repetition<'r>(
    raw: &'r [u8],
    seps: &Separators,
    c: usize,
) -> Option<&'r [u8]> {
    if raw.is_empty() || c == 0 {
        return None;
    }
    let (comp, rep) = (seps.component, seps.repetition);
    let mut index = 1;
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if b == comp || b == rep {
            if index == c {
                return raw.get(start..i);
            }
            if b == rep {
                return None;
            }
            index += 1;
            start = i + 1;
        }
    }
    if index == c {
        raw.get(start..)
    } else {
        None
    }
}

/// Part `n` (1-based) of `raw` split on `sep`; `None` when `raw` is empty or has fewer parts.
#[inline]
pub(crate) fn nth_part(raw: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    if raw.is_empty() || n == 0 {
        return None;
    }
    let mut rest = raw;
    for _ in 1..n {
        let at = find(sep, rest)?;
        rest = rest.get(at + 1..)?;
    }
    Some(first_part(rest, sep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(raw: &[u8]) -> Field<'_> {
        Field::new(raw, Separators::default())
    }

    #[test]
    fn repetitions_components_subcomponents() {
        let field = f(b"111^^^FOO&&0363^NI~222^X~~333");
        assert_eq!(field.repetition_count(), 4);
        assert_eq!(field.component(1), Some(&b"111"[..]));
        assert_eq!(field.component(2), None, "empty component");
        assert_eq!(field.component(4), Some(&b"FOO&&0363"[..]));
        assert_eq!(field.component(6), None, "absent component");
        assert_eq!(field.subcomponent(4, 1), Some(&b"FOO"[..]));
        assert_eq!(field.subcomponent(4, 2), None);
        assert_eq!(field.subcomponent(4, 3), Some(&b"0363"[..]));
        assert_eq!(field.subcomponent(4, 4), None);
        assert_eq!(field.subcomponent(1, 1), Some(&b"111"[..]));
        let second = field.repetition(2).unwrap();
        assert_eq!(second.raw(), b"222^X");
        assert_eq!(second.component(2), Some(&b"X"[..]));
        let third = field.repetition(3).unwrap();
        assert!(third.is_empty());
        assert_eq!(field.repetition(4).unwrap().raw(), b"333");
        assert!(field.repetition(5).is_none());
        assert!(field.repetition(0).is_none());
        assert_eq!(field.component(0), None);
        let reps: Vec<&[u8]> = field.repetitions().map(|r| r.raw()).collect();
        assert_eq!(reps, [&b"111^^^FOO&&0363^NI"[..], b"222^X", b"", b"333"]);
        let comps: Vec<&[u8]> = field.components().collect();
        assert_eq!(comps, [&b"111"[..], b"", b"", b"FOO&&0363", b"NI"]);
    }

    #[test]
    fn empty_versus_null() {
        let empty = f(b"");
        assert!(empty.is_empty() && !empty.is_null());
        assert_eq!(empty.value(), None);
        assert_eq!(empty.repetition_count(), 0);
        assert!(empty.repetition(1).is_none());
        assert_eq!(empty.components().count(), 0);
        assert_eq!(empty.component(1), None);
        let null = f(b"\"\"");
        assert!(null.is_null() && !null.is_empty());
        assert_eq!(null.value(), Some(&b"\"\""[..]));
        assert_eq!(null.component(1), Some(&b"\"\""[..]));
        assert_eq!(
            f(b"2146 E HARRIS^\"\"^ST.LOUIS").component(2),
            Some(&b"\"\""[..])
        );
    }

    #[test]
    fn literal_fields_are_not_split() {
        let seps = Separators::default();
        let msh2 = Field::literal(b"^~\\&", seps);
        assert_eq!(msh2.component(1), Some(&b"^~\\&"[..]));
        assert_eq!(msh2.component(2), None);
        assert_eq!(msh2.subcomponent(1, 1), Some(&b"^~\\&"[..]));
        assert_eq!(msh2.repetition_count(), 1);
        assert_eq!(msh2.repetition(1).unwrap().raw(), b"^~\\&");
        assert_eq!(msh2.repetitions().count(), 1);
        assert_eq!(msh2.components().count(), 1);
        assert!(matches!(msh2.decoded(&seps), Cow::Borrowed(b"^~\\&")));
    }

    #[test]
    fn decoded_field() {
        let field = f(b"A\\S\\B^C");
        assert_eq!(field.decoded(&Separators::default()).as_ref(), b"A^B^C");
        assert_eq!(field.component(1), Some(&b"A\\S\\B"[..]));
    }

    #[test]
    fn nth_part_edges() {
        assert_eq!(nth_part(b"a^b^", b'^', 3), Some(&b""[..]));
        assert_eq!(nth_part(b"a^b^", b'^', 4), None);
        assert_eq!(nth_part(b"", b'^', 1), None);
        assert_eq!(nth_part(b"^", b'^', 1), Some(&b""[..]));
        assert_eq!(nth_part(b"^", b'^', 2), Some(&b""[..]));
    }
}
