//! [`Text`]: a value as a slice of the input, decoded only on request.
//!
//! The reader stores attribute values and element text as slices, trimmed of leading and
//! trailing XML whitespace (every value read here is a URI, UUID, token or code whose schema type
//! collapses whitespace). At read time each value is checked once: it must be UTF-8 and every
//! `&...;` must be one of the five predefined entities or a character reference to an XML
//! character. So [`Text::decoded`] borrows when nothing needs replacing and allocates only for
//! escapes, CDATA sections, comments inside text, or line ends that XML normalises.

use super::error::{ItkError, ItkErrorKind};
use std::borrow::Cow;
use std::fmt;

/// A value read from the XML input: the raw bytes as written, plus where they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Text<'a> {
    raw: &'a [u8],
    /// Offset of `raw` in the input, with the [`Form`] in the top bit ([`CONTENT`]): no slice
    /// reaches `isize::MAX` bytes, so the bit is free, and a `Text` takes three words instead
    /// of four. A parsed message is mostly `Text`s and is moved a few times on its way out.
    at: usize,
}

/// The top bit of [`Text::at`]: set for element content, clear for attribute values.
const CONTENT: usize = 1 << (usize::BITS - 1);

/// Attribute values and element content decode differently (whitespace normalisation, CDATA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Form {
    Attribute,
    Content,
}

impl<'a> Text<'a> {
    pub(crate) const fn new(raw: &'a [u8], offset: usize, form: Form) -> Self {
        let at = match form {
            Form::Attribute => offset & !CONTENT,
            Form::Content => offset | CONTENT,
        };
        Self { raw, at }
    }

    const fn form(&self) -> Form {
        if self.at & CONTENT == 0 {
            Form::Attribute
        } else {
            Form::Content
        }
    }

    /// The bytes exactly as in the input (escapes not resolved), less surrounding whitespace.
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Byte offset of [`Self::raw`] in the input.
    pub const fn offset(&self) -> usize {
        self.at & !CONTENT
    }

    /// Whether the value is empty.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The value with character and entity references resolved, CDATA unwrapped, comments
    /// dropped and line ends normalised as XML requires. Borrows when nothing changes.
    pub fn decoded(&self) -> Result<Cow<'a, str>, ItkError> {
        let s = utf8(self.raw, self.offset())?;
        if !needs_decoding(self.raw, self.form()) {
            return Ok(Cow::Borrowed(s));
        }
        let mut out = String::with_capacity(s.len());
        scan(s, self.form(), self.offset(), Some(&mut out))?;
        Ok(Cow::Owned(out))
    }

    /// Whether the decoded value equals `s`, without allocating when the raw bytes hold no
    /// escapes.
    pub fn eq_str(&self, s: &str) -> bool {
        // Decoding never lengthens a value (every escape is longer than what it stands for),
        // so a shorter one cannot match: the usual answer when a key is tried against a list.
        if self.raw.len() < s.len() {
            return false;
        }
        if needs_decoding(self.raw, self.form()) {
            self.decoded().is_ok_and(|d| d == s)
        } else {
            self.raw == s.as_bytes()
        }
    }

    /// The raw bytes as `&str` when they are UTF-8 and need no decoding (the common case for
    /// URIs and UUIDs); use [`Self::decoded`] otherwise.
    pub fn as_plain_str(&self) -> Option<&'a str> {
        if needs_decoding(self.raw, self.form()) {
            return None;
        }
        std::str::from_utf8(self.raw).ok()
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}@{}",
            String::from_utf8_lossy(self.raw),
            self.offset()
        )
    }
}

/// Whether `raw` holds anything [`Text::decoded`] would change. Folded without an early exit,
/// as values are short and nearly always clean, so it compiles to a vector loop.
fn needs_decoding(raw: &[u8], form: Form) -> bool {
    match form {
        Form::Attribute => raw.iter().fold(false, |any, &b| {
            any | (b == b'&') | (b == b'\r') | (b == b'\n') | (b == b'\t')
        }),
        Form::Content => raw.iter().fold(false, |any, &b| {
            any | (b == b'&') | (b == b'\r') | (b == b'<')
        }),
    }
}

/// Whether `raw` is printable ASCII without `&` or `<`: UTF-8 with nothing to decode in either
/// form and nothing an attribute may not hold, so [`validate`] has nothing to do. True of
/// nearly every URI, id and code. Written without an early exit so it compiles to a vector
/// loop.
pub(crate) fn is_plain(raw: &[u8]) -> bool {
    !raw.iter().fold(false, |odd, &b| {
        odd | !(0x20..0x80).contains(&b) | (b == b'&') | (b == b'<')
    })
}

fn utf8(raw: &[u8], offset: usize) -> Result<&str, ItkError> {
    std::str::from_utf8(raw)
        .map_err(|e| ItkError::new(offset + e.valid_up_to(), ItkErrorKind::InvalidUtf8))
}

