//! `[server]`, `[[listener]]`, `[tls.<name>]`, `[[endpoint]]` and `[[group]]`.
//!
//! Each function reads one table that `Table::open*` has already checked for unknown keys,
//! reports bad values, and returns the typed section, or `None` when a required value is
//! missing or bad (the error is already reported; the rest of the file is still walked).
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use toml::de::DeValue;
use toml::Spanned;

use super::{delivery, units};
use crate::config::diag::did_you_mean;
use crate::config::file::{EndpointSpec, GroupSection, ListenerSection, Loc, TlsSection, Val};
use crate::config::schema::{type_name, Ctx, Table};
use crate::routes::endpoint::{LookupKeys, Protocol};
use crate::routes::server::{ServerSection, Workers};
use crate::routes::table::ClientAuth;

pub const SERVER_KEYS: &[&str] = &[
    "workers",
    "data_dir",
    "admin",
    "allow_shared_data_dir",
    "admin_token_file",
    "admin_cert",
    "admin_key",
    "admin_client_ca",
    "admin_names",
    "admin_allow_unverified_remote",
    "max_buffered_input",
    "wal_budget",
];
pub const LISTENER_KEYS: &[&str] = &[
    "name",
    "protocol",
    "bind",
    "cert",
    "key",
    "client_ca",
    "client_cert",
    "max_message_bytes",
    "idle_timeout",
    "max_connections",
    "handshake_timeout",
    "first_byte_timeout",
    "max_buffered_per_peer",
];
pub const TLS_KEYS: &[&str] = &["ca", "cert", "key", "verify_server_name"];
pub const ENDPOINT_KEYS: &[&str] = &crate::routes::endpoint::named_by("name");
pub const GROUP_KEYS: &[&str] = &["name", "members"];
pub const TRACE_KEYS: &[&str] = &["enabled", "retention"];

