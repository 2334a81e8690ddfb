//! `ganglion trace` against a running router: HL7v2 messages and an ITK message found by
//! control id, tracking id and patient id; delivered with its ACK code, waiting at a down
//! endpoint with the endpoint's state, then dead-lettered with the letter's id; and still
//! answered after a restart. The index never holds a patient id in clear.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codecs::hl7v2::AckCode;
use serde_json::Value;
use tests::admin::{host, request};
use tests::endpoint::{msa, unused_port, Endpoint, HttpClient, Reply, Sender};
use tests::itk::inf_ack_request;
use tests::process::{dead_letters, ganglion, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

const NHS_NUMBER: &str = "9434765919";
const TRACKING: &str = "6B1D0C4E-2A3F-4E5D-8C7B-1A2B3C4D5E6F";

fn hl7(kind: &str, id: &str, pid3: &str) -> Vec<u8> {
    format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261204||{kind}|{id}|P|2.4\rPID|1||{pid3}||DOE^JANE\r")
        .into_bytes()
}

fn config(scratch: &Scratch, epr: SocketAddr, lab: SocketAddr, itk: SocketAddr) -> PathBuf {
    scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [trace]\nretention = \"7d\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{epr}\"\n\n\
             [[endpoint]]\nname = \"lab\"\nprotocol = \"mllp\"\naddress = \"{lab}\"\n\n\
             [[endpoint]]\nname = \"gp-inbox\"\nprotocol = \"itk-http\"\n\
             address = \"http://{itk}/itk\"\n\n\
             [[route]]\nname = \"admissions\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n\n\
             [[route]]\nname = \"results\"\nhl7.message_type = \"ORU\"\nto = \"lab\"\n\n\
             [[route]]\nname = \"acks\"\nitk.service = \"{}\"\nto = \"gp-inbox\"\n",
            scratch.join("data").display(),
            codecs::itk::SERVICE_INF_ACK,
        ),
    )
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start_quick(config, 2, &["in", "itk", "admin"])
}

