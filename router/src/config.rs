//! Loading `routes.toml` and the endpoint directory into a [`crate::routes::RouteTable`].
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
