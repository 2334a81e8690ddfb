//! The few figures `loadgen connections` reads from ganglion's admin address (`GET /metrics`,
//! Prometheus text): the TLS handshake counters and the open egress connections. The admin
//! server answers one request per connection and closes it, so a scrape reads to the end.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;

/// One scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scrape {
    pub handshakes_full: u64,
    pub handshakes_resumed: u64,
    pub egress_connections: u64,
}

/// The value of the unlabelled sample `name` in a Prometheus text body.
pub fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        let v: f64 = value.split_whitespace().next()?.parse().ok()?;
        (v >= 0.0).then_some(v as u64)
    })
}

impl Scrape {
    /// Reads the figures out of a `/metrics` body; `None` when one is missing.
    pub fn parse(text: &str) -> Option<Scrape> {
        Some(Scrape {
            handshakes_full: sample(text, "ganglion_tls_handshakes_full_total")?,
            handshakes_resumed: sample(text, "ganglion_tls_handshakes_resumed_total")?,
            egress_connections: sample(text, "ganglion_egress_connections")?,
        })
    }
}

/// `GET /metrics` from the admin address.
pub fn scrape(admin: SocketAddr) -> anyhow::Result<Scrape> {
    let text = scrape_text(admin)?;
    Scrape::parse(&text).ok_or_else(|| {
        anyhow::anyhow!("ganglion's /metrics lacks the TLS handshake or egress connection figures")
    })
}

/// The body of `GET /metrics` from the admin address.
pub fn scrape_text(admin: SocketAddr) -> anyhow::Result<String> {
    let mut tcp = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
        .with_context(|| format!("connecting to ganglion's admin address {admin}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: ganglion\r\nConnection: close\r\n\r\n")?;
    let mut body = Vec::new();
    tcp.read_to_end(&mut body)
        .context("reading ganglion's /metrics")?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counters_and_the_gauge() {
        let text =
            "# HELP ganglion_tls_handshakes_full_total Full TLS handshakes with endpoints.\n\
                    # TYPE ganglion_tls_handshakes_full_total counter\n\
                    ganglion_tls_handshakes_full_total 12\n\
                    ganglion_tls_handshakes_resumed_total 88\n\
                    # TYPE ganglion_egress_connections gauge\n\
                    ganglion_egress_connections 100\n";
        assert_eq!(
            Scrape::parse(text),
            Some(Scrape {
                handshakes_full: 12,
                handshakes_resumed: 88,
                egress_connections: 100
            })
        );
        // A longer name that starts with the one asked for is another sample.
        assert_eq!(
            sample(
                "ganglion_egress_connections_max 7\n",
                "ganglion_egress_connections"
            ),
            None
        );
        assert_eq!(
            Scrape::parse("ganglion_tls_handshakes_full_total 1\n"),
            None
        );
    }
}
