//! What loadgen reads of the operating system: the CPU time and memory of processes from
//! /proc. (The open-files limit is raised with the router's `fdtable::raise_open_files_limit`.)
use std::path::Path;

/// utime + stime of process `pid` (all its threads), in seconds; `None` when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from after it.
    stat_cpu_seconds(&text[text.rfind(')')? + 1..])
}

/// utime + stime of each thread of process `pid`, in seconds, summed by thread name with its
/// number left off (`ganglion-shard-0` and `-1` are `ganglion-shard`; io_uring's kernel workers
/// `iou-wrk-<tid>` are `iou-wrk`); empty when the process is gone.
pub fn cpu_seconds_by_thread(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
            continue;
        };
        let name = text[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        if let Some(secs) = stat_cpu_seconds(&text[close + 1..]) {
            *by_name.entry(name.to_string()).or_insert(0.0) += secs;
        }
    }
    by_name
}

/// utime + stime from the fields of a stat line after the command name's ")".
fn stat_cpu_seconds(rest: &str) -> Option<f64> {
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; after ")" they are 12th and 13th.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    Some((utime + stime) as f64 / ticks as f64)
}

/// A `kB` line of /proc/<pid>/status (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Number of online CPUs.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Whether standard error is a terminal (the progress line then rewrites itself).
pub fn stderr_is_tty() -> bool {
    rustix::termios::isatty(std::io::stderr())
}

/// Whether `dir` is on a tmpfs, where fsync costs nothing and a durability figure would lie.
pub fn is_tmpfs(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut best: Option<(usize, bool)> = None;
    for line in mounts.lines() {
        let mut parts = line.split_whitespace();
        let (_, Some(point), Some(fs)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if dir.starts_with(point) && best.is_none_or(|(len, _)| point.len() > len) {
            best = Some((point.len(), fs == "tmpfs"));
        }
    }
    best.is_some_and(|(_, tmpfs)| tmpfs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(super::cpu_seconds(pid).is_some());
        assert!(super::status_bytes(pid, "VmRSS").is_some_and(|b| b > 0));
        assert!(super::status_bytes(pid, "NoSuchKey").is_none());
    }

    #[test]
    fn a_busy_thread_is_counted_under_its_name_without_its_number() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sys-test-spin-7".into())
            .spawn(move || {
                let mut n = 0u64;
                while !spinning.load(Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
            .unwrap();
        let pid = std::process::id();
        // At least one clock tick of CPU shows within a few seconds of spinning.
        let mut seen = 0.0;
        for _ in 0..500 {
            seen = super::cpu_seconds_by_thread(pid)
                .get("sys-test-spin")
                .copied()
                .unwrap_or(0.0);
            if seen > 0.0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        assert!(seen > 0.0, "{:?}", super::cpu_seconds_by_thread(pid));
    }
}
