//! The shard log over real files: round trips, order, fan-out marks, segment roll-over and
//! deletion, the disk budget, and a disk that fills up (a small tmpfs).
mod wal_support;

use std::fs;

use router::wal::{Log, Mark, RecordId, ShardLog, WalConfig, WalError};
use wal_support::{append, append_durably, replay, segments, Msg};

fn open(dir: &std::path::Path, config: &WalConfig) -> ShardLog {
    let (log, recovery) = ShardLog::open(dir, config.clone()).expect("log opens");
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    log
}

fn mark(id: RecordId, destination: u16) -> Mark {
    Mark {
        record: id,
        destination,
    }
}

#[test]
fn records_come_back_byte_for_byte_in_order_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig::default();
    let msgs: Vec<Msg> = (0..5).map(|i| Msg::new(i, &["PAS", "LAB"], 300)).collect();
    let mut log = open(dir.path(), &config);
    let a = append_durably(&mut log, &msgs[..2]).unwrap();
    let b = append(&mut log, &msgs[2..]).unwrap();
    let commit = log.commit().expect("appended records await a commit");
    assert_eq!(commit.upto(), Some(RecordId(b.first.0 + 2)));
    // The commit is a plain value: run it on another thread, as a shard does.
    std::thread::spawn(move || commit.run())
        .join()
        .unwrap()
        .unwrap();
    assert!(log.commit().is_none(), "nothing left to make durable");
    assert_eq!(a.first, RecordId(0));
    assert_eq!(b.first, RecordId(2));
    drop(log);

    let log = open(dir.path(), &config);
    let expected: Vec<_> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| m.pending(RecordId(i as u64), &[0, 1]))
        .collect();
    assert_eq!(replay(&log), expected);
    assert_eq!(log.usage().pending_records, 5);
}

#[test]
fn preallocated_segments_hold_records_and_recover_without_damage() {
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 16 << 10;
    let config = WalConfig {
        segment_bytes,
        preallocate: true,
        ..WalConfig::default()
    };
    let msgs: Vec<Msg> = (0..400).map(|i| Msg::new(i, &["E"], 700)).collect();
    let mut log = open(dir.path(), &config);
    for (i, batch) in msgs.chunks(2).enumerate() {
        append_durably(&mut log, batch).unwrap();
        if i % 4 == 0 {
            // Give the spare's thread time to finish, as the seconds between rolls do in a
            // running router (a spare not ready in time is simply not used).
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    // Some segments were spares: written full of zeros to their whole size before use, so a
    // segment's records end before its file does.
    let full: Vec<_> = segments(dir.path())
        .into_iter()
        .filter(|f| fs::metadata(f).unwrap().len() == segment_bytes)
        .collect();
    assert!(!full.is_empty(), "no segment came from a spare");
    drop(log);

    // A spare waiting for the next roll is left over, as after a crash; reopening reports no
    // damage, replays everything, gives the unused space back and drops the leftover spare.
    let log = open(dir.path(), &config);
    let expected: Vec<_> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| m.pending(RecordId(i as u64), &[0]))
        .collect();
    assert_eq!(replay(&log), expected);
    for f in &full {
        let len = fs::metadata(f).unwrap().len();
        assert!(len < segment_bytes, "{f:?} kept its zeros: {len}");
    }
    assert!(!dir.path().join("next.spare").exists());
}

#[test]
fn a_fan_out_record_is_replayed_only_for_the_destination_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig::default();
    let msg = Msg::new(1, &["PAS", "LAB", "RAD"], 100);
    let mut log = open(dir.path(), &config);
    let id = append_durably(&mut log, std::slice::from_ref(&msg))
        .unwrap()
        .first;
    let out = log
        .mark_done(&[mark(id, 0), mark(id, 2), mark(id, 2)])
        .unwrap();
    assert_eq!((out.applied, out.ignored), (2, 1));
    drop(log);

    let mut log = open(dir.path(), &config);
    assert_eq!(replay(&log), [msg.pending(id, &[1])]);
    let rec = log.read(id).unwrap();
    assert_eq!(rec.pending_destinations().collect::<Vec<_>>(), [(1, "LAB")]);

    // The last destination done: the (sealed) segment and its marks go.
    let out = log.mark_done(&[mark(id, 1)]).unwrap();
    assert_eq!(out.segments_deleted, 1);
    assert!(segments(dir.path()).is_empty());
    assert!(wal_support::files_ending(dir.path(), ".marks").is_empty());
    assert!(log.pending_ids().is_empty());
    assert!(matches!(log.read(id), Err(WalError::UnknownRecord(_))));
}

