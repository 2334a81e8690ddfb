//! Namespace scopes for the cursor: the prefix bindings in force at the current depth, each
//! kept as the [`Ns`] its URI names.
//!
//! This is quick-xml's `NamespaceResolver` rule for rule (same bindings, same lookups, same
//! `NamespaceError`s for misused `xml`/`xmlns` prefixes) with two costs removed: a start tag's
//! attributes are parsed only when its bytes contain `xmlns` (nearly every element declares
//! nothing), and bindings sit in a [`Stack`] of input slices instead of a heap buffer of copied
//! URIs. Levels only grow along the stack, so closing a scope pops from the top.

use super::lexer::Span;
use super::stack::Stack;
use super::tag::Tag;
use super::{same, Ns};
use quick_xml::name::NamespaceError;
use std::cell::Cell;

/// Bindings held without allocating; real messages declare three or four.
const INLINE: usize = 8;

const XML_URI: &[u8] = b"http://www.w3.org/XML/1998/namespace";
const XMLNS_URI: &[u8] = b"http://www.w3.org/2000/xmlns/";

/// `prefix` bound at `level`; `ns` is `None` for an empty URI (`xmlns:p=""` undeclares `p`,
/// `xmlns=""` undeclares the default namespace). An empty prefix is the default namespace.
#[derive(Clone, Copy)]
struct Binding<'a> {
    prefix: &'a [u8],
    ns: Option<Ns>,
    level: u32,
}

const EMPTY: Binding<'static> = Binding {
    prefix: b"",
    ns: None,
    level: 0,
};

/// How an element or attribute name resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    Ns(Ns),
    /// A prefix with no binding in scope (or one undeclared with `xmlns:p=""`).
    Unknown,
}

pub(crate) struct Scopes<'a> {
    bindings: Stack<Binding<'a>, INLINE>,
    level: u32,
    /// The last element closed (an end tag or `<x/>`): its scope ends before the next event.
    pending_pop: bool,
    /// The last prefix resolved and what it resolved to, until the bindings change: most
    /// elements in a row share their prefix.
    last: Cell<Option<(&'a [u8], Resolved)>>,
}

impl<'a> Scopes<'a> {
    pub(crate) fn new() -> Self {
        Self {
            bindings: Stack::new(EMPTY),
            level: 0,
            pending_pop: false,
            last: Cell::new(None),
        }
    }

    /// Ends the scope of an element closed by the previous event, if any.
    #[inline]
    pub(crate) fn pop_pending(&mut self) {
        if !self.pending_pop {
            return;
        }
        self.pending_pop = false;
        self.level = self.level.saturating_sub(1);
        let level = self.level;
        while self.bindings.last().is_some_and(|b| b.level > level) {
            self.bindings.pop();
            self.last.set(None);
        }
    }

    /// The element (or end tag) just read closes its scope before the next event.
    pub(crate) fn close(&mut self) {
        self.pending_pop = true;
    }

    /// Opens the scope of `tag` with the namespaces it declares. `split` is the tag's
    /// attributes when the lexer split them already (all of them, none repeated, no error:
    /// then they are what quick-xml's unchecked iterator gives).
    #[inline]
    pub(crate) fn open(
        &mut self,
        tag: &Tag<'a>,
        split: Option<&[Span]>,
    ) -> Result<(), NamespaceError> {
        self.level += 1;
        if let Some(spans) = split {
            for span in spans {
                let part = |(from, to): (usize, usize)| tag.raw.get(from..to).unwrap_or_default();
                let key = part(span.key);
                if key.starts_with(b"xmlns") {
                    self.declare(key, part(span.value))?;
                }
            }
            return Ok(());
        }
        if !declares(tag.attributes_raw()) {
            return Ok(());
        }
        // As quick-xml: attribute syntax errors end the scan here and are reported (or not)
        // by whoever reads the attributes; repeated keys are not checked.
        for attr in tag.attrs_unchecked() {
            let Ok(attr) = attr else { break };
            self.declare(attr.key, attr.value)?;
        }
        Ok(())
    }

