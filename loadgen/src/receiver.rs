//! What every stand-in endpoint does with the bytes it receives, whatever drives its sockets:
//! find the next whole message in the receive buffer ([`incoming`]) and write the answer a
//! hospital system would give ([`reply`]), with the codecs' own framing and writers.
//!
//! Three receivers share it: loadgen's endpoint fleet (one epoll thread, thousands of
//! endpoints, performance-critical), and the integration tests' scripted endpoints (a thread
//! per connection) and their fleet (a monoio runtime on the router's own TLS streams). Their
//! I/O stays their own, because each is chosen for what it tests; nothing here allocates
//! beyond the answer's bytes, so the fleet's hot path costs what it did.
pub mod incoming;
pub mod reply;

pub use incoming::{next, Next, Whole};
