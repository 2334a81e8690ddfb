//! Body framing (RFC 9112 §6) and the keep-alive decision, from parsed header fields.
//!
//! Strict where leniency enables request smuggling: `Content-Length` together with
//! `Transfer-Encoding`, disagreeing lengths, and codings other than one `chunked` are refused.

use super::error::{HttpError, HttpErrorKind};
use super::{has_token, offset_in, trim_ows, BodyFraming, Limits, Version};
use httparse::Header;

/// HTTP/1.1 persists unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
pub(crate) fn keep_alive(version: Version, headers: &[Header<'_>]) -> bool {
    if has_token(headers, "Connection", "close") {
        return false;
    }
    match version {
        Version::Http11 => true,
        Version::Http10 => has_token(headers, "Connection", "keep-alive"),
    }
}

/// `Some(Chunked)` when the message is chunked, `None` when it has no `Transfer-Encoding`.
pub(crate) fn transfer_framing(
    buf: &[u8],
    headers: &[Header<'_>],
    version: Version,
) -> Result<Option<BodyFraming>, HttpError> {
    let mut first_te = None;
    let mut chunked = 0usize;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Transfer-Encoding"))
    {
        let at = offset_in(buf, h.name.as_bytes()).unwrap_or(0);
        first_te.get_or_insert(at);
        for coding in h.value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                continue;
            }
            if !coding.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::new(
                    at,
                    HttpErrorKind::UnsupportedTransferEncoding,
                ));
            }
            chunked += 1;
        }
    }
    let Some(at) = first_te else {
        return Ok(None);
    };
    if version == Version::Http10 {
        return Err(HttpError::new(at, HttpErrorKind::TransferEncodingInHttp10));
    }
    if let Some(cl) = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    {
        let at = offset_in(buf, cl.name.as_bytes()).unwrap_or(at);
        return Err(HttpError::new(at, HttpErrorKind::LengthAndTransferEncoding));
    }
    // "chunked" applied twice, or an empty list, is not a framing we can decode.
    if chunked != 1 {
        return Err(HttpError::new(
            at,
            HttpErrorKind::UnsupportedTransferEncoding,
        ));
    }
    Ok(Some(BodyFraming::Chunked))
}

/// The agreed `Content-Length`, if any: every field and list element must be the same number.
pub(crate) fn content_length(
    buf: &[u8],
    headers: &[Header<'_>],
    limits: &Limits,
) -> Result<Option<u64>, HttpError> {
    let mut agreed: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    {
        let at = offset_in(buf, h.value).unwrap_or(0);
        for item in h.value.split(|&b| b == b',').map(trim_ows) {
            let n =
                parse_decimal(item).ok_or(HttpError::new(at, HttpErrorKind::BadContentLength))?;
            if agreed.is_some_and(|a| a != n) {
                return Err(HttpError::new(at, HttpErrorKind::BadContentLength));
            }
            agreed = Some(n);
        }
        if agreed.is_some_and(|n| n > limits.max_body) {
            return Err(HttpError::new(
                at,
                HttpErrorKind::BodyTooLarge {
                    limit: limits.max_body,
                },
            ));
        }
    }
    Ok(agreed)
}

/// 1*DIGIT into a u64, refusing signs, blanks and overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b"1a"), None);
        assert_eq!(parse_decimal(b""), None);
    }
}
