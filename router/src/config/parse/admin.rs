//! The `admin_*` keys of `[server]`: the admin address's token, TLS and reach.
//!
//! The admin address can replay, drop and read dead letters (patient data) and reload the
//! routes, so binding it beyond loopback needs TLS with client certificates, or an explicit
//! `admin_allow_unverified_remote = true`.
use std::net::SocketAddr;

use crate::config::schema::{Ctx, Table};
use crate::routes::server::AdminSection;

pub fn access(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, admin: SocketAddr) -> AdminSection {
    let cert = t.str(ctx, "admin_cert");
    let key = t.str(ctx, "admin_key");
    let client_ca = t.str(ctx, "admin_client_ca");
    if cert.is_some() != key.is_some() {
        let (have, missing) = if cert.is_some() {
            ("admin_cert", "admin_key")
        } else {
            ("admin_key", "admin_cert")
        };
        let span = t.key_span(have).unwrap_or(t.span.clone());
        ctx.error(span, format!("[server] has `{have}` but no `{missing}`"))
            .hint = Some(
            "TLS on the admin address needs both the certificate chain and its private key"
                .to_owned(),
        );
    }
    if client_ca.is_some() && cert.is_none() {
        let span = t.key_span("admin_client_ca").unwrap_or(t.span.clone());
        ctx.error(
            span,
            "`admin_client_ca` in [server] needs TLS on the admin address".to_owned(),
        )
        .hint = Some("add `admin_cert` and `admin_key`".to_owned());
    }
    let names = names(ctx, t);
    let allow_unverified_remote = t
        .bool(ctx, "admin_allow_unverified_remote")
        .is_some_and(|b| b.into_inner());
    let verified = cert.is_some() && key.is_some() && client_ca.is_some();
    if !admin.ip().is_loopback() && !verified && !allow_unverified_remote {
        let span = t.get("admin").map(|v| v.span()).unwrap_or(t.span.clone());
        ctx.error(
            span,
            format!(
                "the admin address {admin} is reachable beyond this machine, but clients are not \
                 verified by certificate"
            ),
        )
        .hint = Some(
            "bind it to 127.0.0.1, or set `admin_cert`, `admin_key` and `admin_client_ca` \
             (TLS with client certificates); `admin_allow_unverified_remote = true` accepts \
             the risk"
                .to_owned(),
        );
    }
    AdminSection {
        token_file: t.str(ctx, "admin_token_file"),
        cert,
        key,
        client_ca,
        names,
        allow_unverified_remote,
    }
}

/// `admin_names`: host names (no port), kept in lower case.
fn names(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Vec<String> {
    let Some(list) = t.str_list(ctx, "admin_names") else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for name in list {
        let n = name.get_ref().to_ascii_lowercase();
        let valid = !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if valid {
            out.push(n);
        } else {
            ctx.error(
                name.span(),
                format!(
                    "`admin_names` in [server] lists \"{}\", which is not a host name",
                    name.get_ref()
                ),
            )
            .hint = Some(
                "write names only, without a scheme or port: \"router1.example.org\"".to_owned(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_str;

    /// The first line of each error `routes.toml` with this `[server]` gets.
    fn errors(server: &str) -> Vec<String> {
        let text = format!("[server]\n{server}");
        match load_str(Path::new("/nonexistent/routes.toml"), &text) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .iter()
                .map(|d| d.to_string().lines().next().unwrap_or_default().to_owned())
                .collect(),
        }
    }

    #[test]
    fn beyond_loopback_only_with_client_certificates_or_an_explicit_yes() {
        assert!(errors("admin = \"127.0.0.1:9464\"\n").is_empty());
        assert!(errors("admin = \"[::1]:9464\"\n").is_empty());
        assert_eq!(
            errors("admin = \"0.0.0.0:9464\"\n"),
            [
                "/nonexistent/routes.toml:2:9: error: the admin address 0.0.0.0:9464 is reachable \
              beyond this machine, but clients are not verified by certificate"
            ]
        );
        assert!(
            errors("admin = \"0.0.0.0:9464\"\nadmin_allow_unverified_remote = true\n").is_empty()
        );
    }

    #[test]
    fn tls_keys_come_in_pairs_and_names_are_host_names() {
        assert_eq!(
            errors("admin_cert = \"a.pem\"\n")[0],
            "/nonexistent/routes.toml:2:1: error: [server] has `admin_cert` but no `admin_key`"
        );
        assert_eq!(
            errors("admin_client_ca = \"ca.pem\"\n")[0],
            "/nonexistent/routes.toml:2:1: error: `admin_client_ca` in [server] needs TLS on the \
             admin address"
        );
        assert_eq!(
            errors("admin_names = [\"ok.example\", \"https://bad.example:1\"]\n"),
            [
                "/nonexistent/routes.toml:2:30: error: `admin_names` in [server] lists \
              \"https://bad.example:1\", which is not a host name"
            ]
        );
        // The files must exist, as a listener's must.
        let missing = errors("admin_cert = \"a.pem\"\nadmin_key = \"a.key\"\n");
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("the TLS file of the admin address `a.pem` does not exist"));
    }
}
