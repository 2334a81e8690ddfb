//! [`SessionStore`]: what the router remembers of its TLS sessions with endpoints, so that a
//! reconnect (one endpoint's, or all 28,000 after a network blip) resumes instead of paying for
//! a full handshake and certificate verification.
//!
//! rustls' own `ClientSessionMemoryCache` is sized in tickets and keeps up to eight per server
//! name, so sized to a directory of N endpoints it remembers only N / 8 of them, and endpoints
//! that share a server name share eight tickets between them. This store is sized from the
//! directory itself: a server name keeps as many tickets as there are endpoints using it (a
//! TLS 1.3 ticket is good for one connection, and the router holds one connection per
//! endpoint), the newest first. Memory is therefore bounded by one ticket per endpoint however
//! many tickets servers send, and however often they reconnect.
//!
//! Names the store was not told about (a client configuration used outside a directory) keep
//! one ticket each, and at most [`SessionStore::SPARE_SERVERS`] of them, the oldest forgotten
//! first.
//!
//! The store is shared by every connection of a TLS profile on every shard; it is touched only
//! during handshakes, never per message, so its one lock is not on the hot path.
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;

/// TLS session memory sized to the endpoints that use it.
pub struct SessionStore {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Tickets kept per known server name: the number of endpoints using the name.
    limits: HashMap<ServerName<'static>, usize>,
    servers: HashMap<ServerName<'static>, Server>,
    /// Names without a limit, oldest first, for forgetting the oldest when there are too many.
    strangers: VecDeque<ServerName<'static>>,
}

#[derive(Default)]
struct Server {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// Oldest first.
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl SessionStore {
    /// Server names outside the directory remembered at most (one ticket each).
    pub const SPARE_SERVERS: usize = 64;

    /// A store for endpoints whose server names are `names`, one item per endpoint (a name that
    /// several endpoints share appears once for each of them).
    pub fn for_endpoints(names: impl IntoIterator<Item = ServerName<'static>>) -> SessionStore {
        let limits = count(names);
        SessionStore {
            inner: Mutex::new(Inner {
                servers: HashMap::with_capacity(limits.len()),
                limits,
                strangers: VecDeque::new(),
            }),
        }
    }

    /// Resizes the store for a new directory (after a reload): sessions with names still in it
    /// are kept, up to their new limits; the others are forgotten.
    pub fn set_endpoints(&self, names: impl IntoIterator<Item = ServerName<'static>>) {
        let limits = count(names);
        let mut inner = self.lock();
        inner.servers.retain(|name, server| match limits.get(name) {
            Some(&limit) => {
                while server.tls13.len() > limit {
                    server.tls13.pop_front();
                }
                true
            }
            None => false,
        });
        inner.strangers.clear();
        inner.limits = limits;
    }

    /// Tickets held now, over every server.
    pub fn tickets(&self) -> usize {
        self.lock().servers.values().map(|s| s.tls13.len()).sum()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves at worst a ticket too many or too
        // few; resumption is an optimisation, so carry on with what is there.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn count(
    names: impl IntoIterator<Item = ServerName<'static>>,
) -> HashMap<ServerName<'static>, usize> {
    let mut limits: HashMap<ServerName<'static>, usize> = HashMap::new();
    for name in names {
        *limits.entry(name).or_default() += 1;
    }
    limits
}

impl Inner {
    fn limit(&self, name: &ServerName<'_>) -> usize {
        self.limits.get(name).copied().unwrap_or(1)
    }

    fn server(&mut self, name: ServerName<'static>) -> &mut Server {
        if !self.servers.contains_key(&name) && !self.limits.contains_key(&name) {
            if self.strangers.len() >= SessionStore::SPARE_SERVERS {
                if let Some(oldest) = self.strangers.pop_front() {
                    self.servers.remove(&oldest);
                }
            }
            self.strangers.push_back(name.clone());
        }
        self.servers.entry(name).or_default()
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.lock().server(server_name).kx_hint = Some(group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().servers.get(server_name).and_then(|s| s.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.lock().server(server_name).tls12 = Some(value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.lock()
            .servers
            .get(server_name)
            .and_then(|s| s.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(server) = self.lock().servers.get_mut(server_name) {
            server.tls12 = None;
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let mut inner = self.lock();
        let limit = inner.limit(&server_name);
        let tickets = &mut inner.server(server_name).tls13;
        tickets.push_back(value);
        while tickets.len() > limit {
            tickets.pop_front();
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.lock()
            .servers
            .get_mut(server_name)
            .and_then(|s| s.tls13.pop_back())
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sessions are secrets: show only how many there are.
        let inner = self.lock();
        f.debug_struct("SessionStore")
            .field("server_names", &inner.limits.len())
            .field("servers_seen", &inner.servers.len())
            .finish()
    }
}
