//! The router's log as ops and log shippers read it: `--log-format json` (every stderr line a
//! JSON object with the fields of its event), never a message body unless `--log-bodies`,
//! sd-daemon priorities when stderr is the journal, and `ganglion reload --json`.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use codecs::hl7v2::AckCode;
use serde_json::Value;
use tests::endpoint::{msa, unused_port, Endpoint, HttpClient, Reply, Sender};
use tests::itk::inf_ack_request;
use tests::process::{bin, ganglion, wait_until, RouterProcess};
use tests::scratch::Scratch;

use tests::WAIT;

/// An ADT^A01 whose PID holds patient data the log must not show by default.
fn adt(control_id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RX8|EPR|RX8|20261125093015||ADT^A01^ADT_A01|{control_id}|P|2.4\r\
         EVN|A01|20261125093000\rPID|1||9449305552^^^NHS^NH||O'NEIL^Siobhan||19620314|F\r"
    )
    .into_bytes()
}

/// An ORU^R01 that no route takes, with the same patient.
fn unrouted(control_id: &str) -> Vec<u8> {
    String::from_utf8(adt(control_id))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ORU^R01")
        .into_bytes()
}

/// One MLLP listener `in`, one endpoint `epr` at `endpoint`, ADT routed to it.
fn config(scratch: &Scratch, endpoint: SocketAddr) -> PathBuf {
    scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{endpoint}\"\n\n\
             [[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
            scratch.join("data").display()
        ),
    )
}

fn start(config: &Path, extra: &[&str]) -> RouterProcess {
    let mut args = vec![
        "--log-format",
        "json",
        "--retry-base-ms",
        "20",
        "--breaker-cooldown-ms",
        "200",
        "--grace",
        "1",
        "--reply-timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    RouterProcess::start(config, &args, &["in", "admin"])
}

/// Every stderr line so far, each parsed: the test fails on a line that is not a JSON object.
fn events(router: &mut RouterProcess) -> Vec<HashMap<String, Value>> {
    router
        .log_lines()
        .iter()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(fields)) => fields.into_iter().collect(),
            _ => panic!("not a JSON object: {line}"),
        })
        .collect()
}

/// The events whose message starts with `message`.
fn find(router: &mut RouterProcess, message: &str) -> Vec<HashMap<String, Value>> {
    events(router)
        .into_iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .collect()
}

/// Waits until an event whose message starts with `message` has been written; returns it.
fn wait_for(router: &mut RouterProcess, message: &str) -> HashMap<String, Value> {
    let mut found = None;
    wait_until(message, WAIT, || {
        found = find(router, message).into_iter().next();
        found.is_some()
    });
    found.unwrap()
}

fn text(event: &HashMap<String, Value>, field: &str) -> String {
    match event.get(field) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{field}: {other:?} in {event:?}"),
    }
}

/// A refusal, delivery failures, the circuit opening and closing: one JSON object per line,
/// with the fields that say where, and no patient data.
fn provoke(router: &mut RouterProcess, endpoint: SocketAddr) -> (SocketAddr, Endpoint) {
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let peer = sender.local_addr().unwrap();
    assert_eq!(msa(&sender.exchange(&unrouted("U1")).unwrap()).0, "AR");
    // The endpoint is down: the message is acknowledged (it is on disk) and retried.
    assert_eq!(msa(&sender.exchange(&adt("D1")).unwrap()).0, "AA");
    wait_for(router, "circuit open");
    let epr = Endpoint::mllp_on(TcpListener::bind(endpoint).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AA)
    });
    assert!(epr.inbox.wait_for(1, WAIT));
    wait_for(router, "circuit closed");
    (peer, epr)
}

