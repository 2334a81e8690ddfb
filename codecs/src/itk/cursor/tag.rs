//! [`Tag`]: a start tag as a slice of the input, and [`Attrs`], its attributes split exactly as
//! quick-xml 0.38 splits them (`events/attributes.rs`, XML mode), errors and their positions
//! included, but with no allocation: quick-xml's duplicate check keeps a `Vec` of keys per tag,
//! this keeps them in a [`Stack`].
//!
//! Every user of attributes stops at the first error, so [`Attrs`] ends after one; quick-xml's
//! recovery rules past an error are not needed.

use super::same;
use super::stack::Stack;
use crate::itk::text::is_xml_ws;
use quick_xml::events::attributes::AttrError;
use std::ops::Range;

/// The bytes between `<` and `>` of a start tag (without the `/` of `<x/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag<'a> {
    pub raw: &'a [u8],
    /// Offset of `raw` in the input.
    pub at: usize,
    /// Length of the qualified name at the start of `raw`: up to the first whitespace.
    pub name_len: usize,
}

impl<'a> Tag<'a> {
    pub(crate) fn new(raw: &'a [u8], at: usize) -> Self {
        let name_len = raw.iter().position(|&b| is_xml_ws(b)).unwrap_or(raw.len());
        Self { raw, at, name_len }
    }

    /// The qualified name.
    pub(crate) fn name(&self) -> &'a [u8] {
        self.raw.get(..self.name_len).unwrap_or_default()
    }

    /// Everything after the name.
    pub(crate) fn attributes_raw(&self) -> &'a [u8] {
        self.raw.get(self.name_len..).unwrap_or_default()
    }

    /// The attributes, checked for repeated keys.
    pub(crate) fn attrs(&self) -> Attrs<'a> {
        Attrs::new(self.raw, self.name_len, true)
    }

    /// The attributes, without the check for repeated keys (as namespace scoping reads them).
    pub(crate) fn attrs_unchecked(&self) -> Attrs<'a> {
        Attrs::new(self.raw, self.name_len, false)
    }
}

/// One attribute: key and value (inside the quotes) as slices of the tag, and where in the tag
/// the value starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub value_at: usize,
}

/// Keys of one tag kept inline; more spill to the heap.
const INLINE_KEYS: usize = 16;

pub(crate) struct Attrs<'a> {
    tag: &'a [u8],
    pos: usize,
    done: bool,
    check_duplicates: bool,
    keys: Stack<(usize, usize), INLINE_KEYS>,
}

impl<'a> Attrs<'a> {
    fn new(tag: &'a [u8], pos: usize, check_duplicates: bool) -> Self {
        Self {
            tag,
            pos,
            done: false,
            check_duplicates,
            keys: Stack::new((0, 0)),
        }
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while self.tag.get(i).is_some_and(|&b| is_xml_ws(b)) {
            i += 1;
        }
        i
    }

