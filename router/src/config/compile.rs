//! [`RoutesFile`] → [`RouteTable`]: resolving names, reading the directory, checking files.
//!
//! Stages, each reporting all it finds before the next runs on what survived:
//! TLS profiles and listeners (files must exist), endpoints from `[[endpoint]]` and the directory
//! (`endpoints`), groups, then routes and tests (`rules`), then the hash index and the "can
//! never match" warnings (`super::shadow`). The table is built only when no error was found;
//! a half-resolved table never exists.
mod delivery;
mod endpoints;
mod rules;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::file::{ListenerSection, RoutesFile, TlsSection};
use super::schema::Ctx;
use crate::routes::digest::ContentDigest;
use crate::routes::endpoint::TlsProfile;
use crate::routes::index::Index;
use crate::routes::server::AdminSection;
use crate::routes::table::{Listener, RouteTable};

/// Compiles a parsed file; `None` when any error was reported into `ctx`.
pub(crate) fn compile(
    ctx: &mut Ctx<'_>,
    file: RoutesFile,
    config_path: &Path,
) -> Option<RouteTable> {
    let base = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let tls = tls_profiles(ctx, &base, &file.tls);
    let listeners = listeners(ctx, &base, &file.listeners);
    admin_files(ctx, &base, &file.server.admin_access);

    let mut specs = file.endpoints;
    let mut broken = file.broken_names;
    let mut complete = true;
    if let Some(dir) = &file.directory {
        let path = base.join(dir.get_ref());
        ctx.csv = Some(path.clone());
        match std::fs::read(&path) {
            Ok(data) => {
                let rows = super::directory::read(&path, &data);
                ctx.diags.extend(rows.diags);
                specs.extend(rows.endpoints);
                broken.extend(rows.broken);
                complete = rows.complete;
            }
            Err(e) => {
                complete = false;
                ctx.error(
                    dir.span(),
                    format!(
                        "cannot read the endpoint directory `{}`: {e}",
                        path.display()
                    ),
                )
                .hint = Some("`file` is relative to the folder of routes.toml".to_owned());
            }
        }
    }
    let mut eps = endpoints::build(ctx, specs, &tls);
    eps.broken.extend(broken);
    eps.complete = complete;
    let groups = endpoints::groups(ctx, &file.groups, &eps);
    delivery::resolve(ctx, &file.delivery, &file.groups, &groups, &mut eps);
    let rules = rules::routes(ctx, &file.routes, &eps, &groups);
    let tests = rules::tests(ctx, &file.tests, &eps, &groups);
    let index = Index::build(&rules.rules);
    super::shadow::warn(ctx, &rules.rules, &rules.keys, &index);
    if ctx.has_errors() {
        return None;
    }
    Some(RouteTable {
        directory_path: file.directory.as_ref().map(|d| base.join(d.get_ref())),
        config_path: config_path.to_path_buf(),
        base_dir: base,
        server: file.server,
        listeners,
        tls: tls.into_values().collect(),
        endpoints: eps.endpoints,
        names: eps.names,
        groups: groups.groups,
        rules: rules.rules,
        keys: rules.keys,
        index,
        directory: eps.directory,
        unrouted: file.unrouted,
        tests,
    })
}

/// Resolves `path` against the config folder and checks that it is a file.
fn existing_file(
    ctx: &mut Ctx<'_>,
    base: &Path,
    path: &Spanned<String>,
    what: &str,
) -> Option<PathBuf> {
    let full = base.join(path.get_ref());
    if full.is_file() {
        return Some(full);
    }
    let problem = if full.exists() {
        "is not a file"
    } else {
        "does not exist"
    };
    ctx.error(
        path.span(),
        format!("{what} `{}` {problem}", path.get_ref()),
    )
    .hint = Some(format!(
        "looked for {}; paths are relative to the folder of routes.toml",
        full.display()
    ));
    None
}

