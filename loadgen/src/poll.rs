//! A thin, safe layer over epoll and timerfd: every event loop in loadgen is one thread that
//! waits on one epoll set, and wakes for its next intended time through a timerfd armed with
//! an absolute CLOCK_MONOTONIC time (nanosecond resolution, unlike epoll's millisecond
//! timeout, which would add up to a millisecond to every measured latency).
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

pub use rustix::event::epoll::EventFlags as Flags;

/// Readable, edge-free (level-triggered) interest.
pub const READ: EventFlags = EventFlags::IN.union(EventFlags::RDHUP);
/// Readable and writable interest.
pub const READ_WRITE: EventFlags = READ.union(EventFlags::OUT);

pub struct Poller {
    epoll: OwnedFd,
    events: Vec<Event>,
}

impl Poller {
    pub fn new(capacity: usize) -> io::Result<Poller> {
        Ok(Poller {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
            events: Vec::with_capacity(capacity.max(16)),
        })
    }

    pub fn add(&self, fd: impl AsFd, token: u64, flags: EventFlags) -> io::Result<()> {
        epoll::add(&self.epoll, fd, EventData::new_u64(token), flags)?;
        Ok(())
    }

    pub fn modify(&self, fd: impl AsFd, token: u64, flags: EventFlags) -> io::Result<()> {
        epoll::modify(&self.epoll, fd, EventData::new_u64(token), flags)?;
        Ok(())
    }

    pub fn delete(&self, fd: impl AsFd) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Waits for events (at most `timeout_ms`, or forever when `None`) and returns
    /// `(token, flags)` pairs.
    pub fn wait(&mut self, timeout_ms: Option<u32>) -> io::Result<Vec<(u64, EventFlags)>> {
        self.events.clear();
        let timeout = timeout_ms.map(|ms| rustix::time::Timespec {
            tv_sec: i64::from(ms / 1000),
            tv_nsec: i64::from((ms % 1000) * 1_000_000) as _,
        });
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut self.events),
            timeout.as_ref(),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        Ok(self
            .events
            .iter()
            .map(|e| (e.data.u64(), e.flags))
            .collect())
    }
}

/// A one-shot timer at absolute CLOCK_MONOTONIC times.
pub struct Timer {
    fd: OwnedFd,
    armed_for: Option<u64>,
}

impl Timer {
    pub fn new() -> io::Result<Timer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(Timer {
            fd,
            armed_for: None,
        })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Fires at `at_ns` (a time in the past fires at once); re-arming for the same time is free.
    pub fn arm(&mut self, at_ns: u64) -> io::Result<()> {
        if self.armed_for == Some(at_ns) {
            return Ok(());
        }
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // A zero it_value would disarm; the earliest representable time still fires at once.
        let value = crate::clock::timespec(at_ns.max(1));
        timerfd_settime(
            &self.fd,
            TimerfdTimerFlags::ABSTIME,
            &Itimerspec {
                it_interval: zero,
                it_value: value,
            },
        )?;
        self.armed_for = Some(at_ns);
        Ok(())
    }

    /// Consumes the expiry after the timer fired.
    pub fn clear(&mut self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
        self.armed_for = None;
    }
}
