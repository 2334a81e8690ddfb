//! The trace yields the disk to the log. Both live in the data directory, and the log's
//! budget does not count the trace (about 230 bytes a message: hundreds of GB a week at the
//! national rate), so a trace left to grow could fill the disk the log was promised and make
//! the router refuse messages. The writer asks [`DiskRoom`] before each write: when the free
//! space is less than what the log may still take (its budget less what it holds) plus
//! [`MARGIN`], it stops writing (lookups then miss what is not written, which it says once),
//! and it starts again only once [`MARGIN`] more is free, so it does not flap at the edge.
use std::path::Path;
use std::time::{Duration, Instant};

use crate::wal::DiskBudget;

/// Kept free beyond the log's own headroom: dead letters, the admin token, a spare segment.
pub const MARGIN: u64 = 1 << 30;
/// How often free space is looked at (a statvfs), at most.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What the writer weighs: the free bytes of the data directory's filesystem, and how many
/// must stay free for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub free: u64,
    pub needed: u64,
}

/// The filesystem holding `dir` against what the log under `budget` may still take.
pub fn space_of(dir: &Path, budget: &DiskBudget) -> Option<Space> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(Space {
        free: stat.f_bavail.saturating_mul(stat.f_frsize),
        needed: budget
            .limit()
            .saturating_sub(budget.used())
            .saturating_add(MARGIN),
    })
}

/// A change the writer says once in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Paused(Space),
    Resumed(Space),
}

/// Whether the trace may write now.
#[derive(Debug, Default)]
pub struct DiskRoom {
    paused: bool,
    looked: Option<Instant>,
}

impl DiskRoom {
    pub fn may_write(&self) -> bool {
        !self.paused
    }

    /// Looks at the space (read by `look` at `now`, at most once per [`LOOK_EVERY`]) and says
    /// when writing stops or starts again.
    pub fn check(&mut self, now: Instant, look: impl FnOnce() -> Option<Space>) -> Option<Change> {
        if self
            .looked
            .is_some_and(|t| now.duration_since(t) < LOOK_EVERY)
        {
            return None;
        }
        self.looked = Some(now);
        // Free space that cannot be read is taken as none: the log comes first.
        let space = look().unwrap_or(Space {
            free: 0,
            needed: MARGIN,
        });
        if !self.paused && space.free < space.needed {
            self.paused = true;
            return Some(Change::Paused(space));
        }
        if self.paused && space.free >= space.needed.saturating_add(MARGIN) {
            self.paused = false;
            return Some(Change::Resumed(space));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// The log may still take 9 GiB: 10 GiB must stay free.
    fn at(room: &mut DiskRoom, t: Instant, free: u64) -> Option<Change> {
        room.check(t, || {
            Some(Space {
                free,
                needed: 10 * GIB,
            })
        })
    }

    #[test]
    fn writing_stops_below_what_the_log_needs_and_starts_again_a_margin_above() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut room = DiskRoom::default();
        assert_eq!(at(&mut room, s(0), 50 * GIB), None);
        assert!(room.may_write());
        assert_eq!(
            at(&mut room, s(1), 9 * GIB),
            Some(Change::Paused(Space {
                free: 9 * GIB,
                needed: 10 * GIB
            }))
        );
        assert!(!room.may_write());
        // Above what is needed but within the margin: still paused, and nothing more said.
        assert_eq!(at(&mut room, s(2), 10 * GIB + GIB / 2), None);
        assert!(!room.may_write());
        assert_eq!(
            at(&mut room, s(3), 11 * GIB),
            Some(Change::Resumed(Space {
                free: 11 * GIB,
                needed: 10 * GIB
            }))
        );
        assert!(room.may_write());
        // Back within the margin: writing goes on (no flapping at the edge).
        assert_eq!(at(&mut room, s(4), 10 * GIB + GIB / 2), None);
        assert!(room.may_write());
    }

    #[test]
    fn free_space_is_read_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut room = DiskRoom::default();
        let mut looks = 0;
        for ms in [0, 200, 400, 999, 1000, 1500] {
            room.check(t0 + Duration::from_millis(ms), || {
                looks += 1;
                Some(Space {
                    free: 50 * GIB,
                    needed: 10 * GIB,
                })
            });
        }
        assert_eq!(looks, 2);
    }

    #[test]
    fn space_that_cannot_be_read_counts_as_none() {
        let mut room = DiskRoom::default();
        assert!(matches!(
            room.check(Instant::now(), || None),
            Some(Change::Paused(_))
        ));
    }

    #[test]
    fn a_real_filesystem_is_read_against_what_the_log_may_still_take() {
        let dir = tempfile::tempdir().unwrap();
        let budget = DiskBudget::new(4 * GIB);
        budget.take(GIB);
        let space = space_of(dir.path(), &budget).expect("statvfs of a temporary folder");
        assert_eq!(space.needed, 3 * GIB + MARGIN);
        assert!(space.free > 0, "{space:?}");
    }
}
