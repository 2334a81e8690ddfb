//! MLLP (minimal lower layer protocol, release 1) framing: `0x0B payload 0x1C 0x0D`.
//!
//! [`Decoder`] is a streaming frame finder over a buffer the caller owns. The caller appends
//! whatever the socket gave it, calls [`Decoder::decode`] on the unconsumed bytes, drops the
//! `consumed` prefix, and reads again when no event comes back. Frames are returned as slices of
//! the caller's buffer: the decoder never copies payload bytes and never allocates.
//!
//! Invariants:
//! - "Not enough bytes yet" is not an error: it is `event: None`. The decoder remembers how far
//!   it has already scanned, so a frame arriving a byte at a time costs O(n), not O(n²).
//! - Bytes outside a frame (log text, a stray LF, a NUL) are skipped and counted.
//! - A frame longer than `max_frame` is reported once as [`Event::TooLarge`] with its first
//!   `max_frame` bytes (enough to read its MSH and answer it), and the rest of it is discarded
//!   up to the next start byte; the buffer the caller needs never exceeds `max_frame + 2` bytes.
//! - Only `0x1C 0x0D` ends a frame. A `0x1C` followed by anything else is data, because a
//!   lone 0x1C can legitimately occur inside non-ASCII payloads and we must not cut them short.

/// Start block: VT.
pub const START: u8 = 0x0B;
/// End block: FS.
pub const END: u8 = 0x1C;
/// Carriage return that must follow the end block.
pub const CR: u8 = 0x0D;

/// Bytes that MLLP adds around a payload.
pub const OVERHEAD: usize = 3;

/// What [`Decoder::decode`] found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole frame; the slice is the payload without the framing bytes.
    Frame(&'a [u8]),
    /// A frame grew past the maximum size. `head` holds its first `max_frame` payload bytes;
    /// the rest of the frame is being discarded until the next start byte.
    TooLarge { head: &'a [u8] },
}

/// The result of one [`Decoder::decode`] call.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// How many bytes at the front of the input the caller must now drop. Any slice in `event`
    /// points into this prefix, so use it before dropping.
    pub consumed: usize,
    /// `None` means more bytes are needed.
    pub event: Option<Event<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for a start byte.
    Between,
    /// Inside a frame whose start byte is the first byte of the caller's unconsumed input;
    /// `scanned` payload bytes have been checked and hold no terminator.
    InFrame { scanned: usize },
    /// Throwing away the tail of an oversized frame.
    Discarding,
}

/// Streaming MLLP frame decoder. One per connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_frame: usize,
    state: State,
    skipped: u64,
}

impl Decoder {
    /// A decoder that accepts payloads of at most `max_frame` bytes (at least 1).
    pub fn new(max_frame: usize) -> Self {
        Decoder {
            max_frame: max_frame.max(1),
            state: State::Between,
            skipped: 0,
        }
    }

    /// The largest payload this decoder returns as a frame.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes skipped so far because they stood outside any frame (oversized frames' discarded
    /// tails are not counted here: they are reported as [`Event::TooLarge`]).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// True when the decoder holds part of a frame, i.e. the peer stopped mid-message.
    pub fn in_frame(&self) -> bool {
        matches!(self.state, State::InFrame { .. })
    }

    /// True when the next bytes are outside any frame: up to the next start byte, the input
    /// [`Decoder::decode`] is given now is bytes it will skip (neither a frame nor the
    /// discarded tail of an oversized one). A caller that wants to refuse such bytes looks at
    /// them before decoding.
    pub fn between_frames(&self) -> bool {
        matches!(self.state, State::Between)
    }

    /// Looks for the next event in `input`, the caller's unconsumed bytes (the same bytes as
    /// last time, plus whatever arrived since, minus what the caller dropped).
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Decoded<'a> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Between => match memchr::memchr(START, input.get(pos..).unwrap_or_default())
                {
                    Some(at) => {
                        self.skipped += at as u64;
                        pos += at;
                        // Whatever scan_frame leaves unconsumed starts at this start byte, so
                        // the scan offset it remembers is relative to the caller's new front.
                        let mut decoded = self.scan_frame(input.get(pos..).unwrap_or_default(), 0);
                        decoded.consumed += pos;
                        return decoded;
                    }
                    None => {
                        self.skipped += (input.len() - pos) as u64;
                        return Decoded {
                            consumed: input.len(),
                            event: None,
                        };
                    }
                },
                State::InFrame { scanned } => {
                    if input.first() == Some(&START) {
                        return self.scan_frame(input, scanned);
                    }
                    // The caller dropped bytes it was told to keep; start over rather than
                    // read a frame from the wrong place.
                    self.state = State::Between;
                }
                State::Discarding => {
                    match memchr::memchr(START, input.get(pos..).unwrap_or_default()) {
                        Some(at) => {
                            pos += at;
                            self.state = State::Between;
                        }
                        None => {
                            return Decoded {
                                consumed: input.len(),
                                event: None,
                            };
                        }
                    }
                }
            }
        }
    }

    /// `input[0]` is the start byte of the current frame.
    fn scan_frame<'a>(&mut self, input: &'a [u8], scanned: usize) -> Decoded<'a> {
        let payload = input.get(1..).unwrap_or_default();
        // Resume one byte early: an END seen last time may have been waiting for its CR.
        let from = scanned.saturating_sub(1);
        let limit = payload.len().min(self.max_frame + 1);
        let mut at = from;
        while at < limit {
            let Some(found) = memchr::memchr(END, payload.get(at..limit).unwrap_or_default())
            else {
                break;
            };
            let end = at + found;
            match payload.get(end + 1) {
                Some(&CR) => {
                    self.state = State::Between;
                    return Decoded {
                        consumed: 1 + end + 2,
                        event: Some(Event::Frame(payload.get(..end).unwrap_or_default())),
                    };
                }
                // END is the last byte we have: its CR may be in the next read.
                None => {
                    self.state = State::InFrame { scanned: end };
                    return Decoded {
                        consumed: 0,
                        event: None,
                    };
                }
                Some(_) => at = end + 1,
            }
        }
        if payload.len() > self.max_frame {
            // Too long and still no terminator within the limit. `+1` above lets a frame of
            // exactly max_frame bytes whose END sits at index max_frame still be found.
            let head = payload.get(..self.max_frame).unwrap_or_default();
            self.state = State::Discarding;
            return Decoded {
                consumed: 1 + self.max_frame,
                event: Some(Event::TooLarge { head }),
            };
        }
        self.state = State::InFrame {
            scanned: payload.len(),
        };
        Decoded {
            consumed: 0,
            event: None,
        }
    }
}

/// Appends `payload` framed as MLLP to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + OVERHEAD);
    out.push(START);
    out.extend_from_slice(payload);
    out.push(END);
    out.push(CR);
}

#[cfg(test)]
mod tests;
