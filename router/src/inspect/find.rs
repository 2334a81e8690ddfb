//! Finding the messages in a file, whatever shape it comes in.
//!
//! Ops staff hand ganglion whatever they have: a raw HL7v2 message, a file of several, an
//! FHS/BHS batch, an MLLP capture, an ITK SOAP request, or a whole HTTP request saved from the
//! wire (chunked or not). The shape is told by the first bytes; an MLLP frame or an HTTP body
//! is unwrapped and looked at again, so an MLLP capture of a batch still yields every message.
use std::borrow::Cow;

use codecs::{hl7v2, http1, mllp};

/// One message found in the input, or the reason a part of the input could not be read.
#[derive(Debug)]
pub struct Found<'a> {
    /// Byte offset of the message (or of the failure) from the start of the input.
    pub offset: usize,
    pub item: Result<Item<'a>, String>,
}

/// A message and what kind it is. Borrowed from the input unless an HTTP chunked body had to
/// be reassembled.
#[derive(Debug)]
pub enum Item<'a> {
    Hl7v2(Cow<'a, [u8]>),
    Itk(Cow<'a, [u8]>),
}

/// Every message in `input`, in order.
pub fn find_messages(input: &[u8]) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    classify(input, 0, &mut found);
    found
}

/// Looks at `input` (which starts `base` bytes into the original) and appends what it holds.
fn classify<'a>(input: &'a [u8], base: usize, found: &mut Vec<Found<'a>>) {
    let input_start = leading_noise(input);
    let body = &input[input_start..];
    let base = base + input_start;
    match body.first() {
        None => {}
        Some(&mllp::START) => unframe(body, base, found),
        Some(b'<') => found.push(Found {
            offset: base,
            item: Ok(Item::Itk(Cow::Borrowed(body))),
        }),
        Some(_) if looks_like_http(body) => unwrap_http(body, base, found),
        Some(_) => split_hl7(body, base, found),
    }
}

/// Whitespace and a UTF-8 byte-order mark before the first message carry no meaning.
fn leading_noise(input: &[u8]) -> usize {
    let bom = if input.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    bom + input[bom..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace() || **b == 0)
        .count()
}

fn looks_like_http(input: &[u8]) -> bool {
    const METHODS: [&[u8]; 4] = [b"POST ", b"PUT ", b"GET ", b"HTTP/1."];
    METHODS.iter().any(|m| input.starts_with(m))
}

fn unframe<'a>(input: &'a [u8], base: usize, found: &mut Vec<Found<'a>>) {
    // A file is already whole, so no frame can be "too large": the limit is the file itself.
    let mut decoder = mllp::Decoder::new(input.len());
    let mut pos = 0;
    loop {
        let decoded = decoder.decode(&input[pos..]);
        match decoded.event {
            Some(mllp::Event::Frame(frame)) => {
                // The payload starts one byte (the start byte) after the frame's first byte.
                let frame_at = pos + decoded.consumed - frame.len() - 2;
                classify(frame, base + frame_at, found);
            }
            Some(mllp::Event::TooLarge { .. }) => {}
            None => {
                if decoder.in_frame() {
                    found.push(Found {
                        offset: base + pos,
                        item: Err(
                            "MLLP frame has no end (0x1C 0x0D): input ends inside a frame"
                                .to_string(),
                        ),
                    });
                }
                return;
            }
        }
        pos += decoded.consumed;
    }
}

fn split_hl7<'a>(input: &'a [u8], base: usize, found: &mut Vec<Found<'a>>) {
    for piece in hl7v2::split_messages(input) {
        found.push(match piece {
            Ok((offset, message)) => Found {
                offset: base + offset,
                item: Ok(Item::Hl7v2(Cow::Borrowed(message))),
            },
            Err(err) => Found {
                offset: base + err.offset,
                item: Err(err.to_string()),
            },
        });
    }
}

