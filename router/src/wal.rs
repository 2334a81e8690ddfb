//! The write-ahead log: each shard's durable record of the messages it accepted and of which
//! destinations are done with them. Plain blocking file I/O, no async runtime: the shard's event
//! loop calls the cheap parts itself and hands the one expensive part, the fdatasync, to a thread
//! that may block.
//!
//! - [`Log`]: the interface (append, commit, mark done, replay), so that a replicated log can
//!   take the file log's place; [`ShardLog`] is the file log, one per shard directory.
//! - `record` / `scan`: the record format (magic, length, CRC32C, sequence number, destinations,
//!   origin, message bytes) and the scan that finds good records and damage in a segment.
//! - `segment` / `marks`: segment files with their in-memory index of undelivered
//!   destinations, and the append-only sidecar of delivery marks.
//! - `commit`: [`Commit`], the group-commit fdatasync as a `Send` value.
//! - `recover`: opening after a crash: torn tails cut off, damage quarantined and reported.
//! - `spare`: the next segment written full of zeros ahead of time (`WalConfig::preallocate`),
//!   so that appends never grow a file: an fdatasync then needs no journal commit, which is
//!   what the tail of the acknowledgement latency was made of. It doubles the bytes written;
//!   reusing finished segments instead would not, but needs records that tell stale data from a
//!   torn tail, and is left for when a disk shows the need.
//!
//!
//! Invariants: a record is durable once a [`Commit`] taken after its append has returned `Ok`;
//! the log never appends after a half-written record; nothing in a file can make opening the log
//! panic or fail (damage is reported in [`Recovery`]); a segment is deleted only when every
//! destination of every record in it is done.
//!
//! How a shard uses it: `append` each batch of accepted messages (one `pwrite` into the page
//! cache), then, if no commit is in flight, `commit()` and run the [`Commit`] on a blocking
//! thread; when it returns `Ok`, ACK the senders of every record up to [`Commit::upto`]. Batches
//! appended meanwhile ride on the next commit (group commit). Take and run commits one at a time
//! (or ACK strictly in commit order): a later commit does not wait for an earlier one's files.
//! After egress delivers (or dead-letters) a destination, `mark_done` it on the log of the shard
//! that appended the record. At start, `replay` the pending records in log order.
mod budget;
mod commit;
mod error;
pub mod inspect;
mod marks;
mod private;
mod record;
mod recover;
mod scan;
mod segment;
mod shard;
mod spare;
mod types;

pub use budget::DiskBudget;
pub use commit::{Commit, CommitJob};
pub use error::WalError;
pub use recover::{Damage, DamageKind, Recovery};
pub use shard::{shard_dir, ShardLog};
pub use types::{
    Appended, Durable, Mark, MarkOutcome, MessageKind, NewRecord, Origin, OwnedOrigin, OwnedParsed,
    Parsed, PendingRecord, RecordId, Span, Usage, WalConfig,
};

/// Bytes `record` will take in the log (for budgeting before an append), or why it cannot be
/// logged at all.
pub fn encoded_len(record: &NewRecord<'_>) -> Result<u64, &'static str> {
    record::encoded_len(record).map(|n| n as u64)
}

/// One record in the log's own format (checksummed), outside any log: what a cluster node
/// publishes to the replicated stream, so that a message reads back there exactly as it would
/// from a segment. `seq` is the publisher's number for it (kept, not interpreted).
pub fn record_bytes(seq: u64, record: &NewRecord<'_>) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    record::encode(seq, record, &mut out)?;
    Ok(out)
}

/// Reads back what [`record_bytes`] made, every destination pending; `Err` names what does
/// not check out (a payload is only ever taken whole, never half-read).
pub fn record_from_bytes(bytes: &[u8]) -> Result<PendingRecord, &'static str> {
    let (view, len) = record::check(bytes)?;
    if len != bytes.len() {
        return Err("bytes after the record");
    }
    let pending = (0..view.destination_count).collect();
    Ok(view.into_pending(pending))
}

/// A shard's durable log of accepted messages. Implemented by [`ShardLog`] (files on local disk);
/// meant to be implementable over a replicated log (a JetStream stream per shard, with stream
/// sequence numbers as [`RecordId`]s and acknowledgements as marks).
pub trait Log {
    /// The wait for durability, runnable on another thread.
    type Commit: CommitJob;

    /// Adds a batch to the log, in order, without waiting for the disk. On error nothing of the
    /// batch is in the log. Records are durable only after a later commit has run.
    fn append(&mut self, batch: &[NewRecord<'_>]) -> Result<Appended, WalError>;

    /// A commit covering everything appended so far, or `None` if nothing awaits one.
    fn commit(&mut self) -> Option<Self::Commit>;

    /// Appends and waits for the disk on this thread: for tools and tests, not event loops.
    fn append_durably(&mut self, batch: &[NewRecord<'_>]) -> Result<Appended, WalError> {
        let appended = self.append(batch)?;
        if let Some(commit) = self.commit() {
            commit.run()?;
        }
        Ok(appended)
    }

    /// Records destinations as done; a record whose destinations are all done is finished, and a
    /// segment of finished records is deleted. Marks are not fsynced: after a power cut a
    /// destination may receive a message again. On `Err` the marks still took effect in memory;
    /// only recording some of them on disk (or deleting a finished segment) failed.
    fn mark_done(&mut self, marks: &[Mark]) -> Result<MarkOutcome, WalError>;

    /// Records with an undelivered destination, in log order.
    fn pending_ids(&self) -> Vec<RecordId>;

    /// Reads one record back, with its undelivered destinations.
    fn read(&self, id: RecordId) -> Result<PendingRecord, WalError>;

    /// Every pending record, in log order (per endpoint, the order they were accepted in).
    fn replay(&self) -> Replay<'_, Self>
    where
        Self: Sized,
    {
        Replay {
            log: self,
            ids: self.pending_ids().into_iter(),
        }
    }

    fn usage(&self) -> Usage;

    /// True when appending `bytes` more (see [`encoded_len`]) would pass the disk budget:
    /// ingress then stops reading or answers "cannot accept now".
    fn would_exceed_budget(&self, bytes: u64) -> bool {
        let u = self.usage();
        u.used_bytes.saturating_add(bytes) > u.budget_bytes
    }
}

/// Iterator over a log's pending records, read one at a time.
pub struct Replay<'a, L> {
    log: &'a L,
    ids: std::vec::IntoIter<RecordId>,
}

impl<L: Log> Iterator for Replay<'_, L> {
    type Item = Result<PendingRecord, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.ids.next().map(|id| self.log.read(id))
    }
}
