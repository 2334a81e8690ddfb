//! Property tests of the shard log: random batches, marks and restarts against a model of what
//! must be pending; random damage to the files never makes opening panic or invent records.
mod wal_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use router::wal::{Log, Mark, RecordId, ShardLog, WalConfig};
use wal_support::{append_durably, replay, Msg};

const DESTS: [&str; 4] = ["PAS", "LAB", "RAD", "PHARM"];

#[derive(Debug, Clone)]
enum Op {
    /// (destination count, message length) per record.
    Append(Vec<(usize, usize)>),
    /// (which known record, which destination), reduced modulo what exists when it runs.
    Mark(Vec<(usize, u16)>),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((1..=4usize, 0..700usize), 1..6).prop_map(Op::Append),
        3 => prop::collection::vec((any::<usize>(), 0..5u16), 1..8).prop_map(Op::Mark),
        1 => Just(Op::Reopen),
    ]
}

fn open(dir: &Path, config: &WalConfig) -> ShardLog {
    let (log, recovery) = ShardLog::open(dir, config.clone()).unwrap();
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    log
}

/// Model: every record ever appended, with its destinations still pending.
type Model = BTreeMap<u64, (Msg, Vec<u16>)>;

fn check(log: &ShardLog, model: &Model) {
    let expected: Vec<_> = model
        .iter()
        .filter(|(_, (_, pending))| !pending.is_empty())
        .map(|(&id, (msg, pending))| msg.pending(RecordId(id), pending))
        .collect();
    assert_eq!(replay(log), expected);
    assert_eq!(log.usage().pending_records, expected.len() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn pending_after_batches_marks_and_restarts_matches_the_model(
        ops in prop::collection::vec(op(), 1..25),
        segment_bytes in 1500u64..6000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes, budget_bytes: u64::MAX, preallocate: false };
        let mut log = open(dir.path(), &config);
        let mut model = Model::new();
        let mut n = 0u64;
        for op in ops {
            match op {
                Op::Append(shape) => {
                    let msgs: Vec<Msg> = shape
                        .iter()
                        .map(|&(d, len)| {
                            n += 1;
                            Msg::new(n, &DESTS[..d], len)
                        })
                        .collect();
                    let a = append_durably(&mut log, &msgs).unwrap();
                    for (id, msg) in a.ids().zip(msgs) {
                        let all = (0..msg.dests.len() as u16).collect();
                        prop_assert!(model.insert(id.0, (msg, all)).is_none(), "id {id} reused");
                    }
                }
                Op::Mark(picks) => {
                    let ids: Vec<u64> = model.keys().copied().collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let marks: Vec<Mark> = picks
                        .iter()
                        .map(|&(r, d)| Mark { record: RecordId(ids[r % ids.len()]), destination: d })
                        .collect();
                    let mut applied = 0;
                    for m in &marks {
                        let (_, pending) = model.get_mut(&m.record.0).unwrap();
                        if let Some(i) = pending.iter().position(|&p| p == m.destination) {
                            pending.remove(i);
                            applied += 1;
                        }
                    }
                    let out = log.mark_done(&marks).unwrap();
                    prop_assert_eq!(out.applied, applied);
                    prop_assert_eq!(out.ignored, marks.len() - applied);
                }
                Op::Reopen => {
                    drop(log);
                    log = open(dir.path(), &config);
                    check(&log, &model);
                }
            }
        }
        check(&log, &model);
        drop(log);
        let log = open(dir.path(), &config);
        check(&log, &model);
        // Done records only survive in segments that still hold pending ones (or the one
        // being written): a log with nothing pending keeps at most its active segment.
        if model.values().all(|(_, p)| p.is_empty()) {
            prop_assert!(wal_support::segments(dir.path()).len() <= 1);
        }
    }
}

/// A log of several segments with marks, built once; each case damages a fresh copy.
fn base() -> &'static (tempfile::TempDir, BTreeMap<u64, Msg>) {
    static BASE: OnceLock<(tempfile::TempDir, BTreeMap<u64, Msg>)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            segment_bytes: 2048,
            budget_bytes: u64::MAX,
            preallocate: false,
        };
        let (mut log, _) = ShardLog::open(dir.path(), config).unwrap();
        let mut all = BTreeMap::new();
        for b in 0..6u64 {
            let msgs: Vec<Msg> = (0..3)
                .map(|k| {
                    Msg::new(
                        b * 3 + k,
                        &DESTS[..1 + (k as usize % 3)],
                        150 + 37 * k as usize,
                    )
                })
                .collect();
            let a = append_durably(&mut log, &msgs).unwrap();
            all.extend(a.ids().map(|id| id.0).zip(msgs));
        }
        let marks: Vec<Mark> = (0..18)
            .step_by(4)
            .map(|r| Mark {
                record: RecordId(r),
                destination: 0,
            })
            .collect();
        log.mark_done(&marks).unwrap();
        (dir, all)
    })
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal" || e == "marks"))
        .collect();
    files.sort();
    files
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, xor: u8 },
    Truncate { at: usize },
    Garbage { at: usize, bytes: Vec<u8> },
    Zero { at: usize, len: usize },
}

fn damage() -> impl Strategy<Value = (usize, Damage)> {
    let d = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Damage::Flip { at, xor }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Damage::Garbage { at, bytes }),
        (any::<usize>(), 1..300usize).prop_map(|(at, len)| Damage::Zero { at, len }),
    ];
    (any::<usize>(), d)
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
    match d {
        Damage::Flip { at, xor } => {
            if !bytes.is_empty() {
                let i = pos(*at, bytes.len());
                bytes[i] ^= xor;
            }
        }
        Damage::Truncate { at } => bytes.truncate(pos(*at, bytes.len() + 1)),
        Damage::Garbage { at, bytes: g } => {
            let i = pos(*at, bytes.len() + 1);
            bytes.splice(i..i, g.iter().copied());
        }
        Damage::Zero { at, len } => {
            let i = pos(*at, bytes.len() + 1);
            let end = (i + len).min(bytes.len());
            bytes[i..end].fill(0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn damaged_files_never_panic_open_nor_invent_records(
        damages in prop::collection::vec(damage(), 1..5),
    ) {
        let (base_dir, originals) = base();
        let dir = tempfile::tempdir().unwrap();
        let files = log_files(base_dir.path());
        for f in &files {
            fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        for (which, d) in &damages {
            let target = dir.path().join(files[which % files.len()].file_name().unwrap());
            let mut bytes = fs::read(&target).unwrap();
            apply(&mut bytes, d);
            fs::write(&target, bytes).unwrap();
        }
        for _ in 0..2 {
            let (log, _recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
            for rec in log.replay() {
                let rec = rec.unwrap();
                let original = originals.get(&rec.id.0);
                prop_assert!(original.is_some(), "record {} was never appended", rec.id);
                let original = original.unwrap(); // checked just above
                prop_assert_eq!(&rec.message, &original.message);
                prop_assert_eq!(&rec.origin, &original.origin);
                prop_assert_eq!(&rec.destinations, &original.dests);
                prop_assert!(rec.pending.iter().all(|&p| usize::from(p) < original.dests.len()));
            }
        }
    }
}
