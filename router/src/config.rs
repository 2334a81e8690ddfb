//! Loading the configuration: `routes.toml` and the endpoint directory, checked as a whole and
//! compiled into a [`RouteTable`](crate::routes::RouteTable).
//!
//! The way in is [`load`], the one function that start-up, reload and `ganglion check` all
//! call: read the file, [`parse`] it with spans into the plain structs of [`file`] ([`schema`]
//! walks toml's spanned tree, reporting unknown keys and wrong types all at once), then
//! [`compile`] them (the [`directory`] CSV read, names resolved to endpoint ids, TLS files
//! checked, patterns and the hash index built, routes that can never match warned about by
//! [`shadow`]). Either every problem comes back as a [`Diagnostic`] ([`diag`]:
//! `routes.toml:LINE:COL: error: …`), or a table comes back with the warnings. [`testcase`] runs
//! a table's `[[test]]` cases for `check`.
//!
//! The dependency runs one way: this side builds the table out of [`crate::routes`]' types (and
//! fills in the ones the table keeps as written, such as `[server]`); nothing in
//! `crate::routes` imports from here. Only the control thread (start-up, reload) and the command
//! line call in; no shard does.
mod compile;
pub mod diag;
pub mod directory;
pub mod file;
mod load;
mod parse;
mod schema;
mod shadow;
pub mod testcase;

pub use diag::{Diagnostic, Severity};
pub use load::{load, load_str};
