//! Starting the shards: one thread per core, each pinned, each with its own runtime.
//!
//! Every runtime is built before any shard starts work. A runtime owns an event descriptor that
//! other threads write to wake it, and a shard that later takes a private descriptor table
//! (see the 28,000-endpoint notes in ARCHITECTURE.md) must already hold every other shard's.
use std::future::Future;
use std::io;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;

use super::driver::{build_runtime, Driver};

/// Who a shard is; handed to its main future.
#[derive(Debug, Clone, Copy)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    pub driver: Driver,
}

/// The number of shards `workers = "auto"` means: one per core this process may run on.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts `count` shard threads named `ganglion-shard-N`, pinned to cores when `pin` is set,
/// and runs `main(info)` on each shard's runtime until it returns.
pub fn spawn<F, Fut>(
    count: usize,
    driver: Driver,
    pin: bool,
    main: F,
) -> io::Result<Vec<JoinHandle<io::Result<()>>>>
where
    F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let count = count.max(1);
    let cores = available_cores();
    let ready = Arc::new(Barrier::new(count));
    let main = Arc::new(main);
    let mut handles = Vec::with_capacity(count);
    for index in 0..count {
        let ready = Arc::clone(&ready);
        let main = Arc::clone(&main);
        let handle = std::thread::Builder::new()
            .name(format!("ganglion-shard-{index}"))
            .spawn(move || {
                if pin {
                    // Pinning is an optimisation: a host that forbids it still routes.
                    let _ = monoio::utils::bind_to_cpu_set([index % cores]);
                }
                let runtime = build_runtime(driver);
                ready.wait();
                let mut runtime = runtime?;
                runtime.block_on(main(ShardInfo {
                    index,
                    count,
                    driver,
                }));
                Ok(())
            })?;
        handles.push(handle);
    }
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_shard_runs_once_with_its_index() {
        let seen = Arc::new(AtomicUsize::new(0));
        let seen2 = Arc::clone(&seen);
        let handles = spawn(3, Driver::Epoll, false, move |info| {
            let seen = Arc::clone(&seen2);
            async move {
                assert_eq!(info.count, 3);
                seen.fetch_or(1 << info.index, Ordering::SeqCst);
            }
        })
        .unwrap();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(seen.load(Ordering::SeqCst), 0b111);
    }
}
