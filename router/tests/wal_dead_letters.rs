//! The dead-letter store through the library and through `ganglion dead-letters …` (the real
//! binary, offline, on a data directory).
mod wal_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use router::deadletter::{
    DeadLetterError, DeadLetterId, DeadLetterStore, NewDeadLetter, Reason, Source, State,
};
use router::wal::{shard_dir, Log, Origin, RecordId, ShardLog, WalConfig, WalError};

const T0: u64 = 1_735_689_599_000_000_000; // 2024-12-31T23:59:59Z

fn letter<'a>(time: u64, endpoint: &'a str, message: &'a [u8]) -> NewDeadLetter<'a> {
    NewDeadLetter {
        time_unix_nanos: time,
        endpoint,
        reason: Reason::Rejected,
        detail: "MSA-1 AR: unknown patient",
        reply: Some(b"MSH|^~\\&|PAS|H|SEND|F|20241231||ACK|A1|P|2.5\rMSA|AR|CTL7\r"),
        source: Some(Source {
            shard: 1,
            record: RecordId(7),
        }),
        origin: Origin {
            listener: "mllp-in",
            peer: "10.0.0.9:40001",
            arrival_unix_nanos: T0 - 5_000_000_000,
            control_id: "CTL7",
        },
        message,
    }
}

const MSG: &[u8] = b"MSH|^~\\&|SEND|F|PAS|H|20241231||ADT^A01|CTL7|P|2.5\rPID|1||123\r\x00\xff";

#[test]
fn add_list_show_claim_and_remove() {
    let data = tempfile::tempdir().unwrap();
    let store = DeadLetterStore::open(data.path()).unwrap();
    let a = store.add(&letter(T0, "PAS", MSG)).unwrap();
    let b = store.add(&letter(T0, "LAB", b"second")).unwrap(); // same nanosecond
    let mut no_reply = letter(T0 + 1, "RAD", b"third");
    no_reply.reply = None;
    no_reply.source = None;
    no_reply.reason = Reason::RetriesExhausted;
    let c = store.add(&no_reply).unwrap();
    assert_eq!(a.as_str(), "1735689599000000000");
    assert_eq!(b.as_str(), "1735689599000000000-1");
    assert_eq!(c.as_str(), "1735689599000000001");

    let listed: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(listed[0].endpoint, "PAS");
    assert_eq!(listed[0].control_id, "CTL7");
    assert_eq!(listed[0].message_len, MSG.len());
    assert_eq!(listed[2].reason, Reason::RetriesExhausted);

    let (full, state) = store.show(&a).unwrap();
    assert_eq!(state, State::Ready);
    let expected = letter(T0, "PAS", MSG);
    assert_eq!(full.message, MSG);
    assert_eq!(full.reply.as_deref(), expected.reply);
    assert_eq!(full.origin.as_origin(), expected.origin);
    assert_eq!(full.source, expected.source);
    assert_eq!(full.detail, expected.detail);
    let (third, _) = store.show(&c).unwrap();
    assert_eq!((third.reply, third.source), (None, None));

    // A claim is exclusive, shows as replaying, and either finishes or goes back.
    let (claim, claimed) = store.claim(&a).unwrap();
    assert_eq!(claimed, full);
    assert!(matches!(store.claim(&a), Err(DeadLetterError::NotFound(_))));
    assert_eq!(store.show(&a).unwrap().1, State::Replaying);
    assert_eq!(claim.release().unwrap(), a);
    let (claim, _) = store.claim(&a).unwrap();
    claim.finish().unwrap();
    assert!(matches!(store.show(&a), Err(DeadLetterError::NotFound(_))));

    store.remove(&b).unwrap();
    assert!(matches!(
        store.remove(&b),
        Err(DeadLetterError::NotFound(_))
    ));
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn ids_that_could_name_other_files_are_refused() {
    for bad in ["../x", "1/2", "", "12a", "1-2-3", "-1", "1-"] {
        assert!(DeadLetterId::parse(bad).is_err(), "{bad:?}");
    }
    assert!(DeadLetterId::parse("1735689599000000000-12").is_ok());
}

#[test]
fn a_damaged_letter_is_listed_as_an_error_and_the_rest_still_listed() {
    let data = tempfile::tempdir().unwrap();
    let store = DeadLetterStore::open(data.path()).unwrap();
    let a = store.add(&letter(T0, "PAS", MSG)).unwrap();
    let b = store.add(&letter(T0 + 9, "LAB", MSG)).unwrap();
    let path = store.dir().join(format!("{a}.dl"));
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).unwrap();
    let listed = store.list().unwrap();
    assert!(matches!(&listed[0], Err(DeadLetterError::Damaged { id, .. }) if *id == a));
    assert_eq!(listed[1].as_ref().unwrap().id, b);
    // A damaged letter cannot be claimed, and stays in place for someone to look at.
    assert!(matches!(
        store.claim(&a),
        Err(DeadLetterError::Damaged { .. })
    ));
    assert!(path.exists());
}

