//! Talking to a running router's admin address from the command line: the address, the token
//! and TLS come from `[server]` of the routes file, or from flags.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::daemon::admin::settings::AdminSettings;
use crate::daemon::admin::token::{self, Token};
use crate::tls::config::{client_config, ClientSettings};
use crate::tls::sessions::SessionStore;

/// How to authenticate to the admin address (flags shared by the commands that call it).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AdminArgs {
    /// The admin token file, instead of the one the routes file names (`[server]
    /// admin_token_file`, else `admin.token` in the data directory).
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// The CA the admin address's certificate chains to; giving it (or --tls-cert) speaks TLS
    /// to it, as does `admin_cert` in the routes file. Default: the system's roots.
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate chain (PEM), for an admin address that requires one.
    #[arg(long, value_name = "FILE", requires = "tls_key", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert", global = true)]
    pub tls_key: Option<PathBuf>,
    /// The name the admin address's certificate must carry. Default: its IP address.
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,
}

/// Which running router to ask: the routes file whose `[server]` names its admin address and
/// token, or the address itself (flags shared by every command that asks a running router).
#[derive(clap::Args, Debug, Clone)]
pub struct AdminTarget {
    /// The routes file; its `[server]` says where the router's admin address and token are.
    #[arg(long, default_value = "routes.toml")]
    pub config: PathBuf,
    /// The admin address, instead of reading it from the routes file.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    #[command(flatten)]
    pub access: AdminArgs,
}

impl AdminTarget {
    pub fn client(&self) -> anyhow::Result<AdminClient> {
        AdminClient::new(self.admin, &self.config, &self.access)
    }
}

/// A running router's admin address, ready to be called.
pub struct AdminClient {
    address: SocketAddr,
    token: Token,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl AdminClient {
    /// `admin` is the address given on the command line, if any. The routes file `config` is
    /// read only for what the flags do not say.
    pub fn new(admin: Option<SocketAddr>, config: &Path, args: &AdminArgs) -> anyhow::Result<Self> {
        let (address, token_file, config_tls) = match (admin, &args.token_file) {
            (Some(address), Some(file)) => (address, file.clone(), false),
            _ => {
                let s = settings_from(config)?;
                let file = args.token_file.clone().unwrap_or(s.token_file);
                (admin.unwrap_or(s.address), file, s.tls.is_some())
            }
        };
        let token = token::read(&token_file).context(
            "the admin address needs its token: run as the router's user, or give --token-file",
        )?;
        let tls = if config_tls || args.tls_ca.is_some() || args.tls_cert.is_some() {
            Some(tls_client(address, args)?)
        } else {
            None
        };
        Ok(AdminClient {
            address,
            token,
            tls,
        })
    }

    /// Sends `METHOD path` with the token and an empty body; returns the status and the body.
    pub fn request(&self, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let admin = self.address;
        let tcp = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
            .with_context(|| format!("connecting to the router's admin address {admin}"))?;
        // Past the router's own 60 s wait for a reload or a replay.
        tcp.set_read_timeout(Some(Duration::from_secs(90)))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.token.as_str()
        );
        let response = match &self.tls {
            None => exchange(tcp, head.as_bytes()),
            Some((config, name)) => {
                let conn = ClientConnection::new(Arc::clone(config), name.clone())?;
                exchange(StreamOwned::new(conn, tcp), head.as_bytes())
            }
        }
        .with_context(|| format!("talking to the router's admin address {admin}"))?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status == 401 || status == 403 {
            eprintln!(
                "ganglion: the admin address refused the request: {}",
                body.trim_end()
            );
        }
        Ok((status, body.to_string()))
    }
}

fn exchange(mut stream: impl Read + Write, head: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(head)?;
    stream.flush()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

fn settings_from(config: &Path) -> anyhow::Result<AdminSettings> {
    let (table, _) = crate::config::load(config).map_err(|diagnostics| {
        for d in &diagnostics {
            eprintln!("{d}");
        }
        anyhow::anyhow!(
            "cannot read the admin address and token file from {} (or give --admin and \
             --token-file)",
            config.display()
        )
    })?;
    Ok(AdminSettings::of(&table))
}

fn tls_client(
    address: SocketAddr,
    args: &AdminArgs,
) -> anyhow::Result<(Arc<ClientConfig>, ServerName<'static>)> {
    let config = client_config(&ClientSettings {
        ca: args.tls_ca.as_deref(),
        client_cert: args.tls_cert.as_deref().zip(args.tls_key.as_deref()),
        verify_server_name: true,
        sessions: Arc::new(SessionStore::for_endpoints([])),
    })
    .context(
        "the admin address speaks TLS (give --tls-ca, --tls-cert and --tls-key as it needs)",
    )?;
    let name = match &args.tls_server_name {
        Some(n) => ServerName::try_from(n.clone())
            .with_context(|| format!("--tls-server-name {n:?} is not a host name"))?,
        None => ServerName::from(address.ip()),
    };
    Ok((config, name))
}

/// A value for a URL's path or query (an endpoint's name, a control id, a time): anything
/// outside the unreserved set is escaped, since the names are the operator's.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A JSON value as a table cell: strings without quotes, `-` for null.
pub fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
