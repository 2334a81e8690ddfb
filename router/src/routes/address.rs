//! Endpoint addresses: `host:port` for MLLP, an `http(s)://` URL for ITK.
//!
//! Parsed when the table is built so that a typo is a `check` error, not a connect failure at
//! three in the morning. Host names are checked for shape only (letters, digits, `-`, `.`);
//! resolving them is the egress's job, at connect time, so that DNS changes are followed.
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use super::endpoint::Protocol;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl Host {
    /// The name a TLS certificate is checked against when no `server_name` is given.
    pub fn server_name(&self) -> String {
        match self {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.clone(),
        }
    }
}

/// Where an endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    pub host: Host,
    pub port: u16,
    /// The HTTP request path for ITK endpoints (`/` when the URL has none); `None` for MLLP.
    pub path: Option<String>,
    /// For ITK endpoints, whether the URL said `https`.
    pub https: bool,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            None => write!(f, "{}:{}", self.host, self.port),
            Some(path) => {
                let scheme = if self.https { "https" } else { "http" };
                write!(f, "{scheme}://{}:{}{path}", self.host, self.port)
            }
        }
    }
}

/// Parses `text` as an address for `protocol`; the error is a sentence for the operator.
pub fn parse(protocol: Protocol, text: &str) -> Result<Address, String> {
    if protocol.is_itk() {
        parse_url(protocol, text)
    } else {
        if text.contains("://") {
            return Err(format!(
                "`{text}` is a URL, but {protocol} addresses are `host:port`, like `10.1.2.3:2575`"
            ));
        }
        let (host, port) = host_port(text, None)?;
        Ok(Address {
            host,
            port,
            path: None,
            https: false,
        })
    }
}

fn parse_url(protocol: Protocol, text: &str) -> Result<Address, String> {
    let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "`{text}` is not an http:// or https:// URL, which {protocol} addresses must be"
        ));
    };
    if https != (protocol == Protocol::ItkHttps) {
        let want = if protocol == Protocol::ItkHttps {
            "https"
        } else {
            "http"
        };
        return Err(format!(
            "{protocol} addresses must start with {want}://, not `{text}`"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if path.contains(['?', '#', ' ']) {
        return Err(format!(
            "the path of `{text}` may not contain `?`, `#` or spaces"
        ));
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = host_port(authority, Some(default_port))?;
    Ok(Address {
        host,
        port,
        path: Some(path.to_owned()),
        https,
    })
}

/// `host:port`, `[v6]:port`, or (with a default port) a bare host.
fn host_port(text: &str, default_port: Option<u16>) -> Result<(Host, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(format!(
                "`{text}` opens `[` for an IPv6 address but never closes it"
            ));
        };
        let ip: Ipv6Addr = v6
            .parse()
            .map_err(|_| format!("`{v6}` in `{text}` is not an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected `{after}` after `]` in `{text}`")),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (h, p) = match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if h.contains(':') {
            return Err(format!(
                "write the IPv6 address in `{text}` in brackets, like `[::1]:2575`"
            ));
        }
        (host(h, text)?, p)
    };
    let port = match (port, default_port) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{p}` in `{text}` is not a port number (1-65535)")),
        },
        (None, Some(d)) => d,
        (None, None) => {
            return Err(format!(
                "`{text}` has no port: write `host:port`, like `{text}:2575`"
            ))
        }
    };
    Ok((host, port))
}

fn host(h: &str, whole: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err(format!("`{whole}` has no host"));
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if h.len() <= 253 && h.trim_end_matches('.').split('.').all(label_ok) {
        Ok(Host::Name(h.to_ascii_lowercase()))
    } else {
        Err(format!(
            "`{h}` in `{whole}` is not a host name or IP address"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mllp_addresses() {
        let a = parse(Protocol::Mllp, "pas.trust.nhs.uk:2575");
        assert_eq!(
            a.map(|a| a.to_string()),
            Ok("pas.trust.nhs.uk:2575".to_owned())
        );
        let a = parse(Protocol::Mllps, "[::1]:6661");
        assert_eq!(a.map(|a| a.to_string()), Ok("[::1]:6661".to_owned()));
        assert_eq!(
            parse(Protocol::Mllp, "10.0.0.1"),
            Err("`10.0.0.1` has no port: write `host:port`, like `10.0.0.1:2575`".to_owned())
        );
        assert_eq!(
            parse(Protocol::Mllp, "host:99999"),
            Err("`99999` in `host:99999` is not a port number (1-65535)".to_owned())
        );
        assert!(parse(Protocol::Mllp, "bad host:1").is_err());
        assert!(parse(Protocol::Mllp, "http://x:1").is_err());
    }

    #[test]
    fn itk_urls() {
        let a = parse(Protocol::ItkHttps, "https://itk.example.nhs.uk/syncsoap");
        assert_eq!(
            a.map(|a| (a.port, a.path.clone(), a.to_string())),
            Ok((
                443,
                Some("/syncsoap".to_owned()),
                "https://itk.example.nhs.uk:443/syncsoap".to_owned()
            ))
        );
        assert_eq!(
            parse(Protocol::ItkHttps, "http://x/"),
            Err("itk-https addresses must start with https://, not `http://x/`".to_owned())
        );
        assert!(parse(Protocol::ItkHttp, "x:80").is_err());
    }
}
