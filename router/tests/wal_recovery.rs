//! Opening a log after a power cut or disk damage: real segment files cut or altered, then
//! opened; the good records must come back and the damage be saved aside and reported.
mod wal_support;

use std::fs;
use std::path::{Path, PathBuf};

use router::wal::{encoded_len, DamageKind, Log, Mark, NewRecord, RecordId, ShardLog, WalConfig};
use wal_support::{append_durably, quarantined, replay, segments, Msg};

/// Three records in one segment: the file's bytes, its name, and where each record starts.
fn three_records(dir: &Path) -> (Vec<Msg>, PathBuf, Vec<u8>, Vec<u64>) {
    let msgs: Vec<Msg> = (0..3)
        .map(|i| Msg::new(i, &["PAS", "LAB"], 120 + 40 * i as usize))
        .collect();
    let (mut log, _) = ShardLog::open(dir, WalConfig::default()).unwrap();
    for m in &msgs {
        append_durably(&mut log, std::slice::from_ref(m)).unwrap();
    }
    drop(log);
    let seg = segments(dir).remove(0);
    let bytes = fs::read(&seg).unwrap();
    // Record boundaries from the format's own sizes, not from a scan of the file.
    let mut starts = vec![0u64];
    for m in &msgs {
        let dests: Vec<&str> = m.dests.iter().map(String::as_str).collect();
        let rec = NewRecord {
            destinations: &dests,
            origin: m.origin.as_origin(),
            parsed: m.parsed.as_parsed(),
            message: &m.message,
        };
        starts.push(starts.last().unwrap() + encoded_len(&rec).unwrap());
    }
    assert_eq!(*starts.last().unwrap(), bytes.len() as u64);
    (msgs, seg, bytes, starts)
}

fn reset(dir: &Path, seg: &Path, bytes: &[u8]) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    fs::write(seg, bytes).unwrap();
}

#[test]
fn a_torn_last_record_is_cut_off_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg, bytes, starts) = three_records(dir.path());
    let last = starts[2];
    let two: Vec<_> = msgs[..2]
        .iter()
        .enumerate()
        .map(|(i, m)| m.pending(RecordId(i as u64), &[0, 1]))
        .collect();
    for len in last..=bytes.len() as u64 {
        reset(dir.path(), &seg, &bytes[..len as usize]);
        let (mut log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        let back = replay(&log);
        if len == last || len == bytes.len() as u64 {
            assert!(
                recovery.damage.is_empty(),
                "len {len}: {:?}",
                recovery.damage
            );
            assert_eq!(back.len(), if len == last { 2 } else { 3 });
        } else {
            assert_eq!(back, two, "len {len}");
            let [d] = recovery.damage.as_slice() else {
                panic!("len {len}: {:?}", recovery.damage)
            };
            assert_eq!(d.kind, DamageKind::TornTail);
            assert_eq!(
                (d.file.as_path(), d.offset, d.len),
                (seg.as_path(), last, len - last)
            );
            let saved = d.saved_to.as_ref().unwrap();
            assert_eq!(
                fs::read(saved).unwrap(),
                &bytes[last as usize..len as usize]
            );
            assert_eq!(quarantined(dir.path()), std::slice::from_ref(saved));
            assert_eq!(
                fs::metadata(&seg).unwrap().len(),
                last,
                "cut back to the good prefix"
            );
            // The log goes on after the cut: the lost record's number is given out again,
            // since it was never acknowledged.
            let next = append_durably(&mut log, &[Msg::new(9, &["E"], 10)]).unwrap();
            assert_eq!(next.first, RecordId(2));
        }
    }
}

#[test]
fn a_damaged_middle_record_is_quarantined_and_the_others_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg, bytes, starts) = three_records(dir.path());
    let (mid, end) = (starts[1] as usize, starts[2] as usize);
    // The magic, the length field, the CRC, a destination name, the message's last byte.
    for at in [mid, mid + 5, mid + 9, mid + 40, end - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5A;
        reset(dir.path(), &seg, &bad);
        let (log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        assert_eq!(
            replay(&log),
            [
                msgs[0].pending(RecordId(0), &[0, 1]),
                msgs[2].pending(RecordId(2), &[0, 1])
            ],
            "flip at {at}"
        );
        let [d] = recovery.damage.as_slice() else {
            panic!("flip at {at}: {:?}", recovery.damage)
        };
        assert_eq!(d.kind, DamageKind::Corrupt);
        assert_eq!(
            (d.file.as_path(), d.offset, d.len),
            (seg.as_path(), mid as u64, (end - mid) as u64)
        );
        assert!(d.to_string().contains(&format!("byte {mid}")), "{d}");
        let saved = d.saved_to.clone().unwrap();
        assert_eq!(fs::read(&saved).unwrap(), &bad[mid..end]);
        drop(log);

        // Reported again on the next open (the bytes are still in the segment), saved once.
        let (_log, again) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
        assert_eq!(again.damage, recovery.damage);
        assert_eq!(quarantined(dir.path()), [saved]);
    }
}

