//! The write-ahead log on this machine's disk: one shard, 1 KB messages.
//!
//! - group commit, inline: append a batch, fdatasync, repeat (batches of 1, 16, 64, 256);
//! - group commit, pipelined: one thread appends while another runs the commits one at a time,
//!   as a shard and its fsync thread do; the batch is whatever arrived during the last fsync;
//! - append alone: the event-loop side of an append (encode + CRC + one pwrite), no fsync;
//! - fsync latency of single-message batches (p50, p99) and the CPU of one such commit, into a
//!   segment that grows and into one written full of zeros ahead of time (as the router's are);
//! - raw fdatasync after a 1 KB write that grows the file vs one into a pre-zeroed file, which
//!   is what preallocation would buy.
//!
//! A custom harness (not criterion) because the figures wanted are throughputs under fsync and
//! latency percentiles; every figure is the median of 3 runs. The log lives in
//! `$GANGLION_BENCH_DIR` or the temp dir, which must be on the disk being measured.
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use router::wal::{Commit, Log, Mark, NewRecord, Origin, RecordId, ShardLog, WalConfig};

const RUNS: usize = 3;

fn message() -> Vec<u8> {
    let mut m = bench::fixtures::adt_a01();
    m.resize(1024, b'X');
    m
}

fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("GANGLION_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("ganglion-wal-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(dir: &Path) -> ShardLog {
    let config = WalConfig {
        budget_bytes: u64::MAX,
        ..WalConfig::default()
    };
    ShardLog::open(dir, config).expect("bench log opens").0
}

/// A log as the router's shards open it: segments written full of zeros ahead of time, the
/// first one's spare begun at once and waited for here.
fn open_preallocated(dir: &Path) -> ShardLog {
    let config = WalConfig {
        budget_bytes: u64::MAX,
        preallocate: true,
        ..WalConfig::default()
    };
    let mut log = ShardLog::open(dir, config).expect("bench log opens").0;
    log.prepare_for_appends();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.spare_is_ready() {
        assert!(
            Instant::now() < deadline,
            "the spare was not written in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    log
}

fn batch<'a>(msg: &'a [u8], dests: &'a [&'a str], n: usize, arrival: u64) -> Vec<NewRecord<'a>> {
    (0..n)
        .map(|i| NewRecord {
            destinations: dests,
            origin: Origin {
                listener: "mllp-in",
                peer: "10.0.0.7:51234",
                arrival_unix_nanos: arrival + i as u64,
                control_id: "MSG00017342",
            },
            parsed: Default::default(),
            message: msg,
        })
        .collect()
}

