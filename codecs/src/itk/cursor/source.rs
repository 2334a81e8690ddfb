//! Where the cursor's tokens come from: the fast tokenizer (`lexer.rs`), or quick-xml's
//! borrowed `Reader` with its events turned into the same [`Tok`]s.
//!
//! The fast one is trusted only with success: [`super::read`] runs a reader over it first and,
//! if that fails for any reason, runs it again over quick-xml, so every error a caller sees
//! (offset, path, DE code, message) is the one quick-xml's reading produces.

use super::lexer::{Bail, Lexer, Span, Tok};
use super::tag::Tag;
use crate::itk::text::is_xml_ws;
use quick_xml::events::Event;
use quick_xml::Reader;

// The lexer keeps its stacks inline so that reading allocates nothing; a `Source` is made once
// per reading and not moved, so the size difference costs nothing, where boxing would allocate.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Source<'a> {
    Fast(Lexer<'a>),
    Exact {
        /// Reads the input after its UTF-8 byte order mark, if any: quick-xml skips a BOM
        /// without counting it, so its positions would be 3 short of the input's offsets.
        reader: Reader<&'a [u8]>,
        /// Where the reader's input starts in ours (3 after a BOM, else 0).
        base: usize,
        /// Start of the token [`Source::next`] returned last.
        start: usize,
    },
}

/// Why no token came.
pub(crate) enum Failure {
    /// The fast tokenizer gave up.
    Bail,
    /// quick-xml's error, and its `error_position`.
    Xml(quick_xml::Error, usize),
}

impl<'a> Source<'a> {
    pub(crate) fn new(input: &'a [u8], exact: bool) -> Self {
        if !exact {
            return Self::Fast(Lexer::new(input));
        }
        let base = if input.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        let mut reader = Reader::from_reader(input.get(base..).unwrap_or_default());
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        Self::Exact {
            reader,
            base,
            start: 0,
        }
    }

    /// Start of the next token (quick-xml's `buffer_position`).
    pub(crate) fn pos(&self) -> usize {
        match self {
            Self::Fast(lexer) => lexer.pos(),
            Self::Exact { reader, base, .. } => usize::try_from(reader.buffer_position())
                .map_or(usize::MAX, |p| p.saturating_add(*base)),
        }
    }

    /// Start of the token [`Self::next`] returned last.
    pub(crate) fn start(&self) -> usize {
        match self {
            Self::Fast(lexer) => lexer.start(),
            Self::Exact { start, .. } => *start,
        }
    }

    /// The attributes of the start tag whose bytes begin at `at`, when the fast tokenizer split
    /// them already (while finding the tag's end).
    pub(crate) fn attrs_of(&self, at: usize) -> Option<&[Span]> {
        match self {
            Self::Fast(lexer) => lexer.attrs_of(at),
            Self::Exact { .. } => None,
        }
    }

    /// quick-xml's `error_position` (which it leaves alone for namespace errors).
    pub(crate) fn error_position(&self) -> usize {
        match self {
            Self::Fast(_) => 0,
            Self::Exact { reader, base, .. } => usize::try_from(reader.error_position())
                .map_or(usize::MAX, |p| p.saturating_add(*base)),
        }
    }

    /// The next token that is not whitespace, a comment or a processing instruction; its start
    /// is then [`Self::start`].
    #[inline(always)]
    pub(crate) fn next(&mut self, input: &'a [u8]) -> Result<Tok<'a>, Failure> {
        if let Self::Fast(lexer) = self {
            return lexer.next_significant().map_err(|Bail| Failure::Bail);
        }
        loop {
            let start = self.pos();
            let tok = self.token(input)?;
            if let Self::Exact { start: s, .. } = self {
                *s = start;
            }
            if !matches!(tok, Tok::Text { blank: true } | Tok::Skip) {
                return Ok(tok);
            }
        }
    }

    /// The next token, whatever it is.
    pub(crate) fn token(&mut self, input: &'a [u8]) -> Result<Tok<'a>, Failure> {
        let (reader, base) = match self {
            Self::Fast(lexer) => return lexer.next().map_err(|Bail| Failure::Bail),
            Self::Exact { reader, base, .. } => (reader, *base),
        };
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = usize::try_from(reader.error_position())
                    .map_or(usize::MAX, |p| p.saturating_add(base));
                return Err(Failure::Xml(e, at));
            }
        };
        // Events borrow the input; find the same bytes in it to keep the input's lifetime.
        let within = |part: &[u8]| rebase(input, part).ok_or(Failure::Bail);
        Ok(match event {
            Event::Start(start) => {
                let (raw, at) = within(&start)?;
                Tok::Start(Tag {
                    raw,
                    at,
                    name_len: start.name().as_ref().len(),
                })
            }
            Event::Empty(start) => {
                let (raw, at) = within(&start)?;
                Tok::Empty(Tag {
                    raw,
                    at,
                    name_len: start.name().as_ref().len(),
                })
            }
            Event::End(_) => Tok::End,
            Event::Text(t) => Tok::Text {
                blank: t.iter().all(|&b| is_xml_ws(b)),
            },
            Event::CData(_) => Tok::CData,
            Event::GeneralRef(r) => Tok::Ref(within(&r)?.0),
            Event::Comment(_) | Event::PI(_) => Tok::Skip,
            Event::Decl(d) => Tok::Decl(within(&d)?.0),
            Event::DocType(_) => Tok::DocType,
            Event::Eof => Tok::Eof,
        })
    }
}

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// `part` as the same bytes of `input`, with their offset, when it points into it (always, for
/// a reader over a slice).
pub(crate) fn rebase<'a>(input: &'a [u8], part: &[u8]) -> Option<(&'a [u8], usize)> {
    let off = (part.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    let raw = input.get(off..off.checked_add(part.len())?)?;
    Some((raw, off))
}
