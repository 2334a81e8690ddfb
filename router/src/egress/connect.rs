//! Opening a connection to an endpoint: resolve its host, TCP to each address in turn, then TLS
//! when its protocol says so, all within the connect timeout.
//!
//! Host names are resolved at every connect (so DNS changes are followed) by the system
//! resolver on the runtime's blocking pool, never on the shard's thread: a lookup can wait
//! seconds for a DNS server, and a shard that waits stops every connection it serves. Every
//! address the name has is tried in the order the system gives (its preference, RFC 6724),
//! each with an equal share of the time left, so a name whose first address is dead (an IPv6
//! address on a host without IPv6, a data centre that is down) is still reached on the next:
//! "happy eyeballs" one at a time.
use std::io;
use std::sync::Arc;
use std::time::Duration;

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};

use monoio::io::AsyncReadRent;
use monoio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use socket2::{Domain, Protocol as SockProtocol, Socket, TcpKeepalive, Type};

use crate::net::pool::BufferPool;
use crate::net::stream::Stream;
use crate::routes::address::Host;
use crate::routes::Endpoint;

/// Why an endpoint could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {address} timed out after {after:?}")]
    Timeout { address: String, after: Duration },
    #[error("connect to {address}: {source}")]
    Io { address: String, source: io::Error },
    /// The host name has no address (or the lookup failed).
    #[error("cannot resolve {address}: {source}")]
    Resolve { address: String, source: io::Error },
    /// The endpoint's certificate (or ours) was refused. Retrying rarely helps, so callers log
    /// these once per endpoint rather than once per attempt.
    #[error("TLS with {address}: {source}")]
    Tls { address: String, source: io::Error },
    #[error("endpoint {0} uses TLS but no client configuration exists for its profile")]
    NoTlsConfig(String),
}

impl ConnectError {
    /// True for certificate and handshake failures, as opposed to the network.
    pub fn is_tls(&self) -> bool {
        matches!(self, ConnectError::Tls { .. })
    }
}

/// How long a connection may be silent before the kernel probes it, how often it probes, and
/// how many unanswered probes end it: a dead endpoint behind a firewall that drops packets is
/// noticed in about a minute and a half instead of hours.
fn keepalive() -> TcpKeepalive {
    TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(3)
}

/// The addresses `host` stands for, in the order to try them. Names are looked up on the
/// runtime's blocking pool; the shard's thread goes on serving meanwhile.
pub async fn resolve(host: &Host, port: u16) -> io::Result<Vec<SocketAddr>> {
    let name = match host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Name(name) => name.clone(),
    };
    let found = monoio::spawn_blocking(move || {
        (name.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect::<Vec<_>>)
    })
    .await
    .map_err(|_| io::Error::other("the resolver thread stopped"))??;
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no address",
        ));
    }
    Ok(found)
}

/// Connects to the first of `addrs` that accepts by `deadline`, trying them in order, each
/// with an equal share of the time left (a refusal hands its unused share on). The error
/// names what each address did.
pub async fn tcp_connect_any(
    addrs: &[SocketAddr],
    deadline: monoio::time::Instant,
) -> io::Result<TcpStream> {
    let mut failures = String::new();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(monoio::time::Instant::now());
        // addrs.len() > i, and a name has far fewer than u32::MAX addresses.
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        last = match monoio::time::timeout(share, tcp_connect(*addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, format!("no answer in {share:?}")),
        };
        let _ = write!(
            failures,
            "{}{addr}: {last}",
            if failures.is_empty() { "" } else { "; " }
        );
    }
    match addrs.len() {
        // One address: its own error says it all.
        0 | 1 => Err(last),
        _ => Err(io::Error::new(last.kind(), failures)),
    }
}

/// A TCP connection to `addr` with keepalive and TCP_NODELAY set before it is opened.
async fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(SockProtocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_keepalive(&keepalive())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let mut tcp = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    tcp.writable(false).await?;
    if tcp.peer_addr().is_err() {
        // The connect failed; the socket's pending error (refused, unreachable) is what a
        // read reports.
        let (result, _) = tcp.read(Vec::with_capacity(1)).await;
        return Err(result
            .err()
            .unwrap_or_else(|| io::ErrorKind::NotConnected.into()));
    }
    Ok(tcp)
}

