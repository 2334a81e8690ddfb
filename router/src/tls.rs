//! TLS as ganglion configures it (rustls with the ring provider).
//!
//! - [`config`]: client configurations per TLS profile and server configurations per listener,
//!   built from PEM files with errors that name the file.
//! - [`verify`]: chain-only verification for profiles that turn server-name checks off.
//! - [`sessions`]: the client's TLS session memory, sized to the directory.
//! - [`pki`]: a private CA for test deployments, the load generator and the tests.
pub mod config;
pub mod pki;
pub mod sessions;
pub mod verify;
