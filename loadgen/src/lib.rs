//! ganglion's load generator, as a library so that its tests and the `loadgen` binary share it.
//!
//! Parts: [`gen`] makes seeded, realistic HL7v2 and ITK traffic; [`fleet`] stands up endpoints
//! that answer like hospital systems and report every arrival; [`drive`] sends open-loop traffic
//! (every message has an intended send time and latency is measured from it); [`relay`] is the
//! bare forwarder that gives the ceiling; [`proof`] puts them together around `ganglion run`
//! and writes the headroom report; [`connections`] measures what holding every endpoint's
//! connection costs it (time, memory, the reconnect storm); [`soak`] holds a rate for a long
//! time with endpoints flapping and the routing reloaded, and judges losses and memory;
//! [`hot`] drives one endpoint with many messages in flight and checks each patient's order
//! ([`order`]).
//! [`receiver`] is what every stand-in endpoint does with what it receives (the fleet's, and
//! the integration tests' own). [`poll`], [`clock`] and [`sys`] are the small shared pieces
//! (epoll and timerfd, the monotonic clock shared by processes, descriptor limits and /proc).
#![forbid(unsafe_code)]

pub mod clock;
pub mod connections;
pub mod directory;
pub mod drive;
pub mod fleet;
pub mod gen;
pub mod hot;
pub mod ids;
pub mod nats;
pub mod net;
pub mod order;
pub mod pki;
pub mod poll;
pub mod progress;
pub mod proof;
pub mod receiver;
pub mod relay;
pub mod rng;
pub mod soak;
pub mod stats;
pub mod sys;
pub mod units;
