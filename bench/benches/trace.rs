//! The message trace: what recording costs a shard per message, and how long a lookup takes
//! in an index of 10,000,000 messages.
//!
//! `record`: one "received" entry (PID-3 hashed under the key, a 1.8 KB ADT^A01) and one
//! "delivered" outcome into a shard's buffer, with the buffer handed to a draining thread as
//! the shard would; `write`: what the writer thread then spends per message (checksums, keys,
//! the write). `lookup`: by control id and by patient id (whose outcomes are then found by
//! each message's key) in an index of 10 M messages, 20 M entries, 256 Ki entries a file. The
//! index is built once under `target/bench-trace` and reused (delete it to build again).
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bench::fixtures;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use router::pipeline::{Accepted, Delivery, MessageKind as PipelineKind, RecordRef};
use router::shard::room::QueueCount;
use router::trace::entry::{
    encode_outcome, encode_received, MessageKind, MessageRef, NewOutcome, NewReceived, What,
};
use router::trace::hash::{self, PatientKey};
use router::trace::index::{Limits, Writer};
use router::trace::query::{self, Query};
use router::trace::recorder::Recorder;
use router::wal::RecordId;

const MESSAGES: u64 = 10_000_000;
/// Messages per patient in the built index.
const PER_PATIENT: u64 = 5;
const KEY: [u8; 16] = [42; 16];

fn accepted(bytes: &[u8]) -> Arc<Accepted> {
    let at = memchr_control_id(bytes);
    Arc::new(Accepted {
        seq: 1,
        kind: PipelineKind::Hl7v2,
        bytes: bytes.into(),
        control_id: at,
        soap_action: None,
        arrived: SystemTime::now(),
        listener: Arc::from("pas-in"),
        peer: Arc::from("10.20.30.40:51234"),
    })
}

/// MSH-10's place, found as the router's codec would.
fn memchr_control_id(bytes: &[u8]) -> std::ops::Range<usize> {
    let message = codecs::hl7v2::Message::parse(bytes).expect("fixture parses");
    let id = message.msh().control_id().unwrap_or_default();
    message
        .offset_of(id)
        .map_or(0..0, |start| start..start + id.len())
}

fn record(c: &mut Criterion) {
    let (sink, chunks) = std::sync::mpsc::channel::<Vec<u8>>();
    let drain = std::thread::spawn(move || chunks.iter().map(|c| c.len()).sum::<usize>());
    let recorder = Recorder::new(sink, Arc::new(PatientKey::from_bytes(&KEY)));
    let message = accepted(&fixtures::adt_a01());
    let delivery = Delivery {
        message: Arc::clone(&message),
        endpoint: Arc::from("epr-main"),
        queued: Arc::new(QueueCount::default()),
        record: Some(RecordRef {
            log: 0,
            id: RecordId(123_456),
            destination: 0,
        }),
        held: false,
        settle: None,
    };
    let at = MessageRef {
        log: 0,
        record: 123_456,
    };
    let mut group = c.benchmark_group("trace");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record received + delivered (ns/msg)", |b| {
        b.iter(|| {
            recorder.received(black_box(&message), at, &["admissions"], &["epr-main"]);
            recorder.outcome(black_box(&delivery), What::Delivered, "AA", None);
        })
    });
    group.bench_function("hash PID-3 (two repetitions)", |b| {
        let key = PatientKey::from_bytes(&KEY);
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            key.pid3(black_box(&message.bytes), &mut out, 4);
            out.len()
        })
    });
    drop(recorder);
    drop(group);
    let _ = drain.join();

    // The writer thread's share, per message: one chunk of 400 messages at a time.
    let dir = tempdir("write");
    let mut writer = Writer::open(&dir, Limits::default(), Duration::from_secs(86_400)).unwrap();
    let mut chunk = Vec::new();
    let mut n = 0u64;
    let key = PatientKey::from_bytes(&KEY);
    let mut group = c.benchmark_group("trace");
    group.throughput(Throughput::Elements(400));
    group.bench_function("writer thread, 400 messages", |b| {
        b.iter(|| {
            chunk.clear();
            for _ in 0..400 {
                n += 1;
                entries(
                    &mut chunk,
                    n,
                    unix_now(),
                    &[key.patient(patient(n).as_bytes())],
                );
            }
            writer.append(&mut chunk).unwrap();
        })
    });
    drop(group);
    let _ = writer.close();
    let _ = std::fs::remove_dir_all(&dir);
}