#[test]
fn segments_roll_over_and_are_deleted_once_every_record_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        segment_bytes: 4096,
        ..WalConfig::default()
    };
    let msgs: Vec<Msg> = (0..20).map(|i| Msg::new(i, &["E"], 1000)).collect();
    let mut log = open(dir.path(), &config);
    for batch in msgs.chunks(3) {
        append_durably(&mut log, batch).unwrap();
    }
    let files = segments(dir.path());
    assert!(files.len() >= 5, "20 KB in 4 KiB segments: {files:?}");
    for f in &files {
        // A 3-record batch (~3.1 KB) never straddles: each file holds whole batches only.
        assert!(fs::metadata(f).unwrap().len() <= 4096, "{f:?}");
    }
    assert_eq!(log.usage().segments, files.len());

    // Everything done except record 19, which sits in the active segment.
    let marks: Vec<Mark> = (0..19).map(|i| mark(RecordId(i), 0)).collect();
    let out = log.mark_done(&marks).unwrap();
    assert_eq!(out.applied, 19);
    assert_eq!(out.segments_deleted, files.len() - 1);
    assert_eq!(segments(dir.path()), files[files.len() - 1..]);
    drop(log);

    let log = open(dir.path(), &config);
    assert_eq!(replay(&log), [msgs[19].pending(RecordId(19), &[0])]);
    // After a restart the log goes on from the next sequence number, in a new segment.
    let mut log = log;
    let next = append_durably(&mut log, &[Msg::new(20, &["E"], 10)]).unwrap();
    assert_eq!(next.first, RecordId(20));
    assert_eq!(segments(dir.path()).len(), 2);
}

#[test]
fn the_budget_refuses_a_batch_whole_and_frees_up_as_records_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        segment_bytes: 2048,
        budget_bytes: 6000,
        preallocate: false,
    };
    let mut log = open(dir.path(), &config);
    let mut appended = Vec::new();
    let err = loop {
        let batch = [Msg::new(appended.len() as u64, &["E"], 900)];
        match append_durably(&mut log, &batch) {
            Ok(a) => appended.push(a.first),
            Err(e) => break e,
        }
        assert!(appended.len() < 100, "the budget never bit");
    };
    assert!(
        matches!(err, WalError::BudgetExceeded { budget: 6000, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    let usage = log.usage();
    assert!(usage.used_bytes <= 6000);
    assert!(log.would_exceed_budget(1000));
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(
        on_disk, usage.used_bytes,
        "nothing of the refused batch on disk"
    );

    // Delivering the oldest records frees their segments, and appends go on.
    let marks: Vec<Mark> = appended.iter().map(|&id| mark(id, 0)).collect();
    log.mark_done(&marks).unwrap();
    assert!(!log.would_exceed_budget(1000));
    append_durably(&mut log, &[Msg::new(99, &["E"], 900)]).unwrap();
}

#[test]
fn records_the_format_cannot_hold_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &WalConfig::default());
    let good = Msg::new(0, &["E"], 50);
    let no_dest = Msg::new(1, &[], 50);
    let err = append(&mut log, &[good.clone(), no_dest]).unwrap_err();
    assert!(
        matches!(err, WalError::InvalidRecord { index: 1, .. }),
        "{err}"
    );
    assert!(segments(dir.path()).is_empty());
    assert_eq!(
        append_durably(&mut log, &[good]).unwrap().first,
        RecordId(0)
    );
}

/// A real full disk: a 256 KiB tmpfs. Needs root (mount); skipped with a note elsewhere. The
/// same path without a real disk is the unit test with a read-only segment file.
#[test]
fn a_full_disk_is_an_error_of_its_own_and_the_log_reopens_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?), skipped");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());

    let shard = mnt.join("shard-0");
    // As the router runs it, preallocation on: a filesystem this small gets no spare, since a
    // spare must leave room for appends.
    let config = WalConfig {
        segment_bytes: 64 << 20,
        budget_bytes: u64::MAX,
        preallocate: true,
    };
    let mut log = open(&shard, &config);
    let mut ok: Vec<Msg> = Vec::new();
    let mut i = 0;
    let err = loop {
        let batch: Vec<Msg> = (0..7).map(|k| Msg::new(i + k, &["E"], 1000)).collect();
        i += 7;
        match append_durably(&mut log, &batch) {
            Ok(_) => ok.extend(batch),
            Err(e) => break e,
        }
        assert!(i < 10_000, "the tmpfs never filled");
    };
    assert!(matches!(err, WalError::NoSpace { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        ok.len() > 100,
        "most of 256 KiB was usable: {} records",
        ok.len()
    );
    let len = fs::metadata(&segments(&shard)[0]).unwrap().len();
    assert_eq!(
        len,
        log.usage().used_bytes,
        "the half-written batch was cut off"
    );
    // The log is still usable: a batch small enough for what is left goes in right after the
    // last good record (or is refused whole).
    let small = [Msg::new(i, &["E"], 10)];
    if append_durably(&mut log, &small).is_ok() {
        ok.extend(small);
    }
    drop(log);

    let (log, recovery) = ShardLog::open(&shard, config).unwrap();
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    let back = replay(&log);
    assert_eq!(back.len(), ok.len());
    for (rec, msg) in back.iter().zip(&ok) {
        assert_eq!(rec.message, msg.message);
        assert_eq!(rec.origin, msg.origin);
    }
}