#[test]
fn a_segment_of_garbage_is_moved_aside_and_the_log_opens_empty() {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("00000000000000000007.wal");
    fs::write(&seg, b"\xA7GWR not a record at all").unwrap();
    let (mut log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(recovery.damage.len(), 1);
    // It begins like a record: this log's own first write, torn; moved aside whole.
    assert_eq!(recovery.damage[0].kind, DamageKind::TornTail);
    assert!(log.pending_ids().is_empty());
    assert!(!seg.exists());
    assert_eq!(
        quarantined(dir.path()),
        [recovery.damage[0].saved_to.clone().unwrap()]
    );
    assert_eq!(
        fs::read(&quarantined(dir.path())[0]).unwrap(),
        b"\xA7GWR not a record at all"
    );
    // Numbering goes on past the damaged segment's name.
    let a = append_durably(&mut log, &[Msg::new(0, &["E"], 10)]).unwrap();
    assert_eq!(a.first, RecordId(7));
}

#[test]
fn a_torn_marks_file_keeps_its_good_marks_and_stays_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<Msg> = (0..3).map(|i| Msg::new(i, &["A", "B"], 50)).collect();
    let (mut log, _) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    append_durably(&mut log, &msgs).unwrap();
    let m = |r, d| Mark {
        record: RecordId(r),
        destination: d,
    };
    log.mark_done(&[m(0, 0), m(1, 1)]).unwrap();
    drop(log);
    let marks = wal_support::files_ending(dir.path(), ".marks").remove(0);
    let mut bytes = fs::read(&marks).unwrap();
    bytes.extend_from_slice(&[1, 2, 3, 4, 5]); // a mark entry torn by a power cut
    fs::write(&marks, &bytes).unwrap();

    let (mut log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    log.mark_done(&[m(2, 0)]).unwrap();
    drop(log);
    let (log, _) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    let pending: Vec<(u64, Vec<u16>)> = replay(&log)
        .into_iter()
        .map(|r| (r.id.0, r.pending))
        .collect();
    assert_eq!(pending, [(0, vec![1]), (1, vec![0]), (2, vec![1])]);
}

/// The log as an incident left it: 3,006 acknowledged records, ~1.8 MB, in one segment.
fn big_segment(dir: &Path) -> (Vec<Msg>, PathBuf) {
    let msgs: Vec<Msg> = (0..3006).map(|i| Msg::new(i, &["EPR"], 600)).collect();
    let (mut log, _) = ShardLog::open(dir, WalConfig::default()).unwrap();
    for batch in msgs.chunks(200) {
        append_durably(&mut log, batch).unwrap();
    }
    drop(log);
    let seg = segments(dir).remove(0);
    (msgs, seg)
}

fn all_pending(msgs: &[Msg]) -> Vec<router::wal::PendingRecord> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| m.pending(RecordId(i as u64), &[0]))
        .collect()
}

#[test]
fn a_stray_empty_segment_file_cuts_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg) = big_segment(dir.path());
    let len = fs::metadata(&seg).unwrap().len();
    // Named inside the good segment's numbers: the next segment's name used to be taken as
    // where the good one must end.
    fs::write(dir.path().join("00000000000000000100.wal"), b"").unwrap();
    let (log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    assert_eq!(replay(&log), all_pending(&msgs));
    assert_eq!(fs::metadata(&seg).unwrap().len(), len);
    assert_eq!(segments(dir.path()), [seg]);
}

#[test]
fn a_foreign_file_named_like_a_segment_is_moved_aside_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg) = big_segment(dir.path());
    let stray = dir.path().join("00000000000000000100.wal");
    let foreign = b"rsync partial file, not a segment of this log".repeat(50);
    fs::write(&stray, &foreign).unwrap();
    let (log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(replay(&log), all_pending(&msgs));
    let [d] = recovery.damage.as_slice() else {
        panic!("{:?}", recovery.damage)
    };
    assert_eq!(d.kind, DamageKind::Foreign);
    assert_eq!(
        (d.file.as_path(), d.offset, d.len),
        (stray.as_path(), 0, foreign.len() as u64)
    );
    let saved = d.saved_to.as_ref().unwrap();
    assert_eq!(fs::read(saved).unwrap(), foreign);
    assert!(!stray.exists());
    assert_eq!(segments(dir.path()), [seg]);
}

#[test]
fn a_copy_of_a_segment_under_another_name_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg) = big_segment(dir.path());
    let copy = dir.path().join("00000000000000000050.wal");
    fs::copy(&seg, &copy).unwrap();
    let (mut log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(replay(&log), all_pending(&msgs));
    // The copy's first 50 records are not where its name says records start: kept aside.
    for d in &recovery.damage {
        assert_ne!(d.kind, DamageKind::TornTail, "{d}");
        assert_ne!(d.file, seg, "{d}");
    }
    // Numbering goes on after the last record, and marks find their records.
    let next = append_durably(&mut log, &[Msg::new(9999, &["EPR"], 10)]).unwrap();
    assert_eq!(next.first, RecordId(3006));
    let marks: Vec<Mark> = (0..3007)
        .map(|i| Mark {
            record: RecordId(i),
            destination: 0,
        })
        .collect();
    assert_eq!(log.mark_done(&marks).unwrap().applied, 3007);
    assert!(log.pending_ids().is_empty());
}

