//! The plain structs `routes.toml` is read into, before names are resolved.
//!
//! Each struct mirrors one kind of table in the file. Values that a later stage may complain
//! about keep their place ([`toml::Spanned`] in the TOML, [`Loc`] for endpoints, which also come
//! from CSV rows). Everything that can be checked from the value alone (enumerations, socket
//! addresses, sizes, durations, glob patterns) is already typed here; names that refer to other
//! tables (endpoints, groups, TLS profiles) are still strings: [`super::compile`] resolves them.
//!
//! What the compiled table keeps as written (`[server]`, `unrouted`, a listener's `client_cert`,
//! a test's message and expectation) takes its types from the table's side
//! ([`crate::routes::server`], [`crate::routes::table`]), so that the table never depends on
//! this file.
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::routes::delivery::DeliverySpec;
use crate::routes::endpoint::{LookupKeys, Protocol};
use crate::routes::keys::{Column, Key, LookupFrom};
use crate::routes::pattern::Pattern;
use crate::routes::server::ServerSection;
use crate::routes::table::{ClientAuth, Expect, MessageSource, Unrouted};

/// Where a value came from: a byte span in `routes.toml`, or a line of the directory CSV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    Toml(Range<usize>),
    Csv(u64),
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Val<T> {
    pub value: T,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSection {
    pub name: Spanned<String>,
    pub protocol: Protocol,
    pub bind: SocketAddr,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub client_ca: Option<Spanned<String>>,
    pub client_cert: ClientAuth,
    pub max_message_bytes: u64,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    /// A TLS sender must finish its handshake this long after connecting.
    pub handshake_timeout: Duration,
    /// A sender must send the first byte of a message this long after connecting.
    pub first_byte_timeout: Duration,
    /// Unfinished input held for one sender IP address across its connections (beyond each
    /// connection's first buffer).
    pub max_buffered_per_peer: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSection {
    pub name: Spanned<String>,
    pub ca: Option<Spanned<String>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub verify_server_name: bool,
}

/// One endpoint as written, in a `[[endpoint]]` table or a directory row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The table header or the CSV line, for problems with the endpoint as a whole.
    pub loc: Loc,
    pub name: Val<String>,
    pub protocol: Protocol,
    pub address: Val<String>,
    pub server_name: Option<Val<String>>,
    pub tls: Option<Val<String>>,
    pub keys: LookupKeys,
    /// Where each lookup key was written, in [`Column`] order (`id` excluded), for duplicates.
    pub key_locs: [Option<Loc>; 4],
    pub prewarm: bool,
    /// Delivery keys set on the endpoint itself (`[[endpoint]]` only).
    pub delivery: DeliverySpec,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSection {
    pub name: Spanned<String>,
    pub members: Vec<Spanned<String>>,
    /// Delivery keys for the group's members.
    pub delivery: DeliverySpec,
}

/// One condition of a route: a key and the pattern its value must fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSpec {
    /// The key as written (`message_type`, `"PID-3.4"`).
    pub key_span: Range<usize>,
    pub key: Key,
    pub pattern: Pattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// An endpoint or group name.
    Name(Spanned<String>),
    /// `{ lookup = "itk.address", key = "itk_address" }`.
    Lookup {
        span: Range<usize>,
        from: LookupFrom,
        column: Spanned<Column>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionSpec {
    To(Vec<TargetSpec>),
    Reject(String),
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSection {
    /// The `[[route]]` header.
    pub span: Range<usize>,
    /// `name`, or `route #N` (1-based, in file order) when the route has none.
    pub name: Spanned<String>,
    pub conditions: Vec<ConditionSpec>,
    pub action: ActionSpec,
    pub cont: bool,
    /// False when a condition or key of this route was reported bad and left out.
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestSection {
    /// The `[[test]]` header.
    pub span: Range<usize>,
    pub name: String,
    pub message: MessageSource,
    pub expect: Expect,
}

/// The whole of `routes.toml`, typed but not yet resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutesFile {
    pub unrouted: Unrouted,
    pub server: ServerSection,
    pub listeners: Vec<ListenerSection>,
    pub tls: Vec<TlsSection>,
    pub directory: Option<Spanned<String>>,
    /// `[delivery]`: defaults for every endpoint.
    pub delivery: DeliverySpec,
    pub endpoints: Vec<EndpointSpec>,
    pub groups: Vec<GroupSection>,
    pub routes: Vec<RouteSection>,
    pub tests: Vec<TestSection>,
    /// Names of endpoints and groups whose tables were reported bad and left out.
    pub broken_names: Vec<String>,
}
