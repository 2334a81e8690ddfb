//! ganglion's router: everything between the codecs and the command line.
//!
//! Configuration and tools:
//! - [`config`]: `routes.toml` and the endpoint directory, parsed with spans, validated as a
//!   whole and compiled into a `RouteTable`.
//! - [`routes`]: the immutable `RouteTable` that routes each message, and the types it is made
//!   of (config depends on routes, never the reverse).
//! - [`inspect`]: finds the messages in a file (raw HL7v2, batches, MLLP frames, ITK XML, whole
//!   HTTP requests) and reports the routing keys the codecs read.
//! - [`cli`]: the `ganglion` command line (the binary's `main` is one call into it).
//! - [`charset`]: turns HL7v2 values into text by the message's own character set (MSH-18).
//!
//! The daemon, in the order a message meets it:
//! - [`daemon`]: start-up, the control thread (signals, file watch, admin, reloads), shutdown.
//! - [`runtime`]: thread-per-core shards on monoio (io_uring or epoll) and the mesh between them.
//! - [`shard`]: one shard's routing, its endpoints' workers, its end of the mesh.
//! - [`ingress`]: listeners, MLLP and ITK connections, where "accepted" is decided.
//! - [`pipeline`]: the accepted message and its deliveries.
//! - [`egress`]: endpoint workers, connections, replies and their verdicts, backoff.
//! - [`wal`]: each shard's write-ahead log (segments, group commit, delivery marks, recovery).
//! - [`deadletter`]: messages given up on, one file each in `<data>/dead-letters/`.
//! - [`trace`]: the message trace, an index beside the log of where each message went.
//!
//! Parts they share: [`net`] (plain and TLS streams with pooled buffers), [`tls`] (rustls
//! configurations, a private CA), [`mailbox`] (the control thread's commands to each shard, and
//! their answers), [`metrics`], [`notify`] (shard-local "stop now" and "something changed"),
//! [`wire_time`] (times as the wire formats write them), [`ids`] (UUIDs),
//! [`private_fs`] (0700 folders and 0600 files for messages and secrets), [`known`] (slicing
//! by ranges found in the same bytes, loud in debug builds if one ever does not fit),
//! [`logging`] (the log's format and fields, and whether it may hold message bodies).
#![deny(unsafe_code)]
// Never panic on what a sender, an endpoint or a disk hands us: outside tests, no unwrap, expect
// or panic; a broken invariant is said with a `debug_assert!` (see `known`) or an error.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod charset;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod deadletter;
pub mod egress;
pub mod ids;
pub mod ingress;
pub mod inspect;
pub mod known;
pub mod logging;
pub mod mailbox;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod pipeline;
pub mod private_fs;
pub mod routes;
pub mod runtime;
pub mod semaphore;
pub mod shard;
pub mod tls;
pub mod trace;
pub mod wal;
pub mod wire_time;
