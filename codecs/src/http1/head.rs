//! Request and response heads: httparse does the tokenising; this module applies the limits and
//! puts the head together with its body framing and keep-alive decision (`framing.rs`) and
//! positioned errors (`locate.rs`).

use super::error::{HttpError, HttpErrorKind};
use super::framing::{content_length, keep_alive, transfer_framing};
use super::locate::{from_httparse, locate};
use super::{header, soap_action, trim_ows, BodyFraming, Limits, Version};
use httparse::{Header, Status};

/// A parsed request head. Slices borrow the caller's buffer (`'b`) and header storage (`'h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'h, 'b> {
    /// Method token, e.g. `POST`.
    pub method: &'b str,
    /// Request target as sent, e.g. `/syncsoap`.
    pub target: &'b str,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields in arrival order.
    pub headers: &'h [Header<'b>],
    /// Bytes of the head including the blank line: the body starts here.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this exchange.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` and waits for [`super::CONTINUE_100`].
    pub expect_continue: bool,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'h, 'b> {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase as sent (may be empty).
    pub reason: &'b str,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields in arrival order.
    pub headers: &'h [Header<'b>],
    /// Bytes of the head including the blank line: the body starts here.
    pub head_len: usize,
    /// How the body is delimited (responses to HEAD are not distinguished: ITK only POSTs).
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this exchange.
    pub keep_alive: bool,
}

impl<'h, 'b> RequestHead<'h, 'b> {
    /// First header called `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        header(self.headers, name)
    }

    /// The `SOAPAction` value without quotes.
    pub fn soap_action(&self) -> Option<&'b [u8]> {
        soap_action(self.headers)
    }

    /// The whole body when it is delimited by length (or absent) and already in `buf`, the
    /// buffer this head was parsed from; `None` while bytes are missing or for chunked bodies.
    pub fn body<'x>(&self, buf: &'x [u8]) -> Option<&'x [u8]> {
        fixed_body(buf, self.head_len, self.framing)
    }
}

impl<'h, 'b> ResponseHead<'h, 'b> {
    /// First header called `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        header(self.headers, name)
    }

    /// The whole body when it is delimited by length (or absent) and already in `buf`.
    pub fn body<'x>(&self, buf: &'x [u8]) -> Option<&'x [u8]> {
        fixed_body(buf, self.head_len, self.framing)
    }
}

fn fixed_body(buf: &[u8], head_len: usize, framing: BodyFraming) -> Option<&[u8]> {
    match framing {
        BodyFraming::None => buf.get(head_len..head_len),
        BodyFraming::Length(n) => {
            let end = head_len.checked_add(usize::try_from(n).ok()?)?;
            buf.get(head_len..end)
        }
        BodyFraming::Chunked | BodyFraming::UntilClose => None,
    }
}

/// Parses a request head from the front of `buf` into `headers`.
///
/// Returns `Ok(None)` while the head is incomplete and still within `limits.max_head_bytes`.
/// At most `min(headers.len(), limits.max_headers)` fields are accepted.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: &Limits,
) -> Result<Option<RequestHead<'h, 'b>>, HttpError> {
    let n = headers.len().min(limits.max_headers);
    let storage = headers.get_mut(..n).unwrap_or_default();
    let mut req = httparse::Request::new(storage);
    let status = req.parse(buf).map_err(|e| from_httparse(buf, e, n))?;
    let Some(head_len) = complete(buf, status, limits)? else {
        return Ok(None);
    };
    let httparse::Request {
        method,
        path,
        version,
        headers,
    } = req;
    let (Some(method), Some(target), Some(version)) = (method, path, version) else {
        return Err(HttpError::new(0, HttpErrorKind::Malformed("request line")));
    };
    let version = version_of(version, buf)?;
    let headers: &'h [Header<'b>] = headers;
    if version == Version::Http11 {
        let hosts = headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("Host"))
            .count();
        if hosts != 1 {
            return Err(HttpError::new(0, HttpErrorKind::BadHost));
        }
    }
    let framing = match transfer_framing(buf, headers, version)? {
        Some(framing) => framing,
        None => match content_length(buf, headers, limits)? {
            Some(len) => BodyFraming::Length(len),
            None => BodyFraming::None,
        },
    };
    let expect_continue = header(headers, "Expect")
        .is_some_and(|v| trim_ows(v).eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(RequestHead {
        method,
        target,
        version,
        headers,
        head_len,
        framing,
        keep_alive: keep_alive(version, headers),
        expect_continue,
    }))
}