/// `ganglion trace ARGS…` against `admin`: exit status and what it printed.
fn trace(config: &Path, admin: SocketAddr, args: &[&str]) -> (Option<i32>, String) {
    let admin = admin.to_string();
    let mut all = vec![
        "trace",
        "--config",
        config.to_str().unwrap(),
        "--admin",
        &admin,
    ];
    all.extend_from_slice(args);
    let output = ganglion(&all);
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

/// The `--json` answer once `ready` holds for it (the index is written within a tick).
fn trace_until(
    config: &Path,
    admin: SocketAddr,
    args: &[&str],
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = trace(config, admin, &all);
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if ready(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "never ready: {args:?}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn destination<'a>(value: &'a Value, message: usize, endpoint: &str) -> &'a Value {
    value["messages"][message]["destinations"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["endpoint"] == endpoint))
        .unwrap_or(&Value::Null)
}

#[test]
fn trace_finds_messages_by_id_tracking_id_and_patient_across_a_restart() {
    let scratch = Scratch::new("trace");
    let epr = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let gp = Endpoint::itk(None, |_, _| (202, Vec::new()));
    // The lab is down: its port is taken and let go, to come up later.
    let lab_addr = unused_port();
    let config = config(&scratch, epr.addr, lab_addr, gp.addr);
    let router = start(&config);
    let admin = router.addr("admin");

    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let adt = hl7(
        "ADT^A01",
        "ADT0001",
        &format!("H123^^^RX8^MR~{NHS_NUMBER}^^^NHS^NH"),
    );
    assert_eq!(msa(&sender.exchange(&adt).unwrap()).0, "AA");
    let oru = hl7("ORU^R01", "ORU0001", &format!("{NHS_NUMBER}^^^NHS^NH"));
    assert_eq!(msa(&sender.exchange(&oru).unwrap()).0, "AA");
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    let response = client
        .post(
            "/itk",
            codecs::itk::SERVICE_INF_ACK,
            &inf_ack_request(TRACKING),
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(epr.inbox.wait_for(1, WAIT) && gp.inbox.wait_for(1, WAIT));

    // Delivered, with the endpoint's ACK code, and where it came from.
    let found = trace_until(&config, admin, &["ADT0001"], |v| {
        destination(v, 0, "epr")["state"] == "delivered"
    });
    let message = &found["messages"][0];
    assert_eq!(message["control_id"], "ADT0001");
    assert_eq!(message["received"]["listener"], "in");
    assert_eq!(message["received"]["kind"], "hl7v2");
    assert_eq!(message["received"]["rules"][0], "admissions");
    assert_eq!(message["received"]["destinations"][0], "epr");
    let peer = sender.local_addr().unwrap().to_string();
    assert_eq!(message["received"]["peer"], peer.as_str());
    assert_eq!(destination(&found, 0, "epr")["ack"], "AA");
    let (code, text) = trace(&config, admin, &["ADT0001"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("received on in from"), "{text}");
    assert!(text.contains("rule admissions -> epr"), "{text}");
    assert!(text.contains("epr: delivered, ACK AA"), "{text}");

    // The ITK message by its tracking id.
    let itk = trace_until(&config, admin, &[TRACKING], |v| {
        destination(v, 0, "gp-inbox")["state"] == "delivered"
    });
    assert_eq!(itk["messages"][0]["received"]["kind"], "itk");
    assert_eq!(itk["messages"][0]["received"]["listener"], "itk");
    assert_eq!(destination(&itk, 0, "gp-inbox")["ack"], "HTTP 202");

    // Waiting at the down lab: the queue, the connection, the circuit and the last error.
    let waiting = trace_until(&config, admin, &["ORU0001"], |v| {
        destination(v, 0, "lab")["endpoint_now"]["last_error"].is_object()
    });
    let lab = destination(&waiting, 0, "lab");
    assert_eq!(lab["state"], "waiting", "{lab}");
    assert_eq!(lab["endpoint_now"]["queued"], 1, "{lab}");
    assert_eq!(lab["endpoint_now"]["connection"], "down", "{lab}");
    let (code, text) = trace(&config, admin, &["ORU0001"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("lab: queued at lab (1 in its queue), connection down, circuit")
            && text.contains("last error: "),
        "{text}"
    );

    // By patient: the NHS number is in both HL7 messages, the hospital number in one.
    let both = trace_until(&config, admin, &["--patient", NHS_NUMBER], |v| {
        v["messages"].as_array().is_some_and(|m| m.len() == 2)
    });
    let ids: Vec<&str> = both["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["control_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ADT0001", "ORU0001"]);
    assert_eq!(
        destination(&both, 0, "epr")["ack"],
        "AA",
        "outcomes found too"
    );
    let one = trace_until(
        &config,
        admin,
        &["--patient", "H123", "--from", "-1h"],
        |v| v["messages"].as_array().is_some_and(|m| !m.is_empty()),
    );
    assert_eq!(one["messages"].as_array().unwrap().len(), 1);
    assert_eq!(one["messages"][0]["control_id"], "ADT0001");
    // By time alone: every message received in the last hour, oldest first.
    let recent = trace_until(&config, admin, &["--from", "-1h"], |v| {
        v["messages"].as_array().is_some_and(|m| m.len() == 3)
    });
    let ids: Vec<&str> = recent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["control_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ADT0001", "ORU0001", TRACKING]);
    // Who sent what to whom is for token holders only.
    let anonymous = request(admin, "GET", "/trace?id=ADT0001", &[&host(admin)]).unwrap();
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    let (code, text) = trace(&config, admin, &["--patient", "1111111111"]);
    assert_eq!((code, text.trim()), (Some(1), "no message found"));
    let (code, _) = trace(&config, admin, &["NO-SUCH-ID"]);
    assert_eq!(code, Some(1));

    // The lab comes up and refuses the message: it is dead-lettered, and the trace says where.
    let _lab = Endpoint::mllp_on(TcpListener::bind(lab_addr).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AR)
    });
    let dead = trace_until(&config, admin, &["ORU0001"], |v| {
        destination(v, 0, "lab")["state"] == "dead-lettered"
    });
    let letter = destination(&dead, 0, "lab");
    let id = letter["dead_letter"].as_str().unwrap().to_string();
    assert_eq!(letter["dead_letter_state"], "held", "{letter}");
    let stored = dead_letters(&scratch.join("data"));
    assert!(stored.iter().any(|l| l["id"] == id.as_str()), "{stored:?}");
    let (_, text) = trace(&config, admin, &["ORU0001"]);
    assert!(
        text.contains(&format!("lab: dead letter {id} (held)")),
        "{text}"
    );

    // Never the patient id in clear, anywhere in the index.
    for file in std::fs::read_dir(scratch.join("data/trace")).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(NHS_NUMBER.len())
                .any(|w| w == NHS_NUMBER.as_bytes())
                && !bytes.windows(4).any(|w| w == b"H123"),
            "a patient id in the index"
        );
    }

    // After a restart, earlier messages are still found, with what became of them.
    assert!(router.terminate(WAIT).success());
    let router = start(&config);
    let admin = router.addr("admin");
    let after = trace_until(&config, admin, &["ADT0001"], |v| {
        destination(v, 0, "epr")["state"] == "delivered"
    });
    assert_eq!(destination(&after, 0, "epr")["ack"], "AA");
    let after = trace_until(&config, admin, &["--patient", NHS_NUMBER], |v| {
        destination(v, 1, "lab")["state"] == "dead-lettered"
    });
    assert_eq!(destination(&after, 1, "lab")["dead_letter"], id.as_str());
    let after = trace_until(&config, admin, &[TRACKING], |v| {
        destination(v, 0, "gp-inbox")["state"] == "delivered"
    });
    assert_eq!(after["messages"].as_array().unwrap().len(), 1);
    assert!(router.terminate(WAIT).success());
}
