//! The event pump under every ITK reader: tokens from the input slice (`source.rs`: a fast
//! tokenizer, `lexer.rs`, with quick-xml's `Reader` as the reference that reads again whenever
//! the fast reading fails — see [`read`]), namespace scopes (`scope.rs`, resolved to [`Ns`] once
//! per element), and the element path for error messages (static names; a `String` is built
//! only when an error is reported).
//!
//! Element readers are small recursive-descent functions: each is handed an opened [`Elem`] and
//! must consume it to its end, with [`Cursor::children`], [`Cursor::text`] or
//! [`Cursor::skip`]. Elements are matched by namespace URI and local name ([`Ns`]), never by
//! prefix. Skipped content (payload bodies, unknown SOAP headers) is read without namespace
//! resolution, which keeps large payloads cheap.
//!
//! The cursor refuses `<!DOCTYPE` (so no entity can ever be declared or expanded), checks every
//! `&name;` it meets in text against the five predefined entities, and refuses declared
//! encodings other than UTF-8 (input is read as UTF-8 bytes, never transcoded). Opaque
//! content (payloads) is checked for tag balance, references and DOCTYPE only: attribute syntax
//! and namespace prefixes inside it are the payload consumer's business.

use super::error::{DeCode, ItkError, ItkErrorKind};
use super::text::{self, trim, Form, Text};
use super::{NS_ITK, NS_SOAP11, NS_WSA_2004, NS_WSA_2005, NS_WSSE, NS_WSU};
use lexer::Tok;
use scope::{Resolved, Scopes};
use source::{Failure, Source};
use tag::Tag;

pub(crate) use bytes::same;

