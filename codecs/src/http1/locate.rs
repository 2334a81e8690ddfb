//! Positions for httparse's errors. httparse says what was wrong but not where, so on this
//! (cold) path the head is re-scanned with the same grammar to find the offending byte.

use super::error::{HttpError, HttpErrorKind};

pub(crate) fn from_httparse(buf: &[u8], e: httparse::Error, max_headers: usize) -> HttpError {
    let kind = match e {
        httparse::Error::TooManyHeaders => HttpErrorKind::TooManyHeaders { limit: max_headers },
        httparse::Error::HeaderName => HttpErrorKind::Malformed("header name"),
        httparse::Error::HeaderValue => HttpErrorKind::Malformed("header value"),
        httparse::Error::NewLine => HttpErrorKind::Malformed("line ending"),
        httparse::Error::Status => HttpErrorKind::Malformed("status code"),
        httparse::Error::Token => HttpErrorKind::Malformed("method or token"),
        httparse::Error::Version => HttpErrorKind::Malformed("version"),
    };
    let offset = match e {
        httparse::Error::TooManyHeaders => header_line_start(buf, max_headers),
        other => locate(buf, other),
    };
    HttpError::new(offset, kind)
}

/// RFC 9110 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field-value octets: HTAB, SP, VCHAR, obs-text.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Lines of `buf` as (start offset, line without its CR LF). A final line without LF is
/// yielded as is.
fn lines(buf: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = buf.get(pos..).filter(|r| !r.is_empty())?;
        let start = pos;
        let (line, used) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), i + 1),
            None => (rest, rest.len()),
        };
        pos += used;
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
    })
}

/// Offset of the first header line past the `n` that fit.
fn header_line_start(buf: &[u8], n: usize) -> usize {
    lines(buf)
        .skip_while(|(_, l)| l.is_empty())
        .nth(n + 1)
        .map_or(0, |(at, _)| at)
}

/// Finds the byte that made httparse fail with `e`; 0 when the re-scan does not pin it down.
pub(crate) fn locate(buf: &[u8], e: httparse::Error) -> usize {
    let mut it = lines(buf).skip_while(|(_, l)| l.is_empty());
    let Some((start, first)) = it.next() else {
        return 0;
    };
    match e {
        httparse::Error::Token => first
            .iter()
            .position(|&b| !is_tchar(b))
            .map_or(start, |i| start + i),
        httparse::Error::Version | httparse::Error::Status => {
            // Request: version after the second space; response: status after the first.
            let spaces = if first.starts_with(b"HTTP/") { 1 } else { 2 };
            let field = if e == httparse::Error::Version && spaces == 1 {
                0
            } else {
                first
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == b' ')
                    .nth(spaces - 1)
                    .map_or(0, |(i, _)| i + 1)
            };
            start + field
        }
        _ => {
            for (at, line) in std::iter::once((start, first)).chain(it) {
                if let Some(i) = line.iter().position(|&b| b == b'\r') {
                    return at + i;
                }
                if at == start {
                    continue;
                }
                if line.is_empty() {
                    break;
                }
                let colon = line.iter().position(|&b| b == b':');
                let name = line.get(..colon.unwrap_or(line.len())).unwrap_or_default();
                if let Some(i) = name.iter().position(|&b| !is_tchar(b)) {
                    return at + i;
                }
                let Some(colon) = colon else {
                    return at + line.len();
                };
                let value = line.get(colon + 1..).unwrap_or_default();
                if let Some(i) = value.iter().position(|&b| !is_field_byte(b)) {
                    return at + colon + 1 + i;
                }
            }
            0
        }
    }
}
