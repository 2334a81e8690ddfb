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
    assert_eq!(recovery.damage[0].kind, DamageKind::TornTail);
    assert_eq!(recovery.deleted_segments, 1);
    assert!(log.pending_ids().is_empty());
    assert_eq!(quarantined(dir.path()).len(), 1);
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
