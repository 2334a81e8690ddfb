//! Certificates for tests: a CA, a server certificate for loopback, client certificates, all
//! written to a scratch directory so that configs can name them.
use std::path::PathBuf;
use std::sync::Arc;

use router::tls::config::{client_config, server_config, ClientCerts, ClientSettings};
use router::tls::pki::Authority;
use router::tls::sessions::SessionStore;
use rustls::{ClientConfig, ServerConfig};

use crate::scratch::Scratch;

pub struct TestPki {
    pub dir: Scratch,
}

impl TestPki {
    /// `ca.crt`; `server.{crt,key}` for 127.0.0.1 and `localhost`; `client.{crt,key}`.
    pub fn new() -> TestPki {
        TestPki::with_server_names(&[])
    }

    /// As [`TestPki::new`], with the server certificate also valid for `names`.
    pub fn with_server_names(names: &[&str]) -> TestPki {
        let dir = Scratch::new("pki");
        let ca = Authority::new("ganglion test CA").expect("CA");
        ca.write_cert(&dir.join("ca.crt")).expect("write CA");
        let mut all = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        all.extend(names.iter().map(|n| n.to_string()));
        ca.issue_server(&all)
            .expect("server cert")
            .write(dir.path(), "server")
            .expect("write server cert");
        ca.issue_client("sender.test")
            .expect("client cert")
            .write(dir.path(), "client")
            .expect("write client cert");
        TestPki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A TOML-safe path string.
    pub fn toml(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A server configuration (for mock endpoints), optionally requiring client certificates.
    pub fn server(&self, require_client: bool) -> Arc<ServerConfig> {
        let ca = self.path("ca.crt");
        let clients = if require_client {
            ClientCerts::Required(&ca)
        } else {
            ClientCerts::NotAsked
        };
        server_config(&self.path("server.crt"), &self.path("server.key"), clients)
            .expect("server config")
    }

    /// A client configuration (for test senders), with or without our client certificate.
    pub fn client(&self, with_cert: bool) -> Arc<ClientConfig> {
        let ca = self.path("ca.crt");
        let cert = self.path("client.crt");
        let key = self.path("client.key");
        client_config(&ClientSettings {
            ca: Some(&ca),
            client_cert: with_cert.then_some((cert.as_path(), key.as_path())),
            verify_server_name: true,
            sessions: Arc::new(SessionStore::for_endpoints([])),
        })
        .expect("client config")
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}
