//! The log holds patient data: every file it writes is 0600 and every directory it makes is
//! 0700, whatever the process's umask lets through.
mod wal_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use router::wal::{Log, Mark, RecordId, ShardLog, WalConfig};
use wal_support::{append_durably, files_ending, segments, Msg};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn segments_marks_quarantine_and_spare_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("shard-0");
    let config = WalConfig {
        segment_bytes: 16 << 10,
        preallocate: true,
        ..WalConfig::default()
    };
    let (mut log, _) = ShardLog::open(&dir, config.clone()).unwrap();
    let first = append_durably(&mut log, &[Msg::new(0, &["A", "B"], 200)]).unwrap();
    log.mark_done(&[Mark {
        record: first.first,
        destination: 0,
    }])
    .unwrap();
    // The spare is made on a thread of its own; wait until it is on disk, whole.
    let spare = dir.join("next.spare");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while fs::metadata(&spare).map_or(true, |m| m.len() < 16 << 10) {
        assert!(std::time::Instant::now() < deadline, "no spare was made");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(mode(&spare), 0o600, "next.spare");
    drop(log);

    // A torn tail: recovery copies it into quarantine/ before cutting it off.
    let seg = segments(&dir).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.truncate(end);
    bytes.extend_from_slice(b"\xA7GWR torn");
    fs::write(&seg, &bytes).unwrap();
    let (log, recovery) = ShardLog::open(&dir, config).unwrap();
    assert_eq!(recovery.damage.len(), 1, "{:?}", recovery.damage);
    assert_eq!(log.pending_ids(), [RecordId(0)]);

    assert_eq!(mode(&dir), 0o700, "shard directory");
    assert_eq!(mode(&dir.join("quarantine")), 0o700, "quarantine directory");
    assert_eq!(mode(&dir.join("LOCK")), 0o600, "LOCK");
    let files: Vec<_> = [".wal", ".marks"]
        .iter()
        .flat_map(|ext| files_ending(&dir, ext))
        .chain(wal_support::quarantined(&dir))
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        // fs::write above recreated nothing: the segment keeps the mode it was made with.
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn a_shard_directory_left_open_by_an_older_version_is_closed_on_open() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("shard-0");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let (mut log, _) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    append_durably(&mut log, &[Msg::new(0, &["A"], 50)]).unwrap();
    let seg = segments(&dir).remove(0);
    drop(log);
    fs::set_permissions(&seg, fs::Permissions::from_mode(0o644)).unwrap();
    let (_log, _) = ShardLog::open(&dir, WalConfig::default()).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&seg), 0o600);
}