fn ganglion(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganglion"))
        .arg("dead-letters")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_ganglion_command_lists_shows_replays_and_drops() {
    let data = tempfile::tempdir().unwrap();
    let store = DeadLetterStore::open(data.path()).unwrap();
    let a = store.add(&letter(T0, "PAS", MSG)).unwrap();
    let b = store.add(&letter(T0 + 1, "LAB", b"MSH|second\r")).unwrap();
    fs::create_dir_all(shard_dir(data.path(), 1)).unwrap();

    let out = ganglion(data.path(), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[1],
        format!(
            "{a}\tready\t2024-12-31T23:59:59.000000000Z\tPAS\trejected\tCTL7\t{}\tMSA-1 AR: unknown patient",
            MSG.len()
        )
    );
    assert!(lines[2].starts_with(&format!("{b}\tready\t")));

    let out = ganglion(data.path(), &["list", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], a.as_str());
    assert_eq!(first["endpoint"], "PAS");
    assert_eq!(first["bytes"], MSG.len());

    let out = ganglion(data.path(), &["show", a.as_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for want in [
        "endpoint:   PAS",
        "reason:     rejected",
        "source:     shard-1 record #7",
        "peer:       10.0.0.9:40001",
        "control id: CTL7",
        "MSA|AR|CTL7",
        "PID|1||123",
    ] {
        assert!(shown.contains(want), "missing {want:?} in\n{shown}");
    }
    let out = ganglion(data.path(), &["show", a.as_str(), "--raw"]);
    assert_eq!(out.stdout, MSG, "raw is the message byte for byte");

    // Replay while a router holds shard-1's log: refused, and the letter stays ready.
    let (held, _) = ShardLog::open(shard_dir(data.path(), 1), WalConfig::default()).unwrap();
    let out = ganglion(data.path(), &["replay", a.as_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("locked"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(store.show(&a).unwrap().1, State::Ready);
    drop(held);

    let out = ganglion(data.path(), &["replay", a.as_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("replayed {a} into shard-1")));
    assert!(matches!(store.show(&a), Err(DeadLetterError::NotFound(_))));
    // The message is back in the log of the shard it came from, pending for its endpoint.
    let (log, _) = ShardLog::open(shard_dir(data.path(), 1), WalConfig::default()).unwrap();
    let pending: Vec<_> = log.replay().map(Result::unwrap).collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].message, MSG);
    assert_eq!(pending[0].destinations, ["PAS"]);
    assert_eq!(pending[0].pending, [0]);
    assert_eq!(pending[0].origin.control_id, "CTL7");
    assert!(matches!(
        log.read(RecordId(99)),
        Err(WalError::UnknownRecord(_))
    ));
    drop(log);

    let out = ganglion(data.path(), &["drop", b.as_str(), "1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "one of the two ids does not exist"
    );
    assert!(text(&out.stdout).contains(&format!("dropped {b}")));
    assert!(
        text(&out.stderr).contains("no dead letter 1"),
        "{}",
        text(&out.stderr)
    );
    assert!(store.list().unwrap().is_empty());

    let out = ganglion(data.path(), &["show", "../../etc/passwd"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Offline, a replay is judged by the whole log's disk budget, as in the router: what every
/// shard's log holds counts, and a letter that does not fit stays a letter.
#[test]
fn an_offline_replay_respects_the_disk_budget() {
    let data = tempfile::tempdir().unwrap();
    let store = DeadLetterStore::open(data.path()).unwrap();
    let id = store.add(&letter(T0, "PAS", MSG)).unwrap();
    // Shard 0's log holds 1.2 MiB of undelivered records; the letter came from shard 1.
    {
        let (mut log, _) = ShardLog::open(shard_dir(data.path(), 0), WalConfig::default()).unwrap();
        let msgs: Vec<wal_support::Msg> = (0..300)
            .map(|i| wal_support::Msg::new(i, &["EPR"], 4096))
            .collect();
        wal_support::append_durably(&mut log, &msgs).unwrap();
    }
    fs::create_dir_all(shard_dir(data.path(), 1)).unwrap();
    let routes = data.path().join("routes.toml");
    fs::write(&routes, "[server]\nwal_budget = \"1 MiB\"\n").unwrap();

    for budget in [
        vec!["--wal-budget-mib", "1"],
        vec!["--config", routes.to_str().unwrap()],
    ] {
        let mut args = vec!["replay", id.as_str()];
        args.extend(budget.iter().copied());
        let out = ganglion(data.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{budget:?}: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains("disk budget"),
            "{budget:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(store.show(&id).unwrap().1, State::Ready, "{budget:?}");
    }
    let (log, _) = ShardLog::open(shard_dir(data.path(), 1), WalConfig::default()).unwrap();
    assert!(log.pending_ids().is_empty());
    drop(log);

    // With room (the router's own budget, 2 MiB) it goes in.
    let out = ganglion(
        data.path(),
        &["replay", id.as_str(), "--wal-budget-mib", "2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(matches!(store.show(&id), Err(DeadLetterError::NotFound(_))));
}
