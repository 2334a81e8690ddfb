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

/// The cores the process could use before any shard pinned itself.
static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// For a thread a shard starts (its fsync thread): it inherits the shard's pinning, and would
/// then wait for the one core its shard is using, waking the shard late in turn. Measured with
/// `loadgen proof` at 28,000 endpoints: p99 ACK 7.5–9.7 ms with the fsync threads pinned beside
/// their shards, against 3.3 ms with no pinning at all. Lets the calling thread run anywhere.
pub fn unpin_current_thread() {
    if let Some(&cores) = CORES.get() {
        let _ = monoio::utils::bind_to_cpu_set(0..cores);
    }
}

/// How shard threads are set up.
#[derive(Debug, Clone, Copy)]
pub struct ShardOptions {
    pub driver: Driver,
    /// Pin shard N to core N (modulo the cores there are).
    pub pin: bool,
    /// Give each shard its own descriptor table once every runtime exists (see
    /// [`super::fdtable`]).
    pub private_fds: bool,
}

/// Starts `count` shard threads named `ganglion-shard-N` and runs `main(info)` on each shard's
/// runtime until it returns.
pub fn spawn<F, Fut>(
    count: usize,
    options: ShardOptions,
    main: F,
) -> io::Result<Vec<JoinHandle<io::Result<()>>>>
where
    F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let count = count.max(1);
    let cores = *CORES.get_or_init(available_cores);
    let ready = Arc::new(Barrier::new(count));
    // The spawner waits too: nothing it opens after `spawn` returns may leak into a shard's
    // copy of the table (a socket held open there would never close).
    let split = Arc::new(Barrier::new(count + 1));
    let main = Arc::new(main);
    let mut handles = Vec::with_capacity(count);
    for index in 0..count {
        let ready = Arc::clone(&ready);
        let split = Arc::clone(&split);
        let main = Arc::clone(&main);
        let handle = std::thread::Builder::new()
            .name(format!("ganglion-shard-{index}"))
            .spawn(move || {
                if options.pin {
                    // Pinning is an optimisation: a host that forbids it still routes.
                    let _ = monoio::utils::bind_to_cpu_set([index % cores]);
                }
                let runtime = build_runtime(options.driver);
                // Every runtime (and its wake descriptor) exists before any table is split.
                ready.wait();
                let private = if options.private_fds {
                    super::fdtable::take_private_table()
                } else {
                    Ok(())
                };
                split.wait();
                let mut runtime = runtime?;
                private?;
                runtime.block_on(main(ShardInfo {
                    index,
                    count,
                    driver: options.driver,
                }));
                Ok(())
            })?;
        handles.push(handle);
    }
    split.wait();
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
        let options = ShardOptions {
            driver: Driver::Epoll,
            pin: false,
            private_fds: false,
        };
        let handles = spawn(3, options, move |info| {
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

    /// Shards with private descriptor tables still wake each other through the mesh, on both
    /// drivers (the pitfall: a table split before every runtime existed loses wake-ups).
    #[test]
    fn private_tables_keep_cross_shard_wakeups() {
        use crate::runtime::driver::DriverChoice;
        use crate::runtime::mesh::Mesh;
        let mut drivers = vec![Driver::Epoll];
        if DriverChoice::Uring.resolve().is_ok() {
            drivers.push(Driver::Uring);
        }
        for driver in drivers {
            let mesh = Arc::new(Mesh::new(2, 16));
            let got = Arc::new(AtomicUsize::new(0));
            let (mesh2, got2) = (Arc::clone(&mesh), Arc::clone(&got));
            let options = ShardOptions {
                driver,
                pin: false,
                private_fds: true,
            };
            let handles = spawn(2, options, move |info| {
                let (mesh, got) = (Arc::clone(&mesh2), Arc::clone(&got2));
                async move {
                    if info.index == 0 {
                        for round in 0..200usize {
                            // Let the receiver fall asleep between rounds so each wake counts.
                            monoio::time::sleep(std::time::Duration::from_micros(200)).await;
                            while mesh.try_send(0, 1, round).is_err() {
                                monoio::time::sleep(std::time::Duration::from_micros(50)).await;
                            }
                            mesh.notify(1);
                        }
                    } else {
                        let mut out = Vec::new();
                        while out.len() < 200 {
                            mesh.wait(1).await;
                            mesh.drain(1, &mut out);
                        }
                        got.store(out.len(), Ordering::SeqCst);
                    }
                }
            })
            .unwrap();
            for h in handles {
                h.join().unwrap().unwrap();
            }
            assert_eq!(got.load(Ordering::SeqCst), 200, "{driver}");
        }
    }
}
