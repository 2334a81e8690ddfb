//! Streaming decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1).
//!
//! One state machine ([`ChunkedDecoder::step`]) walks size lines (with extensions, parsed by
//! `httparse::parse_chunk_size`), data, the CRLF after data, and the trailer section. Two
//! front-ends share it: [`ChunkedDecoder::next`] yields each run of data as a slice of the
//! caller's input, and [`ChunkedDecoder::decode_in_place`] moves the data to the front of the
//! caller's buffer, over the framing bytes it has consumed.
//!
//! Invariants: the decoder never buffers; bytes it cannot use yet (half a size line, half a
//! CRLF, half a trailer line) are left unconsumed for the caller to present again with more
//! bytes. The amount it asks the caller to hold is bounded by [`MAX_CHUNK_LINE`] and
//! [`MAX_TRAILER_BYTES`]; the decoded total is bounded by `max_body`.

use super::error::{HttpError, HttpErrorKind};
use std::ops::Range;

/// Longest chunk-size line (digits, extensions, CRLF) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Longest trailer section accepted.
pub const MAX_TRAILER_BYTES: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data { remaining: u64 },
    DataEnd,
    Trailers { seen: usize },
    Done,
}

/// Decoder state for one chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    decoded: u64,
    max_body: u64,
    /// Stream offset of the next byte the caller will present.
    offset: usize,
}

/// One result of [`ChunkedDecoder::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'b> {
    /// A run of body bytes (never empty).
    Data(&'b [u8]),
    /// The input holds no more usable bytes: present the unconsumed rest with more appended.
    NeedMore,
    /// The last chunk and trailers have been read; bytes after `consumed` belong to the next
    /// message.
    Done,
}

/// Result of [`ChunkedDecoder::decode_in_place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPlace {
    /// `buf[..written]` now holds the body bytes decoded by this call.
    pub written: usize,
    /// `buf[consumed..]` was not used and must be presented again (before any new bytes), or,
    /// when `done`, is the start of the next message. Always `written <= consumed`.
    pub consumed: usize,
    /// The whole body has been decoded.
    pub done: bool,
}

struct Step {
    consumed: usize,
    data: Option<Range<usize>>,
    done: bool,
}

impl ChunkedDecoder {
    /// A decoder for a body of at most `max_body` bytes whose first byte is at stream offset
    /// `body_offset` (used only to position errors, e.g. the head length).
    pub const fn new(max_body: u64, body_offset: usize) -> Self {
        Self {
            state: State::Size,
            decoded: 0,
            max_body,
            offset: body_offset,
        }
    }

