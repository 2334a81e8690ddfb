//! Joining the cluster (`[cluster]`) at start-up, and leaving it at shutdown: the NATS link is
//! started before the shards, which each take their end of it; a reload tells the cluster the
//! routes now in force; shutdown gives up this node's partitions once the shards have stopped.
use std::sync::{Arc, Mutex};

use super::watch::Snapshot;
use crate::cluster::{Cluster, ClusterError, ClusterSettings, ShardLink};
use crate::metrics::Metrics;

/// This node's membership, held by the control thread.
pub struct Membership {
    cluster: Cluster,
}

/// Each shard's end of the link, taken once by the shard it belongs to.
#[derive(Clone)]
pub struct Links {
    links: Arc<Mutex<Vec<Option<ShardLink>>>>,
    pub partitions: u16,
}

impl Links {
    pub fn take(&self, shard: usize) -> Option<ShardLink> {
        let mut links = self.links.lock().ok()?;
        links.get_mut(shard).and_then(Option::take)
    }
}

/// Connects to the cluster (waiting for its servers a bounded time) and checks that this node
/// runs the routes the cluster runs; `Err` says why it cannot join.
pub fn join(
    settings: &ClusterSettings,
    files: &Snapshot,
    shards: usize,
    metrics: &Metrics,
) -> Result<(Membership, Links), ClusterError> {
    let version = routes_version(files);
    tracing::info!(
        node = settings.node,
        "joining the cluster at {} ({} partitions, routes {version})",
        settings.servers.join(", "),
        settings.partitions
    );
    let (cluster, links) = Cluster::start(settings, &version, shards)?;
    let _ = metrics.cluster.set(cluster.watch());
    let links = Links {
        links: Arc::new(Mutex::new(links.into_iter().map(Some).collect())),
        partitions: settings.partitions,
    };
    Ok((Membership { cluster }, links))
}

impl Membership {
    /// A reload put new files in force here: they are the cluster's routes from now on (the
    /// other nodes are reloaded with the same files by whoever deploys them).
    pub fn reloaded(&self, files: &Snapshot) {
        self.cluster.set_routes_version(&routes_version(files));
    }

    /// Gives up this node's partitions to the others at once and closes the link.
    pub fn leave(self) {
        self.cluster.stop();
    }
}

/// What identifies the routes a node runs: what decides where messages go (routes, endpoints,
/// groups, delivery settings, the directory), not what is the node's own (`[server]`,
/// `[cluster]` with its node name, listeners, TLS files, `[trace]`), so that nodes with their
/// own addresses and paths still agree. SHA-256 of the routes file's tables in a canonical
/// form, then of the directory's bytes; 16 hex digits of each.
pub fn routes_version(files: &Snapshot) -> String {
    let mut digests = files.digests();
    let routes = digests.next().map(|(path, digest)| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .map(|table| {
                let mut canonical = String::new();
                for (key, value) in sorted(&table) {
                    if !NODE_OWN.contains(&key) {
                        canonical.push_str(key);
                        canonical.push('=');
                        write_canonical(value, &mut canonical);
                        canonical.push('\n');
                    }
                }
                hex16(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
            })
            // Unreadable now: the file's digest as read at start-up still tells versions apart.
            .or_else(|| digest.map(|d| d.to_string().chars().take(16).collect()))
            .unwrap_or_else(|| "unreadable".to_string())
    });
    let rest = digests.map(|(_, digest)| match digest {
        Some(d) => d.to_string().chars().take(16).collect(),
        None => "unreadable".to_string(),
    });
    routes.into_iter().chain(rest).collect::<Vec<_>>().join("+")
}

/// Top-level tables of `routes.toml` that are each node's own.
const NODE_OWN: &[&str] = &["server", "cluster", "listener", "tls", "trace"];

fn sorted(table: &toml::Table) -> Vec<(&str, &toml::Value)> {
    let mut entries: Vec<(&str, &toml::Value)> =
        table.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// One value with its tables' keys sorted: the same settings written in another order are the
/// same routes.
fn write_canonical(value: &toml::Value, out: &mut String) {
    match value {
        toml::Value::Table(table) => {
            out.push('{');
            for (key, value) in sorted(table) {
                out.push_str(&format!("{key:?}="));
                write_canonical(value, out);
                out.push(',');
            }
            out.push('}');
        }
        toml::Value::Array(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, text).unwrap();
        routes_version(&Snapshot::take([path.as_path()]))
    }

    /// Two nodes with their own addresses, data and names, and the same routes, agree; a
    /// route changed anywhere makes another version.
    #[test]
    fn only_what_routes_messages_makes_the_version() {
        let a = version_of(
            "[server]\ndata_dir = \"/a\"\n[cluster]\nnode = \"a\"\n\
             [[listener]]\nname = \"in\"\nbind = \"127.0.0.1:1\"\n\
             [[endpoint]]\nname = \"pas\"\naddress = \"10.0.0.1:1\"\nprotocol = \"mllp\"\n\
             [[route]]\nname = \"r\"\nto = \"pas\"\n",
        );
        let b = version_of(
            "[[endpoint]]\nprotocol = \"mllp\"\naddress = \"10.0.0.1:1\"\nname = \"pas\"\n\
             [server]\ndata_dir = \"/b\"\n[cluster]\nnode = \"b\"\n\
             [[listener]]\nname = \"in\"\nbind = \"127.0.0.1:2\"\n\
             [[route]]\nname = \"r\"\nto = \"pas\"\n",
        );
        assert_eq!(a, b);
        let c = version_of(
            "[[endpoint]]\nname = \"pas\"\naddress = \"10.0.0.2:1\"\nprotocol = \"mllp\"\n\
             [[route]]\nname = \"r\"\nto = \"pas\"\n",
        );
        assert_ne!(a, c);
        assert_eq!(a.len(), 16);
    }
}
