//! Delivering messages to endpoints.
//!
//! - [`worker`]: one endpoint's queue and the loop that delivers it in order, one in flight.
//! - [`connect`]: TCP and TLS connections to an endpoint, with keepalive.
//! - [`gate`]: how many connections a shard opens at once, and how fast.
//! - [`exchange`]: one attempt: send, wait for the reply, judge it (MLLP here, ITK in [`itk`]).
//! - [`verdict`]: what a reply means: delivered, retry, or refused for good.
//! - [`backoff`]: exponential backoff with full jitter, so endpoints that fail together do not
//!   come back together.
//! - [`settings`]: timeouts, retry budget, queue limit.
pub mod backoff;
pub mod connect;
pub mod exchange;
pub mod gate;
pub mod itk;
pub mod settings;
pub mod verdict;
pub mod worker;