/// Connects to `endpoint` and completes the TLS handshake if it uses TLS, all within `timeout`.
pub async fn connect(
    endpoint: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
    pool: &BufferPool,
) -> Result<Stream, ConnectError> {
    let address = endpoint.address.to_string();
    let deadline = monoio::time::Instant::now() + timeout;
    let attempt = async {
        let addrs = resolve(&endpoint.address.host, endpoint.address.port)
            .await
            .map_err(|source| ConnectError::Resolve {
                address: address.clone(),
                source,
            })?;
        let tcp = tcp_connect_any(&addrs, deadline)
            .await
            .map_err(|source| ConnectError::Io {
                address: address.clone(),
                source,
            })?;
        let mut stream = if endpoint.protocol.is_tls() {
            let config = tls.ok_or_else(|| ConnectError::NoTlsConfig(endpoint.name.clone()))?;
            let server_name = ServerName::try_from(endpoint.tls_server_name()).map_err(|e| {
                ConnectError::Tls {
                    address: address.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, e),
                }
            })?;
            let conn =
                UnbufferedClientConnection::new(Arc::clone(config), server_name).map_err(|e| {
                    ConnectError::Tls {
                        address: address.clone(),
                        source: io::Error::other(e),
                    }
                })?;
            Stream::tls(tcp, conn)
        } else {
            Stream::Plain(tcp)
        };
        stream.set_nodelay().map_err(|source| ConnectError::Io {
            address: address.clone(),
            source,
        })?;
        stream.handshake(pool).await.map_err(|source| {
            if source.kind() == io::ErrorKind::InvalidData {
                ConnectError::Tls {
                    address: address.clone(),
                    source,
                }
            } else {
                ConnectError::Io {
                    address: address.clone(),
                    source,
                }
            }
        })?;
        Ok(stream)
    };
    match monoio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout {
            address,
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};

    use super::*;
    use crate::runtime::driver::{build_runtime, Driver, DriverChoice};

    fn drivers() -> Vec<Driver> {
        let mut drivers = vec![Driver::Epoll];
        if DriverChoice::Uring.resolve().is_ok() {
            drivers.push(Driver::Uring);
        }
        drivers
    }

    /// A port on which 127.0.0.1 listens and ::1 refuses connections (nothing listens there:
    /// the test could bind it itself).
    fn listening_on_v4_only() -> (TcpListener, u16) {
        loop {
            let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
            let port = v4.local_addr().expect("a bound address").port();
            if TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok() {
                return (v4, port);
            }
        }
    }

    /// The case of a host name whose first address is ::1 and where only 127.0.0.1 listens:
    /// the refused first address hands its time on, and the second is reached.
    #[test]
    fn every_address_is_tried_in_order_until_one_accepts() {
        for driver in drivers() {
            let (listener, port) = listening_on_v4_only();
            let addrs = [
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            ];
            let mut rt = build_runtime(driver).expect("a runtime");
            let peer = rt.block_on(async {
                let deadline = monoio::time::Instant::now() + Duration::from_secs(10);
                let tcp = tcp_connect_any(&addrs, deadline).await?;
                tcp.peer_addr()
            });
            assert_eq!(peer.ok(), Some(addrs[1]), "{driver}");
            drop(listener);
        }
    }

    #[test]
    fn when_no_address_accepts_the_error_says_what_each_did() {
        let (listener, port) = listening_on_v4_only();
        drop(listener);
        let addrs = [
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        ];
        let mut rt = build_runtime(Driver::Epoll).expect("a runtime");
        let (both, one) = rt.block_on(async {
            let deadline = monoio::time::Instant::now() + Duration::from_secs(10);
            let both = tcp_connect_any(&addrs, deadline).await.err();
            let one = tcp_connect_any(&addrs[1..], deadline).await.err();
            (both, one)
        });
        let both = both.expect("nothing listens").to_string();
        assert!(
            both.starts_with(&format!("[::1]:{port}: "))
                && both.contains(&format!("; 127.0.0.1:{port}: ")),
            "{both}"
        );
        // One address: its own error, without the address repeated.
        let one = one.expect("nothing listens");
        assert_eq!(one.kind(), io::ErrorKind::ConnectionRefused, "{one}");
    }

    /// Names go through the system resolver (on the blocking pool); addresses pass through.
    #[test]
    fn names_are_resolved_and_addresses_pass_through() {
        let mut rt = build_runtime(Driver::Epoll).expect("a runtime");
        let (named, literal) = rt.block_on(async {
            let named = resolve(&Host::Name("localhost".into()), 2575).await;
            let literal = resolve(&Host::Ip(Ipv6Addr::LOCALHOST.into()), 2575).await;
            (named, literal)
        });
        let named = named.expect("localhost resolves");
        assert!(
            named.contains(&SocketAddr::from((Ipv4Addr::LOCALHOST, 2575))),
            "{named:?}"
        );
        assert_eq!(
            literal.ok(),
            Some(vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 2575))])
        );
    }
}
