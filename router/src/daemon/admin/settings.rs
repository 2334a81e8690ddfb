//! The admin address's settings from `[server]`, with paths resolved against the config's
//! folder: what the router serves, and what `ganglion reload` and `ganglion dead-letters
//! --admin` need to call it.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::routes::server::ServerSection;
use crate::routes::RouteTable;

/// The token file when `admin_token_file` is not given, in the data directory.
pub const DEFAULT_TOKEN_FILE: &str = "admin.token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    pub address: SocketAddr,
    pub token_file: PathBuf,
    /// The token file is the default one, which the router makes when it is absent (a named
    /// file must exist: a missing one is a mistake, not a request for a new secret).
    pub make_token: bool,
    pub tls: Option<AdminTls>,
    /// Host names clients may use besides localhost and the address's own IPs (lower case).
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates are required, and must chain to this CA.
    pub client_ca: Option<PathBuf>,
}

impl AdminSettings {
    pub fn of(table: &RouteTable) -> AdminSettings {
        AdminSettings::new(table.server(), table.base_dir())
    }

    /// `base` is the folder of routes.toml, which relative paths are relative to.
    pub fn new(server: &ServerSection, base: &Path) -> AdminSettings {
        let a = &server.admin_access;
        let resolve = |p: &toml::Spanned<String>| base.join(p.get_ref());
        let tls = match (&a.cert, &a.key) {
            (Some(cert), Some(key)) => Some(AdminTls {
                cert: resolve(cert),
                key: resolve(key),
                client_ca: a.client_ca.as_ref().map(resolve),
            }),
            _ => None,
        };
        AdminSettings {
            address: server.admin,
            token_file: a.token_file.as_ref().map_or_else(
                || base.join(&server.data_dir).join(DEFAULT_TOKEN_FILE),
                resolve,
            ),
            make_token: a.token_file.is_none(),
            tls,
            names: a.names.clone(),
        }
    }
}
