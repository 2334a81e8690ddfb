//! How hard the egress tries, and how long it waits: the settings shared by every endpoint.
//! Each endpoint's own retry budget, queue limit and stuck threshold come from `routes.toml`
//! ([`crate::routes::delivery`]).
use std::time::Duration;

use super::backoff::BackoffPolicy;
use super::policy::Policy;

/// Consecutive failures after which an endpoint's circuit opens: it is left alone for a
/// cool-down, then tried once.
const BREAKER_AFTER: u32 = 5;

/// Egress behaviour shared by every endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressSettings {
    /// Time to resolve, open a TCP connection and finish its TLS handshake.
    pub connect_timeout: Duration,
    /// Time an endpoint has to acknowledge a message once it has been sent.
    pub reply_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// How long an endpoint whose circuit opened (after repeated failures) is left alone
    /// before one probe.
    pub breaker_cooldown: Duration,
}

impl EgressSettings {
    /// The retry policy these settings make.
    pub fn policy(&self) -> Policy {
        Policy {
            backoff: self.backoff,
            breaker_after: BREAKER_AFTER,
            breaker_cooldown: self.breaker_cooldown,
        }
    }
}

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            backoff: BackoffPolicy::default(),
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}
