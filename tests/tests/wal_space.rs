//! The log's disk over real sockets: a disk that fills up (a small tmpfs) and a disk budget
//! smaller than a segment. The router must refuse plainly while it cannot store, say so once
//! in its log, accept again by itself once the endpoints have drained what it holds, and start
//! on a disk with no free space at all.
use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codecs::hl7v2::{AckCode, Message};
use tests::admin::request;
use tests::endpoint::{msa, unused_port, Endpoint, Reply, Sender};
use tests::filling::{big_message, send_until_refused};
use tests::process::RouterProcess;
use tests::scratch::Scratch;
use tests::small_disk::SmallDisk;
use tests::WAIT;

fn config(scratch: &Scratch, data: &Path, endpoint: SocketAddr, server_extra: &str) -> PathBuf {
    let text = format!(
        "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n{server_extra}\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\nmax_message_bytes = \"4 MiB\"\n\n\
         [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{endpoint}\"\n\n\
         [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
        data.display(),
    );
    scratch.file("routes.toml", text)
}

fn start(config: &Path, args: &[&str]) -> RouterProcess {
    let mut all = vec![
        "--retry-base-ms",
        "20",
        "--breaker-cooldown-ms",
        "200",
        "--grace",
        "1",
    ];
    all.extend_from_slice(args);
    RouterProcess::start(config, &all, &["in", "admin"])
}

fn control_id(message: &[u8]) -> String {
    let parsed = Message::parse(message).expect("endpoint received HL7");
    String::from_utf8_lossy(parsed.msh().control_id().unwrap_or_default()).into_owned()
}

/// What a sender is told when the router cannot store: plain words, no server paths.
fn assert_plain_refusal(code: &str, text: &str) {
    assert_eq!(code, "AE", "{text}");
    assert!(text.contains("try again later"), "{text}");
    for leak in ["/", "shard-", ".wal", "os error"] {
        assert!(!text.contains(leak), "the ACK shows {leak:?}: {text}");
    }
}

