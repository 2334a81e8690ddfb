//! The thread-per-core runtime: shards, their I/O driver, and the mesh between them.
//!
//! - [`driver`]: io_uring or epoll, chosen once per process.
//! - [`shards`]: one pinned thread per core, each running its own monoio runtime.
//! - [`mesh`]: bounded lock-free queues between shards with one wake-up per batch.
//! - [`fdtable`]: a private descriptor table per shard, to hold more sockets than one table may.
pub mod driver;
pub mod fdtable;
pub mod mesh;
pub mod shards;