/// The keys a table of `own` keys accepts: those, and the delivery keys (which `[delivery]`,
/// `[[group]]` and `[[endpoint]]` all take).
pub fn with_delivery_keys(own: &[&'static str]) -> Vec<&'static str> {
    [own, crate::routes::delivery::KEYS].concat()
}

/// Default largest MLLP frame or ITK request body a listener accepts.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 16 << 20;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
/// Long enough for a TLS handshake across a slow WAN link with client certificates, short
/// enough that connections which never start one do not hold the listener's places for long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// `max_buffered_per_peer` when not given: this many of the listener's largest messages.
pub const DEFAULT_PEER_MESSAGES: u64 = 4;

pub fn server(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> ServerSection {
    let mut s = ServerSection::default();
    if let Some(v) = t.get("workers") {
        match v.get_ref() {
            DeValue::String(w) if w == "auto" => s.workers = Workers::Auto,
            DeValue::Integer(_) => {
                if let Some(n) = t.int(ctx, "workers", 1, 1024) {
                    // In range 1..=1024 by the check above.
                    s.workers = Workers::Count(u16::try_from(*n.get_ref()).unwrap_or(1));
                }
            }
            other => {
                ctx.error(
                    v.span(),
                    format!(
                        "`workers` in [server] must be \"auto\" or a number of shards, found {}",
                        describe(other)
                    ),
                );
            }
        }
    }
    if let Some(d) = t.str(ctx, "data_dir") {
        s.data_dir = d.into_inner().into();
    }
    if let Some(a) = socket_addr(ctx, t, "admin") {
        s.admin = a;
    }
    if let Some(b) = t.bool(ctx, "allow_shared_data_dir") {
        s.allow_shared_data_dir = b.into_inner();
    }
    s.admin_access = super::admin::access(ctx, t, s.admin);
    s.max_buffered_input = spanned_size(ctx, t, "max_buffered_input");
    s.wal_budget = units::size(ctx, t, "wal_budget");
    s
}

/// `[trace]`: `enabled` (default true) and `retention` (a duration, default 7 days).
pub fn trace(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> crate::trace::TraceSettings {
    let mut s = crate::trace::TraceSettings::default();
    if let Some(b) = t.bool(ctx, "enabled") {
        s.enabled = b.into_inner();
    }
    if let Some(d) = units::duration(ctx, t, "retention") {
        s.retention = d;
    }
    s
}

fn spanned_size(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<Spanned<u64>> {
    let span = t.get(key)?.span();
    units::size(ctx, t, key).map(|n| Spanned::new(span, n))
}

/// A process-wide budget smaller than one listener's largest message would leave that
/// message waiting for room that can never come.
pub fn check_buffer_budget(
    ctx: &mut Ctx<'_>,
    server: &ServerSection,
    listeners: &[ListenerSection],
) {
    let Some(budget) = &server.max_buffered_input else {
        return;
    };
    for l in listeners {
        if l.max_message_bytes > *budget.get_ref() {
            ctx.error(
                budget.span(),
                format!(
                    "`max_buffered_input` in [server] ({}) is less than `max_message_bytes` of [[listener]] \"{}\" ({}): a message that long could never be read",
                    units::show_size(*budget.get_ref()),
                    l.name.get_ref(),
                    units::show_size(l.max_message_bytes)
                ),
            )
            .hint = Some("raise max_buffered_input, or lower the listener's max_message_bytes".to_owned());
        }
    }
}

/// `"x"` for strings (so the operator sees what they wrote), the type otherwise.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("\"{s}\""),
        other => type_name(other).to_owned(),
    }
}

fn socket_addr(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<SocketAddr> {
    let s = t.str(ctx, key)?;
    match s.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            ctx.error(
                s.span(),
                format!(
                    "`{key}` in {} is not an IP address and port: \"{}\"",
                    t.what,
                    s.get_ref()
                ),
            )
            .hint = Some("write it like \"0.0.0.0:2575\" or \"[::]:2575\"".to_owned());
            None
        }
    }
}

fn protocol(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<Protocol> {
    let p = t.req_str(ctx, "protocol")?;
    let parsed = Protocol::parse(p.get_ref());
    if parsed.is_none() {
        ctx.error(
            p.span(),
            format!(
                "unknown protocol \"{}\": expected one of mllp, mllps, itk-http, itk-https",
                p.get_ref()
            ),
        )
        .hint = did_you_mean(p.get_ref(), Protocol::NAMES);
    }
    parsed
}

pub fn listener(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<ListenerSection> {
    let name = t.req_str(ctx, "name");
    let protocol = protocol(ctx, t);
    let bind = if t.get("bind").is_none() {
        ctx.error(t.span.clone(), format!("{} has no `bind`", t.what));
        None
    } else {
        socket_addr(ctx, t, "bind")
    };
    let cert = t.str(ctx, "cert");
    let key = t.str(ctx, "key");
    let client_ca = t.str(ctx, "client_ca");
    let client_cert = match t.str(ctx, "client_cert") {
        None => ClientAuth::None,
        Some(c) => match c.get_ref().as_str() {
            "none" => ClientAuth::None,
            "optional" => ClientAuth::Optional,
            "required" => ClientAuth::Required,
            other => {
                ctx.error(
                    c.span(),
                    format!("`client_cert` must be \"none\", \"optional\" or \"required\", not \"{other}\""),
                )
                .hint = did_you_mean(other, ["none", "optional", "required"]);
                ClientAuth::None
            }
        },
    };
    let max_message_bytes =
        units::size(ctx, t, "max_message_bytes").unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    let idle_timeout = units::duration(ctx, t, "idle_timeout").unwrap_or(DEFAULT_IDLE_TIMEOUT);
    let max_connections = t
        .int(ctx, "max_connections", 1, 1_000_000)
        .and_then(|n| u32::try_from(*n.get_ref()).ok())
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let handshake_timeout =
        units::duration(ctx, t, "handshake_timeout").unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
    let first_byte_timeout =
        units::duration(ctx, t, "first_byte_timeout").unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT);
    let max_buffered_per_peer = match spanned_size(ctx, t, "max_buffered_per_peer") {
        None => max_message_bytes.saturating_mul(DEFAULT_PEER_MESSAGES),
        Some(cap) if *cap.get_ref() < max_message_bytes => {
            ctx.error(
                cap.span(),
                format!(
                    "`max_buffered_per_peer` in {} ({}) is less than its `max_message_bytes` ({}): a message that long could never be read",
                    t.what,
                    units::show_size(*cap.get_ref()),
                    units::show_size(max_message_bytes)
                ),
            )
            .hint = Some("raise max_buffered_per_peer, or lower max_message_bytes".to_owned());
            max_message_bytes
        }
        Some(cap) => cap.into_inner(),
    };

    let protocol = protocol?;
    if protocol.is_tls() {
        for (k, v) in [("cert", &cert), ("key", &key)] {
            if v.is_none() {
                ctx.error(
                    t.span.clone(),
                    format!("{} uses {protocol} but has no `{k}`", t.what),
                )
                .hint = Some("a TLS listener needs its certificate chain (`cert`) and private key (`key`), PEM files".to_owned());
            }
        }
    } else {
        for (k, v) in [("cert", &cert), ("key", &key), ("client_ca", &client_ca)] {
            if let Some(v) = v {
                let tls = if protocol == Protocol::Mllp {
                    "mllps"
                } else {
                    "itk-https"
                };
                ctx.error(
                    t.key_span(k).unwrap_or(v.span()),
                    format!(
                        "`{k}` is only used by TLS listeners, but {} uses {protocol}",
                        t.what
                    ),
                )
                .hint = Some(format!("use protocol = \"{tls}\", or remove `{k}`"));
            }
        }
    }
    if client_cert != ClientAuth::None && client_ca.is_none() {
        let span = t.key_span("client_cert").unwrap_or(t.span.clone());
        ctx.error(
            span,
            format!(
                "{} asks for client certificates but has no `client_ca` to check them with",
                t.what
            ),
        );
    }
    Some(ListenerSection {
        name: name?,
        protocol,
        bind: bind?,
        cert,
        key,
        client_ca,
        client_cert,
        max_message_bytes,
        idle_timeout,
        max_connections,
        handshake_timeout,
        first_byte_timeout,
        max_buffered_per_peer,
    })
}

pub fn tls(ctx: &mut Ctx<'_>, name: &Spanned<Cow<'_, str>>, t: &Table<'_, '_>) -> TlsSection {
    let cert = t.str(ctx, "cert");
    let key = t.str(ctx, "key");
    if cert.is_some() != key.is_some() {
        let (have, missing) = if cert.is_some() {
            ("cert", "key")
        } else {
            ("key", "cert")
        };
        let span = t.key_span(have).unwrap_or(t.span.clone());
        ctx.error(span, format!("{} has `{have}` but no `{missing}`", t.what))
            .hint = Some(
            "a client certificate needs both the chain (`cert`) and its private key (`key`)"
                .to_owned(),
        );
    }
    TlsSection {
        name: Spanned::new(name.span(), name.get_ref().to_string()),
        ca: t.str(ctx, "ca"),
        cert,
        key,
        verify_server_name: t
            .bool(ctx, "verify_server_name")
            .is_none_or(|b| *b.get_ref()),
    }
}

fn val(s: Spanned<String>) -> Val<String> {
    Val {
        loc: Loc::Toml(s.span()),
        value: s.into_inner(),
    }
}

pub fn endpoint(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<EndpointSpec> {
    let name = t.req_str(ctx, "name");
    let protocol = protocol(ctx, t);
    let address = t.req_str(ctx, "address");
    let server_name = t.str(ctx, "server_name").map(val);
    let tls = t.str(ctx, "tls").map(val);
    let mut keys = LookupKeys::default();
    let mut key_locs: [Option<Loc>; 4] = Default::default();
    let slots = [
        ("ods", &mut keys.ods),
        ("itk_address", &mut keys.itk_address),
        ("hl7_application", &mut keys.hl7_application),
        ("hl7_facility", &mut keys.hl7_facility),
    ];
    for ((k, slot), loc) in slots.into_iter().zip(key_locs.iter_mut()) {
        if let Some(v) = t.str(ctx, k) {
            *loc = Some(Loc::Toml(v.span()));
            *slot = Some(v.into_inner());
        }
    }
    let prewarm = t.bool(ctx, "prewarm").is_some_and(|b| *b.get_ref());
    let delivery = delivery::spec(ctx, t);
    Some(EndpointSpec {
        loc: Loc::Toml(t.span.clone()),
        name: val(name?),
        protocol: protocol?,
        address: val(address?),
        server_name,
        tls,
        keys,
        key_locs,
        prewarm,
        delivery,
    })
}

pub fn group(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<GroupSection> {
    let name = t.req_str(ctx, "name");
    let members = if t.get("members").is_none() {
        ctx.error(t.span.clone(), format!("{} has no `members`", t.what));
        None
    } else {
        t.str_list(ctx, "members")
    };
    let delivery = delivery::spec(ctx, t);
    Some(GroupSection {
        name: name?,
        members: members?,
        delivery,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::load_str;

    #[test]
    fn trace_settings_are_read_and_bad_ones_named_where_they_are() {
        let path = Path::new("/nonexistent/routes.toml");
        let (table, _) = load_str(path, "[trace]\nretention = \"14d\"\n").unwrap();
        assert_eq!(
            table.server().trace.retention,
            Duration::from_secs(14 * 86_400)
        );
        assert!(table.server().trace.enabled);
        let (table, _) = load_str(path, "[trace]\nenabled = false\n").unwrap();
        assert!(!table.server().trace.enabled);
        let (table, _) = load_str(path, "").unwrap();
        assert_eq!(table.server().trace, crate::trace::TraceSettings::default());

        let errors: Vec<String> = load_str(
            path,
            "[trace]\nretention = \"a week\"\nenabled = \"yes\"\nkeep = 1\n",
        )
        .err()
        .unwrap()
        .iter()
        .map(|d| d.to_string().lines().next().unwrap_or_default().to_owned())
        .collect();
        assert_eq!(
            errors,
            [
                "/nonexistent/routes.toml:2:13: error: `retention` in [trace] is not a duration",
                "/nonexistent/routes.toml:3:11: error: `enabled` in [trace] must be true or \
                 false, found a string",
                "/nonexistent/routes.toml:4:1: error: unknown key `keep` in [trace]",
            ]
        );
    }
}
