//! Sockets as the shards use them.
//!
//! - [`pool`]: per-shard buffers lent out for one I/O operation at a time.
//! - [`stream`]: plain or TLS TCP streams driven over monoio, holding no buffer while idle.
//! - [`unbuffered`]: rustls' unbuffered API over caller-owned buffers (no I/O).
pub mod pool;
pub mod stream;
pub mod unbuffered;

#[cfg(test)]
mod tests;