fn unwrap_http<'a>(input: &'a [u8], base: usize, found: &mut Vec<Found<'a>>) {
    let limits = http1::Limits {
        max_body: input.len() as u64,
        ..http1::Limits::default()
    };
    let mut pos = 0;
    while pos < input.len() {
        match http_message(&input[pos..], &limits) {
            Ok(Some(HttpMessage {
                head_len,
                body,
                consumed,
            })) => {
                let start = base + pos + head_len;
                match body {
                    Cow::Borrowed(body) => classify(body, start, found),
                    Cow::Owned(body) => found.extend(owned_items(body, start)),
                }
                pos += consumed;
                pos += leading_noise(&input[pos..]);
            }
            Ok(None) => {
                found.push(Found {
                    offset: base + pos,
                    item: Err(
                        "HTTP message is cut short: the input ends before its body does"
                            .to_string(),
                    ),
                });
                return;
            }
            Err(err) => {
                found.push(Found {
                    offset: base + pos + err.offset,
                    item: Err(format!("HTTP: {err}")),
                });
                return;
            }
        }
    }
}

/// One HTTP request or response found at the front of an input.
struct HttpMessage<'a> {
    head_len: usize,
    /// Borrowed, or reassembled when chunked.
    body: Cow<'a, [u8]>,
    /// Bytes the whole message spans.
    consumed: usize,
}

/// The HTTP message at the front of `input`; `None` when the input ends too soon.
fn http_message<'a>(
    input: &'a [u8],
    limits: &http1::Limits,
) -> Result<Option<HttpMessage<'a>>, http1::HttpError> {
    let mut headers = [http1::EMPTY_HEADER; 64];
    let (head_len, framing) = if input.starts_with(b"HTTP/") {
        match http1::parse_response(input, &mut headers, limits)? {
            Some(head) => (head.head_len, head.framing),
            None => return Ok(None),
        }
    } else {
        match http1::parse_request(input, &mut headers, limits)? {
            Some(head) => (head.head_len, head.framing),
            None => return Ok(None),
        }
    };
    let rest = &input[head_len..];
    match framing {
        http1::BodyFraming::None => Ok(Some(HttpMessage {
            head_len,
            body: Cow::Borrowed(&rest[..0]),
            consumed: head_len,
        })),
        http1::BodyFraming::Length(len) => {
            let Some(body) = usize::try_from(len).ok().and_then(|len| rest.get(..len)) else {
                return Ok(None);
            };
            Ok(Some(HttpMessage {
                head_len,
                body: Cow::Borrowed(body),
                consumed: head_len + body.len(),
            }))
        }
        // A saved response without a length runs to the end of the file.
        http1::BodyFraming::UntilClose => Ok(Some(HttpMessage {
            head_len,
            body: Cow::Borrowed(rest),
            consumed: input.len(),
        })),
        http1::BodyFraming::Chunked => {
            let mut decoder = http1::ChunkedDecoder::new(limits.max_body, head_len);
            let mut body = Vec::new();
            let mut at = 0;
            loop {
                let (consumed, chunk) = decoder.next(&rest[at..])?;
                at += consumed;
                match chunk {
                    http1::Chunk::Data(data) => body.extend_from_slice(data),
                    http1::Chunk::Done => {
                        return Ok(Some(HttpMessage {
                            head_len,
                            body: Cow::Owned(body),
                            consumed: head_len + at,
                        }))
                    }
                    http1::Chunk::NeedMore => return Ok(None),
                }
            }
        }
    }
}

/// A reassembled (chunked) body owns its bytes, so what it holds is classified in place and
/// turned into owned items.
fn owned_items(body: Vec<u8>, base: usize) -> Vec<Found<'static>> {
    let mut inner = Vec::new();
    classify(&body, base, &mut inner);
    inner
        .into_iter()
        .map(|f| Found {
            offset: f.offset,
            item: f.item.map(|item| match item {
                Item::Hl7v2(b) => Item::Hl7v2(Cow::Owned(b.into_owned())),
                Item::Itk(b) => Item::Itk(Cow::Owned(b.into_owned())),
            }),
        })
        .collect()
}
