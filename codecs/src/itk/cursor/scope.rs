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
}

impl<'a> Scopes<'a> {
    pub(crate) fn new() -> Self {
        Self {
            bindings: Stack::new(EMPTY),
            level: 0,
            pending_pop: false,
        }
    }

    /// Ends the scope of an element closed by the previous event, if any.
    pub(crate) fn pop_pending(&mut self) {
        if !self.pending_pop {
            return;
        }
        self.pending_pop = false;
        self.level = self.level.saturating_sub(1);
        let level = self.level;
        while self.bindings.last().is_some_and(|b| b.level > level) {
            self.bindings.pop();
        }
    }

    /// The element (or end tag) just read closes its scope before the next event.
    pub(crate) fn close(&mut self) {
        self.pending_pop = true;
    }

    /// Opens the scope of `tag` with the namespaces it declares. `split` is the tag's
    /// attributes when the lexer split them already (all of them, none repeated, no error:
    /// then they are what quick-xml's unchecked iterator gives).
    pub(crate) fn open(
        &mut self,
        tag: &Tag<'a>,
        split: Option<&[Span]>,
    ) -> Result<(), NamespaceError> {
        self.level += 1;
        if let Some(spans) = split {
            for span in spans {
                let part = |(from, to): (usize, usize)| tag.raw.get(from..to).unwrap_or_default();
                self.declare(part(span.key), part(span.value))?;
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
        self.bindings.push(Binding {
            prefix,
            ns,
            level: self.level,
        });
        Ok(())
    }

    /// The innermost binding of `prefix` (empty: the default namespace).
    fn find(&self, prefix: &[u8]) -> Option<&Binding<'a>> {
        self.bindings.iter().rev().find(|b| same(b.prefix, prefix))
    }

    /// Resolves a name's prefix (from [`split`]; `None` for an unprefixed name): element names
    /// take the default namespace when unprefixed, attribute names do not.
    pub(crate) fn resolve_prefix(&self, prefix: Option<&[u8]>, element: bool) -> Resolved {
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
        match self.find(prefix) {
            Some(b) => b.ns.map_or(Resolved::Unknown, Resolved::Ns),
            // Always bound, and never rebound (`open` refuses that).
            None if prefix == b"xml" || prefix == b"xmlns" => Resolved::Ns(Ns::Other),
            None => Resolved::Unknown,
        }
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
