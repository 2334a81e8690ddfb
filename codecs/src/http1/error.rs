//! HTTP errors: where in the byte stream the problem is, what it is, and which status a server
//! answers with. Offsets count from the start of the buffer handed to the parser (for bodies,
//! from the offset the [`super::ChunkedDecoder`] was created with).

/// A framing or syntax error, or a limit exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct HttpError {
    /// Byte offset of the offending byte or field.
    pub offset: usize,
    /// What was wrong.
    pub kind: HttpErrorKind,
}

/// What was wrong with an HTTP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpErrorKind {
    /// The head is not valid HTTP/1.x; the text names the part (`header name`, `version`, ...).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The head did not end within the limit.
    #[error("message head longer than {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// More header fields than the limit (or the caller's header storage) allows.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The effective limit.
        limit: usize,
    },
    /// The body is, or is declared to be, larger than the limit.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// `Content-Length` is not a decimal number, or several disagree.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`: a request-smuggling vector, refused.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndTransferEncoding,
    /// A transfer coding other than a single `chunked`.
    #[error("unsupported transfer coding")]
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message, which cannot carry it.
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
    /// An HTTP/1.1 request without exactly one `Host` header.
    #[error("HTTP/1.1 request needs exactly one Host header")]
    BadHost,
    /// A chunk-size line that is not hex digits with optional extensions.
    #[error("invalid chunk size line")]
    BadChunkSize,
    /// A chunk-size line (with extensions) longer than [`super::MAX_CHUNK_LINE`].
    #[error("chunk size line too long")]
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    BadChunkEnd,
    /// A trailer line that is not `name: value` CRLF.
    #[error("malformed trailer field")]
    BadTrailer,
    /// Trailer section longer than [`super::MAX_TRAILER_BYTES`].
    #[error("trailer section too long")]
    TrailersTooLarge,
    /// A value given to a writer would break the message (CR, LF, a quote, ...); the text names
    /// the field. Our bug, not the peer's.
    #[error("value for {0} cannot be written into an HTTP head")]
    BadOutboundValue(&'static str),
}

impl HttpError {
    pub(crate) const fn new(offset: usize, kind: HttpErrorKind) -> Self {
        Self { offset, kind }
    }

    /// The status a server should answer with: 400 for malformed messages, 413 for a body over
    /// the limit, 431 for a head over the limit, 501 for transfer codings we do not implement,
    /// and 500 for values we were asked to write but cannot.
    pub const fn status(&self) -> u16 {
        match self.kind {
            HttpErrorKind::BodyTooLarge { .. } => 413,
            HttpErrorKind::HeadTooLarge { .. }
            | HttpErrorKind::TooManyHeaders { .. }
            | HttpErrorKind::TrailersTooLarge => 431,
            HttpErrorKind::UnsupportedTransferEncoding => 501,
            HttpErrorKind::BadOutboundValue(_) => 500,
            HttpErrorKind::Malformed(_)
            | HttpErrorKind::BadContentLength
            | HttpErrorKind::LengthAndTransferEncoding
            | HttpErrorKind::TransferEncodingInHttp10
            | HttpErrorKind::BadHost
            | HttpErrorKind::BadChunkSize
            | HttpErrorKind::ChunkLineTooLong
            | HttpErrorKind::BadChunkEnd
            | HttpErrorKind::BadTrailer => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_kind() {
        let e = |k| HttpError::new(7, k).status();
        assert_eq!(e(HttpErrorKind::BodyTooLarge { limit: 1 }), 413);
        assert_eq!(e(HttpErrorKind::HeadTooLarge { limit: 1 }), 431);
        assert_eq!(e(HttpErrorKind::TooManyHeaders { limit: 1 }), 431);
        assert_eq!(e(HttpErrorKind::UnsupportedTransferEncoding), 501);
        assert_eq!(e(HttpErrorKind::LengthAndTransferEncoding), 400);
        assert_eq!(e(HttpErrorKind::BadChunkSize), 400);
    }

    #[test]
    fn display_names_offset_and_problem() {
        let e = HttpError::new(12, HttpErrorKind::Malformed("header name"));
        assert_eq!(e.to_string(), "malformed header name at byte 12");
    }
}
