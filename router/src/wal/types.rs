//! The values that cross the log's interface: what ingress hands in ([`NewRecord`], borrowed, so
//! appending copies the bytes once, into the log's own buffer), what replay hands back
//! ([`PendingRecord`], owned) and the small receipts in between.
use std::fmt;

/// A record's place in its shard's log: a sequence number that grows across restarts (a record
/// lost in a torn tail was never acknowledged, and its number is given out again). A replicated
/// log maps it to its stream sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where and when a message came in, as ingress saw it. The time is passed in (unix nanoseconds)
/// so the log reads no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The listener's name from `routes.toml`.
    pub listener: &'a str,
    /// The sender's address as text (`10.0.0.7:51234`), whatever the transport.
    pub peer: &'a str,
    pub arrival_unix_nanos: u64,
    /// MSH-10 for HL7v2, the tracking id for ITK: what people search for.
    pub control_id: &'a str,
}

/// [`Origin`], owned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedOrigin {
    pub listener: String,
    pub peer: String,
    pub arrival_unix_nanos: u64,
    pub control_id: String,
}

impl OwnedOrigin {
    pub fn as_origin(&self) -> Origin<'_> {
        Origin {
            listener: &self.listener,
            peer: &self.peer,
            arrival_unix_nanos: self.arrival_unix_nanos,
            control_id: &self.control_id,
        }
    }
}

impl From<Origin<'_>> for OwnedOrigin {
    fn from(o: Origin<'_>) -> Self {
        Self {
            listener: o.listener.to_owned(),
            peer: o.peer.to_owned(),
            arrival_unix_nanos: o.arrival_unix_nanos,
            control_id: o.control_id.to_owned(),
        }
    }
}

pub use codecs::MessageKind;

/// Where an identifier sits in a message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: u32,
    pub len: u32,
}

impl Span {
    pub fn range(&self) -> std::ops::Range<usize> {
        let start = self.offset as usize;
        start..start + self.len as usize
    }
}

/// What ingress learned parsing a message, kept in its record so that recovery uses it rather
/// than parsing the bytes again and guessing. `Parsed::default()` means "not known": records
/// of format version 1, and messages a tool logged without parsing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parsed<'a> {
    pub kind: Option<MessageKind>,
    /// MSH-10 (HL7v2) or the Distribution Envelope tracking id (ITK) in the message.
    pub control_id: Span,
    /// The SOAPAction the sender used (ITK).
    pub soap_action: Option<&'a str>,
}

/// [`Parsed`], owned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedParsed {
    pub kind: Option<MessageKind>,
    pub control_id: Span,
    pub soap_action: Option<String>,
}

impl From<Parsed<'_>> for OwnedParsed {
    fn from(p: Parsed<'_>) -> Self {
        Self {
            kind: p.kind,
            control_id: p.control_id,
            soap_action: p.soap_action.map(str::to_owned),
        }
    }
}

impl OwnedParsed {
    pub fn as_parsed(&self) -> Parsed<'_> {
        Parsed {
            kind: self.kind,
            control_id: self.control_id,
            soap_action: self.soap_action.as_deref(),
        }
    }
}

/// One accepted message to log. Destinations are endpoint *names* (stable across reloads, unlike
/// the dense ids of a route table); a fan-out is one record with several destinations.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    pub destinations: &'a [&'a str],
    pub origin: Origin<'a>,
    pub parsed: Parsed<'a>,
    /// The message exactly as received.
    pub message: &'a [u8],
}

/// "Destination `destination` (an index into the record's destination list) of `record` is
/// done": delivered, or dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark {
    pub record: RecordId,
    pub destination: u16,
}

/// A record read back from the log, with the destinations still to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub id: RecordId,
    /// Every destination of the record, in the order they were appended.
    pub destinations: Vec<String>,
    /// Indexes into `destinations` not yet marked done, ascending.
    pub pending: Vec<u16>,
    pub origin: OwnedOrigin,
    pub parsed: OwnedParsed,
    pub message: Vec<u8>,
}

impl PendingRecord {
    /// The names of the destinations still to serve, with their indexes (for [`Mark`]).
    pub fn pending_destinations(&self) -> impl Iterator<Item = (u16, &str)> + '_ {
        self.pending.iter().filter_map(|&i| {
            self.destinations
                .get(usize::from(i))
                .map(|name| (i, name.as_str()))
        })
    }
}

/// The ids a successful append gave its records: `first`, `first + 1`, … in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first: RecordId,
    pub count: u32,
}

impl Appended {
    pub fn ids(&self) -> impl Iterator<Item = RecordId> {
        let first = self.first.0;
        (0..u64::from(self.count)).map(move |i| RecordId(first + i))
    }
}

/// What a finished commit guarantees: every record up to and including `upto` is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    pub upto: Option<RecordId>,
}

/// What [`super::Log::mark_done`] did. Marks for records that are unknown or already done are
/// ignored, so marking twice is harmless (delivery is at-least-once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarkOutcome {
    pub applied: usize,
    pub ignored: usize,
    pub segments_deleted: usize,
}

/// Disk use of a log against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used_bytes: u64,
    pub budget_bytes: u64,
    pub segments: usize,
    pub pending_records: u64,
}

/// Settings of one shard's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is closed and a new one begun when a batch would take it past this size (a
    /// single larger batch still goes whole into a fresh segment).
    pub segment_bytes: u64,
    /// Most bytes the log's records and marks may take on disk. Preallocated space (see
    /// `preallocate`) is not counted: at most two segments more per shard.
    pub budget_bytes: u64,
    /// Write each next segment full of zeros ahead of time (see `wal/spare.rs`), so appends
    /// never grow a file and their fdatasyncs need no journal commit. Off by default for
    /// tools that only read or mark a log; the router turns it on.
    pub preallocate: bool,
}

impl WalConfig {
    pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
    pub const DEFAULT_BUDGET_BYTES: u64 = 4 << 30;
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            budget_bytes: Self::DEFAULT_BUDGET_BYTES,
            preallocate: false,
        }
    }
}