/// Read-time check: UTF-8, references resolvable, markup inside content closed.
pub(crate) fn validate(raw: &[u8], offset: usize, form: Form) -> Result<(), ItkError> {
    let s = utf8(raw, offset)?;
    if needs_decoding(raw, form) {
        scan(s, form, offset, None)?;
    }
    Ok(())
}

/// XML whitespace.
pub(crate) const fn is_xml_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `raw` without leading and trailing XML whitespace, and how many bytes were cut in front.
pub(crate) fn trim(raw: &[u8]) -> (&[u8], usize) {
    let start = raw.iter().position(|&b| !is_xml_ws(b)).unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|&b| !is_xml_ws(b))
        .map_or(start, |i| i + 1);
    (raw.get(start..end).unwrap_or_default(), start)
}

/// Walks `s`, resolving references and markup; writes the decoded text to `out` when given.
fn scan(s: &str, form: Form, offset: usize, mut out: Option<&mut String>) -> Result<(), ItkError> {
    let bytes = s.as_bytes();
    let mut i = 0usize;
    let mut run = 0usize;
    let special = |b: u8| match form {
        Form::Attribute => matches!(b, b'&' | b'\r' | b'\n' | b'\t'),
        Form::Content => matches!(b, b'&' | b'\r' | b'<'),
    };
    while let Some(&b) = bytes.get(i) {
        if !special(b) {
            i += 1;
            continue;
        }
        if let Some(o) = out.as_deref_mut() {
            o.push_str(s.get(run..i).unwrap_or_default());
        }
        let rest = s.get(i..).unwrap_or_default();
        let used = match b {
            b'&' => {
                let (ch, used) = reference(rest, offset + i)?;
                if let Some(o) = out.as_deref_mut() {
                    o.push(ch);
                }
                used
            }
            b'\r' => {
                let sep = if form == Form::Content { '\n' } else { ' ' };
                if let Some(o) = out.as_deref_mut() {
                    o.push(sep);
                }
                if rest.as_bytes().get(1) == Some(&b'\n') {
                    2
                } else {
                    1
                }
            }
            b'<' => {
                let (kept, used) = markup(rest, offset + i)?;
                if let (Some(o), Some(kept)) = (out.as_deref_mut(), kept) {
                    // CDATA content still has its line ends normalised.
                    o.push_str(&kept.replace("\r\n", "\n").replace('\r', "\n"));
                }
                used
            }
            _ => {
                // Attribute value normalisation: literal TAB and LF become spaces.
                if let Some(o) = out.as_deref_mut() {
                    o.push(' ');
                }
                1
            }
        };
        i += used;
        run = i;
    }
    if let Some(o) = out {
        o.push_str(s.get(run..).unwrap_or_default());
    }
    Ok(())
}

/// Resolves the reference at the start of `rest` (which starts with `&`).
fn reference(rest: &str, at: usize) -> Result<(char, usize), ItkError> {
    let end = rest
        .bytes()
        .take(40)
        .position(|b| b == b';')
        .ok_or_else(|| ItkError::new(at, ItkErrorKind::Xml("unterminated reference".into())))?;
    let name = rest.get(1..end).unwrap_or_default();
    let ch = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => match name.strip_prefix('#') {
            Some(num) => Some(char_ref(num).ok_or(ItkError::new(at, ItkErrorKind::BadCharRef))?),
            None => None,
        },
    };
    let ch = ch.ok_or_else(|| ItkError::new(at, ItkErrorKind::UndefinedEntity(name.into())))?;
    Ok((ch, end + 1))
}