#[test]
fn intact_records_out_of_order_at_the_end_are_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg, bytes, _) = three_records(dir.path());
    // Records 0..2 once more, as if a second log's segment had been appended to this one.
    let mut doubled = bytes.clone();
    doubled.extend_from_slice(&bytes);
    reset(dir.path(), &seg, &doubled);
    let (log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(replay(&log).len(), msgs.len());
    let [d] = recovery.damage.as_slice() else {
        panic!("{:?}", recovery.damage)
    };
    assert_eq!(d.kind, DamageKind::Foreign);
    assert_eq!(d.intact_records, 3);
    assert_eq!((d.offset, d.len), (bytes.len() as u64, bytes.len() as u64));
    assert_eq!(fs::read(d.saved_to.as_ref().unwrap()).unwrap(), bytes);
}

#[test]
fn a_file_whose_records_clash_with_the_log_is_moved_aside_and_the_log_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (msgs, seg) = big_segment(dir.path());
    // Records numbered 3000.. with other contents, under a name after the good segment's.
    let other = tempfile::tempdir().unwrap();
    let (mut olog, _) = ShardLog::open(other.path(), WalConfig::default()).unwrap();
    let filler: Vec<Msg> = (0..3000).map(|i| Msg::new(i, &["X"], 20)).collect();
    append_durably(&mut olog, &filler).unwrap();
    let marks: Vec<Mark> = (0..3000)
        .map(|i| Mark {
            record: RecordId(i),
            destination: 0,
        })
        .collect();
    olog.mark_done(&marks).unwrap();
    drop(olog);
    let (mut olog, _) = ShardLog::open(other.path(), WalConfig::default()).unwrap();
    let clash: Vec<Msg> = (0..10)
        .map(|i| Msg::new(50_000 + i, &["OTHER"], 90))
        .collect();
    append_durably(&mut olog, &clash).unwrap();
    drop(olog);
    let theirs = segments(other.path()).remove(0);
    let target = dir.path().join(theirs.file_name().unwrap());
    fs::copy(&theirs, &target).unwrap();

    let (log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(replay(&log), all_pending(&msgs));
    let [d] = recovery.damage.as_slice() else {
        panic!("{:?}", recovery.damage)
    };
    assert_eq!(d.kind, DamageKind::Foreign);
    assert_eq!(d.intact_records, 10);
    assert_eq!(
        fs::read(d.saved_to.as_ref().unwrap()).unwrap(),
        fs::read(&theirs).unwrap()
    );
    assert_eq!(segments(dir.path()), [seg]);
}

/// Opening on a disk with not one byte free: a torn tail that cannot be copied aside, and a
/// marks file whose header was never written (the disk filled as it was made). Opening must
/// need no space; once the records are done, their room is given back first, then the copy
/// of the torn tail written, and the log goes on.
#[test]
fn a_log_opens_on_a_disk_with_no_space_left_and_frees_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let Some(_disk) = wal_support::SmallDisk::mount(&mnt, 512, "a_log_opens_on_a_full_disk") else {
        return;
    };
    let shard = mnt.join("shard-0");
    let mut stored = Vec::new();
    {
        let (mut log, _) = ShardLog::open(&shard, WalConfig::default()).unwrap();
        for i in 0.. {
            let m = Msg::new(i, &["E"], 4000);
            if append_durably(&mut log, std::slice::from_ref(&m)).is_err() {
                break;
            }
            stored.push(m);
        }
    }
    let seg = segments(&shard).remove(0);
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 2000)
        .unwrap();
    let torn = stored.pop().unwrap();
    fs::write(seg.with_extension("marks"), b"").unwrap();
    let filler = mnt.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let block = vec![1u8; 4096];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    while std::io::Write::write_all(&mut f, &block[..1]).is_ok() {}
    drop(f);

    let (mut log, recovery) = ShardLog::open(&shard, WalConfig::default()).unwrap();
    let [d] = recovery.damage.as_slice() else {
        panic!("{:?}", recovery.damage)
    };
    assert_eq!((d.kind, d.saved_to.as_ref()), (DamageKind::TornTail, None));
    assert!(d.to_string().contains("NOT saved"), "{d}");
    let back = replay(&log);
    assert_eq!(back.len(), stored.len());
    assert!(back.iter().all(|r| r.message != torn.message));

    let marks: Vec<Mark> = back
        .iter()
        .map(|r| Mark {
            record: r.id,
            destination: 0,
        })
        .collect();
    // The marks find no room either; they take effect, and the segment goes once its torn
    // tail is copied aside in the room its records gave back.
    let _ = log.mark_done(&marks);
    assert!(segments(&shard).is_empty(), "{:?}", segments(&shard));
    let saved = quarantined(&shard);
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(fs::metadata(&saved[0]).unwrap().len(), d.len);
    append_durably(&mut log, &[Msg::new(9_999, &["E"], 4000)]).unwrap();
}
