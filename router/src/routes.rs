//! Routing configuration: `routes.toml`, the endpoint directory, and the compiled [`RouteTable`].
//!
//! The way in is [`load`], the one function that start-up, reload and `ganglion check` all
//! call: read the file, [`parse`] it with spans into the plain structs of [`file`] (unknown keys
//! and wrong types reported, all at once), then [`compile`] them (the directory CSV read,
//! names resolved to [`EndpointId`]s, TLS files checked, patterns and the hash [`index`]
//! built, unreachable routes warned about). Either every problem comes back as a
//! [`Diagnostic`] (`routes.toml:LINE:COL: error: …`), or a table comes back with the warnings.
//!
//! Parts: [`diag`] (diagnostics), [`walk`] (the schema walk over toml's spanned tree),
//! [`parse`], [`file`], [`directory`] (the CSV), [`address`], [`endpoint`], [`delivery`] (retry
//! budget, queue limit and stuck threshold of each endpoint), [`keys`] (what a
//! route can test, and the [`MessageView`] trait the matcher reads messages through),
//! [`glob`], [`pattern`], [`compile`], [`table`], [`index`], [`matcher`] (`route`),
//! [`explain`] (the same decision, with reasons), [`shadow`] (the "can never match" warning),
//! [`diff`] (what a reload changes), [`digest`] (what TLS files hold, to see one renewed in
//! place), [`message`] (views over parsed HL7v2 and ITK messages)
//! and [`testcase`] (`[[test]]`).
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
pub use endpoint::{Endpoint, EndpointId, EndpointIdentity, Protocol, TlsProfile};
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
