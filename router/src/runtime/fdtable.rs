//! Private descriptor tables: how one process holds more sockets than the open-files limit.
//!
//! The limit on open files is per descriptor table, and a thread that calls
//! `unshare(CLONE_FILES)` gets a table of its own, a copy of the one it had. A shard owns its
//! sockets and files anyway, so giving each shard its own table multiplies what the process can
//! hold by the number of shards (28,000 endpoint connections over two shards fit under a limit of
//! 20,000 per table).
//!
//! This is the only module of the router that uses `unsafe`.
use std::io;

/// Gives the calling thread a descriptor table of its own, a copy of the current one.
///
/// The caller must uphold the rule that makes this sound: a descriptor opened after the call is
/// used only by this thread and by threads it starts afterwards (which share its new table),
/// and descriptors opened before the call are used, by number, only if they stay open in every
/// table that uses them. The shards keep it as follows:
/// - every shard's runtime, with the event descriptor other shards write to wake it, exists
///   before any shard calls this (`shards::spawn` waits on a barrier first), so every table
///   holds every wake descriptor at the same number;
/// - listening sockets, log segments opened at start and the signal pipe are opened before the
///   shards start, so they too are at the same number in every table, and nothing closes them
///   while the shards run;
/// - shards exchange only values (messages, marks, commands) through the mesh and the control
///   mailboxes, never descriptors; a shard's fsync thread is started by the shard after this
///   call, so it shares the shard's table and the segment files the shard creates later.
pub fn take_private_table() -> io::Result<()> {
    // SAFETY: rustix's only safety requirement for FILES is that no thread observes a
    // descriptor from a table it does not share; the invariants listed above, which the
    // callers in `runtime::shards` and `daemon` keep, guarantee exactly that. The call itself
    // takes no pointers and cannot corrupt memory.
    #[allow(unsafe_code)]
    unsafe {
        rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES)?;
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard limit; returns the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        if limit.current.is_none_or(|soft| soft < hard) {
            limit.current = Some(hard);
            let _ = setrlimit(Resource::Nofile, limit);
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Barrier};

    use super::*;

    fn is_open(fd: i32) -> bool {
        std::path::Path::new(&format!("/proc/thread-self/fd/{fd}")).exists()
    }

    /// Two threads take private tables: what each opens afterwards is invisible to the other
    /// and to the shared table, what was open before stays visible to both, and each can hold
    /// its own descriptor under the same number.
    #[test]
    fn private_tables_are_private() {
        // Far above what the test process uses, so that tests running beside this one (which
        // open and close low numbers at any moment, in the shared table) cannot make the two
        // copies differ there: the lowest free number from here is the same in both.
        const HIGH: i32 = 900;
        let before = std::fs::File::open("/proc/self/stat").unwrap();
        let shared_fd = before.as_raw_fd();
        let ready = Arc::new(Barrier::new(2));
        let opened = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (ready, opened) = (Arc::clone(&ready), Arc::clone(&opened));
                std::thread::spawn(move || {
                    ready.wait();
                    take_private_table().unwrap();
                    assert!(is_open(shared_fd), "a descriptor opened before is kept");
                    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    let mine = rustix::io::fcntl_dupfd_cloexec(&socket, HIGH).unwrap();
                    opened.wait();
                    // Closed here, in the table it belongs to: handing it to another thread
                    // would close a number that means something else there.
                    (
                        mine.as_raw_fd(),
                        is_open(mine.as_raw_fd()),
                        socket.local_addr().unwrap(),
                    )
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        // Both threads hold the same number for different sockets, open at the same time:
        // only possible with private tables; and the shared table never saw it.
        assert_eq!(results[0].0, results[1].0);
        assert!(results[0].0 >= HIGH);
        assert!(results[0].1 && results[1].1);
        assert_ne!(results[0].2, results[1].2);
        assert!(!is_open(results[0].0), "the shared table does not hold it");
        drop(before);
    }

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let limit = raise_open_files_limit();
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(Some(limit), hard.or(Some(u64::MAX)));
    }
}
