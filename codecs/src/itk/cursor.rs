//! The event pump under every ITK reader: quick-xml's borrowed, namespace-aware `NsReader` over
//! the input slice, plus the element path for error messages.
//!
//! Element readers are small recursive-descent functions: each is handed an opened [`Elem`] and
//! must consume it to its end, with [`Cursor::children`], [`Cursor::text`] or
//! [`Cursor::skip`]. Elements are matched by namespace URI and local name ([`Ns`]), never by
//! prefix. Skipped content (payload bodies, unknown SOAP headers) is read without namespace
//! resolution, which keeps large payloads cheap.
//!
//! The cursor refuses `<!DOCTYPE` (so no entity can ever be declared or expanded), checks every
//! `&name;` it meets in text against the five predefined entities, and refuses declared
//! encodings other than UTF-8 (quick-xml is used without its `encoding` feature). Opaque
//! content (payloads) is checked for tag balance, references and DOCTYPE only: attribute syntax
//! and namespace prefixes inside it are the payload consumer's business.

use super::error::{DeCode, ItkError, ItkErrorKind};
use super::text::{self, is_xml_ws, trim, Form, Text};
use super::{NS_ITK, NS_SOAP11, NS_WSA_2004, NS_WSA_2005, NS_WSSE, NS_WSU};
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

mod attrs;

/// The namespaces ITK messages use, by URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace (unprefixed, no default namespace in scope).
    None,
    Soap11,
    Wsa2005,
    Wsa2004,
    Itk,
    Wsse,
    Wsu,
    Other,
}

impl Ns {
    fn of(r: &ResolveResult<'_>) -> Self {
        match r {
            ResolveResult::Bound(ns) => match ns.as_ref() {
                u if u == NS_ITK.as_bytes() => Self::Itk,
                u if u == NS_SOAP11.as_bytes() => Self::Soap11,
                u if u == NS_WSA_2005.as_bytes() => Self::Wsa2005,
                u if u == NS_WSA_2004.as_bytes() => Self::Wsa2004,
                u if u == NS_WSSE.as_bytes() => Self::Wsse,
                u if u == NS_WSU.as_bytes() => Self::Wsu,
                _ => Self::Other,
            },
            ResolveResult::Unbound => Self::None,
            ResolveResult::Unknown(_) => Self::Other,
        }
    }

    /// Either WS-Addressing namespace (2005/08, or the 2004/08 one Spine still uses).
    pub(crate) const fn is_wsa(self) -> bool {
        matches!(self, Self::Wsa2005 | Self::Wsa2004)
    }
}

/// An element just opened (`<x ...>` or `<x .../>`).
pub(crate) struct Elem<'a> {
    pub ns: Ns,
    pub start: BytesStart<'a>,
    /// `<x/>`: there is no content and no end tag to consume.
    pub empty: bool,
    /// Offset of the `<`.
    pub offset: usize,
    /// Offset just after the start tag's `>`.
    pub content: usize,
}

impl Elem<'_> {
    pub(crate) fn local(&self) -> &[u8] {
        self.start.local_name().into_inner()
    }

    pub(crate) fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local() == local.as_bytes()
    }
}

/// An end tag: where it starts (`</`) and ends (after `>`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Close {
    pub offset: usize,
    pub end: usize,
}

pub(crate) enum Ev<'a> {
    Open(Elem<'a>),
    Close(Close),
    /// Non-whitespace character data, a CDATA section or a reference.
    Text(usize),
    Eof,
}

const MAX_PATH: usize = 16;

pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    reader: NsReader<&'a [u8]>,
    path: [(&'static str, Option<DeCode>); MAX_PATH],
    depth: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Result<Self, ItkError> {
        // Without the `encoding` feature quick-xml reads bytes as UTF-8; UTF-16 would come out
        // as garbage names, so say what it is instead.
        if input.starts_with(&[0xFF, 0xFE]) || input.starts_with(&[0xFE, 0xFF]) {
            return Err(ItkError::new(
                0,
                ItkErrorKind::UnsupportedEncoding("UTF-16".into()),
            ));
        }
        let mut reader = NsReader::from_reader(input);
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        Ok(Self {
            input,
            reader,
            path: [("", None); MAX_PATH],
            depth: 0,
        })
    }

    pub(crate) const fn input(&self) -> &'a [u8] {
        self.input
    }

    /// Current reading position: just after the last event returned.
    pub(crate) fn pos(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
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
    fn place(&self, mut e: ItkError, attr: Option<&str>) -> ItkError {
        if e.path.is_empty() {
            e.path = self.path_string(&[], attr);
        }
        if e.de.is_none() && !e.kind.is_xml_level() {
            e.de = self.innermost_de();
        }
        e
    }

    fn xml_error(&self, e: &quick_xml::Error) -> ItkError {
        let at = usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
        self.fail(at, ItkErrorKind::Xml(e.to_string()))
    }

    /// The next event that matters: comments and processing instructions are skipped, as is
    /// whitespace between elements. An element with an undeclared prefix is an error.
    pub(crate) fn next(&mut self) -> Result<Ev<'a>, ItkError> {
        self.next_event(true)
    }

    /// [`Self::next`] inside opaque content (payloads): an undeclared prefix is not our
    /// business there, as it is not in the content [`Self::skip`] passes over; the element
    /// simply matches no known namespace.
    pub(crate) fn next_opaque(&mut self) -> Result<Ev<'a>, ItkError> {
        self.next_event(false)
    }

    fn next_event(&mut self, strict: bool) -> Result<Ev<'a>, ItkError> {
        loop {
            let offset = self.pos();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => return Err(self.xml_error(&e)),
            };
            match event {
                Event::Start(start) => return self.open(start, false, offset, strict),
                Event::Empty(start) => return self.open(start, true, offset, strict),
                Event::End(_) => {
                    return Ok(Ev::Close(Close {
                        offset,
                        end: self.pos(),
                    }))
                }
                Event::Text(t) if t.iter().all(|&b| is_xml_ws(b)) => {}
                Event::Text(_) | Event::CData(_) => return Ok(Ev::Text(offset)),
                Event::GeneralRef(r) => {
                    self.check_ref(&r, offset)?;
                    return Ok(Ev::Text(offset));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Decl(d) => self.check_decl(&d, offset)?,
                Event::DocType(_) => return Err(self.fail(offset, ItkErrorKind::DtdRefused)),
                Event::Eof => return Ok(Ev::Eof),
            }
        }
    }

    fn open(
        &self,
        start: BytesStart<'a>,
        empty: bool,
        offset: usize,
        strict: bool,
    ) -> Result<Ev<'a>, ItkError> {
        let ns = match self.reader.resolve_element(start.name()).0 {
            ResolveResult::Unknown(_) if strict => {
                let kind = ItkErrorKind::Xml("undeclared namespace prefix".into());
                return Err(self.fail(offset, kind));
            }
            known => Ns::of(&known),
        };
        Ok(Ev::Open(Elem {
            ns,
            start,
            empty,
            offset,
            content: self.pos(),
        }))
    }

    fn check_ref(&self, r: &BytesRef<'_>, offset: usize) -> Result<(), ItkError> {
        let name: &[u8] = r;
        let ok = match name {
            b"lt" | b"gt" | b"amp" | b"quot" | b"apos" => true,
            [b'#', num @ ..] => std::str::from_utf8(num)
                .ok()
                .and_then(text::char_ref)
                .is_some(),
            _ => {
                let name = String::from_utf8_lossy(name).into_owned();
                return Err(self.fail(offset, ItkErrorKind::UndefinedEntity(name)));
            }
        };
        if ok {
            Ok(())
        } else {
            Err(self.fail(offset, ItkErrorKind::BadCharRef))
        }
    }

    fn check_decl(&self, d: &BytesDecl<'_>, offset: usize) -> Result<(), ItkError> {
        // Only a UTF-8 byte order mark may precede the declaration.
        if offset > 3 {
            return Err(self.fail(
                offset,
                ItkErrorKind::Xml("XML declaration not at the start".into()),
            ));
        }
        let Some(Ok(enc)) = d.encoding() else {
            return Ok(());
        };
        let utf8 = [&b"utf-8"[..], b"utf8", b"us-ascii", b"ascii"]
            .iter()
            .any(|e| enc.eq_ignore_ascii_case(e));
        // A legacy label on a pure-ASCII document reads the same as UTF-8.
        if utf8 || self.input.is_ascii() {
            Ok(())
        } else {
            let name = String::from_utf8_lossy(&enc).into_owned();
            Err(self.fail(offset, ItkErrorKind::UnsupportedEncoding(name)))
        }
    }

    /// Consumes the rest of `e` (content and end tag) without interpreting it.
    pub(crate) fn skip(&mut self, e: &Elem<'a>) -> Result<Close, ItkError> {
        if e.empty {
            return Ok(Close {
                offset: e.content,
                end: e.content,
            });
        }
        let mut depth = 1usize;
        loop {
            let offset = self.pos();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(err) => return Err(self.xml_error(&err)),
            };
            match event {
                Event::Start(_) => depth += 1,
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Close {
                            offset,
                            end: self.pos(),
                        });
                    }
                }
                Event::GeneralRef(r) => self.check_ref(&r, offset)?,
                Event::DocType(_) => return Err(self.fail(offset, ItkErrorKind::DtdRefused)),
                Event::Decl(d) => self.check_decl(&d, offset)?,
                Event::Eof => return Err(self.fail(offset, ItkErrorKind::Truncated)),
                Event::Empty(_)
                | Event::Text(_)
                | Event::CData(_)
                | Event::Comment(_)
                | Event::PI(_) => {}
            }
        }
    }

    /// Calls `f` on each child element of `parent`; character data other than whitespace is
    /// an error. `f` must consume the child it is given. Returns the parent's end tag.
    pub(crate) fn children<F>(&mut self, parent: &Elem<'a>, mut f: F) -> Result<Close, ItkError>
    where
        F: FnMut(&mut Self, Elem<'a>) -> Result<(), ItkError>,
    {
        if parent.empty {
            return Ok(Close {
                offset: parent.content,
                end: parent.content,
            });
        }
        loop {
            match self.next()? {
                Ev::Open(child) => f(self, child)?,
                Ev::Text(at) => return Err(self.fail(at, ItkErrorKind::UnexpectedText)),
                Ev::Close(close) => return Ok(close),
                Ev::Eof => return Err(self.fail(self.pos(), ItkErrorKind::Truncated)),
            }
        }
    }

    /// Consumes an element that may hold only whitespace (attribute-only elements).
    pub(crate) fn expect_empty(&mut self, e: &Elem<'a>) -> Result<Close, ItkError> {
        self.children(e, |c, child| {
            Err(c.fail(child.offset, ItkErrorKind::UnexpectedElement))
        })
    }

    /// Reads the text content of `e` (no child elements allowed), trimmed.
    pub(crate) fn text(&mut self, e: &Elem<'a>) -> Result<Text<'a>, ItkError> {
        if e.empty {
            return Ok(Text::new(&[], e.content, Form::Content));
        }
        loop {
            match self.next()? {
                Ev::Open(child) => {
                    return Err(self.fail(child.offset, ItkErrorKind::UnexpectedElement))
                }
                Ev::Text(_) => {}
                Ev::Close(close) => {
                    let raw = self.input.get(e.content..close.offset).unwrap_or_default();
                    let (raw, cut) = trim(raw);
                    let offset = e.content + cut;
                    text::validate(raw, offset, Form::Content).map_err(|x| self.place(x, None))?;
                    return Ok(Text::new(raw, offset, Form::Content));
                }
                Ev::Eof => return Err(self.fail(self.pos(), ItkErrorKind::Truncated)),
            }
        }
    }

    /// [`Self::text`] inside `name` on the error path.
    pub(crate) fn leaf(&mut self, e: &Elem<'a>, name: &'static str) -> Result<Text<'a>, ItkError> {
        self.enter(name, None);
        let t = self.text(e)?;
        self.leave();
        Ok(t)
    }
}
