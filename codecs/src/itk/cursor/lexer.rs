//! The fast tokenizer: the tokens quick-xml 0.38's `Reader` gives over a borrowed slice (with the
//! configuration [`super::Cursor`] sets), at the same positions, without its per-event state
//! machine and without allocating (open element names sit in a [`Stack`] of input ranges).
//!
//! It only has to be right when it succeeds. On anything quick-xml reports as an error, and on
//! what the exact path handles specially (a byte order mark, whose bytes quick-xml leaves out
//! of its positions; `<!DOCTYPE`), it gives up with [`Bail`], and the message is read again
//! with quick-xml, whose errors are the ones reported. Each rule names the quick-xml code it
//! mirrors; the tests compare the two token for token.

use super::bytes::name_end;
use super::same;
use super::stack::Stack;
use super::tag::Tag;
use crate::itk::text::is_xml_ws;
use start::Seen;
pub(crate) use start::Span;

mod start;

/// The fast path cannot read this input; read it with quick-xml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

/// A token, as both tokenizers report it to the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    Start(Tag<'a>),
    Empty(Tag<'a>),
    End,
    /// Character data: `blank` when it is whitespace only.
    Text {
        blank: bool,
    },
    CData,
    /// `&name;`: the name.
    Ref(&'a [u8]),
    /// A comment or a processing instruction.
    Skip,
    /// `<?xml ...?>`: the bytes between `<?` and `?>`.
    Decl(&'a [u8]),
    DocType,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before text or markup.
    Text,
    /// At a `&` (quick-xml returns the text before it first).
    Ref,
    Done,
    /// Input that starts with a byte order mark: every read gives up.
    Bom,
}

/// Open elements whose names are kept inline; deeper nesting spills to the heap.
const INLINE_DEPTH: usize = 32;

pub(crate) struct Lexer<'a> {
    input: &'a [u8],
    /// Start of the next token (quick-xml's `buffer_position`).
    pos: usize,
    /// Start of the token [`Self::next_significant`] returned last.
    start: usize,
    state: State,
    /// Names of the open elements, as ranges of the input, for the end-tag check.
    open: Stack<(usize, usize), INLINE_DEPTH>,
    /// Attributes of the last start tag, split while finding its end.
    seen: Seen,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        // quick-xml leaves a byte order mark out of its positions: leave such input to it.
        let bom = input.starts_with(&[0xEF, 0xBB, 0xBF]);
        Self {
            input,
            pos: 0,
            start: 0,
            state: if bom { State::Bom } else { State::Text },
            open: Stack::new((0, 0)),
            seen: Seen::new(),
        }
    }

    pub(crate) const fn pos(&self) -> usize {
        self.pos
    }

    /// The attributes of the start tag whose bytes begin at `at`, if it was the last one read
    /// and they were all kept.
    pub(crate) fn attrs_of(&self, at: usize) -> Option<&[Span]> {
        self.seen.of(at)
    }

    pub(crate) const fn start(&self) -> usize {
        self.start
    }

    /// The next token that is not whitespace, a comment or a processing instruction.
    #[inline(always)]
    pub(crate) fn next_significant(&mut self) -> Result<Tok<'a>, Bail> {
        loop {
            self.start = self.pos;
            let tok = self.next()?;
            if !matches!(tok, Tok::Text { blank: true } | Tok::Skip) {
                return Ok(tok);
            }
        }
    }

    fn rest(&self, from: usize) -> &'a [u8] {
        self.input.get(from..).unwrap_or_default()
    }

    #[inline(always)]
    pub(crate) fn next(&mut self) -> Result<Tok<'a>, Bail> {
        match self.state {
            State::Done => Ok(Tok::Eof),
            State::Bom => Err(Bail),
            State::Ref => self.reference(),
            State::Text => self.text(),
        }
    }

    /// `read_text` and the `InsideText` arm of `read_event_impl`.
    #[inline(always)]
    fn text(&mut self) -> Result<Tok<'a>, Bail> {
        let rest = self.rest(self.pos);
        // The usual text is a short run of whitespace between tags: look at it byte by byte
        // before paying for a vectorised search.
        let blank = rest.iter().take_while(|&&b| is_xml_ws(b)).count();
        if rest.get(blank) == Some(&b'<') {
            if blank == 0 {
                return self.markup();
            }
            self.pos += blank;
            return Ok(Tok::Text { blank: true });
        }
        let Some(i) = memchr::memchr2(b'<', b'&', rest) else {
            self.pos = self.input.len();
            self.state = State::Done;
            return Ok(if rest.is_empty() {
                Tok::Eof
            } else {
                Tok::Text {
                    blank: rest.iter().all(|&b| is_xml_ws(b)),
                }
            });
        };
        let text = rest.get(..i).unwrap_or_default();
        if rest.get(i) == Some(&b'&') {
            self.state = State::Ref;
            if text.is_empty() {
                return self.reference();
            }
            self.pos += i;
        } else {
            if text.is_empty() {
                return self.markup();
            }
            // The `<` is read but the position stays on it.
            self.pos += i;
        }
        Ok(Tok::Text {
            blank: text.iter().all(|&b| is_xml_ws(b)),
        })
    }

    /// `read_ref` and the `InsideRef` arm: `&` up to `;`, with no `&` or `<` between (a
    /// dangling `&` is an error).
    fn reference(&mut self) -> Result<Tok<'a>, Bail> {
        let rest = self.rest(self.pos + 1);
        let i = memchr::memchr3(b';', b'&', b'<', rest).ok_or(Bail)?;
        if rest.get(i) != Some(&b';') {
            return Err(Bail);
        }
        self.pos += i + 2;
        self.state = State::Text;
        Ok(Tok::Ref(rest.get(..i).unwrap_or_default()))
    }

    /// `read_until_close`: after a `<` at `self.pos`.
    fn markup(&mut self) -> Result<Tok<'a>, Bail> {
        let at = self.pos + 1;
        let rest = self.rest(at);
        match rest.first() {
            None => Err(Bail),
            Some(b'!') => self.bang(rest),
            Some(b'/') => self.end(rest),
            Some(b'?') => self.question(rest),
            Some(_) => {
                let found = start::scan(rest, at, &mut self.seen);
                let len = match found {
                    Some((len, _)) => len,
                    None => element_len(rest).ok_or(Bail)?,
                };
                let content = rest.get(..len).unwrap_or_default();
                self.pos = at + len + 1;
                let tag = |raw| match found {
                    Some((_, name_len)) => Tag { raw, at, name_len },
                    None => Tag::new(raw, at),
                };
                // `emit_start`: a final `/` makes it empty.
                if let Some(inner) = content.strip_suffix(b"/") {
                    return Ok(Tok::Empty(tag(inner)));
                }
                let tag = tag(content);
                self.open.push((at, tag.name_len));
                Ok(Tok::Start(tag))
            }
        }
    }

    /// `emit_end`: the name, less trailing whitespace, must be the innermost open one.
    fn end(&mut self, rest: &'a [u8]) -> Result<Tok<'a>, Bail> {
        // The usual `</name>` has no quote before its `>`; anything else takes the long way.
        let len = match name_end(rest, 1) {
            end if rest.get(end) == Some(&b'>') => end,
            _ => element_len(rest).ok_or(Bail)?,
        };
        let content = rest.get(1..len).unwrap_or_default();
        let name = match content.iter().rposition(|&b| !is_xml_ws(b)) {
            Some(last) => content.get(..=last).unwrap_or_default(),
            None => content,
        };
        let &(start, n) = self.open.last().ok_or(Bail)?;
        if !self
            .input
            .get(start..start + n)
            .is_some_and(|open| same(open, name))
        {
            return Err(Bail);
        }
        self.open.pop();
        self.pos += len + 2;
        Ok(Tok::End)
    }

    /// `read_bang_element` and `emit_bang`: comments (with `check_comments`) and CDATA; a
    /// DOCTYPE or anything else goes to the exact path.
    fn bang(&mut self, rest: &'a [u8]) -> Result<Tok<'a>, Bail> {
        match rest.get(1) {
            Some(b'-') => {
                // The first `>` after at least `!----` that follows `--`.
                let i = memchr::memchr_iter(b'>', rest)
                    .find(|&i| i > 4 && rest.get(..i).is_some_and(|b| b.ends_with(b"--")))
                    .ok_or(Bail)?;
                let buf = rest.get(..i).unwrap_or_default();
                if !buf.starts_with(b"!--") {
                    return Err(Bail);
                }
                // `check_comments`: no `--` starting inside the comment's text.
                let text_len = i - 5;
                let from_text = buf.get(3..).unwrap_or_default();
                let double = from_text.windows(2).take(text_len).any(|w| w == b"--");
                if double {
                    return Err(Bail);
                }
                self.pos += i + 2;
                Ok(Tok::Skip)
            }
            Some(b'[') => {
                let i = memchr::memchr_iter(b'>', rest)
                    .find(|&i| rest.get(..i).is_some_and(|b| b.ends_with(b"]]")))
                    .ok_or(Bail)?;
                if !rest.get(..i).is_some_and(|b| b.starts_with(b"![CDATA[")) {
                    return Err(Bail);
                }
                self.pos += i + 2;
                Ok(Tok::CData)
            }
            _ => Err(Bail),
        }
    }

    /// `PiParser` and `emit_question_mark`: up to the first `?>`; `<?xml` followed by
    /// whitespace (or `?>`) is the declaration.
    fn question(&mut self, rest: &'a [u8]) -> Result<Tok<'a>, Bail> {
        let i = memchr::memchr_iter(b'>', rest)
            .find(|&i| i > 0 && rest.get(i - 1) == Some(&b'?'))
            .ok_or(Bail)?;
        if i < 2 {
            return Err(Bail);
        }
        let content = rest.get(1..i - 1).unwrap_or_default();
        self.pos += i + 2;
        let decl = content.starts_with(b"xml") && content.get(3).is_none_or(|&b| is_xml_ws(b));
        Ok(if decl { Tok::Decl(content) } else { Tok::Skip })
    }
}

/// `ElementParser`: where the `>` ending a tag is, quotes respected.
fn element_len(bytes: &[u8]) -> Option<usize> {
    let mut quote = None;
    for i in memchr::memchr3_iter(b'>', b'\'', b'"', bytes) {
        let b = *bytes.get(i)?;
        quote = match (quote, b) {
            (None, b'>') => return Some(i),
            (None, q) => Some(q),
            (Some(q), c) if q == c => None,
            (q, _) => q,
        };
    }
    None
}

#[cfg(test)]
mod tests;
