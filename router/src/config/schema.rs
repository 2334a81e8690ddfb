//! A schema walk over toml's spanned document tree that reports every problem instead of stopping.
//!
//! serde's `deny_unknown_fields` stops at the first unknown key; the operator then fixes one typo
//! per run. Here each table is opened with the list of keys it may hold ([`Table::open`] reports
//! every other key at once, with the nearest valid spelling), and each getter reports a wrong
//! type and returns `None`, so the caller carries on with the other keys. Keys are visited in
//! file order (toml's map is sorted by name) so diagnostics read top to bottom.
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diag::{did_you_mean, Diagnostic, LineIndex, Severity};
use super::file::Loc;

type Entry<'a, 's> = (&'a Spanned<Cow<'s, str>>, &'a Spanned<DeValue<'s>>);

/// Collects diagnostics while `routes.toml` (and the directory it names) is walked and compiled.
pub struct Ctx<'s> {
    pub idx: LineIndex<'s>,
    /// The directory CSV, as diagnostics name it, once known.
    pub csv: Option<PathBuf>,
    pub diags: Vec<Diagnostic>,
}

impl<'s> Ctx<'s> {
    pub fn new(idx: LineIndex<'s>) -> Self {
        Ctx {
            idx,
            csv: None,
            diags: Vec::new(),
        }
    }

    /// A diagnostic at a value from either file.
    pub fn at(
        &mut self,
        severity: Severity,
        loc: &Loc,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = match loc {
            Loc::Toml(span) => self.idx.diag(severity, span.clone(), message),
            Loc::Csv(line) => {
                let file = self.csv.clone().unwrap_or_default();
                Diagnostic {
                    severity,
                    ..Diagnostic::line_error(&file, *line, message)
                }
            }
        };
        self.push(d)
    }

    /// `routes.toml:12` or `endpoints.csv:40`, to point at an earlier definition. The file
    /// name alone is enough: it is one of the two files being loaded.
    pub fn place(&self, loc: &Loc) -> String {
        let name = |p: &Path| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        match loc {
            Loc::Toml(span) => {
                format!("{}:{}", name(self.idx.file()), self.idx.line_of(span.start))
            }
            Loc::Csv(line) => {
                let file = self.csv.as_deref().unwrap_or_else(|| Path::new(""));
                format!("{}:{line}", name(file))
            }
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) -> &mut Diagnostic {
        let d = self.idx.error(span, message);
        self.push(d)
    }

    pub fn warning(&mut self, span: Range<usize>, message: impl Into<String>) -> &mut Diagnostic {
        let d = self.idx.warning(span, message);
        self.push(d)
    }

    fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last] // just pushed, so `last` is in bounds
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// The name of the document's root table in messages.
pub const TOP_LEVEL: &str = "the top level";

/// `a string`, `an integer`, …: toml's type name with its article, for "found …" messages.
pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One TOML table being read, with the name used for it in messages (`[server]`, `[[route]]`).
pub struct Table<'a, 's> {
    pub what: String,
    /// The table's header (or the key that opened it), where "missing key" errors point.
    pub span: Range<usize>,
    entries: Vec<Entry<'a, 's>>,
}

impl<'a, 's> Table<'a, 's> {
    /// Opens `value` as a table; reports a wrong type, and every key not in `known`.
    pub fn open(
        ctx: &mut Ctx<'_>,
        value: &'a Spanned<DeValue<'s>>,
        what: &str,
        known: &[&str],
    ) -> Option<Self> {
        let t = Self::open_any(ctx, value, what)?;
        t.reject_unknown(ctx, known, |_| None);
        Some(t)
    }

    /// Opens `value` as a table without checking its keys (the caller decides what is valid).
    pub fn open_any(
        ctx: &mut Ctx<'_>,
        value: &'a Spanned<DeValue<'s>>,
        what: &str,
    ) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(t) => Some(Self::from_table(t, value.span(), what)),
            other => {
                ctx.error(
                    value.span(),
                    format!("{what} must be a table, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn from_table(t: &'a DeTable<'s>, span: Range<usize>, what: &str) -> Self {
        let mut entries: Vec<Entry<'a, 's>> = t.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        Table {
            what: what.to_owned(),
            span,
            entries,
        }
    }

    /// Names the table by its `key` value in messages (`[[listener]] "mllp-in"`) when it has one.
    pub fn named(mut self, kind: &str, key: &str) -> Self {
        if let Some(DeValue::String(s)) = self.get(key).map(|v| v.get_ref()) {
            self.what = format!("{kind} \"{s}\"");
        }
        self
    }

    /// Reports every key not in `known`; `extra_hint` may explain a key better than a spelling.
    pub fn reject_unknown(
        &self,
        ctx: &mut Ctx<'_>,
        known: &[&str],
        extra_hint: impl Fn(&str) -> Option<String>,
    ) {
        for (k, _) in &self.entries {
            let name: &str = k.get_ref();
            if known.contains(&name) {
                continue;
            }
            let hint = extra_hint(name).or_else(|| did_you_mean(name, known.iter().copied()));
            let place = self.place();
            let d = ctx.error(k.span(), format!("unknown key `{name}` {place}"));
            d.hint = hint;
        }
    }

    /// All entries in file order.
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = (&'a Spanned<Cow<'s, str>>, &'a Spanned<DeValue<'s>>)> + '_ {
        self.entries.iter().copied()
    }

    pub fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'s>>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| *v)
    }

    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
    }

