//! The routing state a shard works from: the compiled table plus, aligned with its endpoint
//! ids, what every shard needs to know about each endpoint at run time.
//!
//! A new [`Routing`] is built off the hot path on every reload (and at start-up, which is a
//! reload from nothing) and swapped in whole; a message in flight keeps the `Arc` it started
//! with, so it is routed and delivered by exactly one table.
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_utils::CachePadded;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::room::QueueCount;
use crate::egress::status::EndpointStatus;
use crate::routes::digest::ContentDigest;
use crate::routes::RuleId;
use crate::routes::{Endpoint, EndpointId, RouteTable, TlsProfile};
use crate::tls::config::{client_config, ClientSettings, TlsConfigError};
use crate::tls::sessions::SessionStore;

/// The table in force, with run-time handles for its endpoints and TLS client configurations.
pub struct Routing {
    pub table: Arc<RouteTable>,
    /// Indexed by [`EndpointId::index`].
    pub endpoints: Box<[EndpointHandle]>,
    /// One client configuration per TLS profile name, shared by its endpoints so that they
    /// share one session store.
    client_tls: HashMap<String, ClientTls>,
    /// How many messages each rule matched under this table, for `/routes`.
    pub hits: RuleHits,
    /// Which reload made this table, when, and from which files' bytes; set by the reloader.
    pub provenance: Provenance,
}

/// Messages matched per rule: one row of counters per shard, written only by that shard
/// (relaxed adds, no cache line shared with another shard's row), summed when read.
pub struct RuleHits {
    rows: Box<[CachePadded<Box<[AtomicU64]>>]>,
}

/// Counters of one row beyond the rules: another row's counters never share a line with the
/// last of this one.
const ROW_SLACK: usize = 8;

impl RuleHits {
    /// Counters for `table`'s rules, each starting from what the rule of the same name had
    /// counted under `previous`: an unchanged rule's count survives a reload.
    fn new(shards: usize, table: &RouteTable, previous: Option<&Routing>) -> RuleHits {
        let rules = table.rules();
        let carried: HashMap<&str, u64> = previous
            .map(|p| {
                p.table
                    .rules()
                    .iter()
                    .enumerate()
                    .map(|(i, rule)| (rule.name(), p.hits.total(RuleId(i as u32))))
                    .collect()
            })
            .unwrap_or_default();
        let row = |first: bool| -> Box<[AtomicU64]> {
            (0..rules.len() + ROW_SLACK)
                .map(|i| {
                    let start = rules
                        .get(i)
                        .filter(|_| first)
                        .and_then(|rule| carried.get(rule.name()))
                        .copied()
                        .unwrap_or(0);
                    AtomicU64::new(start)
                })
                .collect()
        };
        RuleHits {
            rows: (0..shards.max(1))
                .map(|shard| CachePadded::new(row(shard == 0)))
                .collect(),
        }
    }

