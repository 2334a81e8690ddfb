//! Sans-I/O codecs for everything ganglion reads and writes on the wire.
//!
//! - [`mllp`]: finds whole `0x0B … 0x1C 0x0D` frames in a caller-owned buffer, resynchronising
//!   after garbage and refusing to grow past a maximum frame size; and writes frames.
//! - [`hl7v2`]: a lazy, borrowed view of an ER7 message: separators from MSH-1/MSH-2, segments,
//!   fields, repetitions, components and sub-components as `&[u8]` slices of the input, escape
//!   sequences decoded only on request; batch splitting; the ACK builder.
//! - [`itk`]: SOAP 1.1 + WS-Addressing + the ITK Distribution Envelope read with quick-xml without
//!   copying; the synchronous response, SOAP fault and infrastructure-ACK builders.
//! - [`http1`]: the HTTP/1.1 that carries ITK: heads, Content-Length and chunked bodies, keep-alive.
//!
//! Invariants: no I/O, no clock, no randomness (time and identifiers are passed in), no panic on
//! any input, and no allocation per message on the path that reads routing keys. Every decoder
//! error says where it went wrong (byte offset, and segment/field or XML element).
#![forbid(unsafe_code)]
// "No panic on any input", as far as a linter can hold us to it: no unwrap, expect, panic or
// unchecked index outside tests (tables filled in `const` blocks may index: a slip there fails
// the build, not a message).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod hl7v2;
pub mod http1;
pub mod itk;
pub mod mllp;
