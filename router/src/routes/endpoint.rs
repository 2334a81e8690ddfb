//! Endpoints: where messages go, and the value that says whether two endpoints are the same.
//!
//! An [`Endpoint`] comes from a `[[endpoint]]` table or a row of the directory CSV. Its
//! [`EndpointIdentity`] (id, protocol, address, server name, TLS profile with its client
//! certificate) is what a reload compares: an endpoint whose identity is unchanged keeps its
//! connection; its [`Arrangement`] (one in flight, or lanes) is what the worker is built around,
//! rebuilt by a reload that changes it. [`EndpointId`] is a dense index into one table's
//! endpoint list, valid only with the table that issued it; only [`crate::config`]'s compiler creates one.
use std::fmt;

use super::address::Address;
use super::delivery::{DeliverySettings, OrderBy, MAX_PARALLEL};

/// What an endpoint is described by besides its name, in the order the directory's columns
/// take them: `[[endpoint]]` tables (named by `name`) and the directory CSV (named by `id`)
/// accept these same keys.
pub const ATTRIBUTES: [&str; 9] = [
    "protocol",
    "address",
    "server_name",
    "tls",
    "ods",
    "itk_address",
    "hl7_application",
    "hl7_facility",
    "prewarm",
];

/// `name` followed by [`ATTRIBUTES`]: the keys of a table or the columns of a file that names
/// endpoints by `name`.
pub const fn named_by(name: &'static str) -> [&'static str; 10] {
    let mut keys = [name; 10];
    let mut i = 0;
    while i < ATTRIBUTES.len() {
        keys[i + 1] = ATTRIBUTES[i];
        i += 1;
    }
    keys
}

/// A dense endpoint number, an index into [`super::RouteTable::endpoints`]. Shards use it to pick
/// the owner (`id % workers`) and to index per-endpoint state without hashing names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub(crate) u32);

impl EndpointId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The wire protocol of a listener or an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Mllp,
    Mllps,
    ItkHttp,
    ItkHttps,
}

impl Protocol {
    pub const NAMES: [&'static str; 4] = ["mllp", "mllps", "itk-http", "itk-https"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mllp" => Some(Protocol::Mllp),
            "mllps" => Some(Protocol::Mllps),
            "itk-http" => Some(Protocol::ItkHttp),
            "itk-https" => Some(Protocol::ItkHttps),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Mllp => "mllp",
            Protocol::Mllps => "mllps",
            Protocol::ItkHttp => "itk-http",
            Protocol::ItkHttps => "itk-https",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Mllps | Protocol::ItkHttps)
    }

    pub fn is_itk(self) -> bool {
        matches!(self, Protocol::ItkHttp | Protocol::ItkHttps)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[tls.<name>]` profile: how ganglion authenticates itself and checks the endpoint. Paths are
/// resolved against the config file's folder and were checked to exist when the table was built.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsProfile {
    pub name: String,
    /// CA bundle (PEM) to verify endpoints with; `None` means the system roots.
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate chain and key (PEM), presented to endpoints that ask.
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub verify_server_name: bool,
    /// What those files held when the table was built: a file renewed in place is a change.
    pub contents: super::digest::ContentDigest,
}

/// Values a `to = { lookup = … }` action may look an endpoint up by (the directory's key columns).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupKeys {
    pub ods: Option<String>,
    pub itk_address: Option<String>,
    pub hl7_application: Option<String>,
    pub hl7_facility: Option<String>,
}

/// One destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The operator's name for it (the `id` column or `name` key), unique in the table.
    pub name: String,
    pub protocol: Protocol,
    pub address: Address,
    /// The name checked against the endpoint's certificate (TLS only); defaults to the host.
    pub server_name: Option<String>,
    /// `None` for plain protocols; the built-in default profile (system roots, no client
    /// certificate) is `Some` with the name `default` when no profile was named.
    pub tls: Option<std::sync::Arc<TlsProfile>>,
    /// Open the connection at start-up instead of on the first message.
    pub prewarm: bool,
    pub keys: LookupKeys,
    /// Retry budget, queue limit, stuck threshold, and how many in flight. Not part of the
    /// identity: a change applies to the open connection, or rebuilds the endpoint's lanes
    /// when it changes its [`Arrangement`].
    pub delivery: DeliverySettings,
}

/// What makes two endpoints the same connection: when this is equal across a reload, the
/// egress keeps the open connection (and its TLS session) of the old one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointIdentity<'a> {
    pub name: &'a str,
    pub protocol: Protocol,
    pub address: &'a Address,
    pub server_name: Option<&'a str>,
    pub tls: Option<&'a TlsProfile>,
}

/// How an endpoint's messages are spread over its connections: what its worker is built
/// around, so that a reload that changes it rebuilds the worker's lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrangement {
    /// One message in flight, one connection: the endpoint's strict order.
    One,
    /// Several in flight: `count` lanes (a connection each), the keys spread over them by
    /// `order_by`. An ITK lane takes one message at a time (`one_each`); an MLLP lane
    /// pipelines up to `max_in_flight`, which a reload changes without a rebuild.
    Lanes {
        count: u32,
        order_by: OrderBy,
        one_each: bool,
    },
}

impl Endpoint {
    /// How this endpoint's worker spreads its messages (see [`Arrangement`]).
    pub fn arrangement(&self) -> Arrangement {
        let settings = &self.delivery;
        if settings.max_in_flight <= 1 && settings.connections <= 1 {
            return Arrangement::One;
        }
        // HTTP/1.1 has no pipelining worth using: an ITK endpoint gets a lane per request
        // in flight instead.
        let one_each = matches!(self.protocol, Protocol::ItkHttp | Protocol::ItkHttps);
        let count = if one_each {
            let most = u32::try_from(MAX_PARALLEL).unwrap_or(u32::MAX);
            settings
                .connections
                .saturating_mul(settings.max_in_flight)
                .min(most)
        } else {
            settings.connections
        };
        Arrangement::Lanes {
            count: count.max(1),
            order_by: settings.order_by,
            one_each,
        }
    }

    pub fn identity(&self) -> EndpointIdentity<'_> {
        EndpointIdentity {
            name: &self.name,
            protocol: self.protocol,
            address: &self.address,
            server_name: self.server_name.as_deref(),
            tls: self.tls.as_deref(),
        }
    }

    /// The name sent as SNI and checked against the endpoint's certificate: `server_name`, or
    /// else the address's host.
    pub fn tls_server_name(&self) -> String {
        self.server_name
            .clone()
            .unwrap_or_else(|| self.address.host.server_name())
    }
}

/// The profile used by TLS endpoints that name none: system roots, no client certificate.
pub fn default_tls_profile() -> TlsProfile {
    TlsProfile {
        name: "default".to_owned(),
        ca: None,
        client_cert: None,
        verify_server_name: true,
        contents: super::digest::ContentDigest::default(),
    }
}
