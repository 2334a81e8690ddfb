//! Running the `[[test]]` cases of a table, as `ganglion check` does after a clean load.
//!
//! Each case's message (inline, or a file relative to the config's folder) is cut into
//! messages with the same finder `inspect` and `explain` use, and every message in it must get
//! the expected outcome. A failure is an error diagnostic at the `[[test]]` header that says
//! what was expected and what happened, naming the rule that decided.
use std::borrow::Cow;

use super::diag::{Diagnostic, Severity};
use crate::inspect::find_messages;
use crate::routes::matcher::{Decision, Outcome};
use crate::routes::message::ParsedMessage;
use crate::routes::table::{Expect, MessageSource, RouteTable, TestCase, Unrouted};

/// Runs every test case; returns one error per failing message (empty when all pass).
pub fn run_tests(table: &RouteTable) -> Vec<Diagnostic> {
    table
        .tests()
        .iter()
        .flat_map(|t| run_test(table, t))
        .collect()
}

fn at(table: &RouteTable, t: &TestCase, message: String) -> Diagnostic {
    Diagnostic {
        line: Some(t.line),
        col: Some(t.col),
        severity: Severity::Error,
        ..Diagnostic::file_error(table.config_path(), message)
    }
}

pub fn run_test(table: &RouteTable, t: &TestCase) -> Vec<Diagnostic> {
    let bytes: Cow<'_, [u8]> = match &t.message {
        MessageSource::Inline(text) => Cow::Borrowed(text.as_bytes()),
        MessageSource::File(path) => {
            let full = table.base_dir().join(path.get_ref());
            match std::fs::read(&full) {
                Ok(b) => Cow::Owned(b),
                Err(e) => {
                    return vec![at(
                        table,
                        t,
                        format!("test `{}`: cannot read `{}`: {e}", t.name, full.display()),
                    )
                    .with_hint("`file` is relative to the folder of routes.toml")]
                }
            }
        }
    };
    let found = find_messages(&bytes);
    if found.is_empty() {
        return vec![at(
            table,
            t,
            format!("test `{}`: the message is empty", t.name),
        )];
    }
    let many = found.len() > 1;
    let mut out = Vec::new();
    let mut decision = Decision::default();
    for (i, f) in found.iter().enumerate() {
        let which = if many {
            format!(" (message {} of {})", i + 1, found.len())
        } else {
            String::new()
        };
        let parsed = match &f.item {
            Ok(item) => ParsedMessage::parse(item),
            Err(e) => Err(e.clone()),
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                out.push(at(
                    table,
                    t,
                    format!("test `{}`{which}: the message cannot be read: {e}", t.name),
                ));
                continue;
            }
        };
        table.route(&msg, &mut decision);
        if !meets(table, t, &decision) {
            out.push(at(
                table,
                t,
                format!(
                    "test `{}` failed{which}: expected {}, got {}",
                    t.name,
                    expected(table, t),
                    describe(table, &decision)
                ),
            ));
        }
    }
    out
}

fn meets(table: &RouteTable, t: &TestCase, d: &Decision) -> bool {
    match (&t.expect, d.outcome) {
        (Expect::To(_), Outcome::Deliver) => {
            let mut got: Vec<_> = d.endpoints.to_vec();
            got.sort_unstable();
            got == t.expect_endpoints
        }
        (Expect::Reject(None), Outcome::Reject(_)) => true,
        (Expect::Reject(Some(reason)), Outcome::Reject(rule)) => {
            table.reject_reason(rule) == Some(reason.as_str())
        }
        (Expect::Drop, Outcome::Drop(_)) | (Expect::Unrouted, Outcome::Unrouted(_)) => true,
        _ => false,
    }
}

fn names(table: &RouteTable, ids: &[crate::routes::EndpointId]) -> String {
    let names: Vec<&str> = ids
        .iter()
        .filter_map(|&id| table.endpoint(id).map(|e| e.name.as_str()))
        .collect();
    names.join(", ")
}

fn expected(table: &RouteTable, t: &TestCase) -> String {
    match &t.expect {
        Expect::To(_) => format!("delivery to {}", names(table, &t.expect_endpoints)),
        Expect::Reject(None) => "a rejection".to_owned(),
        Expect::Reject(Some(r)) => format!("a rejection with \"{r}\""),
        Expect::Drop => "a drop".to_owned(),
        Expect::Unrouted => "no matching route".to_owned(),
    }
}

/// One line for people: what happened to a message and which rule decided.
pub fn describe(table: &RouteTable, d: &Decision) -> String {
    let rule = |id| {
        table.rule(id).map_or(String::new(), |r| {
            format!(" by route `{}` (line {})", r.name(), r.line())
        })
    };
    match d.outcome {
        Outcome::Deliver => {
            let by = d.matched.last().map_or(String::new(), |&id| rule(id));
            format!("delivery to {}{by}", names(table, &d.endpoints))
        }
        Outcome::Reject(id) => format!(
            "a rejection with \"{}\"{}",
            table.reject_reason(id).unwrap_or_default(),
            rule(id)
        ),
        Outcome::Drop(id) => format!("a drop{}", rule(id)),
        Outcome::Unrouted(Unrouted::Reject) => {
            "no matching route (unrouted = \"reject\")".to_owned()
        }
        Outcome::Unrouted(Unrouted::DeadLetter) => {
            "no matching route (unrouted = \"dead-letter\")".to_owned()
        }
    }
}
