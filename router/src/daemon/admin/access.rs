//! Who may use the admin address. `/healthz`, `/readyz` and `/metrics` answer anyone who can
//! connect (probes and scrapers; they hold no patient data). The status page at `/` holds no
//! data either (its script asks the API with the token the operator gives it), so it needs
//! only step 1 below. Everything else must
//!
//! 1. name this admin address in `Host` and, when sent, `Origin`: localhost, a loopback IP,
//!    the IP the connection came in on, or a name in `admin_names`, with the admin's port.
//!    A web page the operator opens cannot then reach the API through DNS rebinding or a
//!    cross-site request (403);
//! 2. carry the token: `Authorization: Bearer <token>`, compared in constant time (401).
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::token::Token;

/// Paths served without a token or a Host check.
pub const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Paths served to a request that names this admin address, without a token: the status
/// page, which carries no data and must load before the operator has given it the token.
pub const PAGE_PATHS: [&str; 1] = ["/"];

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub tls: bool,
}

pub struct Access {
    token: Token,
    names: Vec<String>,
}

/// Why a request was refused (said to the client and logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    ForeignHost,
    ForeignOrigin,
    NoToken,
    WrongToken,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::ForeignHost => "the Host header does not name this admin address",
            Refusal::ForeignOrigin => "the request comes from a web page of another origin",
            Refusal::NoToken => "no admin token (Authorization: Bearer <token>)",
            Refusal::WrongToken => "wrong admin token",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = format!("refused: {}\n", self.reason());
        match self {
            Refusal::ForeignHost | Refusal::ForeignOrigin => {
                (StatusCode::FORBIDDEN, body).into_response()
            }
            Refusal::NoToken | Refusal::WrongToken => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ganglion admin\""),
                )],
                body,
            )
                .into_response(),
        }
    }
}

impl Access {
    pub fn new(token: Token, names: Vec<String>) -> Access {
        Access { token, names }
    }

    fn check(&self, headers: &HeaderMap, conn: Conn) -> Result<(), Refusal> {
        self.check_names(headers, conn)?;
        self.check_token(headers)
    }

    /// Step 1: `Host` and `Origin` name this admin address.
    fn check_names(&self, headers: &HeaderMap, conn: Conn) -> Result<(), Refusal> {
        let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
        // A request without Host (HTTP/1.0) is no browser's: browsers always send it.
        if let Some(host) = text(header::HOST) {
            let default_port = if conn.tls { 443 } else { 80 };
            if !self.names_this(host, default_port, conn.local) {
                return Err(Refusal::ForeignHost);
            }
        }
        if let Some(origin) = text(header::ORIGIN) {
            let same = match origin.split_once("://") {
                Some(("http", authority)) => self.names_this(authority, 80, conn.local),
                Some(("https", authority)) => self.names_this(authority, 443, conn.local),
                _ => false, // "null" and anything else a page could send
            };
            if !same {
                return Err(Refusal::ForeignOrigin);
            }
        }
        Ok(())
    }

    /// Step 2: the token, as a bearer token.
    fn check_token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
        let Some(authorization) = text(header::AUTHORIZATION) else {
            return Err(Refusal::NoToken);
        };
        match authorization.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer")
                    && self.token.matches(token.trim().as_bytes()) =>
            {
                Ok(())
            }
            _ => Err(Refusal::WrongToken),
        }
    }

    /// Whether `authority` (`host[:port]`) is this admin address as a client may call it.
    fn names_this(&self, authority: &str, default_port: u16, local: SocketAddr) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        if port.unwrap_or(default_port) != local.port() {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip.to_canonical() == local.ip().to_canonical(),
            Err(_) => host == "localhost" || self.names.contains(&host),
        }
    }
}

/// `host[:port]` or `[v6][:port]`; `None` when the port is not a number.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok();
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(port(p.strip_prefix(':')?)?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, p)) => Some((host, Some(port(p)?))),
        None => Some((authority, None)),
    }
}