/// `#` already stripped: `65` or `x41`, to a character XML 1.0 allows.
pub(crate) fn char_ref(num: &str) -> Option<char> {
    let (digits, radix) = match num.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (num, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let ch = char::from_u32(u32::from_str_radix(digits, radix).ok()?)?;
    is_xml_char(ch).then_some(ch)
}

/// XML 1.0 `Char`.
pub(crate) const fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Markup inside element text: CDATA (kept), comments and processing instructions (dropped).
fn markup(rest: &str, at: usize) -> Result<(Option<&str>, usize), ItkError> {
    let (open, close, keep) = if rest.starts_with("<![CDATA[") {
        ("<![CDATA[", "]]>", true)
    } else if rest.starts_with("<!--") {
        ("<!--", "-->", false)
    } else if rest.starts_with("<?") {
        ("<?", "?>", false)
    } else {
        return Err(ItkError::new(at, ItkErrorKind::UnexpectedElement));
    };
    let body = rest.get(open.len()..).unwrap_or_default();
    let end = body.find(close).ok_or_else(|| {
        ItkError::new(at, ItkErrorKind::Xml("unterminated markup in text".into()))
    })?;
    let kept = keep.then(|| body.get(..end).unwrap_or_default());
    Ok((kept, open.len() + end + close.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(s: &str) -> Text<'_> {
        Text::new(s.as_bytes(), 10, Form::Content)
    }

    fn attr(s: &str) -> Text<'_> {
        Text::new(s.as_bytes(), 10, Form::Attribute)
    }

    #[test]
    fn form_and_offset_share_a_word() {
        assert_eq!(
            std::mem::size_of::<Text<'_>>(),
            3 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Text<'_>>>(),
            3 * std::mem::size_of::<usize>()
        );
        let at = isize::MAX as usize;
        for form in [Form::Attribute, Form::Content] {
            for offset in [0, 1, 12345, at] {
                let t = Text::new(b"x", offset, form);
                assert_eq!((t.offset(), t.form()), (offset, form));
            }
        }
        assert_ne!(content("a"), attr("a"));
    }

    #[test]
    fn plain_values_borrow() {
        let t = content("urn:nhs-itk:services:201005:SendCDADocument-v2-0");
        assert!(matches!(t.decoded().unwrap(), Cow::Borrowed(_)));
        assert_eq!(
            t.as_plain_str(),
            Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
        );
        assert!(t.eq_str("urn:nhs-itk:services:201005:SendCDADocument-v2-0"));
    }

    #[test]
    fn references_resolve() {
        let t = content("a&amp;b&lt;c&gt;&quot;&apos;&#65;&#x42;&#x1F600;");
        assert_eq!(t.decoded().unwrap(), "a&b<c>\"'AB\u{1F600}");
        assert_eq!(t.as_plain_str(), None);
        assert!(t.eq_str("a&b<c>\"'AB\u{1F600}"));
    }

    #[test]
    fn undefined_entities_and_bad_char_refs_fail_at_their_offset() {
        let e = content("ab&nbsp;").decoded().unwrap_err();
        assert_eq!(e.kind, ItkErrorKind::UndefinedEntity("nbsp".into()));
        assert_eq!(e.offset, 12);
        for bad in [
            "&#0;",
            "&#x;",
            "&#xD800;",
            "&#1114112;",
            "&#-1;",
            "&#x1g;",
            "&#12",
        ] {
            let e = attr(bad).decoded().unwrap_err();
            assert_eq!(e.offset, 10, "{bad}");
            assert!(
                matches!(e.kind, ItkErrorKind::BadCharRef | ItkErrorKind::Xml(_)),
                "{bad}: {:?}",
                e.kind
            );
        }
        assert!(validate(b"x&foo;", 0, Form::Attribute).is_err());
        assert!(validate(b"x&amp;", 0, Form::Attribute).is_ok());
    }

    #[test]
    fn cdata_comments_and_line_ends_in_content() {
        let t = content("a<![CDATA[<b>&amp;\r\n]]>c<!-- x -->d\r\ne\rf<?pi x?>");
        assert_eq!(t.decoded().unwrap(), "a<b>&amp;\ncd\ne\nf");
        assert!(content("a<b").decoded().is_err());
        assert!(content("a<![CDATA[b").decoded().is_err());
    }

    #[test]
    fn decoding_never_lengthens_so_eq_str_can_reject_short_values() {
        for raw in [
            "a&amp;b",
            "&#x10FFFF;&#65;&lt;",
            "a\r\nb\rc",
            "x<![CDATA[\r\n]]>y<!-- c --><?p?>",
            "\t\n",
        ] {
            for t in [content(raw), attr(raw)] {
                if let Ok(d) = t.decoded() {
                    assert!(d.len() <= raw.len(), "{raw:?}");
                    assert!(t.eq_str(&d), "{raw:?}");
                }
            }
        }
        assert!(!content("ab").eq_str("abc"));
        assert!(content("a&amp;b").eq_str("a&b"));
    }

    #[test]
    fn attribute_whitespace_is_normalised_but_char_refs_are_kept() {
        let t = attr("a\tb\nc\r\nd&#10;e");
        assert_eq!(t.decoded().unwrap(), "a b c d\ne");
    }

    #[test]
    fn invalid_utf8_is_reported_where_it_starts() {
        let t = Text::new(b"ab\xffcd", 100, Form::Content);
        let e = t.decoded().unwrap_err();
        assert_eq!((e.offset, e.kind), (102, ItkErrorKind::InvalidUtf8));
        assert!(!t.eq_str("ab"));
    }

    #[test]
    fn byte_classes_match_the_rules() {
        for b in 0..=255u8 {
            let one = [b];
            let attr = matches!(b, b'&' | b'\r' | b'\n' | b'\t');
            let content = matches!(b, b'&' | b'\r' | b'<');
            assert_eq!(needs_decoding(&one, Form::Attribute), attr, "{b:#04x}");
            assert_eq!(needs_decoding(&one, Form::Content), content, "{b:#04x}");
            let plain = (0x20..0x80).contains(&b) && b != b'&' && b != b'<';
            assert_eq!(is_plain(&one), plain, "{b:#04x}");
            // Whatever is plain validates as it stands, in either form.
            if plain {
                assert!(validate(&one, 0, Form::Attribute).is_ok());
                assert!(validate(&one, 0, Form::Content).is_ok());
            }
        }
    }

    #[test]
    fn trim_reports_the_cut() {
        assert_eq!(trim(b" \r\n\tab c \n"), (&b"ab c"[..], 4));
        assert_eq!(trim(b"   "), (&b""[..], 3));
        assert_eq!(trim(b""), (&b""[..], 0));
    }
}
