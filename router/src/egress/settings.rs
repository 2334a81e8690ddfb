//! How hard the egress tries, and how long it waits.
use std::time::Duration;

use super::backoff::BackoffPolicy;

/// Egress behaviour shared by every endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressSettings {
    /// Time to open a TCP connection and finish its TLS handshake.
    pub connect_timeout: Duration,
    /// Time an endpoint has to acknowledge a message once it has been sent.
    pub reply_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// How long a message may keep failing before it goes to the dead-letter store.
    pub retry_for: Duration,
    /// How long an endpoint whose circuit opened (after repeated failures) is left alone
    /// before one probe.
    pub breaker_cooldown: Duration,
    /// Messages accepted for one endpoint and not yet done; past this, ingress stops reading
    /// from the senders concerned until the endpoint catches up.
    pub queue_limit: u32,
}

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            backoff: BackoffPolicy::default(),
            retry_for: Duration::from_secs(24 * 3600),
            breaker_cooldown: Duration::from_secs(30),
            queue_limit: 10_000,
        }
    }
}
