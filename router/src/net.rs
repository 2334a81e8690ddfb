//! Sockets as the shards use them.
//!
//! - [`pool`]: per-shard buffers lent out for one I/O operation at a time.
//! - [`stream`]: plain or TLS TCP streams driven over monoio, holding no buffer while idle.
pub mod pool;
pub mod stream;

#[cfg(test)]
mod tests;
