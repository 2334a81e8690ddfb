//! [`load`]: the one way from a config path to a [`RouteTable`], for start-up, reload and check.
use std::path::Path;

use super::diag::{self, Diagnostic};
use super::{compile, parse, schema};
use crate::routes::table::RouteTable;

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
    let mut ctx = schema::Ctx::new(diag::LineIndex::new(path, text));
    let table = match parse::parse(&mut ctx, text) {
        // Compiled even after schema errors, so that one run reports everything; what failed to
        // parse is remembered by name, so references to it are not reported again.
        Some(file) => compile::compile(&mut ctx, file, path),
        None => None,
    };
    let mut diags = ctx.diags;
    diag::sort(path, &mut diags);
    match table {
        Some(t) => Ok((t, diags)),
        None => Err(diags),
    }
}
