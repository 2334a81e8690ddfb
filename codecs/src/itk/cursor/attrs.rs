//! Attribute access for the cursor: values as slices of the input (quick-xml lends them from
//! the start tag; the same bytes are found in the input to keep the input's lifetime without
//! copying), checked for references once, and the SOAP `mustUnderstand` flag.

use super::{Cursor, Elem};
use crate::itk::error::{ItkError, ItkErrorKind};
use crate::itk::text::{self, trim, Form, Text};
use crate::itk::NS_SOAP11;
use quick_xml::events::attributes::AttrError;
use quick_xml::name::ResolveResult;

impl<'a> Cursor<'a> {
    /// The unqualified attributes `names` of `e`, as trimmed, checked slices of the input.
    /// Namespace declarations and prefixed attributes (other vocabularies) are ignored.
    pub(crate) fn attrs<const N: usize>(
        &self,
        e: &Elem<'a>,
        names: [&'static str; N],
    ) -> Result<[Option<Text<'a>>; N], ItkError> {
        let mut out = [None; N];
        for attr in e.start.attributes() {
            let attr = attr.map_err(|err| self.attr_error(e, &err))?;
            if attr.key.prefix().is_some() || attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let local = attr.key.local_name();
            let Some(i) = names.iter().position(|n| n.as_bytes() == local.as_ref()) else {
                continue;
            };
            let name = names.get(i).copied().unwrap_or("");
            let text = self.attr_text(e, &attr.value, name)?;
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(text);
            }
        }
        Ok(out)
    }

    fn attr_text(&self, e: &Elem<'a>, value: &[u8], name: &str) -> Result<Text<'a>, ItkError> {
        // quick-xml hands out attribute values borrowed from the start tag, which borrows the
        // input: find the same bytes in the input to keep the `'a` lifetime without copying.
        let Some((raw, offset)) = self.rebase(value) else {
            let kind = ItkErrorKind::Xml("attribute value not borrowed from input".into());
            return Err(self.fail_attr(e.offset, name, kind));
        };
        if let Some(lt) = memchr::memchr(b'<', raw) {
            let kind = ItkErrorKind::Xml("'<' in attribute value".into());
            return Err(self.fail_attr(offset + lt, name, kind));
        }
        let (raw, cut) = trim(raw);
        let offset = offset + cut;
        text::validate(raw, offset, Form::Attribute).map_err(|x| self.place(x, Some(name)))?;
        Ok(Text::new(raw, offset, Form::Attribute))
    }

    /// `part` as the same bytes of the input, with their offset, when it points into it.
    fn rebase(&self, part: &[u8]) -> Option<(&'a [u8], usize)> {
        let off = (part.as_ptr() as usize).checked_sub(self.input.as_ptr() as usize)?;
        let raw = self.input.get(off..off.checked_add(part.len())?)?;
        Some((raw, off))
    }

    /// The raw qualified name of `e` as a slice of the input.
    pub(crate) fn name_text(&self, e: &Elem<'a>) -> Text<'a> {
        let name = e.start.name();
        match self.rebase(name.as_ref()) {
            Some((raw, offset)) => Text::new(raw, offset, Form::Attribute),
            None => Text::new(&[], e.offset, Form::Attribute),
        }
    }

    /// Whether `e` carries `soap:mustUnderstand` (or an unprefixed `mustUnderstand`, as TKW's
    /// negative tests write it) set to `1` or `true`.
    pub(crate) fn must_understand(&self, e: &Elem<'a>) -> Result<bool, ItkError> {
        for attr in e.start.attributes() {
            let attr = attr.map_err(|err| self.attr_error(e, &err))?;
            let (ns, local) = self.reader.resolve_attribute(attr.key);
            let soap = match ns {
                ResolveResult::Unbound => true,
                ResolveResult::Bound(uri) => uri.as_ref() == NS_SOAP11.as_bytes(),
                ResolveResult::Unknown(_) => false,
            };
            if soap && local.as_ref() == b"mustUnderstand" {
                let (v, _) = trim(&attr.value);
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
