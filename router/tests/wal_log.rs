//! The shard log over real files: round trips, order, fan-out marks, segment roll-over and
//! deletion, the disk budget, and a disk that fills up (a small tmpfs).
mod wal_support;

use std::fs;

use router::wal::{DiskBudget, Log, Mark, RecordId, ShardLog, WalConfig, WalError};
use wal_support::{append, append_durably, replay, segments, Msg, SmallDisk};

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

/// A real full disk: a 256 KiB tmpfs. Needs root (mount); skipped loudly elsewhere. The
/// same path without a real disk is the unit test with a read-only segment file.
#[test]
fn a_full_disk_is_an_error_of_its_own_and_the_log_reopens_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let Some(_disk) = SmallDisk::mount(&mnt, 256, "a_full_disk_is_an_error_of_its_own") else {
        return;
    };

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

fn mark_all(log: &mut ShardLog) {
    let marks: Vec<Mark> = log
        .pending_ids()
        .into_iter()
        .map(|id| mark(id, 0))
        .collect();
    log.mark_done(&marks).unwrap();
}

/// Appends single messages until one is refused; returns how many went in and the refusal.
fn fill(log: &mut ShardLog, from: u64, len: usize) -> (u64, WalError) {
    for i in from.. {
        if let Err(e) = append_durably(log, &[Msg::new(i, &["E"], len)]) {
            return (i - from, e);
        }
        assert!(i - from < 100_000, "the log never filled");
    }
    unreachable!()
}

/// A budget smaller than one segment: the active segment never fills, so it was never sealed
/// and never deleted, and the log stayed full after everything was delivered.
#[test]
fn a_budget_smaller_than_a_segment_is_freed_once_the_records_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        budget_bytes: 20_000,
        ..WalConfig::default()
    };
    let mut log = open(dir.path(), &config);
    let (stored, err) = fill(&mut log, 0, 900);
    assert!(matches!(err, WalError::BudgetExceeded { .. }), "{err}");
    assert!(stored >= 15, "{stored}");
    mark_all(&mut log);
    // Done, and refused before: the active segment goes as soon as its last record is done.
    assert!(segments(dir.path()).is_empty());
    assert_eq!(log.budget().used(), 0);
    let (again, _) = fill(&mut log, 1000, 900);
    assert_eq!(again, stored, "the whole budget is usable again");
    // A reopened log goes on numbering after what it deleted.
    mark_all(&mut log);
    drop(log);
    let mut log = open(dir.path(), &config);
    let next = append_durably(&mut log, &[Msg::new(0, &["E"], 10)]).unwrap();
    assert_eq!(next.first, RecordId(2 * stored));
}

/// Shards share one budget: what one log holds, another may not take.
#[test]
fn logs_sharing_a_budget_count_each_others_bytes() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let budget = DiskBudget::new(30_000);
    let config = WalConfig::default();
    let (mut a, _) = ShardLog::open_shared(a_dir.path(), config.clone(), budget.clone()).unwrap();
    let (mut b, _) = ShardLog::open_shared(b_dir.path(), config.clone(), budget.clone()).unwrap();
    let mut stored = 0;
    for i in 0..20 {
        append_durably(&mut a, &[Msg::new(i, &["E"], 900)]).unwrap();
        stored += 1;
    }
    let (in_b, err) = fill(&mut b, 100, 900);
    assert!(
        matches!(err, WalError::BudgetExceeded { budget: 30_000, .. }),
        "{err}"
    );
    assert_eq!(stored + in_b, 30_000 / a.usage().used_bytes.div_ceil(20));
    assert!(a.would_exceed_budget(1000) && b.would_exceed_budget(1000));
    // Delivering a's records makes room for b.
    mark_all(&mut a);
    append_durably(&mut b, &[Msg::new(999, &["E"], 900)]).unwrap();
    // A log opened later counts what it finds on disk.
    drop(a);
    let (_a, _) = ShardLog::open_shared(a_dir.path(), config, budget.clone()).unwrap();
    assert_eq!(budget.used(), b.usage().used_bytes);
}

/// The spare counts against the budget while it is made, and is not made when the budget has
/// no room for it and a segment of appends.
#[test]
fn a_spare_segment_counts_against_the_budget() {
    let seg = 16u64 << 10;
    for (budget, spare_expected) in [(seg * 4, true), (seg + seg / 2, false)] {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            segment_bytes: seg,
            budget_bytes: budget,
            preallocate: true,
        };
        let mut log = open(dir.path(), &config);
        append_durably(&mut log, &[Msg::new(0, &["E"], 100)]).unwrap();
        let records = log.usage().used_bytes;
        match spare_expected {
            true => assert_eq!(log.budget().used(), records + seg, "budget {budget}"),
            false => assert_eq!(log.budget().used(), records, "budget {budget}"),
        }
        // Filled to its end, the log takes the spare and its zeros are not counted twice.
        let (_, err) = fill(&mut log, 1, 700);
        assert!(matches!(err, WalError::BudgetExceeded { .. }), "{err}");
        assert!(log.budget().used() <= budget, "budget {budget}");
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.ends_with(".wal") || name.ends_with(".marks") || name == "next.spare"
            })
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(
            on_disk <= budget,
            "{on_disk} bytes on disk, budget {budget}"
        );
    }
}

/// A disk smaller than a segment: once the records in it are done, the active segment is
/// deleted and appends go on, without reopening the log.
#[test]
fn a_full_disk_frees_the_finished_active_segment_and_appends_again() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let Some(_disk) = SmallDisk::mount(&mnt, 512, "a_full_disk_frees_the_finished_active") else {
        return;
    };
    let shard = mnt.join("shard-0");
    let config = WalConfig {
        budget_bytes: u64::MAX,
        preallocate: true,
        ..WalConfig::default()
    };
    let mut log = open(&shard, &config);
    let (stored, err) = fill(&mut log, 0, 4000);
    assert!(matches!(err, WalError::NoSpace { .. }), "{err}");
    assert!(stored > 50, "{stored}");
    // The marks themselves find no room on disk; they take effect all the same.
    let marks: Vec<Mark> = log
        .pending_ids()
        .into_iter()
        .map(|id| mark(id, 0))
        .collect();
    let _ = log.mark_done(&marks);
    assert!(log.pending_ids().is_empty());
    let (again, err) = fill(&mut log, 10_000, 4000);
    assert!(matches!(err, WalError::NoSpace { .. }), "{err}");
    assert!(again + 2 >= stored, "{again} after, {stored} before");
}