    /// Binds a prefix if `key` is `xmlns` (the default namespace) or `xmlns:p`.
    fn declare(&mut self, key: &'a [u8], uri: &'a [u8]) -> Result<(), NamespaceError> {
        let Some(decl) = key.strip_prefix(b"xmlns") else {
            return Ok(());
        };
        let prefix: &'a [u8] = match decl {
            [] => b"",
            [b':', p @ ..] if p == b"xml" => {
                if uri != XML_URI {
                    return Err(NamespaceError::InvalidXmlPrefixBind(uri.to_vec()));
                }
                return Ok(());
            }
            [b':', p @ ..] if p == b"xmlns" => {
                return Err(NamespaceError::InvalidXmlnsPrefixBind(uri.to_vec()));
            }
            [b':', p @ ..] => {
                if uri == XML_URI {
                    return Err(NamespaceError::InvalidPrefixForXml(p.to_vec()));
                }
                if uri == XMLNS_URI {
                    return Err(NamespaceError::InvalidPrefixForXmlns(p.to_vec()));
                }
                p
            }
            _ => return Ok(()),
        };
        let ns = (!uri.is_empty()).then(|| Ns::of_uri(uri));
        self.last.set(None);
        self.bindings.push(Binding {
            prefix,
            ns,
            level: self.level,
        });
        Ok(())
    }

    /// The innermost binding of `prefix` (empty: the default namespace).
    #[inline]
    fn find(&self, prefix: &[u8]) -> Option<&Binding<'a>> {
        self.bindings.iter().rev().find(|b| same(b.prefix, prefix))
    }

    /// Resolves a name's prefix (from [`split`]; `None` for an unprefixed name): element names
    /// take the default namespace when unprefixed, attribute names do not.
    #[inline]
    pub(crate) fn resolve_prefix(&self, prefix: Option<&'a [u8]>, element: bool) -> Resolved {
        let Some(prefix) = prefix else {
            if !element {
                return Resolved::Ns(Ns::None);
            }
            return Resolved::Ns(self.find(b"").and_then(|b| b.ns).unwrap_or(Ns::None));
        };
        // A binding with an empty prefix is the default namespace, never `:name`'s.
        if prefix.is_empty() {
            return Resolved::Unknown;
        }
        if let Some((last, resolved)) = self.last.get() {
            if same(last, prefix) {
                return resolved;
            }
        }
        let resolved = match self.find(prefix) {
            Some(b) => b.ns.map_or(Resolved::Unknown, Resolved::Ns),
            // Always bound, and never rebound (`open` refuses that).
            None if prefix == b"xml" || prefix == b"xmlns" => Resolved::Ns(Ns::Other),
            None => Resolved::Unknown,
        };
        self.last.set(Some((prefix, resolved)));
        resolved
    }
}

/// A qualified name's prefix (if it has a colon) and local name.
pub(crate) fn split(qname: &[u8]) -> (Option<&[u8]>, &[u8]) {
    // Names are short: a plain loop beats memchr's setup here.
    match qname.iter().position(|&b| b == b':') {
        Some(colon) => (
            qname.get(..colon),
            qname.get(colon + 1..).unwrap_or_default(),
        ),
        None => (None, qname),
    }
}

