//! `ganglion wal inspect` and `ganglion wal replay` (the real binary) on a shard directory
//! whose recovery set bytes aside: what quarantine holds is listed with offsets, and its
//! intact records can be put back in the log.
mod wal_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use router::wal::{shard_dir, DamageKind, Log, Mark, RecordId, ShardLog, WalConfig};
use wal_support::{append_durably, quarantined, replay, segments, Msg};

fn ganglion(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganglion"))
        .arg("wal")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Five records for EPR and LAB, EPR done with #1; then the segment's bytes appended to it
/// again (intact records out of order: Foreign, copied aside and cut) and a stray file named
/// like a segment (moved aside whole). Returns the messages and the quarantined files.
fn incident(data: &Path) -> (Vec<Msg>, Vec<std::path::PathBuf>) {
    let dir = shard_dir(data, 0);
    let msgs: Vec<Msg> = (0..5).map(|i| Msg::new(i, &["EPR", "LAB"], 300)).collect();
    let (mut log, _) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    append_durably(&mut log, &msgs).unwrap();
    log.mark_done(&[Mark {
        record: RecordId(1),
        destination: 0,
    }])
    .unwrap();
    drop(log);
    let seg = segments(&dir).remove(0);
    let bytes = fs::read(&seg).unwrap();
    fs::write(&seg, [bytes.as_slice(), &bytes].concat()).unwrap();
    fs::write(
        dir.join("00000000000000000003.wal"),
        b"not a segment at all",
    )
    .unwrap();
    let (_log, recovery) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    let kinds: Vec<DamageKind> = recovery.damage.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [DamageKind::Foreign, DamageKind::Foreign],
        "{:?}",
        recovery.damage
    );
    (msgs, quarantined(&dir))
}

#[test]
fn inspect_lists_segments_records_marks_and_quarantine_with_offsets() {
    let data = tempfile::tempdir().unwrap();
    let (msgs, saved) = incident(data.path());
    let dir = shard_dir(data.path(), 0);
    // Reading only: it works while the log is open (locked) elsewhere.
    let (held, _) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    let d = data.path().to_str().unwrap();
    let out = ganglion(&["inspect", "--data-dir", d, "--records"]);
    drop(held);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let seg_len: u64 = fs::metadata(&segments(&dir)[0]).unwrap().len();
    for want in [
        "shard-0 ".to_string(),
        format!("segment 00000000000000000000.wal: {seg_len} bytes, 5 record(s) #0..#4"),
        "marks 00000000000000000000.marks: 1 entries, 0 damaged".to_string(),
        "control id CTL1".to_string(),
        "EPR (done) LAB (pending)".to_string(),
        format!("quarantine/00000000000000000000.wal.foreign-{seg_len}: {seg_len} bytes, 5 intact record(s) (#0, #1, #2, #3, #4)"),
        "quarantine/00000000000000000003.wal: 20 bytes, 0 intact record(s)".to_string(),
    ] {
        assert!(listing.contains(&want), "missing {want:?} in\n{listing}");
    }
    // Record lines give offsets, the format and the kind, and never the message.
    let first = listing
        .lines()
        .find(|l| l.contains("#0 at byte 0 "))
        .unwrap();
    assert!(
        first.contains("format v2") && first.contains("HL7v2"),
        "{first}"
    );
    assert!(
        !listing.contains("MSH|"),
        "message content in the listing:\n{listing}"
    );
    assert_eq!(saved.len(), 2);
    assert_eq!(msgs.len(), 5);
}

#[test]
fn replay_puts_the_intact_records_of_a_quarantined_file_back() {
    let data = tempfile::tempdir().unwrap();
    let (msgs, saved) = incident(data.path());
    let dir = shard_dir(data.path(), 0);
    let d = data.path().to_str().unwrap();
    let copy = saved
        .iter()
        .find(|p| p.to_string_lossy().contains(".foreign-"))
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();

    // The same records are still pending in the log: nothing to put back.
    let out = ganglion(&["replay", "--data-dir", d, &copy]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).matches("the log still holds it").count(),
        5
    );

    // Delivered since; the copy is all that is left of them.
    let (mut log, _) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    let marks: Vec<Mark> = (0..5)
        .flat_map(|r| {
            (0..2).map(move |d| Mark {
                record: RecordId(r),
                destination: d,
            })
        })
        .collect();
    log.mark_done(&marks).unwrap();
    // Held: replay refuses, as it never writes beside a router.
    let out = ganglion(&["replay", "--data-dir", d, &copy]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("locked"),
        "{}",
        text(&out.stderr)
    );
    drop(log);

    let out = ganglion(&["replay", "--data-dir", d, "--dry-run", &copy]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("would replay").count(), 5);
    assert!(segments(&dir).is_empty(), "a dry run wrote");

    let out = ganglion(&[
        "replay",
        "--data-dir",
        d,
        "--record",
        "2",
        "--record",
        "4",
        &copy,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("replayed #2 (control id CTL2)"), "{said}");
    assert!(
        said.contains("into shard-0 as record #5, for EPR, LAB"),
        "{said}"
    );
    let (log, _) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    let back = replay(&log);
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].message, msgs[2].message);
    assert_eq!(back[1].message, msgs[4].message);
    assert_eq!(back[1].origin, msgs[4].origin);
    assert_eq!(back[1].parsed, msgs[4].parsed);
    assert_eq!(back[1].pending, [0, 1]);
    drop(log);

    // The budget applies: no room, nothing replayed, exit status 2.
    let out = ganglion(&["replay", "--data-dir", d, "--wal-budget-mib", "0", &copy]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("disk budget"),
        "{}",
        text(&out.stderr)
    );
}
