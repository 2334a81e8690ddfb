//! The next whole message at the front of a receive buffer: an MLLP frame, or an HTTP/1.1
//! request with its body (ITK). Sans I/O: the caller reads, calls [`next`] on what it holds, and
//! drops the bytes it is told to.
use std::ops::Range;

use codecs::{http1, mllp};

use crate::directory::Proto;

/// A whole message at the front of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whole {
    /// Bytes to drop once it is answered.
    pub consumed: usize,
    /// Where it lies in the input: an MLLP frame's payload; an HTTP request's body, its head
    /// being `..body.start`.
    pub body: Range<usize>,
    /// False when the sender asked to close after the answer.
    pub keep_alive: bool,
}

/// What [`next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A message to answer.
    Whole(Whole),
    /// More bytes are needed; drop `consumed` first (bytes outside any frame).
    Partial { consumed: usize },
    /// An MLLP frame past the decoder's limit: drop `consumed` (its first bytes) and go on, or
    /// close.
    TooLarge { consumed: usize },
    /// Not an HTTP request this receiver can frame (malformed, chunked): only closing is left.
    Malformed,
}

/// Looks for the next message in `input`, the connection's unconsumed bytes (`decoder` keeps
/// an MLLP connection's place between calls; HTTP needs none).
pub fn next(proto: Proto, decoder: &mut mllp::Decoder, input: &[u8]) -> Next {
    match proto {
        Proto::Mllp => next_frame(decoder, input),
        Proto::Itk => next_request(input),
    }
}

fn next_frame(decoder: &mut mllp::Decoder, input: &[u8]) -> Next {
    let decoded = decoder.decode(input);
    let consumed = decoded.consumed;
    match decoded.event {
        // The payload sits just before the frame's two closing bytes.
        Some(mllp::Event::Frame(frame)) => Next::Whole(Whole {
            consumed,
            body: consumed - (mllp::OVERHEAD - 1) - frame.len()..consumed - (mllp::OVERHEAD - 1),
            keep_alive: true,
        }),
        Some(mllp::Event::TooLarge { .. }) => Next::TooLarge { consumed },
        None => Next::Partial { consumed },
    }
}

fn next_request(input: &[u8]) -> Next {
    let mut headers = [http1::EMPTY_HEADER; 64];
    let head = match http1::parse_request(input, &mut headers, &http1::Limits::default()) {
        Ok(Some(head)) => head,
        Ok(None) => return Next::Partial { consumed: 0 },
        Err(_) => return Next::Malformed,
    };
    let len = match head.framing {
        http1::BodyFraming::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
        http1::BodyFraming::None => 0,
        http1::BodyFraming::Chunked | http1::BodyFraming::UntilClose => return Next::Malformed,
    };
    let end = head.head_len.saturating_add(len);
    if input.len() < end {
        return Next::Partial { consumed: 0 };
    }
    Next::Whole(Whole {
        consumed: end,
        body: head.head_len..end,
        keep_alive: head.keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_between_stray_bytes_and_across_reads() {
        let mut decoder = mllp::Decoder::new(1 << 20);
        let mut input = b"noise".to_vec();
        mllp::encode(b"MSH|one", &mut input);
        let Next::Whole(Whole { consumed, body, .. }) = next(Proto::Mllp, &mut decoder, &input)
        else {
            panic!("a whole frame");
        };
        assert_eq!(&input[body], b"MSH|one");
        assert_eq!(consumed, input.len());

        let mut framed = Vec::new();
        mllp::encode(b"MSH|two", &mut framed);
        let (first, rest) = framed.split_at(4);
        assert_eq!(
            next(Proto::Mllp, &mut decoder, first),
            Next::Partial { consumed: 0 }
        );
        let whole = [first, rest].concat();
        let Next::Whole(Whole { body, .. }) = next(Proto::Mllp, &mut decoder, &whole) else {
            panic!("the frame once its end arrived");
        };
        assert_eq!(&whole[body], b"MSH|two");
    }

    #[test]
    fn an_oversized_frame_is_said_once() {
        let mut decoder = mllp::Decoder::new(4);
        let mut input = Vec::new();
        mllp::encode(b"MSH|far too long", &mut input);
        assert!(matches!(
            next(Proto::Mllp, &mut decoder, &input),
            Next::TooLarge { .. }
        ));
    }

    #[test]
    fn requests_come_whole_with_their_body_and_connection_wish() {
        let mut decoder = mllp::Decoder::new(1);
        let request =
            b"POST /itk HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody";
        assert_eq!(
            next(Proto::Itk, &mut decoder, &request[..request.len() - 1]),
            Next::Partial { consumed: 0 }
        );
        let Next::Whole(Whole {
            consumed,
            body,
            keep_alive,
        }) = next(Proto::Itk, &mut decoder, request)
        else {
            panic!("a whole request");
        };
        assert_eq!(
            (consumed, &request[body], keep_alive),
            (request.len(), &b"body"[..], false)
        );

        let chunked = b"POST /itk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(next(Proto::Itk, &mut decoder, chunked), Next::Malformed);
        assert_eq!(
            next(Proto::Itk, &mut decoder, b"\x0bMSH|\x1c\r\r\n\r\n"),
            Next::Malformed
        );
    }
}