    /// Counts one message matched by `rule` on `shard`.
    pub fn count(&self, shard: usize, rule: RuleId) {
        if let Some(counter) = self.rows.get(shard).and_then(|row| row.get(rule.index())) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages `rule` matched, over every shard.
    pub fn total(&self, rule: RuleId) -> u64 {
        self.rows
            .iter()
            .filter_map(|row| row.get(rule.index()))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Where a table came from.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// 1 for the table start-up applied, one more for each reload applied since.
    pub version: u64,
    pub loaded_at: Option<SystemTime>,
    /// The routes file and the directory, each with the SHA-256 of the bytes it was read from.
    pub files: Vec<(PathBuf, Option<ContentDigest>)>,
}

/// A TLS profile's client configuration, with what it was built from, so that a reload keeps
/// an unchanged profile's configuration and the sessions it remembers.
struct ClientTls {
    config: Arc<ClientConfig>,
    profile: Arc<TlsProfile>,
    sessions: Arc<SessionStore>,
}

/// What any shard may need about an endpoint without asking its owner.
#[derive(Clone, Debug)]
pub struct EndpointHandle {
    pub name: Arc<str>,
    /// The shard that holds the endpoint's connection and queue.
    pub owner: usize,
    /// Messages accepted for the endpoint and not yet done; ingress reads it to apply
    /// back-pressure, the owner's worker lowers it. Survives reloads with the endpoint's name.
    pub queued: Arc<QueueCount>,
    /// The endpoint's `queue_limit`: past it, senders are held back.
    pub queue_limit: u32,
    /// What `/endpoints` shows: written by the owner's worker. Survives reloads with the name.
    pub status: Arc<EndpointStatus>,
}

impl Routing {
    /// Routing for `table` on `shards` shards, keeping the queue counters of endpoints that
    /// `previous` already had (so that back-pressure survives a reload).
    pub fn build(
        table: Arc<RouteTable>,
        shards: usize,
        previous: Option<&Routing>,
    ) -> Result<Routing, TlsConfigError> {
        let old: HashMap<&str, &EndpointHandle> = previous
            .map(|p| p.endpoints.iter().map(|h| (&*h.name, h)).collect())
            .unwrap_or_default();
        let endpoints = table
            .endpoints()
            .iter()
            .map(|e| match old.get(e.name.as_str()) {
                Some(handle) => EndpointHandle {
                    owner: owner_of(&e.name, shards),
                    queue_limit: e.delivery.queue_limit,
                    ..(*handle).clone()
                },
                None => EndpointHandle {
                    name: Arc::from(e.name.as_str()),
                    owner: owner_of(&e.name, shards),
                    queued: Arc::new(QueueCount::default()),
                    queue_limit: e.delivery.queue_limit,
                    status: Arc::default(),
                },
            })
            .collect();
        // The server names each profile's endpoints are reached by, one per endpoint, to size
        // the profile's session memory (rustls' default holds 256 sessions; 28,000 endpoints
        // need one each or a reconnect storm does full handshakes).
        let mut names: HashMap<&str, Vec<ServerName<'static>>> = HashMap::new();
        for endpoint in table.endpoints() {
            let name = ServerName::try_from(endpoint.tls_server_name()).ok();
            if let (Some(profile), Some(name)) = (&endpoint.tls, name) {
                names.entry(profile.name.as_str()).or_default().push(name);
            }
        }
        let mut client_tls = HashMap::new();
        for endpoint in table.endpoints() {
            let Some(profile) = &endpoint.tls else {
                continue;
            };
            if client_tls.contains_key(&profile.name) {
                continue;
            }
            let names = names.remove(profile.name.as_str()).unwrap_or_default();
            // An unchanged profile keeps its configuration: endpoints reconnecting after a
            // reload still resume their sessions.
            let kept = previous
                .and_then(|p| p.client_tls.get(&profile.name))
                .filter(|old| *old.profile == **profile);
            if let Some(old) = kept {
                old.sessions.set_endpoints(names);
                let tls = ClientTls {
                    config: Arc::clone(&old.config),
                    profile: Arc::clone(profile),
                    sessions: Arc::clone(&old.sessions),
                };
                client_tls.insert(profile.name.clone(), tls);
                continue;
            }
            let sessions = Arc::new(SessionStore::for_endpoints(names));
            let config = client_config(&ClientSettings {
                ca: profile.ca.as_deref(),
                client_cert: profile
                    .client_cert
                    .as_ref()
                    .map(|(c, k)| (c.as_path(), k.as_path())),
                verify_server_name: profile.verify_server_name,
                sessions: Arc::clone(&sessions),
            })?;
            let tls = ClientTls {
                config,
                profile: Arc::clone(profile),
                sessions,
            };
            client_tls.insert(profile.name.clone(), tls);
        }
        Ok(Routing {
            hits: RuleHits::new(shards, &table, previous),
            table,
            endpoints,
            client_tls,
            provenance: Provenance::default(),
        })
    }

    /// The TLS client configuration `endpoint` connects with (`None` for plain protocols).
    pub fn client_tls_for(&self, endpoint: &Endpoint) -> Option<Arc<ClientConfig>> {
        let profile = endpoint.tls.as_ref()?;
        self.client_tls
            .get(&profile.name)
            .map(|t| Arc::clone(&t.config))
    }

    pub fn handle(&self, id: EndpointId) -> Option<&EndpointHandle> {
        self.endpoints.get(id.index())
    }
}

/// Which shard owns the endpoint called `name`. A hash of the name rather than its index, so
/// that a reload that adds or removes other endpoints does not move its connection.
pub fn owner_of(name: &str, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    (hasher.finish() % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pki::Authority;

    /// A table with `endpoints` TLS endpoints on profile `p`, whose server-name check is `verify`.
    fn table(dir: &std::path::Path, verify: bool, endpoints: usize) -> Arc<RouteTable> {
        let mut text = format!("[tls.p]\nca = \"ca.crt\"\nverify_server_name = {verify}\n\n");
        for i in 0..endpoints {
            text.push_str(&format!(
                "[[endpoint]]\nname = \"e{i}\"\nprotocol = \"mllps\"\naddress = \"127.0.0.1:{}\"\n\
                 server_name = \"e{i}.test\"\ntls = \"p\"\n\n",
                7000 + i
            ));
        }
        let path = dir.join("routes.toml");
        let (table, _) = crate::config::load_str(&path, &text).expect("a valid table");
        Arc::new(table)
    }

    #[test]
    fn a_reload_keeps_an_unchanged_profile_s_configuration_and_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("routing test CA").unwrap();
        ca.write_cert(&dir.path().join("ca.crt")).unwrap();
        let first = Routing::build(table(dir.path(), true, 2), 2, None).unwrap();
        let config = |r: &Routing| Arc::clone(&r.client_tls.get("p").unwrap().config);

        // More endpoints, same profile: the same configuration, its store resized.
        let grown = Routing::build(table(dir.path(), true, 3), 2, Some(&first)).unwrap();
        assert!(Arc::ptr_eq(&config(&first), &config(&grown)));
        let sessions = &grown.client_tls.get("p").unwrap().sessions;
        assert!(
            format!("{sessions:?}").contains("server_names: 3"),
            "{sessions:?}"
        );

        // A changed profile gets a configuration of its own.
        let changed = Routing::build(table(dir.path(), false, 3), 2, Some(&grown)).unwrap();
        assert!(!Arc::ptr_eq(&config(&grown), &config(&changed)));
    }

    #[test]
    fn owners_are_stable_and_spread() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let name = format!("endpoint-{i}");
            let owner = owner_of(&name, 4);
            assert_eq!(owner, owner_of(&name, 4));
            counts[owner] += 1;
        }
        assert!(counts.iter().all(|&n| n > 800), "{counts:?}");
        assert_eq!(owner_of("x", 0), 0);
    }
}