fn tls_profiles(
    ctx: &mut Ctx<'_>,
    base: &Path,
    sections: &[TlsSection],
) -> FxHashMap<String, Arc<TlsProfile>> {
    let mut out = FxHashMap::default();
    for s in sections {
        let what = format!("the TLS file of [tls.{}]", s.name.get_ref());
        let ca =
            s.ca.as_ref()
                .and_then(|p| existing_file(ctx, base, p, &what));
        let cert = s
            .cert
            .as_ref()
            .and_then(|p| existing_file(ctx, base, p, &what));
        let key = s
            .key
            .as_ref()
            .and_then(|p| existing_file(ctx, base, p, &what));
        let client_cert = cert.zip(key);
        let files = [ca.as_deref()].into_iter().chain(
            client_cert
                .iter()
                .flat_map(|(c, k)| [Some(c.as_path()), Some(k.as_path())]),
        );
        let contents = contents(ctx, s.name.span(), &what, files);
        let profile = TlsProfile {
            name: s.name.get_ref().clone(),
            ca,
            client_cert,
            verify_server_name: s.verify_server_name,
            contents,
        };
        out.insert(s.name.get_ref().clone(), Arc::new(profile));
    }
    out
}

/// What the TLS files of a listener or profile hold (`what` names them in a diagnostic).
fn contents<'a>(
    ctx: &mut Ctx<'_>,
    span: std::ops::Range<usize>,
    what: &str,
    files: impl IntoIterator<Item = Option<&'a Path>>,
) -> ContentDigest {
    ContentDigest::of_files(files.into_iter().flatten()).unwrap_or_else(|e| {
        ctx.error(span, format!("cannot read {what}: {e}"));
        ContentDigest::default()
    })
}

/// The admin address's TLS files must exist, as a listener's must (the token file is read, or
/// made, at start-up).
fn admin_files(ctx: &mut Ctx<'_>, base: &Path, admin: &AdminSection) {
    for path in [&admin.cert, &admin.key, &admin.client_ca]
        .into_iter()
        .flatten()
    {
        existing_file(ctx, base, path, "the TLS file of the admin address");
    }
}

fn listeners(ctx: &mut Ctx<'_>, base: &Path, sections: &[ListenerSection]) -> Vec<Listener> {
    let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
    let mut binds: FxHashMap<std::net::SocketAddr, usize> = FxHashMap::default();
    let mut out = Vec::with_capacity(sections.len());
    for l in sections {
        let name = l.name.get_ref();
        if let Some(&first) = seen.get(name.as_str()) {
            let line = ctx.idx.line_of(first);
            ctx.error(
                l.name.span(),
                format!("two listeners are named `{name}` (the first on line {line})"),
            );
        }
        seen.insert(name, l.name.span().start);
        // Port 0 asks for any free port: two such listeners never share one.
        let fixed = l.bind.port() != 0;
        if let Some(&first) = binds.get(&l.bind).filter(|_| fixed) {
            let line = ctx.idx.line_of(first);
            ctx.error(
                l.name.span(),
                format!(
                    "listener `{name}` binds {}, as the listener on line {line} does",
                    l.bind
                ),
            );
        }
        binds.insert(l.bind, l.name.span().start);
        let what = format!("the TLS file of listener `{name}`");
        let cert = l
            .cert
            .as_ref()
            .and_then(|p| existing_file(ctx, base, p, &what));
        let key = l
            .key
            .as_ref()
            .and_then(|p| existing_file(ctx, base, p, &what));
        let client_ca = l
            .client_ca
            .as_ref()
            .and_then(|p| existing_file(ctx, base, p, &what));
        let files = [cert.as_deref(), key.as_deref(), client_ca.as_deref()];
        let tls_contents = contents(ctx, l.name.span(), &what, files);
        out.push(Listener {
            name: name.clone(),
            protocol: l.protocol,
            bind: l.bind,
            cert: cert.zip(key),
            client_ca,
            tls_contents,
            client_cert: l.client_cert,
            max_message_bytes: l.max_message_bytes,
            idle_timeout: l.idle_timeout,
            max_connections: l.max_connections,
            handshake_timeout: l.handshake_timeout,
            first_byte_timeout: l.first_byte_timeout,
            max_buffered_per_peer: l.max_buffered_per_peer,
        });
    }
    out
}