    fn slice(&self, r: Range<usize>) -> &'a [u8] {
        self.tag.get(r).unwrap_or_default()
    }

    /// quick-xml's `IterState::next`, XML mode, step for step.
    fn step(&mut self) -> Option<Result<Attr<'a>, AttrError>> {
        let len = self.tag.len();
        let start = self.skip_ws(self.pos);
        if start >= len {
            return None;
        }
        // The key's first byte is taken whatever it is (even `=`); it runs to `=` or whitespace.
        let mut end = start + 1;
        while self
            .tag
            .get(end)
            .is_some_and(|&b| b != b'=' && !is_xml_ws(b))
        {
            end += 1;
        }
        let eq = match self.tag.get(end) {
            None => return Some(Err(AttrError::ExpectedEq(len))),
            Some(b'=') => end,
            Some(_) => {
                let next = self.skip_ws(end + 1);
                match self.tag.get(next) {
                    None => return Some(Err(AttrError::ExpectedEq(len))),
                    Some(b'=') => next,
                    Some(_) => return Some(Err(AttrError::ExpectedEq(next))),
                }
            }
        };
        if self.check_duplicates {
            let key = self.slice(start..end);
            if let Some(&(prev, _)) = self
                .keys
                .iter()
                .find(|&&(s, e)| self.tag.get(s..e).is_some_and(|k| same(k, key)))
            {
                return Some(Err(AttrError::Duplicated(start, prev)));
            }
            self.keys.push((start, end));
        }
        let open = self.skip_ws(eq + 1);
        let quote = match self.tag.get(open) {
            None => return Some(Err(AttrError::ExpectedValue(len))),
            Some(&q @ (b'"' | b'\'')) => q,
            Some(_) => return Some(Err(AttrError::UnquotedValue(open))),
        };
        let value_at = open + 1;
        let rest = self.slice(value_at..len);
        let Some(n) = memchr::memchr(quote, rest) else {
            return Some(Err(AttrError::ExpectedQuote(len, quote)));
        };
        self.pos = value_at + n + 1;
        Some(Ok(Attr {
            key: self.slice(start..end),
            value: rest.get(..n).unwrap_or_default(),
            value_at,
        }))
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, AttrError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quick_xml::events::BytesStart;

    type Split = Vec<Result<(String, String, usize), AttrError>>;

    /// What quick-xml's iterator yields, up to and including its first error.
    fn reference(raw: &str, name_len: usize, checked: bool) -> Split {
        let start = BytesStart::from_content(raw, name_len);
        let mut attrs = start.attributes();
        attrs.with_checks(checked);
        let mut out = Vec::new();
        for a in attrs {
            match a {
                Ok(a) => {
                    let value: &[u8] = &a.value;
                    let at = value.as_ptr() as usize - raw.as_ptr() as usize;
                    out.push(Ok((
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                        at,
                    )));
                }
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        out
    }

    fn ours(raw: &str, checked: bool) -> Split {
        let tag = Tag::new(raw.as_bytes(), 0);
        let attrs = if checked {
            tag.attrs()
        } else {
            tag.attrs_unchecked()
        };
        attrs
            .map(|a| {
                a.map(|a| {
                    (
                        String::from_utf8_lossy(a.key).into_owned(),
                        String::from_utf8_lossy(a.value).into_owned(),
                        a.value_at,
                    )
                })
            })
            .collect()
    }

    fn same(raw: &str) {
        let name_len = Tag::new(raw.as_bytes(), 0).name_len;
        for checked in [true, false] {
            assert_eq!(
                ours(raw, checked),
                reference(raw, name_len, checked),
                "{raw:?} checked={checked}"
            );
        }
    }

    #[test]
    fn splits_as_quick_xml_does() {
        for raw in [
            "x",
            "x   ",
            r#"x a="1""#,
            r#"x a="1" b='2'"#,
            "x a = \"1\"\tb\n=\r'x\"y'",
            r#"x a="1"b="2""#,
            r#"p:x p:a="1" xmlns:p="u" xmlns="v""#,
            r#"x =="x""#,
            r#"x a="""#,
            r#"x a="<&amp;>""#,
            "x a",
            "x a ",
            "x a b=\"1\"",
            "x a=",
            "x a= ",
            "x a=1",
            r#"x a="1"#,
            r#"x a='1""#,
            r#"x a="1" a="2""#,
            r#"x ="x""#,
            r#"x a="1" b="2" a='3'"#,
        ] {
            same(raw);
        }
        let many: String = (0..40).map(|i| format!(" a{i}=\"v\"")).collect();
        same(&format!("x{many}"));
        same(&format!("x{many} a7='again'"));
    }

    proptest! {
        #[test]
        fn random_tags_split_as_quick_xml_does(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("a"), Just("b"), Just("p:a"), Just("xmlns"), Just("="), Just("\""),
                    Just("'"), Just(" "), Just("\t"), Just("\n"), Just("v"), Just("<"),
                    Just(">"), Just("&"), Just("é"),
                ],
                0..24,
            )
        ) {
            let raw = format!("x {}", parts.concat());
            same(&raw);
        }
    }
}