/// Parses a response head from the front of `buf` into `headers`; see [`parse_request`].
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: &Limits,
) -> Result<Option<ResponseHead<'h, 'b>>, HttpError> {
    let n = headers.len().min(limits.max_headers);
    let storage = headers.get_mut(..n).unwrap_or_default();
    let mut resp = httparse::Response::new(storage);
    let status = resp.parse(buf).map_err(|e| from_httparse(buf, e, n))?;
    let Some(head_len) = complete(buf, status, limits)? else {
        return Ok(None);
    };
    let httparse::Response {
        version,
        code,
        reason,
        headers,
    } = resp;
    let (Some(version), Some(status)) = (version, code) else {
        return Err(HttpError::new(0, HttpErrorKind::Malformed("status line")));
    };
    let version = version_of(version, buf)?;
    let headers: &'h [Header<'b>] = headers;
    // RFC 9112 §6.3: these never carry a body, whatever the headers say.
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if bodiless {
        BodyFraming::None
    } else {
        match transfer_framing(buf, headers, version)? {
            Some(framing) => framing,
            None => match content_length(buf, headers, limits)? {
                Some(len) => BodyFraming::Length(len),
                None => BodyFraming::UntilClose,
            },
        }
    };
    let keep_alive = framing != BodyFraming::UntilClose && keep_alive(version, headers);
    Ok(Some(ResponseHead {
        status,
        reason: reason.unwrap_or(""),
        version,
        headers,
        head_len,
        framing,
        keep_alive,
    }))
}

/// Applies the head-size limit to httparse's verdict.
fn complete(
    buf: &[u8],
    status: Status<usize>,
    limits: &Limits,
) -> Result<Option<usize>, HttpError> {
    let too_large = HttpErrorKind::HeadTooLarge {
        limit: limits.max_head_bytes,
    };
    match status {
        Status::Complete(n) if n > limits.max_head_bytes => {
            Err(HttpError::new(limits.max_head_bytes, too_large))
        }
        Status::Complete(n) => Ok(Some(n)),
        Status::Partial if buf.len() > limits.max_head_bytes => {
            Err(HttpError::new(limits.max_head_bytes, too_large))
        }
        Status::Partial => Ok(None),
    }
}