/// Marks every record done so that finished segments are deleted as they would be in service.
fn deliver(log: &mut ShardLog, upto: u64, from: &mut u64) {
    let marks: Vec<Mark> = (*from..upto)
        .map(|r| Mark {
            record: RecordId(r),
            destination: 0,
        })
        .collect();
    log.mark_done(&marks).expect("marks");
    *from = upto;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn inline(msg: &[u8], size: usize, total: usize, marks: bool) -> f64 {
    let dir = scratch("inline");
    let mut log = open(&dir);
    let dests = ["PAS"];
    let records = batch(msg, &dests, size, 0);
    let mut delivered = 0;
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        let a = log.append(&records).expect("append");
        log.commit().expect("a commit").run().expect("fsync");
        n += size;
        if marks {
            deliver(&mut log, a.first.0 + u64::from(a.count), &mut delivered);
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// Returns (messages/s, mean messages per commit).
fn pipelined(msg: &[u8], size: usize, total: usize) -> (f64, f64) {
    let dir = scratch("pipelined");
    let mut log = open(&dir);
    let dests = ["PAS"];
    let records = batch(msg, &dests, size, 0);
    let (to_sync, jobs) = mpsc::channel::<Commit>();
    let (done_tx, done) = mpsc::channel::<()>();
    let syncer = std::thread::spawn(move || {
        for job in jobs {
            job.run().expect("fsync");
            if done_tx.send(()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let (mut n, mut commits, mut in_flight, mut delivered) = (0, 0u64, false, 0);
    while n < total {
        let a = log.append(&records).expect("append");
        n += size;
        if in_flight && done.try_recv().is_ok() {
            in_flight = false;
        }
        if !in_flight {
            if let Some(c) = log.commit() {
                to_sync.send(c).expect("sync thread");
                in_flight = true;
                commits += 1;
            }
        }
        deliver(&mut log, a.first.0 + u64::from(a.count), &mut delivered);
    }
    if in_flight {
        done.recv().expect("last commit");
    }
    if let Some(c) = log.commit() {
        c.run().expect("fsync");
        commits += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(to_sync);
    syncer.join().expect("sync thread");
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    (rate, n as f64 / commits as f64)
}

/// Nanoseconds per message of append alone (page cache, no fsync).
fn append_only(msg: &[u8], size: usize, total: usize) -> f64 {
    let dir = scratch("append");
    let mut log = open(&dir);
    let dests = ["PAS"];
    let records = batch(msg, &dests, size, 0);
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        log.append(&records).expect("append");
        n += size;
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    ns
}

/// CPU time this thread has used; fdatasync runs in the calling thread, so its kernel work is
/// counted here (what a device or journal thread does on its behalf is not).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Latencies of one-message commits, sorted, and the CPU time of one commit on average; into
/// a segment that grows, or (`spare`) one written full of zeros ahead of time.
fn commit_latency(msg: &[u8], samples: usize, spare: bool) -> (Vec<Duration>, Duration) {
    let dir = scratch("latency");
    let mut log = match spare {
        true => open_preallocated(&dir),
        false => open(&dir),
    };
    let dests = ["PAS"];
    let records = batch(msg, &dests, 1, 0);
    let mut out = Vec::with_capacity(samples);
    let mut cpu = Duration::ZERO;
    for _ in 0..samples {
        log.append(&records).expect("append");
        let c = log.commit().expect("a commit");
        let (t, on_cpu) = (Instant::now(), thread_cpu());
        c.run().expect("fsync");
        cpu += thread_cpu() - on_cpu;
        out.push(t.elapsed());
    }
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    out.sort();
    (out, cpu / samples.max(1) as u32)
}

/// fdatasync latency after a 1 KB pwrite: appending (file grows) or into pre-zeroed space.
fn raw_fsync(prezeroed: bool, samples: usize) -> Vec<Duration> {
    let dir = scratch("raw");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("f");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("file");
    let block = vec![0u8; 1 << 20];
    if prezeroed {
        let mb = (samples * 1024).div_ceil(1 << 20) as u64;
        for i in 0..mb {
            f.write_all_at(&block, i << 20).expect("zero fill");
        }
        f.sync_all().expect("fsync");
    }
    let data = vec![7u8; 1024];
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        f.write_all_at(&data, (i * 1024) as u64).expect("write");
        let t = Instant::now();
        f.sync_data().expect("fdatasync");
        out.push(t.elapsed());
    }
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
    out.sort();
    out
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this as a quick smoke test.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = if quick { 50 } else { 1 };
    let msg = message();
    println!("wal bench: 1 KB messages, one shard, median of {RUNS} runs");

    for size in [1usize, 16, 64, 256] {
        let total = (if size == 1 { 4_000 } else { 40_000 }) / scale;
        let total = total.max(size);
        let r = median(
            (0..RUNS)
                .map(|_| inline(&msg, size, total, false))
                .collect(),
        );
        let m = median((0..RUNS).map(|_| inline(&msg, size, total, true)).collect());
        println!(
            "group commit inline     batch {size:>3}: {r:>9.0} msgs/s; with delivery marks {m:>9.0}"
        );
    }
    for size in [1usize, 16, 64] {
        let total = (40_000 / scale).max(size);
        let runs: Vec<(f64, f64)> = (0..RUNS).map(|_| pipelined(&msg, size, total)).collect();
        let r = median(runs.iter().map(|r| r.0).collect());
        let per = median(runs.iter().map(|r| r.1).collect());
        println!(
            "group commit pipelined  append {size:>3}: {r:>9.0} msgs/s ({per:.0} msgs per fsync)"
        );
    }
    let ns = median(
        (0..RUNS)
            .map(|_| append_only(&msg, 64, 100_000 / scale))
            .collect(),
    );
    println!("append alone (no fsync) batch  64: {ns:>9.0} ns/msg");

    let samples = 2_000 / scale;
    for (name, spare) in [("growing segment", false), ("into the spare", true)] {
        let runs: Vec<(Vec<Duration>, Duration)> = (0..RUNS)
            .map(|_| commit_latency(&msg, samples, spare))
            .collect();
        let p50 = median(runs.iter().map(|(l, _)| us(percentile(l, 0.5))).collect());
        let p99 = median(runs.iter().map(|(l, _)| us(percentile(l, 0.99))).collect());
        let cpu = median(runs.iter().map(|(_, cpu)| us(*cpu)).collect());
        // At low rates every message is a commit of its own: this CPU is the least a durable
        // message costs beyond what a relay without a disk pays.
        println!(
            "commit of 1 message, {name:<15}: p50 {p50:.0} us, p99 {p99:.0} us; CPU {cpu:.1} us per commit"
        );
    }

    for (name, zeroed) in [("growing file", false), ("pre-zeroed file", true)] {
        let lat: Vec<Vec<Duration>> = (0..RUNS).map(|_| raw_fsync(zeroed, samples)).collect();
        let p50 = median(lat.iter().map(|l| us(percentile(l, 0.5))).collect());
        let p99 = median(lat.iter().map(|l| us(percentile(l, 0.99))).collect());
        println!("raw 1 KB write + fdatasync, {name:<15}: p50 {p50:.0} us, p99 {p99:.0} us");
    }
}
