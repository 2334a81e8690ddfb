//! [`ServerSection`]: `[server]`, its `admin_*` keys and `[trace]`, as the table carries them to
//! the daemon. They live beside the table rather than with the file's other sections because
//! the daemon reads them from the table in force (start-up, `diff`, the admin settings), never
//! from the config side. Paths stay as written, relative to the config's folder.
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Spanned;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// One shard per available core.
    Auto,
    Count(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSection {
    pub workers: Workers,
    /// As written; relative paths are relative to the config file's folder.
    pub data_dir: PathBuf,
    pub admin: SocketAddr,
    /// Start even when group or others can reach `data_dir` (normally refused: it holds
    /// messages).
    pub allow_shared_data_dir: bool,
    /// Who may use the admin address, and how it is reached.
    pub admin_access: AdminSection,
    /// Bytes of senders' unfinished input the whole process may hold beyond each connection's
    /// first buffer; `None`: chosen at start-up from the memory there is.
    pub max_buffered_input: Option<Spanned<u64>>,
    /// Disk the write-ahead log may take, all shards together; `None`: the default.
    pub wal_budget: Option<u64>,
    /// `[trace]`: the message trace index (a top-level table, kept here with the other
    /// settings a restart applies).
    pub trace: crate::trace::TraceSettings,
    /// `[cluster]`: the NATS JetStream cluster this node shares its messages with; `None`: the
    /// node runs alone on its own write-ahead log.
    pub cluster: Option<crate::cluster::ClusterSettings>,
}

/// The `admin_*` keys of `[server]`, as written (paths relative to the config's folder).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminSection {
    /// The bearer token; `<data_dir>/admin.token` (made at start-up when absent) by default.
    pub token_file: Option<Spanned<String>>,
    /// TLS on the admin address: the certificate chain and key it presents.
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    /// With TLS: the CA that client certificates must chain to (then required).
    pub client_ca: Option<Spanned<String>>,
    /// Host names clients may call the admin address by, besides localhost and its IPs.
    pub names: Vec<String>,
    /// Bind beyond loopback without TLS and client certificates.
    pub allow_unverified_remote: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            workers: Workers::Auto,
            data_dir: PathBuf::from("/var/lib/ganglion"),
            admin: SocketAddr::from(([127, 0, 0, 1], 9464)),
            allow_shared_data_dir: false,
            admin_access: AdminSection::default(),
            max_buffered_input: None,
            wal_budget: None,
            trace: crate::trace::TraceSettings::default(),
            cluster: None,
        }
    }
}