/// Whether `raw` (a start tag's attributes) could hold a namespace declaration. Tags are short
/// and `x` is rare in them, so this beats building a substring searcher per tag.
fn declares(raw: &[u8]) -> bool {
    memchr::memchr_iter(b'x', raw).any(|i| raw.get(i..).is_some_and(|r| r.starts_with(b"xmlns")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itk::cursor::lexer::Tok;
    use crate::itk::cursor::source::Source;
    use proptest::prelude::*;
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    use quick_xml::NsReader;

    /// What an element or attribute name resolved to, or the namespace error met.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Element(Resolved, Vec<Resolved>),
        Error(String),
    }

    fn class(r: &ResolveResult<'_>) -> Resolved {
        match r {
            ResolveResult::Bound(uri) => Resolved::Ns(Ns::of_uri(uri.as_ref())),
            ResolveResult::Unbound => Resolved::Ns(Ns::None),
            ResolveResult::Unknown(_) => Resolved::Unknown,
        }
    }

    /// quick-xml's `NsReader`, up to its first error.
    fn reference(input: &[u8]) -> Vec<Seen> {
        let mut reader = NsReader::from_reader(input);
        reader.config_mut().check_comments = true;
        let mut out = Vec::new();
        loop {
            match reader.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) => {
                    let element = class(&reader.resolve_element(e.name()).0);
                    let attrs = e
                        .attributes()
                        .map_while(Result::ok)
                        .map(|a| class(&reader.resolve_attribute(a.key).0))
                        .collect();
                    out.push(Seen::Element(element, attrs));
                }
                Ok(Event::Eof) => return out,
                Ok(_) => {}
                Err(quick_xml::Error::Namespace(e)) => {
                    out.push(Seen::Error(e.to_string()));
                    return out;
                }
                Err(_) => return out,
            }
        }
    }

    /// [`Scopes`] over either tokenizer, as the cursor drives it, up to the first failure.
    fn ours(input: &[u8], exact: bool) -> Vec<Seen> {
        let mut source = Source::new(input, exact);
        let mut scopes = Scopes::new();
        let mut out = Vec::new();
        loop {
            scopes.pop_pending();
            let (tag, empty) = match source.token(input) {
                Ok(Tok::Start(tag)) => (tag, false),
                Ok(Tok::Empty(tag)) => (tag, true),
                Ok(Tok::End) => {
                    scopes.close();
                    continue;
                }
                Ok(Tok::Eof) | Err(_) => return out,
                Ok(_) => continue,
            };
            if empty {
                scopes.close();
            }
            if let Err(e) = scopes.open(&tag, source.attrs_of(tag.at)) {
                out.push(Seen::Error(e.to_string()));
                return out;
            }
            let element = scopes.resolve_prefix(split(tag.name()).0, true);
            let attrs = tag
                .attrs()
                .map_while(Result::ok)
                .map(|a| scopes.resolve_prefix(split(a.key).0, false))
                .collect();
            out.push(Seen::Element(element, attrs));
        }
    }

    fn same_as_ns_reader(input: &[u8]) {
        let expect = reference(input);
        assert_eq!(
            ours(input, true),
            expect,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // The fast tokenizer may stop earlier; up to there it must agree.
        let fast = ours(input, false);
        assert_eq!(
            fast.as_slice(),
            expect.get(..fast.len()).unwrap_or_default(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn scopes_resolve_as_ns_reader_does() {
        for doc in [
            r#"<a xmlns="urn:nhs-itk:ns:201005"><b/><c xmlns=""><d/></c><e/></a>"#,
            r#"<p:a xmlns:p="http://schemas.xmlsoap.org/soap/envelope/" p:x="1" y="2"><p:b xmlns:p="urn:o"/><p:c/></p:a>"#,
            r#"<a xmlns:p="u"><p:b xmlns:p=""/><p:c/></a>"#,
            r#"<a><p:b/><xml:c xml:lang="en"/><xmlns:d/>< :e/></a>"#,
            r#"<a xmlns:xml="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:xml="urn:x"/>"#,
            r#"<a xmlns:xmlns="urn:x"/>"#,
            r#"<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>"#,
            r#"<a xmlns:p="http://www.w3.org/2000/xmlns/"/>"#,
            r#"<a xmlns:="urn:nhs-itk:ns:201005"><b/><:c/></a>"#,
            r#"<a xmlns:p="u" xmlns:p="v"><p:b/></a>"#,
            r#"<a xmlns:p="u" bad xmlns:q="v"><q:b/></a>"#,
            r#"<a xmlnsx="u"><b/></a>"#,
        ] {
            same_as_ns_reader(doc.as_bytes());
        }
        let deep: String = (0..20)
            .map(|i| format!("<p{i}:x xmlns:p{i}='u{i}'>"))
            .collect();
        same_as_ns_reader(deep.as_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn random_scopes_resolve_as_ns_reader_does(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("<a"), Just("<p:a"), Just("<q:b"), Just("<xml:c"), Just(">"),
                    Just("/>"), Just("</a>"), Just("</p:a>"), Just("</q:b>"),
                    Just(" xmlns=\"urn:nhs-itk:ns:201005\""), Just(" xmlns=''"),
                    Just(" xmlns:p=\"http://schemas.xmlsoap.org/soap/envelope/\""),
                    Just(" xmlns:q='urn:q'"), Just(" xmlns:p=\"\""), Just(" xmlns:xml='x'"),
                    Just(" p:x='1'"), Just(" y=\"2\""), Just(" bad"), Just("t"),
                ],
                0..30,
            )
        ) {
            same_as_ns_reader(parts.concat().as_bytes());
        }
    }
}
