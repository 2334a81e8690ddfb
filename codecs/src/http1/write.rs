//! Writers for the few messages an ITK endpoint sends: a response with a body, a SOAP POST, an
//! error response. Every value is checked before anything is appended, so a refused value
//! leaves the caller's buffer untouched and can never inject a header.

use super::error::{HttpError, HttpErrorKind};

/// Interim response for a client that sent `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What goes in a response head besides the body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseSpec<'a> {
    /// Status code (100..=999); the reason phrase comes from [`reason_phrase`].
    pub status: u16,
    /// `Content-Type` value, e.g. `text/xml; charset=utf-8`.
    pub content_type: &'a str,
    /// Whether to announce `Connection: keep-alive` (else `close`). Written explicitly so that
    /// HTTP/1.0 clients asking for keep-alive get it confirmed.
    pub keep_alive: bool,
}

/// What goes in a SOAP POST head besides the body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostSpec<'a> {
    /// Request target, starting with `/`.
    pub path: &'a str,
    /// `Host` value (`name` or `name:port`).
    pub host: &'a str,
    /// `SOAPAction` value, written inside double quotes as ITK captures show.
    pub soap_action: &'a str,
    /// `Content-Type` value.
    pub content_type: &'a str,
    /// Whether to ask for the connection to stay open.
    pub keep_alive: bool,
}

