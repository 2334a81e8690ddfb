//! One pass over a well-formed start tag: where its `>` is, how long its name is, and its
//! attributes, kept in [`Seen`] so the element reader that asks for them right after does not
//! split the tag again.
//!
//! The pass accepts only the regular shape: a name, then `key="value"` pairs separated by
//! whitespace, with no quote, `>`, `/` or `=` in names or keys, and an optional `/` before the
//! `>`. For such a tag quick-xml's quote-aware `ElementParser` stops at the same `>` (quotes
//! occur only around values, and a value holds no quote of its own kind), and its attribute
//! iterator (`tag.rs`) yields the same pairs. Anything else returns `None`, and the lexer falls
//! back to `element_len` and the attributes to [`super::super::tag::Attrs`], which mirror
//! quick-xml in every case, errors included.

use crate::itk::cursor::bytes::name_end;
use crate::itk::cursor::same;
use crate::itk::text::is_xml_ws;

/// Attributes of one tag kept; a tag with more is split again on request.
const KEPT: usize = 8;

/// One attribute: key and value (inside the quotes) as ranges of the tag's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub key: (usize, usize),
    pub value: (usize, usize),
}

/// The attributes of the last start tag scanned.
pub(crate) struct Seen {
    /// Offset of the tag's bytes (after `<`) in the input; identifies the tag.
    at: usize,
    /// Whether `spans` holds all of the tag's attributes, none repeated.
    whole: bool,
    len: usize,
    spans: [Span; KEPT],
}

impl Seen {
    pub(crate) const fn new() -> Self {
        Self {
            at: usize::MAX,
            whole: false,
            len: 0,
            spans: [Span {
                key: (0, 0),
                value: (0, 0),
            }; KEPT],
        }
    }

    /// The attributes of the tag whose bytes start at `at`, when they were all kept.
    pub(crate) fn of(&self, at: usize) -> Option<&[Span]> {
        if self.at != at || !self.whole {
            return None;
        }
        self.spans.get(..self.len)
    }

    /// Adds an attribute; a repeated key or one too many leaves the tag to the full split
    /// (which reports the repetition as quick-xml does).
    fn keep(&mut self, tag: &[u8], span: Span) {
        if !self.whole {
            return;
        }
        let key = |s: &Span| tag.get(s.key.0..s.key.1).unwrap_or_default();
        let new = key(&span);
        let kept = self.spans.get(..self.len).unwrap_or_default();
        let repeated = kept.iter().any(|s| same(key(s), new));
        match self.spans.get_mut(self.len) {
            Some(slot) if !repeated => {
                *slot = span;
                self.len += 1;
            }
            _ => self.whole = false,
        }
    }
}

fn skip_ws(tag: &[u8], i: usize) -> usize {
    let rest = tag.get(i..).unwrap_or_default();
    i + rest
        .iter()
        .position(|&b| !is_xml_ws(b))
        .unwrap_or(rest.len())
}

/// Scans the start tag in `rest` (just after its `<`, at input offset `at`). Returns the index
/// of the closing `>` and the name's length, or `None` for an irregular tag.
pub(crate) fn scan(rest: &[u8], at: usize, seen: &mut Seen) -> Option<(usize, usize)> {
    seen.at = at;
    seen.whole = true;
    seen.len = 0;
    let found = regular(rest, seen);
    if found.is_none() {
        seen.whole = false;
    }
    found
}

fn regular(rest: &[u8], seen: &mut Seen) -> Option<(usize, usize)> {
    let mut i = name_end(rest, 0);
    let name_len = i;
    if name_len == 0 {
        return None;
    }
    loop {
        // After the name or a value: whitespace, `>` or `/>`.
        let mut b = *rest.get(i)?;
        if is_xml_ws(b) {
            i = skip_ws(rest, i);
            b = *rest.get(i)?;
        } else if b != b'>' && b != b'/' {
            return None;
        }
        match b {
            b'>' => return Some((i, name_len)),
            b'/' => return (rest.get(i + 1) == Some(&b'>')).then_some((i + 1, name_len)),
            _ => {}
        }
        let key_start = i;
        i = name_end(rest, i);
        if i == key_start {
            return None;
        }
        let key_end = i;
        i = skip_ws(rest, i);
        if rest.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_ws(rest, i + 1);
        let quote = *rest.get(i).filter(|&&q| q == b'"' || q == b'\'')?;
        let value_start = i + 1;
        let value_end = value_start + memchr::memchr(quote, rest.get(value_start..)?)?;
        let span = Span {
            key: (key_start, key_end),
            value: (value_start, value_end),
        };
        seen.keep(rest, span);
        i = value_end + 1;
    }
}
