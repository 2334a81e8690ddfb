//! What anyone may read about one endpoint while its worker runs: its connection and circuit,
//! how long its oldest queued message has waited, what became of its messages, and its last
//! error. The endpoint's worker, on its owner shard, is the only writer; the admin thread reads
//! it for `/endpoints`. Counts and states are atomics on the endpoint's own block (relaxed: each
//! is a figure on its own, and a reader may see one a moment before another). The last error
//! sits behind a mutex, taken only when an attempt fails and when someone reads it: never on
//! a delivery that goes well.
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::alerts::Alert;

/// The endpoint's connection, as its worker last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// No connection, and none needed yet (nothing sent since start, or closed when idle).
    Idle,
    Connecting,
    Connected,
    /// The last attempt to connect or deliver failed; the worker is waiting to try again.
    Down,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Idle => "idle",
            Connection::Connecting => "connecting",
            Connection::Connected => "connected",
            Connection::Down => "down",
        }
    }

    fn from_u8(n: u8) -> Connection {
        match n {
            1 => Connection::Connecting,
            2 => Connection::Connected,
            3 => Connection::Down,
            _ => Connection::Idle,
        }
    }
}

/// A failure and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub text: String,
    pub at: SystemTime,
}

/// One endpoint's figures (see the module's comment).
#[derive(Debug, Default)]
pub struct EndpointStatus {
    connection: AtomicU8,
    /// Milliseconds since the epoch when the circuit opened; 0 while it is closed.
    circuit_open_since: AtomicU64,
    /// Milliseconds since the epoch when the message at the front of the queue arrived; 0 when
    /// the queue is empty.
    oldest_arrived: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    handshakes_full: AtomicU64,
    handshakes_resumed: AtomicU64,
    /// The alerts in force, one bit each ([`crate::egress::alerts::Alert::bit`]).
    alerts: AtomicU8,
    last_error: Mutex<Option<LastError>>,
}

/// The figures at one moment, for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub connection: Connection,
    pub circuit_open_since: Option<SystemTime>,
    pub oldest_arrived: Option<SystemTime>,
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub handshakes_full: u64,
    pub handshakes_resumed: u64,
    pub alerts: Vec<Alert>,
    pub last_error: Option<LastError>,
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(1, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

fn from_epoch_ms(ms: u64) -> Option<SystemTime> {
    (ms != 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

impl EndpointStatus {
    pub fn set_connection(&self, connection: Connection) {
        self.connection.store(connection as u8, Ordering::Relaxed);
    }

    /// The connection closed (by either side) with nothing wrong.
    pub fn closed(&self) {
        let _ = self.connection.compare_exchange(
            Connection::Connected as u8,
            Connection::Idle as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// A connection opened, with a TLS handshake that was a resumption or a full one.
    pub fn connected(&self, tls_resumed: Option<bool>) {
        self.set_connection(Connection::Connected);
        match tls_resumed {
            Some(true) => self.handshakes_resumed.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.handshakes_full.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    /// The message now at the front of the queue arrived at `arrived`; `None`: the queue is
    /// empty.
    pub fn set_oldest(&self, arrived: Option<SystemTime>) {
        self.oldest_arrived
            .store(arrived.map_or(0, epoch_ms), Ordering::Relaxed);
    }

    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt failed and will be made again.
    pub fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, text: String, at: SystemTime) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(LastError { text, at });
    }

    pub fn circuit_opened(&self, at: SystemTime) {
        self.circuit_open_since
            .store(epoch_ms(at), Ordering::Relaxed);
    }

    pub fn set_alerts(&self, active: u8) {
        self.alerts.store(active, Ordering::Relaxed);
    }

    pub fn circuit_closed(&self) {
        self.circuit_open_since.store(0, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            connection: Connection::from_u8(self.connection.load(Ordering::Relaxed)),
            circuit_open_since: from_epoch_ms(self.circuit_open_since.load(Ordering::Relaxed)),
            oldest_arrived: from_epoch_ms(self.oldest_arrived.load(Ordering::Relaxed)),
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            handshakes_full: self.handshakes_full.load(Ordering::Relaxed),
            handshakes_resumed: self.handshakes_resumed.load(Ordering::Relaxed),
            alerts: {
                let active = self.alerts.load(Ordering::Relaxed);
                Alert::ALL
                    .into_iter()
                    .filter(|a| active & a.bit() != 0)
                    .collect()
            },
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_what_the_worker_wrote() {
        let status = EndpointStatus::default();
        assert_eq!(status.snapshot().connection, Connection::Idle);
        let at = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        status.set_connection(Connection::Connecting);
        status.connected(Some(false));
        status.connected(Some(true));
        status.connected(None);
        status.set_oldest(Some(at));
        status.delivered();
        status.retried();
        status.retried();
        status.dead_lettered();
        status.failed("connection refused".into(), at);
        status.circuit_opened(at);
        let seen = status.snapshot();
        assert_eq!(seen.connection, Connection::Connected);
        assert_eq!((seen.handshakes_full, seen.handshakes_resumed), (1, 1));
        assert_eq!(seen.oldest_arrived, Some(at));
        assert_eq!(
            (seen.delivered, seen.retried, seen.dead_lettered),
            (1, 2, 1)
        );
        assert_eq!(seen.circuit_open_since, Some(at));
        assert_eq!(
            seen.last_error.map(|e| e.text),
            Some("connection refused".into())
        );

        status.closed();
        status.set_oldest(None);
        status.circuit_closed();
        let seen = status.snapshot();
        assert_eq!(seen.connection, Connection::Idle);
        assert_eq!((seen.oldest_arrived, seen.circuit_open_since), (None, None));
        // A closed connection that was down stays down: closing says nothing went wrong.
        status.set_connection(Connection::Down);
        status.closed();
        assert_eq!(status.snapshot().connection, Connection::Down);
    }
}
