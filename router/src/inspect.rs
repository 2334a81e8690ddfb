//! `ganglion inspect`: the routing keys the codecs read, one report per message.
//!
//! [`find`] cuts an input into messages; [`report`] reads each one with the same codecs the
//! router uses and turns the keys into text for people (escapes decoded, the message's own
//! character set applied). What the router routes on and what inspect shows therefore cannot
//! drift apart.
pub mod find;
pub mod report;

pub use find::{find_messages, Found, Item};
pub use report::{report, Report};
