//! Attribute access for the cursor: values as slices of the input, checked for references once
//! (a byte-class pass decides when there is nothing to check), and the SOAP `mustUnderstand`
//! flag. Attributes are split by [`super::tag::Attrs`], which gives quick-xml's attributes
//! and errors without allocating.

use super::scope::{split, Resolved};
use super::tag::Attr;
use super::{same, Cursor, Elem, Ns};
use crate::itk::error::{ItkError, ItkErrorKind};
use crate::itk::text::{self, trim, Form, Text};
use quick_xml::events::attributes::AttrError;

impl<'a> Cursor<'a> {
    /// The unqualified attributes `names` of `e`, as trimmed, checked slices of the input.
    /// Namespace declarations and prefixed attributes (other vocabularies) are ignored.
    pub(crate) fn attrs<const N: usize>(
        &self,
        e: &Elem<'a>,
        names: [&'static str; N],
    ) -> Result<[Option<Text<'a>>; N], ItkError> {
        let mut out = [None; N];
        if let Some(spans) = self.source.attrs_of(e.tag.at) {
            for span in spans {
                let part = |(from, to): (usize, usize)| e.tag.raw.get(from..to).unwrap_or_default();
                let attr = Attr {
                    key: part(span.key),
                    value: part(span.value),
                    value_at: span.value.0,
                };
                self.keep_attr(e.tag.at, attr, &names, &mut out)?;
            }
            return Ok(out);
        }
        for attr in e.tag.attrs() {
            let attr = attr.map_err(|err| self.attr_error(e, &err))?;
            self.keep_attr(e.tag.at, attr, &names, &mut out)?;
        }
        Ok(out)
    }

    /// Stores `attr` of the tag at `at` in `out`, checked, when it is one of `names`.
    fn keep_attr<const N: usize>(
        &self,
        at: usize,
        attr: Attr<'a>,
        names: &[&'static str; N],
        out: &mut [Option<Text<'a>>; N],
    ) -> Result<(), ItkError> {
        // Prefixed attributes and `xmlns` (a namespace declaration) are not ours.
        if split(attr.key).0.is_some() || attr.key == b"xmlns" {
            return Ok(());
        }
        let Some(i) = names.iter().position(|n| same(n.as_bytes(), attr.key)) else {
            return Ok(());
        };
        let name = names.get(i).copied().unwrap_or("");
        let text = self.attr_text(attr.value, at + attr.value_at, name)?;
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(text);
        }
        Ok(())
    }

    /// Checks the value `raw` of attribute `name`, found at `offset` in the input.
    fn attr_text(&self, raw: &'a [u8], offset: usize, name: &str) -> Result<Text<'a>, ItkError> {
        if text::is_plain(raw) {
            // Nothing below can fail on it.
            let (raw, cut) = trim(raw);
            return Ok(Text::new(raw, offset + cut, Form::Attribute));
        }
        if let Some(lt) = memchr::memchr(b'<', raw) {
            let kind = ItkErrorKind::Xml("'<' in attribute value".into());
            return Err(self.fail_attr(offset + lt, name, kind));
        }
        let (raw, cut) = trim(raw);
        let offset = offset + cut;
        text::validate(raw, offset, Form::Attribute).map_err(|x| self.place(x, Some(name)))?;
        Ok(Text::new(raw, offset, Form::Attribute))
    }

    /// The raw qualified name of `e` as a slice of the input.
    pub(crate) fn name_text(&self, e: &Elem<'a>) -> Text<'a> {
        Text::new(e.tag.name(), e.tag.at, Form::Attribute)
    }

    /// Whether `e` carries `soap:mustUnderstand` (or an unprefixed `mustUnderstand`, as TKW's
    /// negative tests write it) set to `1` or `true`.
    pub(crate) fn must_understand(&self, e: &Elem<'a>) -> Result<bool, ItkError> {
        for attr in e.tag.attrs() {
            let attr = attr.map_err(|err| self.attr_error(e, &err))?;
            let (prefix, local) = split(attr.key);
            let soap = matches!(
                self.scopes.resolve_prefix(prefix, false),
                Resolved::Ns(Ns::None | Ns::Soap11)
            );
            if soap && local == b"mustUnderstand" {
                let (v, _) = trim(attr.value);
                if v == b"1" || v == b"true" {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn attr_error(&self, e: &Elem<'a>, err: &AttrError) -> ItkError {
        let pos = match *err {
            AttrError::ExpectedEq(p)
            | AttrError::ExpectedValue(p)
            | AttrError::UnquotedValue(p)
            | AttrError::ExpectedQuote(p, _)
            | AttrError::Duplicated(p, _) => p,
        };
        // Positions count from the byte after `<`.
        self.fail(e.offset + 1 + pos, ItkErrorKind::Xml(err.to_string()))
    }
}
