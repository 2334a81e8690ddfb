//! Opening a connection to an endpoint: TCP, then TLS when its protocol says so.
use std::io;
use std::sync::Arc;
use std::time::Duration;

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

/// A TCP connection with keepalive and TCP_NODELAY set before it is opened. Host names are
/// resolved here, at connect time, so DNS changes are followed.
async fn tcp_connect(host: &Host, port: u16) -> io::Result<TcpStream> {
    let addr = match host {
        Host::Ip(ip) => SocketAddr::new(*ip, port),
        Host::Name(name) => (name.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address"))?,
    };
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
/// Host names are resolved here, at connect time, so DNS changes are followed.
pub async fn connect(
    endpoint: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
    pool: &BufferPool,
) -> Result<Stream, ConnectError> {
    let address = endpoint.address.to_string();
    let attempt = async {
        let tcp = tcp_connect(&endpoint.address.host, endpoint.address.port)
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
