//! The element path of a [`Cursor`] and the errors placed on it: readers name each known
//! element they enter (a `&'static str` and its DE code in a fixed array), and the path is
//! turned into a `String` only when an error is reported, never on the way to a success.

use super::Cursor;
use crate::itk::error::{DeCode, ItkError, ItkErrorKind};

impl Cursor<'_> {
    /// The fast tokenizer's failure, never shown: [`super::read`] reads again with quick-xml.
    /// (`Cursor::gave_up` records it, whatever readers do with the error.)
    pub(super) fn bail_error(offset: usize) -> ItkError {
        ItkError::new(offset, ItkErrorKind::Xml("fast reader gave up".into()))
    }

    /// Enters a known element (for error paths and DE codes).
    pub(crate) fn enter(&mut self, name: &'static str, de: Option<DeCode>) {
        if let Some(slot) = self.path.get_mut(self.depth) {
            *slot = (name, de);
        }
        self.depth += 1;
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn path_string(&self, extra: &[&str], attr: Option<&str>) -> String {
        let known = self.path.get(..self.depth).unwrap_or(&self.path);
        let mut s = String::new();
        for name in known.iter().map(|(n, _)| *n).chain(extra.iter().copied()) {
            s.push('/');
            s.push_str(name);
        }
        if let Some(attr) = attr {
            s.push_str("/@");
            s.push_str(attr);
        }
        s
    }

    fn innermost_de(&self) -> Option<DeCode> {
        let known = self.path.get(..self.depth).unwrap_or(&self.path);
        known.iter().rev().find_map(|(_, de)| *de)
    }

    /// An error at the current path, with the innermost DE code unless it is an XML-level fault.
    pub(crate) fn fail(&self, offset: usize, kind: ItkErrorKind) -> ItkError {
        let de = if kind.is_xml_level() {
            None
        } else {
            self.innermost_de()
        };
        self.fail_at(offset, kind, de, &[], None)
    }

    /// An error below the current path (`extra` element names, e.g. `["manifestitem"]`, and
    /// optionally an attribute) with an explicit code.
    pub(crate) fn fail_at(
        &self,
        offset: usize,
        kind: ItkErrorKind,
        de: Option<DeCode>,
        extra: &[&str],
        attr: Option<&str>,
    ) -> ItkError {
        ItkError {
            offset,
            path: self.path_string(extra, attr),
            kind,
            de,
        }
    }

    /// An error at the current path with an explicit DE code.
    pub(crate) fn fail_de(&self, offset: usize, kind: ItkErrorKind, de: DeCode) -> ItkError {
        self.fail_at(offset, kind, Some(de), &[], None)
    }

    /// An error in attribute `attr` of the current element, with the innermost DE code.
    pub(crate) fn fail_attr(&self, offset: usize, attr: &str, kind: ItkErrorKind) -> ItkError {
        let de = if kind.is_xml_level() {
            None
        } else {
            self.innermost_de()
        };
        self.fail_at(offset, kind, de, &[], Some(attr))
    }

    /// Adds the current path (and DE code) to an error raised below the cursor.
    pub(super) fn place(&self, mut e: ItkError, attr: Option<&str>) -> ItkError {
        if e.path.is_empty() {
            e.path = self.path_string(&[], attr);
        }
        if e.de.is_none() && !e.kind.is_xml_level() {
            e.de = self.innermost_de();
        }
        e
    }
}
