//! Building rustls configurations from the files `routes.toml` names.
//!
//! One [`ClientConfig`] per TLS profile, shared by every endpoint that uses it, with a
//! [`SessionStore`] sized to those endpoints: a reconnect storm then resumes instead of doing
//! full handshakes. One [`ServerConfig`] per TLS listener, issuing stateless session tickets so
//! that its clients can resume too, however many there are.
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::sessions::SessionStore;

/// Why a TLS configuration could not be built; always names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: {what}")]
    Content { path: String, what: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every configuration uses (ring: quick to build, fast on x86-64 and arm).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn content_error(path: &Path, what: impl Into<String>) -> TlsConfigError {
    TlsConfigError::Content {
        path: path.display().to_string(),
        what: what.into(),
    }
}

/// Every certificate in a PEM file; an empty file is an error, since it would trust nothing.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bytes = std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(content_error(path, "holds no certificate"));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let bytes = std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| content_error(path, format!("holds no usable private key: {e}")))
}

/// A root store from a CA bundle, or from the system's roots when none is given.
pub fn root_store(ca: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in load_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| content_error(path, format!("unusable CA certificate: {e}")))?;
            }
        }
        None => {
            // Unreadable system certificates are skipped: one bad file in /etc/ssl must not
            // stop the router, and endpoints that relied on it fail loudly at connect time.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// What a TLS client (ganglion towards its endpoints) presents and trusts.
pub struct ClientSettings<'a> {
    pub ca: Option<&'a Path>,
    pub client_cert: Option<(&'a Path, &'a Path)>,
    /// Check the endpoint's certificate against its server name. Off only for endpoints whose
    /// certificates name something else; the chain is still verified against the CA.
    pub verify_server_name: bool,
    /// Where sessions are kept for resumption: [`SessionStore::for_endpoints`] with the server
    /// names of the endpoints that use the profile.
    pub sessions: Arc<SessionStore>,
}

/// A client configuration for one TLS profile.
pub fn client_config(settings: &ClientSettings<'_>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let roots = Arc::new(root_store(settings.ca)?);
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = if settings.verify_server_name {
        builder.with_root_certificates(roots)
    } else {
        let verifier = super::verify::ChainOnlyVerifier::new(roots, provider())?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    };
    let mut config = match settings.client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::store(Arc::clone(&settings.sessions) as _);
    Ok(Arc::new(config))
}

/// Whether a TLS listener asks its clients for certificates, and which CA they must chain to.
#[derive(Debug, Clone, Copy)]
pub enum ClientCerts<'a> {
    NotAsked,
    /// Asked for and checked when given; a client without one is still served.
    Optional(&'a Path),
    /// A client without a certificate from this CA is refused during the handshake.
    Required(&'a Path),
}

/// A server configuration for a TLS listener.
pub fn server_config(
    cert: &Path,
    key: &Path,
    clients: ClientCerts<'_>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match clients {
        ClientCerts::Optional(ca) | ClientCerts::Required(ca) => {
            let roots = Arc::new(root_store(Some(ca))?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            if matches!(clients, ClientCerts::Optional(_)) {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| content_error(ca, format!("cannot verify clients with it: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientCerts::NotAsked => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(load_certs(cert)?, load_key(key)?)?;
    // Stateless tickets: rustls' default keeps sessions in a 256-entry server-side cache, so
    // past 256 clients a reconnecting one would do a full handshake. A ticket carries its
    // session, encrypted under keys that rotate every 6 hours and live only in this process.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}
