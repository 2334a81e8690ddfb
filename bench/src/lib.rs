//! Inputs shared by ganglion's benchmarks: realistic messages built in code, so every bench
//! (and the peers it is compared with) reads exactly the same bytes.
#![forbid(unsafe_code)]

pub mod fixtures;