/// Sends fresh messages until one is accepted (the router frees space as marks arrive).
fn wait_until_accepted(sender: &mut Sender, prefix: &str, kib: usize) -> String {
    let deadline = Instant::now() + WAIT;
    for i in 0.. {
        let id = format!("{prefix}{i}");
        let (code, _) = msa(&sender.exchange(&big_message(&id, kib)).unwrap());
        if code == "AA" {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the endpoint drained everything ({code})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!()
}

fn delivered(endpoint: &Endpoint) -> HashSet<String> {
    endpoint
        .inbox
        .messages()
        .iter()
        .map(|m| control_id(m))
        .collect()
}

fn wait_delivered(endpoint: &Endpoint, ids: &[String]) {
    let deadline = Instant::now() + WAIT;
    while !ids.iter().all(|id| delivered(endpoint).contains(id)) {
        assert!(Instant::now() < deadline, "not all of {ids:?} delivered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Refusals start, are told plainly, are logged once, stop by themselves once the endpoint has
/// the messages, and the end is logged with the count.
fn refuse_then_recover(router: &mut RouterProcess, port: SocketAddr, kib: usize) {
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let filled = send_until_refused(&mut sender, "A", kib, 400);
    let (acked, (code, text)) = filled.until_refused();
    assert!(!acked.is_empty(), "nothing was stored");
    assert_plain_refusal(&code, &text);
    // More refusals in the same episode: still one line in the log.
    for i in 0..5 {
        let ack = sender
            .exchange(&big_message(&format!("R{i}"), kib))
            .unwrap();
        assert_plain_refusal(&msa(&ack).0, &String::from_utf8_lossy(&ack));
    }
    assert!(
        router.wait_for_output("refusing messages", WAIT),
        "{}",
        router.output()
    );
    assert_eq!(
        router.count_output("refusing messages"),
        1,
        "{}",
        router.output()
    );
    // The readiness probe says why the router cannot take messages now.
    let ready = request(router.addr("admin"), "GET", "/readyz", &[]).unwrap();
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.contains("refuses messages"), "{ready:?}");

    let endpoint = Endpoint::mllp_on(TcpListener::bind(port).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AA)
    });
    wait_delivered(&endpoint, &acked);
    let id = wait_until_accepted(&mut sender, "B", kib);
    wait_delivered(&endpoint, &[id]);
    assert!(
        router.wait_for_output("accepting messages again", WAIT),
        "{}",
        router.output()
    );
    let out = router.output();
    let line = out
        .lines()
        .find(|l| l.contains("accepting messages again"))
        .unwrap_or_default();
    let refused: usize = line
        .split("after refusing ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(refused >= 6, "{line}");
    let ready = request(router.addr("admin"), "GET", "/readyz", &[]).unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    assert_eq!(router.count_output("refusing messages"), 1, "{out}");
}

#[test]
fn a_full_disk_refuses_plainly_and_accepts_again_once_drained() {
    let scratch = Scratch::new("disk-full");
    let Some(disk) = SmallDisk::mount(&scratch.join("small"), 16, "disk-full") else {
        return;
    };
    let data = disk.path().join("data");
    let port = unused_port();
    let config = config(&scratch, &data, port, "");
    let mut router = start(&config, &[]);
    refuse_then_recover(&mut router, port, 200);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_budget_smaller_than_a_segment_refuses_and_accepts_again_once_drained() {
    let scratch = Scratch::new("budget-small");
    let data = scratch.join("data");
    let port = unused_port();
    let config = config(&scratch, &data, port, "wal_budget = \"1 MiB\"");
    let mut router = start(&config, &[]);
    refuse_then_recover(&mut router, port, 100);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn the_budget_is_read_from_routes_toml_and_the_command_line_overrides_it() {
    let scratch = Scratch::new("budget-config");
    let data = scratch.join("data");
    let config = config(&scratch, &data, unused_port(), "wal_budget = \"1 MiB\"");
    let stored = |args: &[&str]| {
        let _ = std::fs::remove_dir_all(&data);
        let router = start(&config, args);
        let mut sender = Sender::connect(router.addr("in")).unwrap();
        let filled = send_until_refused(&mut sender, "C", 100, 400);
        router.kill();
        filled.acked.len()
    };
    // 100 KiB messages: about ten fit in 1 MiB, about thirty in 3 MiB.
    let from_file = stored(&[]);
    assert!(
        (5..=10).contains(&from_file),
        "{from_file} stored under 1 MiB"
    );
    let overridden = stored(&["--wal-budget-mib", "3"]);
    assert!(
        (25..=30).contains(&overridden),
        "{overridden} stored under 3 MiB"
    );
}

#[test]
fn a_restart_on_a_disk_with_no_space_left_delivers_frees_and_accepts() {
    let scratch = Scratch::new("full-restart");
    let Some(disk) = SmallDisk::mount(&scratch.join("small"), 8, "full-restart") else {
        return;
    };
    let data = disk.path().join("data");
    let port = unused_port();
    let config = config(&scratch, &data, port, "");
    let router = start(&config, &[]);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let filled = send_until_refused(&mut sender, "F", 200, 200);
    let (mut acked, (code, text)) = filled.until_refused();
    assert_plain_refusal(&code, &text);
    router.kill();

    // A crash tore the last record: half of it on disk. Recovery wants to copy such a tail
    // to quarantine/ before cutting it, and there will be no room for the copy.
    let shard = data.join("shard-0");
    let segment = std::fs::read_dir(&shard)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    let torn = acked.pop().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 100 * 1024)
        .unwrap();
    // Every byte of the disk taken.
    disk.fill(&disk.path().join("filler"));
    assert!(disk.free_bytes() < 4096, "{} bytes free", disk.free_bytes());

    let mut router = start(&config, &[]);
    let endpoint = Endpoint::mllp_on(TcpListener::bind(port).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AA)
    });
    wait_delivered(&endpoint, &acked);
    assert!(!delivered(&endpoint).contains(&torn));
    let out = router.output();
    assert!(out.contains("NOT saved (no space)"), "{out}");
    // Delivered, the segment is finished: its torn tail is copied aside, then it goes, and
    // the space it held takes new messages.
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let id = wait_until_accepted(&mut sender, "N", 200);
    wait_delivered(&endpoint, &[id]);
    let quarantine: Vec<_> = std::fs::read_dir(shard.join("quarantine"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert!(router.terminate(WAIT).success());
}

/// ITK senders get the same plain words, in a SOAP fault of the Server kind.
#[test]
fn an_itk_sender_is_told_plainly_when_the_store_is_full() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let request =
        std::fs::read(corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_SOAP.xml"))
            .unwrap();
    let scratch = Scratch::new("itk-full");
    let endpoint = Endpoint::itk(None, |_, _| (200, b"<ok/>".to_vec()));
    let cda = "urn:nhs-itk:services:201005:SendCDADocument-v2-0";
    // A budget smaller than the one request: nothing can be stored.
    let text = format!(
        "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\nwal_budget = \"1 KiB\"\n\n\
         [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.1:0\"\n\n\
         [[endpoint]]\nname = \"docs\"\nprotocol = \"itk-http\"\naddress = \"http://{}/itk\"\n\n\
         [[route]]\nname = \"documents\"\nitk.service = \"{cda}\"\nto = \"docs\"\n",
        scratch.join("data").display(),
        endpoint.addr
    );
    let config = scratch.file("routes.toml", text);
    let router = RouterProcess::start(&config, &[], &["itk", "admin"]);
    let mut client = tests::endpoint::HttpClient::connect(router.addr("itk")).unwrap();
    let response = client.post("/syncsoap", cda, &request).unwrap();
    let body = response.text();
    assert_eq!(response.status, 500, "{body}");
    assert!(body.contains("Server"), "{body}");
    assert!(body.contains("store is full; try again later"), "{body}");
    for leak in ["/tmp", "shard-", ".wal", "bytes are in use"] {
        assert!(!body.contains(leak), "the fault shows {leak:?}: {body}");
    }
    assert!(endpoint.inbox.is_empty());
    assert!(router.terminate(WAIT).success());
}

/// A shard begins its spare (the next segment, written full of zeros) when it starts, so its
/// first messages go into blocks that are written already, not into a file that grows at each
/// write (whose every fdatasync commits the file system's journal).
#[test]
fn the_first_messages_go_into_a_segment_written_ahead_of_time() {
    const SEGMENT: u64 = 64 << 20;
    let scratch = Scratch::new("first-segment");
    let data = scratch.join("data");
    let endpoint = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let config = config(&scratch, &data, endpoint.addr, "");
    let router = start(&config, &[]);
    let shard = data.join("shard-0");
    let len = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let deadline = Instant::now() + WAIT;
    while len(&shard.join("next.spare")) < SEGMENT {
        assert!(Instant::now() < deadline, "no spare was written at start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Written in full is not yet synced: a message that comes first goes into a growing
    // segment, which gives way to the spare at the next message once the spare is synced.
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let segments = || -> Vec<u64> {
        std::fs::read_dir(&shard)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
            .map(|e| len(&e.path()))
            .collect()
    };
    let mut sent = Vec::new();
    for i in 0.. {
        let id = format!("F{i}");
        let (code, _) = msa(&sender.exchange(&big_message(&id, 1)).unwrap());
        assert_eq!(code, "AA");
        sent.push(id);
        if segments().contains(&SEGMENT) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no segment made from the spare after {} messages: {:?}",
            sent.len(),
            segments()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_delivered(&endpoint, &sent);
    router.kill();
}
