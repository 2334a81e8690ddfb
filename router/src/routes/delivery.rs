//! Delivery settings: how long and how often a message may fail before it is dead-lettered, how
//! many messages an endpoint may have queued, and when a waiting message is worth a log line.
//!
//! Written in `[delivery]` (for every endpoint), in a `[[group]]` (for its members) or in an
//! `[[endpoint]]`; each key is taken from the most specific place that sets it: the endpoint,
//! else its group, else `[delivery]`, else the built-in default. Two groups of one endpoint
//! that set the same key differently are an error, unless the endpoint sets it itself.
use std::time::Duration;

use toml::Spanned;

/// The keys, as every table that may hold them accepts them.
pub const KEYS: [&str; 7] = [
    "retry_for",
    "max_attempts",
    "queue_limit",
    "stuck_after",
    "alert_queue_depth",
    "alert_circuit_open",
    "alert_dead_letters_per_hour",
];

/// One endpoint's settings, every key resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliverySettings {
    /// How long after its first failure a message may keep failing before it is dead-lettered.
    pub retry_for: Duration,
    /// Failed attempts after which a message is dead-lettered; `None`: only time counts.
    pub max_attempts: Option<u32>,
    /// Messages accepted for the endpoint and not yet done; past it, senders are held back.
    pub queue_limit: u32,
    /// Age of the endpoint's oldest message past which it is logged as stuck (once).
    pub stuck_after: Duration,
    /// Alert (one warning, and one notice when it clears) when more messages than this are
    /// queued for the endpoint; `None`: no such alert.
    pub alert_queue_depth: Option<u32>,
    /// Alert when the endpoint's circuit has been open this long.
    pub alert_circuit_open: Option<Duration>,
    /// Alert when more of the endpoint's messages than this were dead-lettered in the last hour.
    pub alert_dead_letters_per_hour: Option<u32>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            retry_for: Duration::from_secs(24 * 3600),
            max_attempts: None,
            queue_limit: 10_000,
            stuck_after: Duration::from_secs(300),
            alert_queue_depth: None,
            alert_circuit_open: None,
            alert_dead_letters_per_hour: None,
        }
    }
}

/// The settings as written in one table; `None` where a key is not set there (it inherits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliverySpec {
    pub retry_for: Option<Spanned<Duration>>,
    pub max_attempts: Option<Spanned<u32>>,
    pub queue_limit: Option<Spanned<u32>>,
    pub stuck_after: Option<Spanned<Duration>>,
    pub alert_queue_depth: Option<Spanned<u32>>,
    pub alert_circuit_open: Option<Spanned<Duration>>,
    pub alert_dead_letters_per_hour: Option<Spanned<u32>>,
}

/// Largest `queue_limit` (and `max_attempts`): well past any sensible value, well inside u32.
pub const MAX_COUNT: i64 = 100_000_000;
