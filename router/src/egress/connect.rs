//! Opening a connection to an endpoint: TCP, then TLS when its protocol says so.
use std::io;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

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
        let tcp = match &endpoint.address.host {
            Host::Ip(ip) => TcpStream::connect_addr((*ip, endpoint.address.port).into()).await,
            Host::Name(name) => TcpStream::connect((name.as_str(), endpoint.address.port)).await,
        }
        .map_err(|source| ConnectError::Io {
            address: address.clone(),
            source,
        })?;
        let mut stream = if endpoint.protocol.is_tls() {
            let config = tls.ok_or_else(|| ConnectError::NoTlsConfig(endpoint.name.clone()))?;
            let name = endpoint
                .server_name
                .clone()
                .unwrap_or_else(|| endpoint.address.host.server_name());
            let server_name = ServerName::try_from(name).map_err(|e| ConnectError::Tls {
                address: address.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            })?;
            let conn = ClientConnection::new(Arc::clone(config), server_name).map_err(|e| {
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
