//! `routes.toml` text → [`RoutesFile`], reporting every problem found on the way.
//!
//! Stage one is toml's own parser (syntax errors stop here: the tree after a syntax error is a
//! guess, and errors about a guess mislead). Stage two walks the spanned tree table by table with
//! [`super::schema::Table`], typing each value and reporting unknown keys and wrong types; a bad
//! value is reported and left out, so the walk always reaches the end of the file.
//! `sections` reads the server, listener, TLS, directory, endpoint and group tables; `route`
//! reads routes and tests.
mod admin;
mod cluster;
mod delivery;
mod route;
mod sections;
mod units;

use toml::de::DeTable;

use super::diag::did_you_mean;
use super::file::RoutesFile;
use super::schema::{array_of_tables, Ctx, Table, TOP_LEVEL};
use crate::routes::table::Unrouted;

const TOP_KEYS: &[&str] = &[
    "unrouted",
    "server",
    "listener",
    "tls",
    "directory",
    "delivery",
    "endpoint",
    "group",
    "route",
    "test",
    "trace",
    "cluster",
];

/// Keys that belong at the top of the file, which TOML puts into whatever table precedes them.
pub(super) fn misplaced_top_key_hint(key: &str) -> Option<String> {
    (key == "unrouted").then(|| {
        "`unrouted` is a top-level key: move it above the first [section] of the file".to_owned()
    })
}

fn name_of(t: &Table<'_, '_>) -> Option<String> {
    match t.get("name").map(|v| v.get_ref()) {
        Some(toml::de::DeValue::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// Parses the whole file; `None` only when the TOML syntax itself is broken.
pub fn parse(ctx: &mut Ctx<'_>, text: &str) -> Option<RoutesFile> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            // toml's messages are full sentences with a trailing newline at times.
            ctx.error(span, format!("invalid TOML: {}", e.message().trim_end()));
        }
        return None;
    }
    let root = Table::from_table(root.get_ref(), 0..0, TOP_LEVEL);
    root.reject_unknown(ctx, TOP_KEYS, |_| None);
    let mut file = RoutesFile::default();

    if let Some(v) = root.str(ctx, "unrouted") {
        match v.get_ref().as_str() {
            "reject" => file.unrouted = Unrouted::Reject,
            "dead-letter" => file.unrouted = Unrouted::DeadLetter,
            other => {
                let hint = did_you_mean(other, ["reject", "dead-letter"]);
                ctx.error(
                    v.span(),
                    format!("`unrouted` must be \"reject\" or \"dead-letter\", not \"{other}\""),
                )
                .hint = hint;
            }
        }
    }
    if let Some(v) = root.get("server") {
        if let Some(t) = Table::open(ctx, v, "[server]", sections::SERVER_KEYS) {
            file.server = sections::server(ctx, &t);
        }
    }
    if let Some(v) = root.get("trace") {
        if let Some(t) = Table::open(ctx, v, "[trace]", sections::TRACE_KEYS) {
            file.server.trace = sections::trace(ctx, &t);
        }
    }
    if let Some(v) = root.get("cluster") {
        if let Some(t) = Table::open(ctx, v, "[cluster]", cluster::CLUSTER_KEYS) {
            file.server.cluster = cluster::cluster(ctx, &t);
        }
    }
    if let Some(v) = root.get("listener") {
        for (i, item) in array_of_tables(ctx, "listener", v).into_iter().enumerate() {
            let what = format!("[[listener]] #{}", i + 1);
            if let Some(t) =
                Table::open_any(ctx, item, &what).map(|t| t.named("[[listener]]", "name"))
            {
                t.reject_unknown(ctx, sections::LISTENER_KEYS, misplaced_top_key_hint);
                file.listeners.extend(sections::listener(ctx, &t));
            }
        }
    }
    sections::check_buffer_budget(ctx, &file.server, &file.listeners);
    if let Some(v) = root.get("tls") {
        if let Some(t) = Table::open_any(ctx, v, "[tls]") {
            for (name, profile) in t.entries() {
                let what = format!("[tls.{}]", name.get_ref());
                if let Some(p) = Table::open_any(ctx, profile, &what) {
                    p.reject_unknown(ctx, sections::TLS_KEYS, misplaced_top_key_hint);
                    file.tls.push(sections::tls(ctx, name, &p));
                }
            }
        }
    }
    if let Some(v) = root.get("directory") {
        if let Some(t) = Table::open_any(ctx, v, "[directory]") {
            t.reject_unknown(ctx, &["file"], misplaced_top_key_hint);
            file.directory = t.req_str(ctx, "file");
        }
    }
    if let Some(v) = root.get("delivery") {
        if let Some(t) = Table::open_any(ctx, v, "[delivery]") {
            t.reject_unknown(ctx, crate::routes::delivery::KEYS, misplaced_top_key_hint);
            file.delivery = delivery::spec(ctx, &t);
        }
    }
    if let Some(v) = root.get("endpoint") {
        for (i, item) in array_of_tables(ctx, "endpoint", v).into_iter().enumerate() {
            let what = format!("[[endpoint]] #{}", i + 1);
            if let Some(t) =
                Table::open_any(ctx, item, &what).map(|t| t.named("[[endpoint]]", "name"))
            {
                let known = sections::with_delivery_keys(sections::ENDPOINT_KEYS);
                t.reject_unknown(ctx, &known, misplaced_top_key_hint);
                match sections::endpoint(ctx, &t) {
                    Some(e) => file.endpoints.push(e),
                    None => file.broken_names.extend(name_of(&t)),
                }
            }
        }
    }
    if let Some(v) = root.get("group") {
        for (i, item) in array_of_tables(ctx, "group", v).into_iter().enumerate() {
            let what = format!("[[group]] #{}", i + 1);
            if let Some(t) = Table::open_any(ctx, item, &what).map(|t| t.named("[[group]]", "name"))
            {
                let known = sections::with_delivery_keys(sections::GROUP_KEYS);
                t.reject_unknown(ctx, &known, misplaced_top_key_hint);
                match sections::group(ctx, &t) {
                    Some(g) => file.groups.push(g),
                    None => file.broken_names.extend(name_of(&t)),
                }
            }
        }
    }
    if let Some(v) = root.get("route") {
        for (i, item) in array_of_tables(ctx, "route", v).into_iter().enumerate() {
            let what = format!("[[route]] #{}", i + 1);
            if let Some(t) = Table::open_any(ctx, item, &what).map(|t| t.named("[[route]]", "name"))
            {
                file.routes.extend(route::route(ctx, &t, i + 1));
            }
        }
    }
    if let Some(v) = root.get("test") {
        for (i, item) in array_of_tables(ctx, "test", v).into_iter().enumerate() {
            let what = format!("[[test]] #{}", i + 1);
            if let Some(t) = Table::open_any(ctx, item, &what).map(|t| t.named("[[test]]", "name"))
            {
                file.tests.extend(route::test(ctx, &t, i + 1));
            }
        }
    }
    Some(file)
}
