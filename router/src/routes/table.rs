//! [`RouteTable`]: the compiled, immutable form of `routes.toml` and its directory.
//!
//! Built only by [`crate::config`]'s compiler, so every value in it has been checked: endpoint
//! names are resolved to dense [`EndpointId`]s, groups are expanded, patterns are compiled, the
//! hash indexes are built. Nothing in it changes after that; a reload builds a new table and the
//! daemon swaps an `Arc<RouteTable>`. A message in flight keeps the `Arc` of the table that
//! routed it, so its endpoint ids stay meaningful until it is delivered.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::digest::ContentDigest;
use super::endpoint::{Endpoint, EndpointId, Protocol, TlsProfile};
use super::index::Index;
use super::keys::{Column, Key, LookupFrom, MessageKind};
use super::pattern::Pattern;
use super::server::ServerSection;

/// A rule's position in file order; an index into [`RouteTable::rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub(crate) u32);

impl RuleId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A dense number for each distinct key the rules test; an index into the table's key list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KeyId(pub(crate) u16);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub key: KeyId,
    pub pattern: Pattern,
}

/// A directory lookup: take each value of `from` in the message and find the endpoint whose
/// `column` holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lookup {
    pub from: LookupFrom,
    pub column: Column,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Endpoint(EndpointId),
    Lookup(Lookup),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver to these endpoints (groups already expanded, no duplicates) and lookups.
    To(Box<[Target]>),
    /// Refuse with this reason (AR for HL7v2, a SOAP fault for ITK).
    Reject(Box<str>),
    /// Accept, log, forward nowhere.
    Drop,
}

/// One compiled `[[route]]`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) line: u32,
    /// The `[[route]]` header's bytes in `routes.toml`, for diagnostics.
    pub(crate) span: std::ops::Range<usize>,
    /// The message kind its conditions and lookups need; `None` matches both kinds.
    pub(crate) kind: Option<MessageKind>,
    pub(crate) conds: Box<[Cond]>,
    pub(crate) action: Action,
    pub(crate) cont: bool,
    /// False when some of its conditions were reported bad and left out (only ever seen while
    /// compiling a file with errors): such a rule takes no part in the "never matches" check.
    pub(crate) complete: bool,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The line of its `[[route]]` header in `routes.toml`.
    pub fn line(&self) -> u32 {
        self.line
    }
    pub fn action(&self) -> &Action {
        &self.action
    }
    pub fn continues(&self) -> bool {
        self.cont
    }
    pub fn kind(&self) -> Option<MessageKind> {
        self.kind
    }
}

/// Whether a TLS listener asks senders for a client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

/// A `[[listener]]`, with TLS file paths resolved against the config file's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub protocol: Protocol,
    pub bind: SocketAddr,
    /// Certificate chain and key, for `mllps` and `itk-https`.
    pub cert: Option<(PathBuf, PathBuf)>,
    pub client_ca: Option<PathBuf>,
    pub client_cert: ClientAuth,
    pub max_message_bytes: u64,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub handshake_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub max_buffered_per_peer: u64,
    /// What `cert`, `key` and `client_ca` held when the table was built: a certificate renewed
    /// in place is a change a reload applies.
    pub tls_contents: ContentDigest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub members: Vec<EndpointId>,
}

/// Where a `[[test]]` case's message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageSource {
    /// A path relative to the config file's folder.
    File(Spanned<String>),
    Inline(String),
}

/// What a `[[test]]` case expects of its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these endpoints (names; groups are expanded), in any order.
    To(Vec<Spanned<String>>),
    /// Rejected; with the exact reason when one is given.
    Reject(Option<String>),
    Drop,
    Unrouted,
}

/// A `[[test]]` case, kept for `ganglion check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub line: u32,
    pub col: u32,
    pub message: MessageSource,
    /// For [`Expect::To`], the expected endpoints (groups expanded), sorted.
    pub expect: Expect,
    pub expect_endpoints: Vec<EndpointId>,
}

/// What happens to a message that no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Unrouted {
    /// Refused: AR to an HL7 sender, a SOAP fault to an ITK sender.
    #[default]
    Reject,
    /// Accepted and kept in the dead-letter queue for an operator.
    DeadLetter,
}

/// Per-column hash maps from a lookup value to the one endpoint holding it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Directory {
    pub by_column: [FxHashMap<Box<[u8]>, EndpointId>; 5],
}

impl Directory {
    pub fn get(&self, column: Column, value: &[u8]) -> Option<EndpointId> {
        self.by_column.get(column as usize)?.get(value).copied()
    }
    pub fn has_column(&self, column: Column) -> bool {
        self.by_column
            .get(column as usize)
            .is_some_and(|m| !m.is_empty())
    }
}

/// Everything `routes.toml` and its directory say, compiled. See the module docs.
#[derive(Debug)]
pub struct RouteTable {
    pub(crate) config_path: PathBuf,
    /// The endpoint directory file, when the config names one.
    pub(crate) directory_path: Option<PathBuf>,
    pub(crate) base_dir: PathBuf,
    pub(crate) server: ServerSection,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) tls: Vec<Arc<TlsProfile>>,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) names: FxHashMap<Box<str>, EndpointId>,
    pub(crate) groups: Vec<Group>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) keys: Vec<Key>,
    pub(crate) index: Index,
    pub(crate) directory: Directory,
    pub(crate) unrouted: Unrouted,
    pub(crate) tests: Vec<TestCase>,
}

impl RouteTable {
    /// The table in force before the first: no listener, no endpoint, no route. Start-up is a
    /// reload from it.
    pub fn empty(config_path: &Path) -> RouteTable {
        RouteTable {
            config_path: config_path.to_path_buf(),
            directory_path: None,
            base_dir: config_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            server: ServerSection::default(),
            listeners: Vec::new(),
            tls: Vec::new(),
            endpoints: Vec::new(),
            names: FxHashMap::default(),
            groups: Vec::new(),
            rules: Vec::new(),
            keys: Vec::new(),
            index: Index::default(),
            directory: Directory::default(),
            unrouted: Unrouted::default(),
            tests: Vec::new(),
        }
    }

    /// The endpoint directory this table read, if any (a reload watches it too).
    pub fn directory_path(&self) -> Option<&Path> {
        self.directory_path.as_deref()
    }

    /// The `routes.toml` this table was built from.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }
    /// The folder relative paths in the config are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }
    pub fn server(&self) -> &ServerSection {
        &self.server
    }
    /// `data_dir`, resolved against the config file's folder.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.server.data_dir)
    }
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }
    pub fn tls_profiles(&self) -> &[Arc<TlsProfile>] {
        &self.tls
    }
    /// All endpoints; `EndpointId(i)` is `endpoints()[i]`.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
    pub fn endpoint(&self, id: EndpointId) -> Option<&Endpoint> {
        self.endpoints.get(id.index())
    }
    pub fn endpoint_id(&self, name: &str) -> Option<EndpointId> {
        self.names.get(name).copied()
    }
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.index())
    }
    pub fn unrouted(&self) -> Unrouted {
        self.unrouted
    }
    pub fn tests(&self) -> &[TestCase] {
        &self.tests
    }
    pub(crate) fn key(&self, id: KeyId) -> Option<&Key> {
        self.keys.get(usize::from(id.0))
    }
    /// The endpoint a directory lookup finds for one value.
    pub fn lookup(&self, column: Column, value: &[u8]) -> Option<EndpointId> {
        self.directory.get(column, value)
    }
}
