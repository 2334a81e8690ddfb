//! Certificates for a loadgen deployment, made with the router's own private CA: `ca.crt`,
//! one wildcard server certificate for the whole endpoint fleet (`endpoint.{crt,key}`, valid
//! for every name in [`crate::directory::SERVER_DOMAIN`]), and the router's client certificate
//! (`client.{crt,key}`) that the endpoints ask for (mutual TLS, as NHS endpoints do).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use router::tls::config::{client_config, server_config, ClientCerts, ClientSettings};
use router::tls::pki::Authority;

use router::tls::sessions::SessionStore;
use rustls::pki_types::ServerName;

use crate::directory::{Row, SERVER_DOMAIN};

/// Where the files of one deployment are.
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Makes a new CA and its certificates in `dir` (created when missing).
    pub fn create(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let ca = Authority::new("loadgen CA")?;
        ca.write_cert(&dir.join("ca.crt"))?;
        ca.issue_server(&[format!("*.{SERVER_DOMAIN}"), "127.0.0.1".to_string()])?
            .write(dir, "endpoint")?;
        ca.issue_client("router.loadgen.test")?
            .write(dir, "client")?;
        Ok(Pki {
            dir: dir.to_path_buf(),
        })
    }

    /// Uses the files an earlier [`Pki::create`] wrote.
    pub fn open(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The endpoints' server configuration; clients must show a certificate from our CA.
    pub fn server(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let ca = self.path("ca.crt");
        Ok(server_config(
            &self.path("endpoint.crt"),
            &self.path("endpoint.key"),
            ClientCerts::Required(&ca),
        )?)
    }

    /// A client configuration as the router's: trusts our CA, shows the client certificate,
    /// remembers a session for each of `endpoints`.
    pub fn client(&self, endpoints: &[Row]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let ca = self.path("ca.crt");
        let cert = self.path("client.crt");
        let key = self.path("client.key");
        Ok(client_config(&ClientSettings {
            ca: Some(&ca),
            client_cert: Some((&cert, &key)),
            verify_server_name: true,
            sessions: Arc::new(SessionStore::for_endpoints(
                endpoints
                    .iter()
                    .filter_map(|row| ServerName::try_from(row.server_name()).ok()),
            )),
        })?)
    }
}
