//! `[cluster]`: the NATS servers a node shares its stream with, its name, and how the endpoints
//! are partitioned among the nodes. Without the table a node runs alone on its own log.
use super::super::schema::{Ctx, Table};
use super::units;
use crate::cluster::ClusterSettings;

pub const CLUSTER_KEYS: &[&str] = &[
    "servers",
    "node",
    "partitions",
    "stream",
    "replicas",
    "lease",
    "publish_timeout",
];

/// Reads `[cluster]`; `None` when a key it cannot do without is missing or wrong (each problem
/// reported where it is).
pub fn cluster(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<ClusterSettings> {
    let mut s = ClusterSettings::default();
    let mut whole = true;
    match t.str_list(ctx, "servers") {
        Some(list) if !list.is_empty() => {
            // The file's list replaces the default's server, it does not add to it.
            s.servers.clear();
            for server in list {
                if let Err(why) = check_server(server.get_ref()) {
                    ctx.error(
                        server.span(),
                        format!("`servers` in [cluster]: \"{}\" {why}", server.get_ref()),
                    );
                    whole = false;
                }
                s.servers.push(server.into_inner());
            }
        }
        Some(_) => {
            let span = t.get("servers").map_or(t.span.clone(), |v| v.span());
            ctx.error(span, "`servers` in [cluster] names no NATS server");
            whole = false;
        }
        None => {
            if t.get("servers").is_none() {
                ctx.error(
                    t.span.clone(),
                    "[cluster] needs `servers`, the NATS servers to connect to \
                     (e.g. [\"nats://10.0.0.1:4222\"])",
                );
            }
            whole = false;
        }
    }
    match t.req_str(ctx, "node") {
        Some(node) if valid_name(node.get_ref()) => s.node = node.into_inner(),
        Some(node) => {
            ctx.error(
                node.span(),
                format!(
                    "`node` in [cluster] must be letters, digits, '-' or '_' (it names the \
                     node in the cluster's leases), not \"{}\"",
                    node.get_ref()
                ),
            );
            whole = false;
        }
        None => whole = false,
    }
    if let Some(n) = t.int(ctx, "partitions", 1, 4096) {
        s.partitions = n.into_inner() as u16;
    }
    if let Some(stream) = t.str(ctx, "stream") {
        if valid_name(stream.get_ref()) {
            s.stream = stream.into_inner();
        } else {
            ctx.error(
                stream.span(),
                format!(
                    "`stream` in [cluster] must be letters, digits, '-' or '_' (a JetStream \
                     stream name), not \"{}\"",
                    stream.get_ref()
                ),
            );
        }
    }
    if let Some(n) = t.int(ctx, "replicas", 1, 5) {
        s.replicas = n.into_inner() as usize;
    }
    if let Some(d) = units::duration(ctx, t, "lease") {
        if d < std::time::Duration::from_secs(1) {
            let span = t.get("lease").map_or(t.span.clone(), |v| v.span());
            ctx.error(
                span,
                "`lease` in [cluster] must be at least 1s: a node renews its leases every third \
                 of it, and a shorter one would move partitions on every hiccup",
            );
        } else {
            s.lease = d;
        }
    }
    if let Some(d) = units::duration(ctx, t, "publish_timeout") {
        s.publish_timeout = d;
    }
    whole.then_some(s)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A NATS server as the client takes it: `nats://host:port`, `tls://host:port` or `host:port`.
fn check_server(server: &str) -> Result<(), &'static str> {
    let rest = server
        .strip_prefix("nats://")
        .or_else(|| server.strip_prefix("tls://"))
        .unwrap_or(server);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or("needs a port (nats://host:4222)")?;
    if host.is_empty() || host.contains('/') {
        return Err("is not a host and port (nats://host:4222)");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("has no valid port (1-65535)"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::check_server;
    use crate::config::load_str;

    fn errors(text: &str) -> Vec<String> {
        load_str(Path::new("/n/routes.toml"), text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|d| d.to_string().lines().next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn the_cluster_is_read_with_its_defaults() {
        let path = Path::new("/n/routes.toml");
        let (table, _) = load_str(
            path,
            "[cluster]\nservers = [\"nats://127.0.0.1:4222\", \"127.0.0.1:4223\"]\n\
             node = \"node-a\"\nlease = \"3s\"\n",
        )
        .unwrap();
        let cluster = table.server().cluster.clone().unwrap();
        assert_eq!(cluster.servers.len(), 2);
        assert_eq!(cluster.node, "node-a");
        assert_eq!(cluster.partitions, 64);
        assert_eq!(cluster.replicas, 3);
        assert_eq!(cluster.stream, "GANGLION");
        assert_eq!(cluster.lease, Duration::from_secs(3));
        let (alone, _) = load_str(path, "").unwrap();
        assert_eq!(alone.server().cluster, None);
    }

    #[test]
    fn a_bad_cluster_is_named_where_it_is() {
        assert_eq!(
            errors(
                "[cluster]\nservers = [\"nats://127.0.0.1\"]\nnode = \"a b\"\n\
                 partitions = 0\nreplica = 3\n"
            ),
            [
                "/n/routes.toml:2:12: error: `servers` in [cluster]: \"nats://127.0.0.1\" \
                 needs a port (nats://host:4222)",
                "/n/routes.toml:3:8: error: `node` in [cluster] must be letters, digits, '-' \
                 or '_' (it names the node in the cluster's leases), not \"a b\"",
                "/n/routes.toml:4:14: error: `partitions` in [cluster] must be between 1 and \
                 4096",
                "/n/routes.toml:5:1: error: unknown key `replica` in [cluster]",
            ]
        );
        assert_eq!(
            errors("[cluster]\nnode = \"a\"\n"),
            [
                "/n/routes.toml:1:1: error: [cluster] needs `servers`, the NATS servers to \
              connect to (e.g. [\"nats://10.0.0.1:4222\"])"
            ]
        );
    }

    #[test]
    fn servers_are_checked_for_a_host_and_port() {
        assert!(check_server("nats://127.0.0.1:4222").is_ok());
        assert!(check_server("tls://nats.example.nhs.uk:4443").is_ok());
        assert!(check_server("10.0.0.2:4222").is_ok());
        assert!(check_server("nats://127.0.0.1").is_err());
        assert!(check_server("nats://:4222").is_err());
        assert!(check_server("nats://host:0").is_err());
        assert!(check_server("nats://host:99999").is_err());
    }
}
