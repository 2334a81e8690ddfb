//! The routing table: the compiled, immutable [`RouteTable`] and everything that reads it.
//!
//! This is routing's hot-path side. A message is read through the [`MessageView`] trait
//! ([`message`]: views over parsed HL7v2 and ITK messages; [`keys`]: what a route can test), and
//! [`RouteTable::route`] ([`matcher`]) gathers candidate rules from the hash [`index`] on exact
//! values and literal prefixes, tries their [`pattern`]s ([`glob`] for the rest) and follows
//! directory lookups. Beside it, for tools and reloads: [`explain`] (the same decision, with
//! reasons) and [`diff`] (what a reload changes between two tables). And the types a table is
//! made of: [`table`] (rules, listeners, groups, `[[test]]` cases), [`endpoint`], [`address`],
//! [`delivery`] (retry budget, queue limit and stuck threshold of each endpoint, and the one
//! list of delivery keys), [`digest`] (what TLS files hold, to see one renewed in place) and
//! [`server`] (`[server]` as the daemon applies it).
//!
//! The dependency runs one way: [`crate::config`] reads `routes.toml` and the directory and
//! compiles them into a table out of these types; nothing here imports `crate::config`. A type
//! the table keeps belongs here even when it mirrors the file (`[server]`, [`Unrouted`], a
//! listener's client-certificate mode), and the config side fills it in. So the path a message
//! takes depends on no part of the parser, the schema walk or the diagnostics.
//!
//! Invariants: a [`RouteTable`] exists only if compilation found no error; it is immutable and
//! `Send + Sync`, meant to be shared as an `Arc<RouteTable>` that a reload swaps and a message in
//! flight keeps; [`RouteTable::route`] reads the message through borrowed views and allocates
//! nothing for messages that reach at most four endpoints.
pub mod address;
pub mod delivery;
pub mod diff;
pub mod digest;
pub mod endpoint;
pub mod explain;
pub mod glob;
pub(crate) mod index;
pub mod keys;
pub mod matcher;
pub mod message;
pub mod pattern;
pub mod server;
pub mod table;

use std::sync::Arc;

pub use diff::{diff, ListenerDiff, ServerChange, TableDiff};
pub use digest::ContentDigest;
pub use endpoint::{Arrangement, Endpoint, EndpointId, EndpointIdentity, Protocol, TlsProfile};
pub use explain::{Explanation, Skip};
pub use keys::{Key, MessageKind, MessageView};
pub use matcher::{Decision, Endpoints, Outcome};
pub use message::ParsedMessage;
pub use table::{Action, RouteTable, Rule, RuleId, Target, Unrouted};

/// A table as the daemon holds it: swapped whole on reload, kept by messages in flight.
pub type SharedTable = Arc<RouteTable>;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_table_can_be_shared_across_shards() {
        assert_send_sync::<RouteTable>();
        assert_send_sync::<SharedTable>();
    }
}