fn unix_now() -> u64 {
    router::ingress::accept::unix_nanos(SystemTime::now())
}

fn tempdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-trace")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn control_id(n: u64) -> String {
    format!("MSG{n:010}")
}

fn patient(n: u64) -> String {
    // A patient's messages are spread over the whole day, so a lookup reads several files.
    format!("{:010}", 9_000_000_000 + n % (MESSAGES / PER_PATIENT))
}

/// Message `n`'s "received" and "delivered" entries, as a shard writes them.
fn entries(out: &mut Vec<u8>, n: u64, time: u64, patients: &[u64]) {
    let id = control_id(n);
    let message = MessageRef { log: 0, record: n };
    encode_received(
        out,
        &NewReceived {
            time_unix_nanos: time,
            message,
            kind: MessageKind::Hl7v2,
            id_hash: hash::control_id(id.as_bytes()),
            patient_hashes: patients,
            control_id: &id,
            listener: "pas-in",
            peer: "10.20.30.40:51234",
            rules: &["admissions"],
            destinations: &["epr-main"],
        },
    );
    encode_outcome(
        out,
        &NewOutcome {
            time_unix_nanos: time + 1_000_000,
            message,
            id_hash: hash::control_id(id.as_bytes()),
            what: What::Delivered,
            endpoint: "epr-main",
            detail: "AA",
            dead_letter: None,
            control_id: &id,
        },
    );
}

/// The 10 M-message index, built once: a day of traffic at about 116 messages a second.
fn built_index() -> PathBuf {
    let dir = tempdir("lookup-10M");
    let done = dir.join("built");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let started = std::time::Instant::now();
    let mut writer =
        Writer::open(&dir, Limits::default(), Duration::from_secs(30 * 86_400)).unwrap();
    let key = PatientKey::from_bytes(&KEY);
    let day = 86_400_000_000_000u64;
    let start = unix_now() - day;
    let mut chunk = Vec::with_capacity(1 << 20);
    for n in 0..MESSAGES {
        entries(
            &mut chunk,
            n,
            start + n * (day / MESSAGES),
            &[key.patient(patient(n).as_bytes())],
        );
        if chunk.len() >= 1 << 20 {
            writer.append(&mut chunk).unwrap();
            chunk.clear();
        }
    }
    writer.append(&mut chunk).unwrap();
    writer.close().unwrap();
    std::fs::write(&done, b"").unwrap();
    eprintln!(
        "built a {MESSAGES}-message trace index in {:.1?}",
        started.elapsed()
    );
    dir
}

fn lookup(c: &mut Criterion) {
    let dir = built_index();
    let writer = Writer::open(&dir, Limits::default(), Duration::from_secs(30 * 86_400)).unwrap();
    let index = writer.index();
    let key = PatientKey::from_bytes(&KEY);
    let mut group = c.benchmark_group("trace lookup, 10M messages");
    let mut n = 0u64;
    group.bench_function("by control id", |b| {
        b.iter(|| {
            // Spread over the whole index, so each lookup touches other pages.
            n = (n + 7_654_321) % MESSAGES;
            let query = Query::Id {
                id: control_id(n),
                from: 0,
                to: u64::MAX,
            };
            let (found, _) = query::run(&index, &key, &query, 100).unwrap();
            assert_eq!(found.len(), 1);
            found
        })
    });
    group.bench_function("by patient id (5 messages with their outcomes)", |b| {
        b.iter(|| {
            n = (n + 7_654_321) % MESSAGES;
            let query = Query::Patient {
                id: patient(n),
                from: 0,
                to: u64::MAX,
            };
            let (found, _) = query::run(&index, &key, &query, 100).unwrap();
            assert_eq!(found.len(), PER_PATIENT as usize);
            assert!(found.iter().all(|m| m.outcomes.len() == 1));
            found
        })
    });
    drop(group);
    let _ = writer.close();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = record, lookup
}
criterion_main!(benches);
