//! Just enough HTTP/1.1 to carry ITK web-service calls, sans I/O, built on `httparse`.
//!
//! Parts:
//! - [`parse_request`] / [`parse_response`] read a message head from the front of a buffer the
//!   caller owns, into header storage the caller owns, within [`Limits`]. `Ok(None)` means "not
//!   enough bytes yet" and is not an error. The head tells how the body is framed
//!   ([`BodyFraming`]) and whether the connection stays open afterwards (`keep_alive`).
//! - [`ChunkedDecoder`] decodes a `Transfer-Encoding: chunked` body as a stream: either yielding
//!   slices of the caller's buffer ([`ChunkedDecoder::next`]) or compacting the data in place
//!   ([`ChunkedDecoder::decode_in_place`], [`ChunkedDecoder::decode_vec`]).
//! - [`write_response`], [`write_post`] and [`write_error_response`] append whole messages to a
//!   caller's `Vec<u8>`.
//!
//! Invariants: nothing here panics on any input; nothing allocates while parsing; every error
//! carries the byte offset where it was found and the status a server should answer with
//! ([`HttpError::status`]). Framing is strict where leniency enables request smuggling: a message
//! with both `Content-Length` and `Transfer-Encoding` is refused, as are disagreeing
//! `Content-Length` values and transfer codings other than a single `chunked`.

mod chunked;
mod error;
mod framing;
mod head;
mod locate;
mod write;

pub use chunked::{Chunk, ChunkedDecoder, InPlace, MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
pub use error::{HttpError, HttpErrorKind};
pub use head::{parse_request, parse_response, RequestHead, ResponseHead};
pub use httparse::{Header, EMPTY_HEADER};
pub use write::{
    reason_phrase, write_error_response, write_post, write_response, PostSpec, ResponseSpec,
    CONTINUE_100,
};

/// Bounds on what a peer may make us buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request or status line plus header section, including the blank line.
    pub max_head_bytes: usize,
    /// Most header fields accepted (also bounded by the header storage the caller passes).
    pub max_headers: usize,
    /// Largest body accepted, whether framed by `Content-Length` or chunked.
    pub max_body: u64,
}

impl Default for Limits {
    /// 16 KiB of head, 64 header fields, 16 MiB of body: ITK heads are a handful of short
    /// fields, and a CDA document with attachments is a few megabytes.
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body: 16 * 1024 * 1024,
        }
    }
}

/// HTTP version of a parsed head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: connections close after each exchange unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: connections persist unless `Connection: close`.
    Http11,
}

/// How the body that follows a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all (a request without length, a 1xx/204/304 response).
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`: feed the bytes after the head to a [`ChunkedDecoder`].
    Chunked,
    /// A response without length: the body runs until the server closes the connection.
    UntilClose,
}

/// The value of the first header called `name`, compared case-insensitively (ITK captures spell
/// it `SOAPaction`). Leading and trailing whitespace is already trimmed by the parser.
pub fn header<'b>(headers: &[Header<'b>], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Whether any `name` header lists `token` in its comma-separated value (case-insensitive), as
/// `Connection: keep-alive, Upgrade` does.
pub fn has_token(headers: &[Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
}

/// The `SOAPAction` value without its surrounding quotes: `"urn:a"` gives `urn:a`.
pub fn soap_action<'b>(headers: &[Header<'b>]) -> Option<&'b [u8]> {
    let v = trim_ows(header(headers, "SOAPAction")?);
    Some(match v {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    })
}

/// Trims HTTP optional whitespace (SP and HTAB) from both ends.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Byte offset of `part` inside `whole` when `part` is a sub-slice of it.
pub(crate) fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let off = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (off.checked_add(part.len())? <= whole.len()).then_some(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case() {
        let hs = [
            Header {
                name: "Content-type",
                value: b"text/xml",
            },
            Header {
                name: "SOAPaction",
                value: b"\"urn:nhs-itk:services:201005:SendCDADocument-v2-0\"",
            },
        ];
        assert_eq!(header(&hs, "content-type"), Some(&b"text/xml"[..]));
        assert_eq!(header(&hs, "CONTENT-TYPE"), Some(&b"text/xml"[..]));
        assert_eq!(header(&hs, "Host"), None);
        assert_eq!(
            soap_action(&hs),
            Some(&b"urn:nhs-itk:services:201005:SendCDADocument-v2-0"[..])
        );
    }

    #[test]
    fn soap_action_without_quotes_is_returned_as_is() {
        let hs = [Header {
            name: "SOAPAction",
            value: b"urn:a",
        }];
        assert_eq!(soap_action(&hs), Some(&b"urn:a"[..]));
        let lone_quote = [Header {
            name: "SOAPAction",
            value: b"\"",
        }];
        assert_eq!(soap_action(&lone_quote), Some(&b"\""[..]));
    }

    #[test]
    fn tokens_are_found_in_lists_across_fields() {
        let hs = [
            Header {
                name: "Connection",
                value: b"Upgrade",
            },
            Header {
                name: "connection",
                value: b"foo , Keep-Alive",
            },
        ];
        assert!(has_token(&hs, "Connection", "keep-alive"));
        assert!(!has_token(&hs, "Connection", "close"));
    }

    #[test]
    fn trim_ows_trims_only_spaces_and_tabs() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b"\r\nx"), b"\r\nx");
    }
}