/// The middleware in front of every route.
pub async fn guard(
    State(access): State<Arc<Access>>,
    Extension(conn): Extension<Conn>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if OPEN_PATHS.contains(&path) {
        return next.run(request).await;
    }
    let checked = if PAGE_PATHS.contains(&path) {
        access.check_names(request.headers(), conn)
    } else {
        access.check(request.headers(), conn)
    };
    match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(
                "admin: refused {} {} from {}: {}",
                request.method(),
                request.uri().path(),
                conn.peer,
                refusal.reason()
            );
            refusal.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "0123456789abcdef-token\n").unwrap();
        let token = super::super::token::read(&path).unwrap();
        Access::new(token, vec!["router1.example.org".into()])
    }

    fn conn(local: &str) -> Conn {
        Conn {
            local: local.parse().unwrap(),
            peer: "127.0.0.1:50000".parse().unwrap(),
            tls: false,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    const GOOD: (&str, &str) = ("authorization", "Bearer 0123456789abcdef-token");

    #[test]
    fn hosts_that_name_this_address_pass_and_others_are_foreign() {
        let a = access();
        let c = conn("127.0.0.1:9464");
        for host in [
            "127.0.0.1:9464",
            "localhost:9464",
            "LOCALHOST.:9464",
            "[::1]:9464",
            "router1.example.org:9464",
        ] {
            assert_eq!(
                a.check(&headers(&[("host", host), GOOD]), c),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example:9464",
            "localhost:80",
            "localhost",
            "127.0.0.1:9465",
            "localhost.evil.example:9464",
            "10.1.2.3:9464",
            "localhost:x",
        ] {
            assert_eq!(
                a.check(&headers(&[("host", host), GOOD]), c),
                Err(Refusal::ForeignHost),
                "{host}"
            );
        }
        // Bound on every address: the IP the client dialled is this address.
        let any = conn("10.1.2.3:9464");
        assert_eq!(
            a.check(&headers(&[("host", "10.1.2.3:9464"), GOOD]), any),
            Ok(())
        );
    }

    #[test]
    fn origins_of_other_sites_are_refused_before_the_token_is_looked_at() {
        let a = access();
        let c = conn("127.0.0.1:9464");
        let host = ("host", "127.0.0.1:9464");
        assert_eq!(
            a.check(
                &headers(&[host, ("origin", "http://localhost:9464"), GOOD]),
                c
            ),
            Ok(())
        );
        for origin in [
            "http://evil.example",
            "null",
            "http://localhost:8080",
            "file://",
        ] {
            assert_eq!(
                a.check(&headers(&[host, ("origin", origin), GOOD]), c),
                Err(Refusal::ForeignOrigin),
                "{origin}"
            );
        }
    }

    #[test]
    fn the_page_needs_a_host_that_names_this_address_and_no_token() {
        let a = access();
        let c = conn("127.0.0.1:9464");
        assert_eq!(
            a.check_names(&headers(&[("host", "127.0.0.1:9464")]), c),
            Ok(())
        );
        assert_eq!(
            a.check_names(&headers(&[("host", "evil.example:9464")]), c),
            Err(Refusal::ForeignHost)
        );
    }

    #[test]
    fn the_token_must_be_sent_as_a_bearer_token_and_be_exact() {
        let a = access();
        let c = conn("127.0.0.1:9464");
        let host = ("host", "localhost:9464");
        assert_eq!(a.check(&headers(&[host]), c), Err(Refusal::NoToken));
        assert_eq!(
            a.check(
                &headers(&[host, ("authorization", "bearer 0123456789abcdef-token")]),
                c
            ),
            Ok(())
        );
        for wrong in [
            "Bearer 0123456789abcdef-tokem",
            "Bearer 0123456789abcdef-toke",
            "Basic 0123456789abcdef-token",
            "0123456789abcdef-token",
        ] {
            assert_eq!(
                a.check(&headers(&[host, ("authorization", wrong)]), c),
                Err(Refusal::WrongToken),
                "{wrong}"
            );
        }
    }
}
