//! Which I/O driver a shard's runtime uses: io_uring where the kernel allows it, epoll otherwise.
//!
//! Containers with a default seccomp profile and older kernels refuse io_uring; the router must
//! still run there. The choice is made once per process (monoio probes the ops it needs) and
//! every shard uses the same driver, so behaviour does not differ between cores.
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::OnceLock;

use monoio::blocking::DefaultThreadPool;
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

/// Threads shared by every runtime for calls that block (`monoio::spawn_blocking`): host name
/// resolution, which may wait seconds for DNS. A few suffice: lookups are per connection, not
/// per message, and a slow one holds a thread, not a shard.
const BLOCKING_THREADS: usize = 4;

/// The blocking pool, made with the first runtime: before any shard splits its descriptor
/// table, so its threads use the process's.
fn blocking_pool() -> Box<DefaultThreadPool> {
    static POOL: OnceLock<DefaultThreadPool> = OnceLock::new();
    Box::new(
        POOL.get_or_init(|| DefaultThreadPool::new(BLOCKING_THREADS))
            .clone(),
    )
}

/// Builds one shard's runtime with timers on `driver`, and the shared blocking pool.
pub fn build_runtime(driver: Driver) -> io::Result<Runtime> {
    match driver {
        Driver::Uring => Ok(RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .attach_thread_pool(blocking_pool())
            .enable_timer()
            .build()?
            .into()),
        Driver::Epoll => Ok(RuntimeBuilder::<LegacyDriver>::new()
            .with_entries(RING_ENTRIES)
            .attach_thread_pool(blocking_pool())
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

    /// What keeps host name lookups off the shards: a blocking call waits on the pool while
    /// the shard goes on (here, to release it). On the shard's own thread it would wait out its
    /// timeout and fail.
    #[test]
    fn blocking_calls_run_off_the_shard_while_it_goes_on() {
        for driver in [Driver::Epoll]
            .into_iter()
            .chain(DriverChoice::Uring.resolve().ok())
        {
            let mut rt = build_runtime(driver).expect("build runtime");
            let released = rt.block_on(async {
                let (release, wait) = std::sync::mpsc::channel::<()>();
                let blocked = monoio::spawn_blocking(move || {
                    wait.recv_timeout(std::time::Duration::from_secs(10))
                        .is_ok()
                });
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                let _ = release.send(());
                blocked.await
            });
            assert!(matches!(released, Ok(true)), "{driver}");
        }
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