    /// Whether the terminating chunk and trailers have been read.
    pub const fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Body bytes decoded so far.
    pub const fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Decodes from the front of `input`, returning how many bytes were consumed and what was
    /// found. Call again on `&input[consumed..]` until [`Chunk::NeedMore`] or [`Chunk::Done`].
    pub fn next<'b>(&mut self, input: &'b [u8]) -> Result<(usize, Chunk<'b>), HttpError> {
        let step = self.step(input)?;
        let chunk = match (step.data, step.done) {
            (Some(r), _) => Chunk::Data(input.get(r).unwrap_or_default()),
            (None, true) => Chunk::Done,
            (None, false) => Chunk::NeedMore,
        };
        Ok((step.consumed, chunk))
    }

    /// Decodes as much of `buf` as possible, moving body bytes to its front; see [`InPlace`].
    pub fn decode_in_place(&mut self, buf: &mut [u8]) -> Result<InPlace, HttpError> {
        let (mut read, mut written) = (0usize, 0usize);
        loop {
            let step = self.step(buf.get(read..).unwrap_or_default())?;
            if let Some(r) = step.data.clone() {
                let (from, to) = (read + r.start, read + r.end);
                // Data always lies after the framing bytes consumed before it, so the target
                // range [written, written + len) never overtakes the source and stays in bounds.
                if to <= buf.len() && written + (to - from) <= to {
                    buf.copy_within(from..to, written);
                    written += to - from;
                }
            }
            read += step.consumed;
            if step.done || step.data.is_none() {
                return Ok(InPlace {
                    written,
                    consumed: read,
                    done: step.done,
                });
            }
        }
    }

    /// In-place decoding for a growing `Vec`: `buf[..body_end]` is already decoded (or not
    /// body at all, e.g. the head), `buf[body_end..]` is raw chunked bytes as received. On
    /// return `buf[..new_end]` holds everything decoded so far and `buf[new_end..]` the raw
    /// bytes not used yet (after `done`: the next message). Returns `(new_end, done)`.
    pub fn decode_vec(
        &mut self,
        buf: &mut Vec<u8>,
        body_end: usize,
    ) -> Result<(usize, bool), HttpError> {
        let Some(raw) = buf.get_mut(body_end..) else {
            return Ok((buf.len(), self.is_done()));
        };
        let r = self.decode_in_place(raw)?;
        let new_end = body_end + r.written;
        let gap = r.consumed - r.written;
        if gap > 0 {
            let from = body_end + r.consumed;
            buf.copy_within(from.., new_end);
            buf.truncate(buf.len() - gap);
        }
        Ok((new_end, r.done))
    }

    fn fail(&self, at: usize, kind: HttpErrorKind) -> HttpError {
        HttpError::new(self.offset + at, kind)
    }

    fn step(&mut self, input: &[u8]) -> Result<Step, HttpError> {
        let mut pos = 0usize;
        let result = loop {
            let rest = input.get(pos..).unwrap_or_default();
            let need_more = Step {
                consumed: pos,
                data: None,
                done: false,
            };
            match self.state {
                State::Size => {
                    let Some(&first) = rest.first() else {
                        break Ok(need_more);
                    };
                    // httparse reads an empty size as 0; a size line must start with a digit.
                    if !first.is_ascii_hexdigit() {
                        break Err(self.fail(pos, HttpErrorKind::BadChunkSize));
                    }
                    match httparse::parse_chunk_size(rest) {
                        Ok(httparse::Status::Complete((n, size))) => {
                            if n > MAX_CHUNK_LINE {
                                break Err(self.fail(pos, HttpErrorKind::ChunkLineTooLong));
                            }
                            let total = self.decoded.checked_add(size);
                            if total.is_none_or(|t| t > self.max_body) {
                                let limit = self.max_body;
                                break Err(self.fail(pos, HttpErrorKind::BodyTooLarge { limit }));
                            }
                            pos += n;
                            self.state = if size == 0 {
                                State::Trailers { seen: 0 }
                            } else {
                                State::Data { remaining: size }
                            };
                        }
                        Ok(httparse::Status::Partial) if rest.len() >= MAX_CHUNK_LINE => {
                            break Err(self.fail(pos, HttpErrorKind::ChunkLineTooLong));
                        }
                        Ok(httparse::Status::Partial) => break Ok(need_more),
                        Err(httparse::InvalidChunkSize) => {
                            let at = rest
                                .iter()
                                .position(|b| !b.is_ascii_hexdigit())
                                .unwrap_or(0);
                            break Err(self.fail(pos + at, HttpErrorKind::BadChunkSize));
                        }
                    }
                }
                State::Data { remaining } => {
                    if rest.is_empty() {
                        break Ok(need_more);
                    }
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let left = remaining - take as u64;
                    self.decoded += take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data { remaining: left }
                    };
                    break Ok(Step {
                        consumed: pos + take,
                        data: Some(pos..pos + take),
                        done: false,
                    });
                }
                State::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = State::Size;
                    }
                    [] | [b'\r'] => break Ok(need_more),
                    _ => {
                        let at = if rest.first() == Some(&b'\r') { 1 } else { 0 };
                        break Err(self.fail(pos + at, HttpErrorKind::BadChunkEnd));
                    }
                },
                State::Trailers { seen } => {
                    let Some(nl) = memchr::memchr(b'\n', rest) else {
                        if seen + rest.len() > MAX_TRAILER_BYTES {
                            break Err(self.fail(pos, HttpErrorKind::TrailersTooLarge));
                        }
                        break Ok(need_more);
                    };
                    let line = rest.get(..nl).unwrap_or_default();
                    let Some(line) = line.strip_suffix(b"\r") else {
                        break Err(self.fail(pos + nl, HttpErrorKind::BadTrailer));
                    };
                    if line.is_empty() {
                        pos += nl + 1;
                        self.state = State::Done;
                        continue;
                    }
                    if seen + nl + 1 > MAX_TRAILER_BYTES {
                        break Err(self.fail(pos, HttpErrorKind::TrailersTooLarge));
                    }
                    if let Some(bad) = bad_trailer_byte(line) {
                        break Err(self.fail(pos + bad, HttpErrorKind::BadTrailer));
                    }
                    pos += nl + 1;
                    self.state = State::Trailers {
                        seen: seen + nl + 1,
                    };
                }
                State::Done => {
                    break Ok(Step {
                        consumed: pos,
                        data: None,
                        done: true,
                    })
                }
            }
        };
        if let Ok(step) = &result {
            self.offset += step.consumed;
        }
        result
    }
}

