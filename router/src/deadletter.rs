//! The dead-letter store, `<data>/dead-letters/`: messages an endpoint refused (AR/CR, SOAP client
//! fault) or that ran out of retries, kept with the reason and the endpoint's reply until someone
//! replays or drops them.
//!
//! One file per dead letter (`<id>.dl`, format in `format`; files 0600 in a 0700 folder), so every operation is a whole-file
//! operation that is safe beside a concurrent writer and works on a stopped router's directory:
//! a letter is written to a hidden temporary file, fsynced, and linked under its final name
//! (`link` fails rather than replace, so ids are never reused); a replay first renames
//! `<id>.dl` to `<id>.replaying`, which only one claimant can win, and deletes it once the
//! message is back in the log. Writing a letter fsyncs the file and the folder; each shard has a
//! thread that does it ([`LetterWriter`], a batch sharing one folder sync), and the shard marks
//! the destination done in the log only once its letter is durable.
mod format;
pub mod json;
mod store;
mod writer;

pub use store::{Claimed, DeadLetterStore};
pub use writer::{LetterWriter, Written};

use crate::wal::{Origin, OwnedOrigin, RecordId};
use std::fmt;
use std::path::PathBuf;

/// Names a dead letter: its time in unix nanoseconds (so ids sort by time), with `-<n>` added
/// when two letters share a nanosecond.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeadLetterId(pub(crate) String);

impl DeadLetterId {
    /// Checks an id typed by a person: digits and at most one `-<digits>` suffix, so an id can
    /// never name a path outside the store.
    pub fn parse(s: &str) -> Result<Self, DeadLetterError> {
        let (time, suffix) = s.split_once('-').unwrap_or((s, "0"));
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if digits(time) && digits(suffix) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DeadLetterError::InvalidId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a message was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The endpoint answered AR or CR: it will never accept this message as it is.
    Rejected,
    /// The endpoint answered with a SOAP client fault.
    ClientFault,
    /// Errors that might have passed (AE/CE, transport) went on past the retry budget.
    RetriesExhausted,
    Other,
}

impl Reason {
    fn code(self) -> u8 {
        match self {
            Self::Rejected => 1,
            Self::ClientFault => 2,
            Self::RetriesExhausted => 3,
            Self::Other => 0,
        }
    }

    fn from_code(c: u8) -> Self {
        match c {
            1 => Self::Rejected,
            2 => Self::ClientFault,
            3 => Self::RetriesExhausted,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::ClientFault => "client-fault",
            Self::RetriesExhausted => "retries-exhausted",
            Self::Other => "other",
        }
    }
}

/// The log record a dead letter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub shard: u32,
    pub record: RecordId,
}

/// A dead letter to store; borrowed, like the log's records.
#[derive(Debug, Clone, Copy)]
pub struct NewDeadLetter<'a> {
    /// When it was given up on, unix nanoseconds (passed in: no clock here). Also its id.
    pub time_unix_nanos: u64,
    pub endpoint: &'a str,
    pub reason: Reason,
    /// For people: the error text, MSA-3/ERR, or fault string (clipped to 64 KiB).
    pub detail: &'a str,
    /// The endpoint's reply exactly as received, if it sent one.
    pub reply: Option<&'a [u8]>,
    pub source: Option<Source>,
    pub origin: Origin<'a>,
    pub message: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    pub time_unix_nanos: u64,
    pub endpoint: String,
    pub reason: Reason,
    pub detail: String,
    pub reply: Option<Vec<u8>>,
    pub source: Option<Source>,
    pub origin: OwnedOrigin,
    pub message: Vec<u8>,
}

/// Where a listed letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ready,
    /// Claimed by a replay that has not finished (or that stopped midway: the message may
    /// already be back in the log).
    Replaying,
}

/// One line of `list`: everything but the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: DeadLetterId,
    pub state: State,
    pub time_unix_nanos: u64,
    pub endpoint: String,
    pub reason: Reason,
    pub detail: String,
    pub control_id: String,
    pub message_len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("{0:?} is not a dead-letter id (expected digits, optionally -N)")]
    InvalidId(String),
    #[error("no dead letter {0}")]
    NotFound(DeadLetterId),
    #[error("dead letter {id} ({path}) is damaged: {reason}")]
    Damaged {
        id: DeadLetterId,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("dead letter cannot be stored: {0}")]
    TooLarge(&'static str),
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the dead-letter writer thread is gone")]
    WriterGone,
}