    /// `in [server]`, or `at the top level` for the document itself.
    pub fn place(&self) -> String {
        if self.what == TOP_LEVEL {
            "at the top level".to_owned()
        } else {
            format!("in {}", self.what)
        }
    }

    fn wrong(&self, ctx: &mut Ctx<'_>, key: &str, expected: &str, v: &Spanned<DeValue<'_>>) {
        let place = self.place();
        ctx.error(
            v.span(),
            format!(
                "`{key}` {place} must be {expected}, found {}",
                type_name(v.get_ref())
            ),
        );
    }

    pub fn str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong(ctx, key, "a string", v);
                None
            }
        }
    }

    /// A required string: reports its absence at the table's header.
    pub fn req_str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Spanned<String>> {
        if self.get(key).is_none() {
            let what = &self.what;
            ctx.error(self.span.clone(), format!("{what} has no `{key}`"));
            return None;
        }
        self.str(ctx, key)
    }

    pub fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Spanned<bool>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(v.span(), *b)),
            _ => {
                self.wrong(ctx, key, "true or false", v);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&self, ctx: &mut Ctx<'_>, key: &str, min: i64, max: i64) -> Option<Spanned<i64>> {
        let v = self.get(key)?;
        let DeValue::Integer(i) = v.get_ref() else {
            self.wrong(ctx, key, "an integer", v);
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if (min..=max).contains(&n) => Some(Spanned::new(v.span(), n)),
            _ => {
                let what = &self.what;
                ctx.error(
                    v.span(),
                    format!("`{key}` in {what} must be between {min} and {max}"),
                );
                None
            }
        }
    }

    /// A string or an array of strings (`to = "pas"` and `to = ["pas", "audit"]` alike).
    pub fn str_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<Spanned<String>>> {
        let v = self.get(key)?;
        str_list(ctx, &format!("`{key}` in {}", self.what), v)
    }
}

/// A string or an array of strings; `what` names the value in messages.
pub fn str_list(
    ctx: &mut Ctx<'_>,
    what: &str,
    v: &Spanned<DeValue<'_>>,
) -> Option<Vec<Spanned<String>>> {
    match v.get_ref() {
        DeValue::String(s) => Some(vec![Spanned::new(v.span(), s.to_string())]),
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                    other => {
                        ctx.error(
                            item.span(),
                            format!("{what} must list strings, found {}", type_name(other)),
                        );
                    }
                }
            }
            if items.is_empty() {
                ctx.error(v.span(), format!("{what} is an empty list"));
                return None;
            }
            Some(out)
        }
        other => {
            ctx.error(
                v.span(),
                format!(
                    "{what} must be a string or a list of strings, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// The tables of an array of tables (`[[route]]`); reports a single `[route]` table or a value.
pub fn array_of_tables<'a, 's>(
    ctx: &mut Ctx<'_>,
    key: &str,
    v: &'a Spanned<DeValue<'s>>,
) -> Vec<&'a Spanned<DeValue<'s>>> {
    match v.get_ref() {
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                if item.get_ref().is_table() {
                    out.push(item);
                } else {
                    ctx.error(
                        item.span(),
                        format!(
                            "`{key}` must hold tables, found {}",
                            type_name(item.get_ref())
                        ),
                    );
                }
            }
            out
        }
        DeValue::Table(_) => {
            ctx.error(
                v.span(),
                format!("`{key}` must be written [[{key}]] (one table per {key})"),
            )
            .hint = Some(format!("write [[{key}]] with double brackets"));
            Vec::new()
        }
        other => {
            ctx.error(
                v.span(),
                format!(
                    "`{key}` must be written as [[{key}]] tables, found {}",
                    type_name(other)
                ),
            );
            Vec::new()
        }
    }
}
