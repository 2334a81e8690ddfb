//! Delivering messages to endpoints.
//!
//! - [`worker`]: one endpoint's queue and the loop that delivers it in order, one in flight; it
//!   does the I/O and asks [`policy`] what each outcome means.
//! - [`policy`]: the retry policy as a pure state machine over outcomes and the time: backoff,
//!   circuit breaker, each message's retry budget.
//! - [`alerts`]: the endpoint's alert thresholds (queue depth, stuck queue, circuit open too
//!   long, dead letters per hour) as a pure state machine: raised once, cleared once.
//! - [`connect`]: TCP and TLS connections to an endpoint, with keepalive.
//! - [`gate`]: how many connections a shard opens at once, and how fast.
//! - [`exchange`]: one attempt: send, wait for the reply, judge it (MLLP here, ITK in [`itk`]).
//! - [`verdict`]: what a reply means: delivered, or a typed [`verdict::Failure`] that says which
//!   side failed and whether a retry can help.
//! - [`failure_log`]: how many of an endpoint's failed deliveries are logged one by one
//!   before they are summarised.
//! - [`acked`]: the ids acknowledged on a connection, so that replayed earlier ACKs are skipped.
//! - [`backoff`]: exponential backoff with full jitter, so endpoints that fail together do not
//!   come back together.
//! - [`settings`]: timeouts, backoff and breaker settings shared by every endpoint.
//! - [`status`]: what anyone may read about an endpoint (connection, circuit, oldest queued,
//!   counts, last error), written by its worker, read by `/endpoints`.
pub mod acked;
pub mod alerts;
pub mod backoff;
pub mod connect;
pub mod exchange;
pub mod failure_log;
pub mod gate;
pub mod itk;
pub mod keyed;
pub mod order_key;
pub mod policy;
pub mod settings;
pub mod status;
pub mod verdict;
pub mod worker;