#[test]
fn json_events_carry_their_fields_and_never_the_message() {
    let scratch = Scratch::new("log-json");
    let endpoint = unused_port();
    let config = config(&scratch, endpoint);
    let mut router = start(&config, &[]);
    let (peer, _epr) = provoke(&mut router, endpoint);

    let refused = find(&mut router, "refused: no route");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let refused = &refused[0];
    assert_eq!(text(refused, "level"), "WARN");
    assert_eq!(text(refused, "listener"), "in");
    assert_eq!(text(refused, "peer"), peer.to_string());
    assert_eq!(text(refused, "control_id"), "U1");
    assert_eq!(text(refused, "reason"), "no route");
    assert!(text(refused, "timestamp").starts_with("20"), "{refused:?}");

    let failed = find(&mut router, "delivery failed; will retry");
    assert!(!failed.is_empty());
    for event in &failed {
        assert_eq!(text(event, "endpoint"), "epr");
        assert_eq!(text(event, "control_id"), "D1");
        assert!(!text(event, "reason").is_empty());
    }
    let opened = find(&mut router, "circuit open");
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(text(&opened[0], "endpoint"), "epr");
    assert_eq!(text(&opened[0], "circuit"), "open");
    let closed = find(&mut router, "circuit closed");
    assert_eq!(text(&closed[0], "endpoint"), "epr");

    // No event holds a body, and no line holds the patient.
    let all = events(&mut router);
    assert!(all.iter().all(|e| !e.contains_key("body")), "{all:?}");
    let log = router.log_lines().join("\n");
    assert!(
        !log.contains("O'NEIL") && !log.contains("9449305552"),
        "{log}"
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_message_dropped_by_a_rule_is_logged_with_its_id_for_either_protocol() {
    let scratch = Scratch::new("log-dropped");
    let config = scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.1:0\"\n\n\
             [[route]]\nname = \"quiet-adt\"\nhl7.message_type = \"ADT\"\ndrop = true\n\n\
             [[route]]\nname = \"quiet-acks\"\nitk.service = \"{}\"\ndrop = true\n",
            scratch.join("data").display(),
            codecs::itk::SERVICE_INF_ACK
        ),
    );
    let mut router =
        RouterProcess::start(&config, &["--log-format", "json"], &["in", "itk", "admin"]);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(msa(&sender.exchange(&adt("Q1")).unwrap()).0, "AA");
    let tracking = "7C1B2A3D-4E5F-4061-9728-3A4B5C6D7E8F";
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    let response = client
        .post(
            "/syncsoap",
            codecs::itk::SERVICE_INF_ACK,
            &inf_ack_request(tracking),
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());

    let mut dropped = Vec::new();
    wait_until("both drops logged", WAIT, || {
        dropped = find(&mut router, "message dropped by a rule");
        dropped.len() == 2
    });
    let seen: Vec<_> = dropped
        .iter()
        .map(|e| (text(e, "listener"), text(e, "control_id"), text(e, "rule")))
        .collect();
    assert!(
        seen.contains(&("in".into(), "Q1".into(), "quiet-adt".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("itk".into(), tracking.into(), "quiet-acks".into())),
        "{seen:?}"
    );
    let log = router.log_lines().join("\n");
    assert!(!log.contains("O'NEIL"), "{log}");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn with_log_bodies_refusals_and_failures_carry_the_message() {
    let scratch = Scratch::new("log-bodies");
    let endpoint = unused_port();
    let config = config(&scratch, endpoint);
    let mut router = start(&config, &["--log-bodies"]);
    let (_, _epr) = provoke(&mut router, endpoint);
    let refused = find(&mut router, "refused: no route");
    let body = text(&refused[0], "body");
    // Escaped to one line: the segment separators show as `\r`.
    assert!(body.starts_with("MSH|^~\\\\&|PAS|RX8|"), "{body}");
    assert!(body.contains("|U1|P|2.4\\rEVN|"), "{body}");
    assert!(body.contains("O'NEIL^Siobhan"), "{body}");
    let failed = find(&mut router, "delivery failed; will retry");
    assert!(text(&failed[0], "body").contains("|D1|P|2.4\\rEVN|"));
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_down_endpoint_is_logged_a_few_times_then_summarised() {
    let scratch = Scratch::new("log-limit");
    let endpoint = unused_port();
    let config = config(&scratch, endpoint);
    let mut router = start(&config, &[]);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(msa(&sender.exchange(&adt("D1")).unwrap()).0, "AA");
    // 20 ms backoff growing to the 200 ms circuit probe: dozens of failures in a window, of
    // which five are logged one by one; the rest are said as one count with the endpoint when
    // the endpoint comes back.
    let admin = router.addr("admin");
    let retries = || tests::process::metric(admin, "ganglion_retries_total");
    wait_until("failures past the burst", WAIT, || retries() > 10);
    let epr = Endpoint::mllp_on(TcpListener::bind(endpoint).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AA)
    });
    assert!(epr.inbox.wait_for(1, WAIT));
    // Delivered: no more retries, and what was only counted is said, with the endpoint.
    let failed = retries();
    let mut told = 0;
    wait_until("every failure logged or counted", WAIT, || {
        let summaries: Vec<_> = events(&mut router)
            .into_iter()
            .filter(|e| e.contains_key("suppressed"))
            .collect();
        assert!(summaries.iter().all(|e| text(e, "endpoint") == "epr"));
        told = summaries
            .iter()
            .map(|e| e["suppressed"].as_u64().unwrap())
            .sum::<u64>();
        told > 0 && told + 5 == failed
    });
    assert!(told + 5 == failed, "{told} + 5 of {failed}");
    // However long it was down, only the first five were logged one by one.
    assert_eq!(find(&mut router, "delivery failed; will retry").len(), 5);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn reload_json_says_the_outcome() {
    let scratch = Scratch::new("reload-json");
    let config = config(&scratch, unused_port());
    let mut router = start(&config, &[]);
    let admin = router.addr("admin").to_string();
    // The token file rather than the routes file: the routes file is broken below.
    let token = scratch.join("data/admin.token").display().to_string();
    let reload = || {
        ganglion(&[
            "reload",
            "--json",
            "--admin",
            &admin,
            "--token-file",
            &token,
        ])
    };
    let applied = reload();
    assert!(applied.status.success(), "{applied:?}");
    let answer: Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert_eq!(answer["outcome"], "applied", "{answer}");
    assert_eq!(answer["applied"], true);
    assert_eq!(answer["summary"]["endpoints_unchanged"], 1, "{answer}");
    let logged = wait_for(&mut router, "reload applied");
    assert_eq!(text(&logged, "outcome"), "applied");

    // A broken file: refused, exit 78, each reason with its place.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("to = \"epr\"", "to = \"nowhere\"")).unwrap();
    let invalid = reload();
    assert_eq!(invalid.status.code(), Some(78), "{invalid:?}");
    let answer: Value = serde_json::from_slice(&invalid.stdout).unwrap();
    assert_eq!(answer["outcome"], "invalid", "{answer}");
    assert_eq!(answer["applied"], false);
    let reasons = answer["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("routes.toml:")
                && r.as_str().unwrap().contains("nowhere")),
        "{answer}"
    );
    let logged = wait_for(&mut router, "reload refused");
    assert_eq!(text(&logged, "level"), "ERROR");
    assert_eq!(text(&logged, "outcome"), "invalid");
    assert!(router.terminate(WAIT).success());
}

/// When stderr is the journal, each line starts with its sd-daemon priority and carries no
/// time of its own. The test plays systemd: stderr is a file whose device and inode are in
/// `JOURNAL_STREAM`.
#[test]
fn on_the_journal_lines_carry_their_priority() {
    use std::os::unix::fs::MetadataExt;
    let scratch = Scratch::new("log-journal");
    let config = config(&scratch, unused_port());
    let journal = scratch.join("journal");
    let file = std::fs::File::create(&journal).unwrap();
    let meta = file.metadata().unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--no-watch", "--grace", "1", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(file)
        .spawn()
        .unwrap();
    // Read stdout to its end on a thread of its own: the router keeps printing there.
    let (send, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    let listening = lines
        .iter()
        .find_map(|l| {
            let parts: Vec<&str> = l.strip_prefix("listening ")?.split_whitespace().collect();
            parts.contains(&"name=in").then_some(())?;
            parts
                .iter()
                .find_map(|p| p.strip_prefix("addr=")?.parse::<SocketAddr>().ok())
        })
        .expect("a listening line");
    let mut sender = Sender::connect(listening).unwrap();
    assert_eq!(msa(&sender.exchange(&unrouted("J1")).unwrap()).0, "AR");
    let read = || std::fs::read_to_string(&journal).unwrap_or_default();
    // The listener takes connections before the main thread logs "ganglion running": wait
    // for both lines, whichever order they were written in.
    wait_until("the refusal and the start in the journal", WAIT, || {
        let journal = read();
        journal.contains("refused: no route") && journal.contains("ganglion running")
    });
    let _ = child.kill();
    let _ = child.wait();
    let journal = read();
    let lines: Vec<&str> = journal.lines().collect();
    let refused = lines
        .iter()
        .find(|l| l.contains("refused: no route"))
        .unwrap();
    assert!(
        refused.starts_with("<4>refused: no route listener=\"in\""),
        "{refused}"
    );
    let running = lines
        .iter()
        .find(|l| l.contains("ganglion running"))
        .unwrap_or_else(|| panic!("{journal}"));
    assert!(running.starts_with("<6>ganglion running"), "{running}");
    // Every line, not only these two, is prefixed (a line without one would be at info).
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('<') || l.starts_with("  ")),
        "{journal}"
    );
}
