//! The log's errors. Each says which file and byte offset it concerns, and [`WalError::is_transient`]
//! tells ingress whether "cannot accept now" (the sender may retry) is the right answer.
use std::io;
use std::path::PathBuf;

use super::types::RecordId;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The batch would take the log past its disk budget; nothing was written.
    #[error(
        "log disk budget exceeded: the batch needs {needed} bytes, {used} of {budget} are in use"
    )]
    BudgetExceeded { needed: u64, used: u64, budget: u64 },

    /// The file system is full (ENOSPC, EDQUOT, EFBIG); the log was truncated back to its last good
    /// record, so the next batch starts clean.
    #[error("no space left writing {path} at byte {offset}: {source}")]
    NoSpace {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },

    /// Any other write failure; the log was truncated back to its last good record.
    #[error("write to {path} at byte {offset} failed: {source}")]
    Write {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },

    /// fdatasync failed. After a failed fsync Linux may have dropped the dirty pages while
    /// later fsyncs succeed, so the log refuses further appends until it is reopened.
    #[error("fsync of {path} failed: {source}; the log must be reopened")]
    Sync { path: PathBuf, source: io::Error },

    /// An earlier write could not be undone or an earlier fsync failed; reopen the log.
    #[error("the log is unusable after an earlier failed write or fsync; reopen it")]
    Poisoned,

    /// A record that does not fit the format's limits; nothing was written.
    #[error("record {index} of the batch cannot be logged: {reason}")]
    InvalidRecord { index: usize, reason: &'static str },

    /// A record read back from disk no longer matches its checksum.
    #[error("record {id} in {path} at byte {offset} is damaged: {reason}")]
    Corrupt {
        id: RecordId,
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },

    /// No pending record has this id (never appended, or already done and deleted).
    #[error("no record {0} in the log")]
    UnknownRecord(RecordId),

    /// Another process (a running router, or an offline tool) holds the directory's lock.
    #[error("{path} is locked by another process (is the router running?)")]
    Locked { path: PathBuf },

    /// Opening, reading, renaming or deleting a file failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl WalError {
    /// True when the same batch may succeed later without anyone reopening the log: the budget or
    /// the disk may free up as endpoints drain. Ingress answers such refusals with "cannot accept
    /// now" (AE/CE, HTTP 503) rather than a rejection.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::BudgetExceeded { .. } | Self::NoSpace { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Sorts a failed write into "disk full" or "other", so that callers can tell them apart.
    pub(crate) fn write(path: impl Into<PathBuf>, offset: u64, source: io::Error) -> Self {
        let path = path.into();
        if is_no_space(&source) {
            Self::NoSpace {
                path,
                offset,
                source,
            }
        } else {
            Self::Write {
                path,
                offset,
                source,
            }
        }
    }
}

/// ENOSPC, EDQUOT and EFBIG all mean "this disk cannot take more now".
pub(crate) fn is_no_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    ) || matches!(err.raw_os_error(), Some(28 | 122 | 27))
}