mod attrs;
mod bytes;
mod lexer;
mod path;
mod scope;
mod source;
mod stack;
mod tag;

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
    /// The namespace a (non-empty) URI names.
    fn of_uri(uri: &[u8]) -> Self {
        match uri {
            u if u == NS_ITK.as_bytes() => Self::Itk,
            u if u == NS_SOAP11.as_bytes() => Self::Soap11,
            u if u == NS_WSA_2005.as_bytes() => Self::Wsa2005,
            u if u == NS_WSA_2004.as_bytes() => Self::Wsa2004,
            u if u == NS_WSSE.as_bytes() => Self::Wsse,
            u if u == NS_WSU.as_bytes() => Self::Wsu,
            _ => Self::Other,
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
    /// The local name (after the prefix).
    local: &'a [u8],
    pub tag: Tag<'a>,
    /// `<x/>`: there is no content and no end tag to consume.
    pub empty: bool,
    /// Offset of the `<`.
    pub offset: usize,
    /// Offset just after the start tag's `>`.
    pub content: usize,
}

impl<'a> Elem<'a> {
    pub(crate) const fn local(&self) -> &'a [u8] {
        self.local
    }

    pub(crate) fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && same(self.local(), local.as_bytes())
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
    source: Source<'a>,
    scopes: Scopes<'a>,
    path: [(&'static str, Option<DeCode>); MAX_PATH],
    depth: usize,
    /// The fast tokenizer gave up: whatever error `read` returns, [`read`] reads again.
    gave_up: bool,
}

/// Runs `read` over `input` with the fast tokenizer and, if the tokenizer gives up, again with
/// quick-xml's reader. Up to where it gives up, the fast tokenizer yields exactly quick-xml's
/// tokens at quick-xml's positions, so whatever `read` makes of them, a success or an error
/// raised by the element readers (a missing attribute, a DE code), is the same either way;
/// only what quick-xml itself would report (malformed XML, a DOCTYPE) needs the second run.
pub(crate) fn read<'a, T>(
    input: &'a [u8],
    read: impl Fn(&mut Cursor<'a>) -> Result<T, ItkError>,
) -> Result<T, ItkError> {
    // Input is read as UTF-8 bytes; UTF-16 would come out as garbage names, so say what it
    // is instead.
    if input.starts_with(&[0xFF, 0xFE]) || input.starts_with(&[0xFE, 0xFF]) {
        return Err(ItkError::new(
            0,
            ItkErrorKind::UnsupportedEncoding("UTF-16".into()),
        ));
    }
    let mut fast = Cursor::new(input, false);
    match read(&mut fast) {
        Err(_) if fast.gave_up => read(&mut Cursor::new(input, true)),
        done => done,
    }
}

/// `read` over `input` with the fast tokenizer (and whether it gave up), then with quick-xml:
/// for tests comparing them.
#[cfg(test)]
pub(crate) fn read_both<'a, T>(
    input: &'a [u8],
    read: impl Fn(&mut Cursor<'a>) -> Result<T, ItkError>,
) -> (Result<T, ItkError>, bool, Result<T, ItkError>) {
    let mut fast = Cursor::new(input, false);
    let first = read(&mut fast);
    (first, fast.gave_up, read(&mut Cursor::new(input, true)))
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8], exact: bool) -> Self {
        Self {
            input,
            source: Source::new(input, exact),
            scopes: Scopes::new(),
            path: [("", None); MAX_PATH],
            depth: 0,
            gave_up: false,
        }
    }

    pub(crate) const fn input(&self) -> &'a [u8] {
        self.input
    }

    /// Current reading position: just after the last event returned.
    pub(crate) fn pos(&self) -> usize {
        self.source.pos()
    }

    /// The next token, with namespace scopes kept in step (what quick-xml's `NsReader` does on
    /// every event, without its per-element attribute parsing).
    #[inline(always)]
    fn read_token(&mut self) -> Result<Tok<'a>, ItkError> {
        self.scopes.pop_pending();
        let tok = match self.source.next(self.input) {
            Ok(tok) => tok,
            Err(Failure::Bail) => {
                self.gave_up = true;
                return Err(Self::bail_error(self.pos()));
            }
            Err(Failure::Xml(e, at)) => return Err(self.fail(at, ItkErrorKind::Xml(e.to_string()))),
        };
        let scoped = match &tok {
            Tok::Start(tag) => self.scopes.open(tag, self.source.attrs_of(tag.at)),
            Tok::Empty(tag) => {
                self.scopes.close();
                self.scopes.open(tag, self.source.attrs_of(tag.at))
            }
            Tok::End => {
                self.scopes.close();
                Ok(())
            }
            _ => Ok(()),
        };
        match scoped {
            Ok(()) => Ok(tok),
            Err(e) => {
                let at = self.source.error_position();
                let e = quick_xml::Error::Namespace(e);
                Err(self.fail(at, ItkErrorKind::Xml(e.to_string())))
            }
        }
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
            let tok = self.read_token()?;
            let offset = self.source.start();
            match tok {
                Tok::Start(tag) => return self.open(tag, false, offset, strict),
                Tok::Empty(tag) => return self.open(tag, true, offset, strict),
                Tok::End => {
                    return Ok(Ev::Close(Close {
                        offset,
                        end: self.pos(),
                    }))
                }
                Tok::Text { blank: true } | Tok::Skip => {}
                Tok::Text { .. } | Tok::CData => return Ok(Ev::Text(offset)),
                Tok::Ref(name) => {
                    self.check_ref(name, offset)?;
                    return Ok(Ev::Text(offset));
                }
                Tok::Decl(content) => self.check_decl(content, offset)?,
                Tok::DocType => return Err(self.fail(offset, ItkErrorKind::DtdRefused)),
                Tok::Eof => return Ok(Ev::Eof),
            }
        }
    }

    #[inline(always)]
    fn open(
        &self,
        tag: Tag<'a>,
        empty: bool,
        offset: usize,
        strict: bool,
    ) -> Result<Ev<'a>, ItkError> {
        let (prefix, local) = scope::split(tag.name());
        let ns = match self.scopes.resolve_prefix(prefix, true) {
            Resolved::Ns(ns) => ns,
            Resolved::Unknown if strict => {
                let kind = ItkErrorKind::Xml("undeclared namespace prefix".into());
                return Err(self.fail(offset, kind));
            }
            Resolved::Unknown => Ns::Other,
        };
        Ok(Ev::Open(Elem {
            ns,
            local,
            tag,
            empty,
            offset,
            content: self.pos(),
        }))
    }

    fn check_ref(&self, name: &[u8], offset: usize) -> Result<(), ItkError> {
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

    /// `content` is what lies between `<?` and `?>`.
    fn check_decl(&self, content: &[u8], offset: usize) -> Result<(), ItkError> {
        // Only a UTF-8 byte order mark may precede the declaration.
        if offset > 3 {
            return Err(self.fail(
                offset,
                ItkErrorKind::Xml("XML declaration not at the start".into()),
            ));
        }
        // As quick-xml's `BytesDecl::encoding`: the first `encoding` attribute, unless the
        // attributes before it are malformed.
        let decl = Tag {
            raw: content,
            at: 0,
            name_len: 3,
        };
        let enc = decl
            .attrs_unchecked()
            .map_while(Result::ok)
            .find(|a| a.key == b"encoding");
        let Some(enc) = enc.map(|a| a.value) else {
            return Ok(());
        };
        let utf8 = [&b"utf-8"[..], b"utf8", b"us-ascii", b"ascii"]
            .iter()
            .any(|e| enc.eq_ignore_ascii_case(e));
        // A legacy label on a pure-ASCII document reads the same as UTF-8.
        if utf8 || self.input.is_ascii() {
            Ok(())
        } else {
            let name = String::from_utf8_lossy(enc).into_owned();
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
            let tok = self.read_token()?;
            let offset = self.source.start();
            match tok {
                Tok::Start(_) => depth += 1,
                Tok::End => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Close {
                            offset,
                            end: self.pos(),
                        });
                    }
                }
                Tok::Ref(name) => self.check_ref(name, offset)?,
                Tok::DocType => return Err(self.fail(offset, ItkErrorKind::DtdRefused)),
                Tok::Decl(content) => self.check_decl(content, offset)?,
                Tok::Eof => return Err(self.fail(offset, ItkErrorKind::Truncated)),
                Tok::Empty(_) | Tok::Text { .. } | Tok::CData | Tok::Skip => {}
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
                    if !text::is_plain(raw) {
                        text::validate(raw, offset, Form::Content)
                            .map_err(|x| self.place(x, None))?;
                    }
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
