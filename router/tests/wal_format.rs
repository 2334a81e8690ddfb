//! Log records across format versions: a segment written by the version 1 encoder (a real file
//! from before version 2, `fixtures/wal-v1/`) still opens, replays and is described the way
//! recovery did then; records appended after it carry what ingress parsed.
mod wal_support;

use std::fs;
use std::path::Path;

use router::shard::logged;
use router::wal::{MessageKind, RecordId, ShardLog, WalConfig};
use wal_support::{append_durably, replay, Msg};

const ITK_TRACKING: &str = "5A0C7E11-2B3D-4F60-8A9B-C1D2E3F4A5B6";
const CDA: &str = "urn:nhs-itk:services:201005:SendCDADocument-v2-0";

/// A copy of the version 1 segment in a fresh shard directory (recovery may write beside it).
fn v1_log(dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal-v1");
    for entry in fs::read_dir(fixture).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_segment_written_in_format_version_1_still_replays() {
    let dir = tempfile::tempdir().unwrap();
    v1_log(dir.path());
    let (mut log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    let old = replay(&log);
    assert_eq!(old.len(), 2);
    let (hl7, itk) = (&old[0], &old[1]);
    assert_eq!(
        (
            hl7.id,
            hl7.destinations.as_slice(),
            hl7.origin.control_id.as_str()
        ),
        (RecordId(0), ["epr".to_string()].as_slice(), "V1-HL7-1")
    );
    assert!(hl7.message.starts_with(b"MSH|^~\\&|PAS|RX8|EPR|RX8|"));
    assert_eq!(itk.destinations, ["docs"]);
    assert_eq!(itk.origin.control_id, ITK_TRACKING);
    // Version 1 kept nothing of what ingress parsed ...
    assert_eq!(hl7.parsed.kind, None);
    assert_eq!(itk.parsed.kind, None);
    // ... so recovery reads the bytes again, as it always did for such records.
    let hl7 = logged::accepted(hl7, 1);
    assert_eq!(
        (hl7.kind, hl7.control_id()),
        (MessageKind::Hl7v2, b"V1-HL7-1".as_slice())
    );
    let itk = logged::accepted(itk, 2);
    assert_eq!(itk.kind, MessageKind::Itk);
    assert_eq!(itk.control_id(), ITK_TRACKING.as_bytes());
    assert_eq!(itk.soap_action.as_deref(), Some(CDA));

    // New records go in after the old ones, in version 2, and both kinds read back.
    let new = Msg::new(5, &["epr"], 80);
    let id = append_durably(&mut log, std::slice::from_ref(&new))
        .unwrap()
        .first;
    assert_eq!(id, RecordId(2));
    drop(log);
    let (log, recovery) = ShardLog::open(dir.path(), WalConfig::default()).unwrap();
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    let all = replay(&log);
    assert_eq!(all.len(), 3);
    assert_eq!(all[2], new.pending(id, &[0]));
    assert_eq!(all[2].parsed.kind, Some(MessageKind::Hl7v2));
    let span = all[2].parsed.control_id.range();
    assert_eq!(&all[2].message[span], b"CTL5");
}
