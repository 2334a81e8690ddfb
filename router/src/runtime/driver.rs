//! Which I/O driver a shard's runtime uses: io_uring where the kernel allows it, epoll otherwise.
//!
//! Containers with a default seccomp profile and older kernels refuse io_uring; the router must
//! still run there. The choice is made once per process (monoio probes the ops it needs) and
//! every shard uses the same driver, so behaviour does not differ between cores.
use std::fmt;
use std::io;
use std::str::FromStr;

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

/// What the operator asked for (`--driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// io_uring when it works here, else epoll.
    #[default]
    Auto,
    Uring,
    Epoll,
}

impl FromStr for DriverChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DriverChoice::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(DriverChoice::Uring),
            "epoll" | "legacy" => Ok(DriverChoice::Epoll),
            other => Err(format!(
                "unknown driver {other:?}: expected auto, uring or epoll"
            )),
        }
    }
}

/// The driver actually in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Uring,
    Epoll,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Uring => "io_uring",
            Driver::Epoll => "epoll",
        })
    }
}

impl DriverChoice {
    /// The driver this choice gives on this machine; an explicit `uring` that the kernel
    /// refuses is an error rather than a silent fallback, since the operator asked for it.
    pub fn resolve(self) -> io::Result<Driver> {
        let uring_works = monoio::utils::detect_uring();
        match self {
            DriverChoice::Auto if uring_works => Ok(Driver::Uring),
            DriverChoice::Auto | DriverChoice::Epoll => Ok(Driver::Epoll),
            DriverChoice::Uring if uring_works => Ok(Driver::Uring),
            DriverChoice::Uring => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring was asked for but this kernel (or its seccomp profile) refuses it",
            )),
        }
    }
}

/// A shard's runtime, whichever driver it was built with.
pub type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Room for this many I/O operations in flight per shard (io_uring submission queue entries).
const RING_ENTRIES: u32 = 4096;

/// Builds one shard's runtime with timers on `driver`.
pub fn build_runtime(driver: Driver) -> io::Result<Runtime> {
    match driver {
        Driver::Uring => Ok(RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build()?
            .into()),
        Driver::Epoll => Ok(RuntimeBuilder::<LegacyDriver>::new()
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build()?
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse(), Ok(DriverChoice::Auto));
        assert_eq!("uring".parse(), Ok(DriverChoice::Uring));
        assert_eq!("epoll".parse(), Ok(DriverChoice::Epoll));
        assert!("kqueue".parse::<DriverChoice>().is_err());
    }

    #[test]
    fn both_drivers_run_a_timer_where_available() {
        let mut drivers = vec![Driver::Epoll];
        if DriverChoice::Uring.resolve().is_ok() {
            drivers.push(Driver::Uring);
        }
        for driver in drivers {
            let mut rt = build_runtime(driver).expect("build runtime");
            let slept = rt.block_on(async {
                let start = std::time::Instant::now();
                monoio::time::sleep(std::time::Duration::from_millis(2)).await;
                start.elapsed()
            });
            assert!(slept >= std::time::Duration::from_millis(2), "{driver}");
        }
    }

    #[test]
    fn epoll_is_always_available() {
        assert_eq!(DriverChoice::Epoll.resolve().unwrap(), Driver::Epoll);
    }
}