/// Position of the first byte that keeps `line` from being `token ":" field-value`.
fn bad_trailer_byte(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if colon == 0 {
        return Some(0);
    }
    if let Some(i) = line.get(..colon)?.iter().position(|&b| !tchar(b)) {
        return Some(i);
    }
    if colon == line.len() {
        return Some(colon);
    }
    line.get(colon + 1..)?
        .iter()
        .position(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
        .map(|i| colon + 1 + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nNEXT";

    fn collect(dec: &mut ChunkedDecoder, input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (n, c) = dec.next(&input[pos..])?;
            pos += n;
            match c {
                Chunk::Data(d) => out.extend_from_slice(d),
                Chunk::NeedMore | Chunk::Done => return Ok((out, pos)),
            }
        }
    }

    #[test]
    fn decodes_extensions_and_trailers() {
        let mut dec = ChunkedDecoder::new(1000, 0);
        let (out, used) = collect(&mut dec, BODY).unwrap();
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert!(dec.is_done());
        assert_eq!(&BODY[used..], b"NEXT");
        assert_eq!(dec.decoded_len(), 23);
    }

    #[test]
    fn decodes_in_place_and_leaves_the_next_message() {
        let mut buf = BODY.to_vec();
        let mut dec = ChunkedDecoder::new(1000, 0);
        let r = dec.decode_in_place(&mut buf).unwrap();
        assert!(r.done);
        assert_eq!(&buf[..r.written], b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(&buf[r.consumed..], b"NEXT");
    }

    #[test]
    fn decode_vec_compacts_a_growing_buffer() {
        let mut dec = ChunkedDecoder::new(1000, 0);
        let mut buf = b"HEAD".to_vec();
        let mut end = 4;
        let mut done = false;
        for piece in BODY.chunks(3) {
            buf.extend_from_slice(piece);
            (end, done) = dec.decode_vec(&mut buf, end).unwrap();
            if done {
                break;
            }
        }
        assert!(done);
        assert_eq!(&buf[..end], b"HEADWikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn partial_size_lines_wait_for_more() {
        let mut dec = ChunkedDecoder::new(1000, 0);
        assert_eq!(dec.next(b"1").unwrap(), (0, Chunk::NeedMore));
        assert_eq!(dec.next(b"1a;ext").unwrap(), (0, Chunk::NeedMore));
        assert_eq!(dec.next(b"1\r").unwrap(), (0, Chunk::NeedMore));
        assert_eq!(dec.next(b"1\r\nx").unwrap(), (4, Chunk::Data(b"x")));
        assert_eq!(dec.next(b"\r").unwrap(), (0, Chunk::NeedMore));
        assert_eq!(dec.next(b"\r\n0\r\n").unwrap(), (5, Chunk::NeedMore));
        assert_eq!(dec.next(b"\r\n").unwrap(), (2, Chunk::Done));
    }

    #[test]
    fn errors_are_positioned_from_the_body_offset() {
        let mut dec = ChunkedDecoder::new(1000, 100);
        let e = dec.next(b"zz\r\n").unwrap_err();
        assert_eq!(
            (e.offset, e.kind.clone()),
            (100, HttpErrorKind::BadChunkSize)
        );

        let mut dec = ChunkedDecoder::new(1000, 100);
        let e = dec.next(b"\r\n").unwrap_err();
        assert_eq!(
            e.kind,
            HttpErrorKind::BadChunkSize,
            "empty size is not zero"
        );

        let mut dec = ChunkedDecoder::new(1000, 100);
        let e = collect(&mut dec, b"2\r\nabX\r\n").unwrap_err();
        assert_eq!((e.offset, e.kind), (105, HttpErrorKind::BadChunkEnd));

        let mut dec = ChunkedDecoder::new(1000, 0);
        let e = collect(&mut dec, b"1g\r\n").unwrap_err();
        assert_eq!((e.offset, e.kind), (1, HttpErrorKind::BadChunkSize));

        let mut dec = ChunkedDecoder::new(1000, 0);
        let e = collect(&mut dec, b"0\r\nno colon\r\n\r\n").unwrap_err();
        assert_eq!((e.offset, e.kind), (5, HttpErrorKind::BadTrailer));

        let mut dec = ChunkedDecoder::new(1000, 0);
        let e = collect(&mut dec, b"0\r\nX: y\n\r\n").unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::BadTrailer);
    }

    #[test]
    fn limits_are_enforced() {
        let mut dec = ChunkedDecoder::new(5, 0);
        let e = collect(&mut dec, b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n").unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::BodyTooLarge { limit: 5 });
        assert_eq!(e.offset, 8);
        assert_eq!(e.status(), 413);

        let mut dec = ChunkedDecoder::new(u64::MAX, 0);
        let e = collect(&mut dec, b"fffffffffffffffff\r\n").unwrap_err();
        assert_eq!(
            e.kind,
            HttpErrorKind::BadChunkSize,
            "17 hex digits overflow"
        );

        let mut long = b"1;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'x');
        let mut dec = ChunkedDecoder::new(1000, 0);
        assert_eq!(
            dec.next(&long).unwrap_err().kind,
            HttpErrorKind::ChunkLineTooLong
        );

        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILER_BYTES + 100 {
            trailers.extend_from_slice(b"X-A: b\r\n");
        }
        let mut dec = ChunkedDecoder::new(1000, 0);
        let e = collect(&mut dec, &trailers).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::TrailersTooLarge);
        assert_eq!(e.status(), 431);
    }
}
