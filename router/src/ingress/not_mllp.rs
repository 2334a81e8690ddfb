//! What bytes outside an MLLP frame look like, for the one line that says why their connection
//! was closed.
//!
//! On an MLLP port everything between frames should be a start byte or, at most, the line ends
//! some senders leave after a frame. Anything else is a client speaking another protocol (a
//! browser, a health check, a TLS client on the plain port) or a sender that lost its framing;
//! waiting for a frame that never comes would hold the connection until its idle timeout.
use std::fmt;

/// A run of bytes before the next start byte that is more than whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stray {
    /// An HTTP request line (`GET / HTTP/1.1`, …).
    Http,
    /// A TLS handshake record: a TLS client on a plain MLLP port.
    TlsClientHello,
    /// Something else, this many bytes of it (leading whitespace not counted).
    Bytes(usize),
}

impl fmt::Display for Stray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stray::Http => f.write_str("HTTP request"),
            Stray::TlsClientHello => f.write_str("TLS ClientHello"),
            Stray::Bytes(1) => f.write_str("1 byte outside a frame"),
            Stray::Bytes(n) => write!(f, "{n} bytes outside a frame"),
        }
    }
}

const HTTP_METHODS: [&[u8]; 10] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PRI ",
];

/// What `gap` (bytes read outside a frame, up to the next start byte) is; `None` when it is
/// empty or only whitespace, which is harmless.
pub fn classify(gap: &[u8]) -> Option<Stray> {
    let start = gap.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = gap.get(start..).unwrap_or_default();
    if HTTP_METHODS.iter().any(|m| rest.starts_with(m)) {
        return Some(Stray::Http);
    }
    // A TLS record header: content type 22 (handshake), version 3.x.
    if let [0x16, 0x03, ..] = rest {
        return Some(Stray::TlsClientHello);
    }
    Some(Stray::Bytes(rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_it_looks_like() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"\r\n\n "), None);
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Stray::Http));
        assert_eq!(classify(b"\nPOST /x HTTP/1.1"), Some(Stray::Http));
        assert_eq!(
            classify(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
            Some(Stray::TlsClientHello)
        );
        assert_eq!(classify(b"\r\nhello"), Some(Stray::Bytes(5)));
        assert_eq!(classify(b"GETTING"), Some(Stray::Bytes(7)));
        assert_eq!(Stray::Bytes(9).to_string(), "9 bytes outside a frame");
        assert_eq!(Stray::Bytes(1).to_string(), "1 byte outside a frame");
    }
}