/// Appends a full response (head and body) to `out`.
pub fn write_response(
    out: &mut Vec<u8>,
    spec: &ResponseSpec<'_>,
    body: &[u8],
) -> Result<(), HttpError> {
    if !(100..=999).contains(&spec.status) {
        return Err(bad("status"));
    }
    // RFC 9110 §6.4.1: 1xx, 204 and 304 never have content, nor (1xx, 204) a length.
    let bodiless = spec.status < 200 || spec.status == 204 || spec.status == 304;
    if bodiless && !body.is_empty() {
        return Err(bad("body"));
    }
    check_field(spec.content_type, "content type")?;
    out.reserve(128 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(spec.status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(spec.status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(spec.content_type.as_bytes());
    if bodiless {
        connection(out, spec.keep_alive);
    } else {
        finish(out, spec.keep_alive, body);
    }
    Ok(())
}

/// Appends a full `POST` request (head and body) to `out`.
pub fn write_post(out: &mut Vec<u8>, spec: &PostSpec<'_>, body: &[u8]) -> Result<(), HttpError> {
    let visible = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if !spec.path.starts_with('/') || !visible(spec.path) {
        return Err(bad("path"));
    }
    if !visible(spec.host) {
        return Err(bad("host"));
    }
    check_field(spec.soap_action, "SOAPAction")?;
    if spec.soap_action.contains('"') {
        return Err(bad("SOAPAction"));
    }
    check_field(spec.content_type, "content type")?;
    out.reserve(192 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(spec.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(spec.host.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(spec.content_type.as_bytes());
    out.extend_from_slice(b"\r\nSOAPAction: \"");
    out.extend_from_slice(spec.soap_action.as_bytes());
    out.push(b'"');
    finish(out, spec.keep_alive, body);
    Ok(())
}

/// Appends the response a server sends for a request it could not parse: the status from
/// [`HttpError::status`], the error as a plain-text body, and `Connection: close` (after a
/// framing error the rest of the stream cannot be trusted).
pub fn write_error_response(out: &mut Vec<u8>, err: &HttpError) {
    let mut body = err.to_string().into_bytes();
    body.push(b'\n');
    let spec = ResponseSpec {
        status: err.status(),
        content_type: "text/plain; charset=utf-8",
        keep_alive: false,
    };
    // Status and content type are ours and valid, so this cannot fail; ignore the Ok.
    let _ = write_response(out, &spec, &body);
}

/// Standard reason phrase, or `Status` for codes without one here.
pub const fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn finish(out: &mut Vec<u8>, keep_alive: bool, body: &[u8]) {
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body.len() as u64);
    connection(out, keep_alive);
    out.extend_from_slice(body);
}

/// The `Connection` field and the blank line that ends the head.
fn connection(out: &mut Vec<u8>, keep_alive: bool) {
    out.extend_from_slice(if keep_alive {
        &b"\r\nConnection: keep-alive\r\n\r\n"[..]
    } else {
        &b"\r\nConnection: close\r\n\r\n"[..]
    });
}

const fn bad(field: &'static str) -> HttpError {
    HttpError::new(0, HttpErrorKind::BadOutboundValue(field))
}

/// A field value may hold visible ASCII, spaces and tabs, but never CR, LF or other controls.
fn check_field(v: &str, field: &'static str) -> Result<(), HttpError> {
    let ok = !v.is_empty()
        && v.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
        && !v.starts_with([' ', '\t'])
        && !v.ends_with([' ', '\t']);
    if ok {
        Ok(())
    } else {
        Err(bad(field))
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_request, parse_response, BodyFraming, Limits, EMPTY_HEADER};

    #[test]
    fn response_bytes_are_exact() {
        let mut out = b"prefix|".to_vec();
        let spec = ResponseSpec {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            keep_alive: true,
        };
        write_response(&mut out, &spec, b"<a/>").unwrap();
        assert_eq!(
            out,
            b"prefix|HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n\
Content-Length: 4\r\nConnection: keep-alive\r\n\r\n<a/>"
        );
    }

    #[test]
    fn post_bytes_are_exact_and_parse_back() {
        let mut out = Vec::new();
        let spec = PostSpec {
            path: "/syncsoap",
            host: "127.0.0.1:4848",
            soap_action: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
            content_type: "text/xml; charset=utf-8",
            keep_alive: false,
        };
        write_post(&mut out, &spec, b"<soap/>").unwrap();
        let expected: &[u8] = b"POST /syncsoap HTTP/1.1\r\nHost: 127.0.0.1:4848\r\n\
Content-Type: text/xml; charset=utf-8\r\n\
SOAPAction: \"urn:nhs-itk:services:201005:SendCDADocument-v2-0\"\r\n\
Content-Length: 7\r\nConnection: close\r\n\r\n<soap/>";
        assert_eq!(out, expected);

        let mut hs = [EMPTY_HEADER; 8];
        let head = parse_request(&out, &mut hs, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.target, "/syncsoap");
        assert_eq!(head.framing, BodyFraming::Length(7));
        assert!(!head.keep_alive);
        assert_eq!(head.soap_action(), Some(spec.soap_action.as_bytes()));
        assert_eq!(head.body(&out), Some(&b"<soap/>"[..]));
    }

    #[test]
    fn error_response_carries_status_and_closes() {
        let err = HttpError::new(3, HttpErrorKind::BodyTooLarge { limit: 10 });
        let mut out = Vec::new();
        write_error_response(&mut out, &err);
        let mut hs = [EMPTY_HEADER; 8];
        let head = parse_response(&out, &mut hs, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 413);
        assert_eq!(head.reason, "Content Too Large");
        assert!(!head.keep_alive);
        assert_eq!(
            head.body(&out),
            Some(&b"body larger than 10 bytes at byte 3\n"[..])
        );
    }

    #[test]
    fn injection_is_refused_without_writing() {
        let mut out = Vec::new();
        let spec = PostSpec {
            path: "/a",
            host: "h",
            soap_action: "urn:x\r\nX-Evil: 1",
            content_type: "text/xml",
            keep_alive: true,
        };
        let e = write_post(&mut out, &spec, b"").unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::BadOutboundValue("SOAPAction"));
        assert_eq!(e.status(), 500);
        assert!(out.is_empty());
        let quoted = PostSpec {
            soap_action: "a\"b",
            ..spec
        };
        assert!(write_post(&mut out, &quoted, b"").is_err());
        let spaced = PostSpec {
            soap_action: "urn:x",
            path: "/a b",
            ..spec
        };
        assert!(write_post(&mut out, &spaced, b"").is_err());
        let bad_type = ResponseSpec {
            status: 200,
            content_type: "text/xml\n",
            keep_alive: true,
        };
        assert!(write_response(&mut out, &bad_type, b"").is_err());
        let bad_status = ResponseSpec {
            status: 99,
            content_type: "text/xml",
            keep_alive: true,
        };
        assert!(write_response(&mut out, &bad_status, b"").is_err());
        let no_content = ResponseSpec {
            status: 204,
            content_type: "text/xml",
            keep_alive: true,
        };
        assert_eq!(
            write_response(&mut out, &no_content, b"x")
                .unwrap_err()
                .kind,
            HttpErrorKind::BadOutboundValue("body")
        );
        assert!(out.is_empty());
        write_response(&mut out, &no_content, b"").unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nContent-Type: text/xml\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 4512, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