fn version_of(minor: u8, buf: &[u8]) -> Result<Version, HttpError> {
    match minor {
        0 => Ok(Version::Http10),
        1 => Ok(Version::Http11),
        _ => Err(HttpError::new(
            locate(buf, httparse::Error::Version),
            HttpErrorKind::Malformed("version"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::EMPTY_HEADER;

    fn req(buf: &[u8]) -> Result<Option<(BodyFraming, bool, usize)>, HttpError> {
        let mut hs = [EMPTY_HEADER; 16];
        parse_request(buf, &mut hs, &Limits::default())
            .map(|o| o.map(|h| (h.framing, h.keep_alive, h.head_len)))
    }

    const CAPTURE_HEAD: &[u8] = b"POST /syncsoap HTTP/1.1\r\nContent-Length: 4512\r\n\
Server: HSCIC ITK Test Platform\r\nSOAPaction: \"urn:nhs-itk:services:201005:SendBusinessAck-v1-0\"\r\n\
Host: 127.0.0.1\r\nContent-type: text/xml\r\nConnection: close\r\n\r\n";

    #[test]
    fn parses_an_itk_post_head() {
        let mut hs = [EMPTY_HEADER; 16];
        let head = parse_request(CAPTURE_HEAD, &mut hs, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.target, "/syncsoap");
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.head_len, CAPTURE_HEAD.len());
        assert_eq!(head.framing, BodyFraming::Length(4512));
        assert!(!head.keep_alive);
        assert!(!head.expect_continue);
        assert_eq!(
            head.soap_action(),
            Some(&b"urn:nhs-itk:services:201005:SendBusinessAck-v1-0"[..])
        );
        assert_eq!(head.header("content-TYPE"), Some(&b"text/xml"[..]));
        assert_eq!(head.body(CAPTURE_HEAD), None);
    }

    #[test]
    fn every_prefix_of_a_head_needs_more_bytes() {
        for n in 0..CAPTURE_HEAD.len() {
            assert_eq!(req(&CAPTURE_HEAD[..n]), Ok(None), "prefix {n}");
        }
    }

    #[test]
    fn body_is_available_once_complete() {
        let buf = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcXYZ";
        let mut hs = [EMPTY_HEADER; 8];
        let partial = &buf[..buf.len() - 4];
        let head = parse_request(partial, &mut hs, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.body(partial), None);
        assert_eq!(head.body(buf), Some(&b"abc"[..]));
    }

    #[test]
    fn keep_alive_rules() {
        let h11 = b"POST / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(req(h11).unwrap().unwrap().1);
        let h11_close = b"POST / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n";
        assert!(!req(h11_close).unwrap().unwrap().1);
        let h10 = b"POST / HTTP/1.0\r\n\r\n";
        assert!(!req(h10).unwrap().unwrap().1);
        let h10_ka = b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(req(h10_ka).unwrap().unwrap().1);
    }

    #[test]
    fn framing_rules() {
        let chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(req(chunked).unwrap().unwrap().0, BodyFraming::Chunked);
        let none = b"POST / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(req(none).unwrap().unwrap().0, BodyFraming::None);
        let same =
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(req(same).unwrap().unwrap().0, BodyFraming::Length(5));
    }

    #[test]
    fn smuggling_shapes_are_refused_with_positions() {
        let both = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        let e = req(both).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::LengthAndTransferEncoding);
        assert_eq!(e.offset, 54);
        assert_eq!(&both[e.offset..e.offset + 14], b"Content-Length");
        assert_eq!(e.status(), 400);

        let differ =
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        let e = req(differ).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::BadContentLength);
        assert_eq!(&differ[e.offset..e.offset + 1], b"6");

        let gzip = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        let e = req(gzip).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::UnsupportedTransferEncoding);
        assert_eq!(e.status(), 501);

        let twice = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
        assert_eq!(
            req(twice).unwrap_err().kind,
            HttpErrorKind::UnsupportedTransferEncoding
        );

        let te10 = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            req(te10).unwrap_err().kind,
            HttpErrorKind::TransferEncodingInHttp10
        );

        for bad in [
            &b"-1"[..],
            b"+5",
            b"",
            b"1 2",
            b"99999999999999999999",
            b"0x10",
        ] {
            let mut m = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ".to_vec();
            m.extend_from_slice(bad);
            m.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                req(&m).unwrap_err().kind,
                HttpErrorKind::BadContentLength,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_is_required_once_in_http11() {
        assert_eq!(
            req(b"POST / HTTP/1.1\r\n\r\n").unwrap_err().kind,
            HttpErrorKind::BadHost
        );
        assert_eq!(
            req(b"POST / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
                .unwrap_err()
                .kind,
            HttpErrorKind::BadHost
        );
    }

    #[test]
    fn limits_give_431_and_413() {
        let limits = Limits {
            max_head_bytes: 40,
            max_headers: 2,
            max_body: 10,
        };
        let mut hs = [EMPTY_HEADER; 16];
        let long = b"POST / HTTP/1.1\r\nHost: h\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa";
        let e = parse_request(long, &mut hs, &limits).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::HeadTooLarge { limit: 40 });
        assert_eq!(e.status(), 431);

        let many = b"POST / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        let limits = Limits {
            max_head_bytes: 1000,
            ..limits
        };
        let e = parse_request(many, &mut hs, &limits).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::TooManyHeaders { limit: 2 });
        assert_eq!(&many[e.offset..e.offset + 2], b"B:");
        assert_eq!(e.status(), 431);

        let big = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
        let e = parse_request(big, &mut hs, &limits).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::BodyTooLarge { limit: 10 });
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn malformed_heads_are_positioned() {
        let bad_name = b"POST / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n";
        let e = req(bad_name).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Malformed("header name"));
        assert_eq!(e.offset, 29, "the space inside `Bad Name`");

        let bad_value = b"POST / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n";
        let e = req(bad_value).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Malformed("header value"));
        assert_eq!(bad_value[e.offset], 0x01);

        let bad_method = b"PO(ST / HTTP/1.1\r\n\r\n";
        let e = req(bad_method).unwrap_err();
        assert_eq!(e.offset, 2);

        let bad_version = b"POST / HTTP/2.0\r\n\r\n";
        let e = req(bad_version).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Malformed("version"));
        assert_eq!(e.offset, 7);
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn expect_continue_is_reported() {
        let mut hs = [EMPTY_HEADER; 8];
        let m = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
        let head = parse_request(m, &mut hs, &Limits::default())
            .unwrap()
            .unwrap();
        assert!(head.expect_continue);
    }

    #[test]
    fn responses_frame_by_status_length_or_close() {
        let resp = |buf: &[u8]| {
            let mut hs = [EMPTY_HEADER; 8];
            parse_response(buf, &mut hs, &Limits::default())
                .map(|o| o.map(|h| (h.status, h.framing, h.keep_alive)))
        };
        assert_eq!(
            resp(b"HTTP/1.1 200 OK\r\nContent-Length: 719\r\nConnection: close\r\n\r\n"),
            Ok(Some((200, BodyFraming::Length(719), false)))
        );
        assert_eq!(
            resp(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Some((202, BodyFraming::Chunked, true)))
        );
        assert_eq!(
            resp(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
            Ok(Some((500, BodyFraming::UntilClose, false)))
        );
        assert_eq!(
            resp(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Ok(Some((204, BodyFraming::None, true)))
        );
        assert_eq!(resp(b"HTTP/1.1 200 OK\r\nContent-Len"), Ok(None));
        let e = resp(b"HTTP/1.1 2x0 OK\r\n\r\n").unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Malformed("status code"));
        assert_eq!(e.offset, 9);
    }
}
