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
//! [`parse`], [`file`], [`directory`] (the CSV), [`address`], [`endpoint`], [`keys`] (what a
//! route can test, and the [`MessageView`] trait the matcher reads messages through),
//! [`glob`], [`pattern`], [`compile`], [`table`], [`index`], [`matcher`] (`route` and
//! `explain`), [`shadow`] (the "can never match" warning), [`diff`] (what a reload changes),
//! [`message`] (views over parsed HL7v2 and ITK messages) and [`testcase`] (`[[test]]`).
//!
//! Invariants: a [`RouteTable`] exists only if compilation found no error; it is immutable and
//! `Send + Sync`, meant to be shared as an `Arc<RouteTable>` that a reload swaps and a message in
//! flight keeps; [`RouteTable::route`] reads the message through borrowed views and allocates
//! nothing for messages that reach at most four endpoints.
pub mod address;
mod compile;
pub mod diag;
pub mod diff;
pub mod directory;
pub mod endpoint;
pub mod file;
pub mod glob;
mod index;
pub mod keys;
pub mod matcher;
pub mod message;
mod parse;
pub mod pattern;
mod shadow;
pub mod table;
pub mod testcase;
mod walk;

use std::path::Path;
use std::sync::Arc;

pub use diag::{Diagnostic, Severity};
pub use diff::{diff, TableDiff};
pub use endpoint::{Endpoint, EndpointId, EndpointIdentity, Protocol, TlsProfile};
pub use file::Unrouted;
pub use keys::{Key, MessageKind, MessageView};
pub use matcher::{Decision, Endpoints, Explanation, Outcome, Skip};
pub use message::ParsedMessage;
pub use table::{Action, RouteTable, Rule, RuleId, Target};

/// A table as the daemon holds it: swapped whole on reload, kept by messages in flight.
pub type SharedTable = Arc<RouteTable>;

/// Reads, parses and compiles the config at `path` (and the directory it names).
///
/// `Ok` carries the table and its warnings; `Err` carries every diagnostic, at least one of
/// them an error. Diagnostics are in reading order, `routes.toml` first.
pub fn load(path: &Path) -> Result<(RouteTable, Vec<Diagnostic>), Vec<Diagnostic>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Err(vec![Diagnostic::file_error(
                path,
                format!("cannot read the config: {e}"),
            )])
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => load_str(path, &text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // The prefix up to `valid` is UTF-8 by definition, so positions can be counted in it.
            let prefix =
                std::str::from_utf8(bytes.get(..valid).unwrap_or_default()).unwrap_or_default();
            let idx = diag::LineIndex::new(path, prefix);
            let mut d = idx.error(valid..valid, "the config is not UTF-8 text");
            d.hint = Some("save routes.toml as UTF-8".to_owned());
            Err(vec![d])
        }
    }
}

/// [`load`] for text already in memory; `path` names it in diagnostics and is the base for the
/// relative paths it holds.
pub fn load_str(path: &Path, text: &str) -> Result<(RouteTable, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut ctx = walk::Ctx::new(diag::LineIndex::new(path, text));
    let table = match parse::parse(&mut ctx, text) {
        // Compiled even after schema errors, so that one run reports everything; what failed to
        // parse is remembered by name, so references to it are not reported again.
        Some(file) => compile::compile(&mut ctx, file, path),
        None => None,
    };
    let mut diags = ctx.diags;
    order(path, &mut diags);
    match table {
        Some(t) => Ok((t, diags)),
        None => Err(diags),
    }
}

/// The config file's diagnostics first, then the directory's, each by position.
fn order(config: &Path, diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| (a.file != config, a.line, a.col).cmp(&(b.file != config, b.line, b.col)));
}

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
