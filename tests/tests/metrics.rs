//! `/metrics` against a running router: known numbers of messages that get AA, CA, AE and AR
//! on two MLLP listeners and a response and a client fault on an ITK one, and the
//! per-listener, per-code, per-reason counts, bytes and histogram counts equal exactly what was
//! sent; per-endpoint series only when asked for; a listener removed by a reload leaves.
use std::collections::BTreeMap;
use std::net::SocketAddr;

use codecs::hl7v2::AckCode;
use tests::admin::{host, request};
use tests::endpoint::{msa, Endpoint, HttpClient, Reply, Sender};
use tests::itk::inf_ack_request;
use tests::process::{wait_until, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|{id}|P|2.4\rPID|1||{id}\r").into_bytes()
}

/// An ADT in enhanced mode (MSH-15 AL): answered CA.
fn adt_enhanced(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|{id}|P|2.4|||AL|NE\rPID|1||{id}\r")
        .into_bytes()
}

/// No route takes an ORU: AR, reason `no_route`.
fn oru(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|LAB|RX8|EPR|RX8|20261125||ORU^R01|{id}|P|2.4\rPID|1\r").into_bytes()
}

/// A rule rejects messages from test systems: AR, reason `rejected`.
fn from_test_system(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|ZZTEST|RX8|EPR|RX8|20261125||ADT^A01|{id}|P|2.4\rPID|1\r").into_bytes()
}

/// One sample: its name and labels.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// Every sample of an exposition. Label values here never hold `,` or `"`.
fn samples(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            let value = value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            let name = name.to_string();
            (Series { name, labels }, value)
        })
        .collect()
}

/// The sum over every sample named `name` whose labels include `with` (shards added up).
fn sum(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(s, _)| s.name == name)
        .filter(|(s, _)| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

fn scrape(admin: SocketAddr, path: &str) -> String {
    let response = request(admin, "GET", path, &[]).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(response.body.ends_with("# EOF\n"), "{}", response.body);
    response.body
}

#[test]
fn counts_per_listener_code_and_reason_equal_what_was_sent() {
    let scratch = Scratch::new("metrics");
    let epr = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let sink = Endpoint::itk(None, |_, _| (200, b"<ok/>".to_vec()));
    let routes = |with_back: bool| {
        let back = "[[listener]]\nname = \"back\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n";
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"front\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n{}\
             [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[endpoint]]\nname = \"sink\"\nprotocol = \"itk-http\"\n\
             address = \"http://{}/itk/inbox\"\n\n\
             [[route]]\nname = \"tests\"\nhl7.sending_application = \"ZZ*\"\n\
             reject = \"test systems may not send here\"\n\n\
             [[route]]\nname = \"admissions\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n\n\
             [[route]]\nname = \"acks\"\nitk.service = \"{}\"\nto = \"sink\"\n",
            scratch.join("data").display(),
            if with_back { back } else { "" },
            epr.addr,
            sink.addr,
            codecs::itk::SERVICE_INF_ACK,
        )
    };
    let config = scratch.file("routes.toml", routes(true));
    let router = RouterProcess::start(&config, &[], &["front", "back", "itk", "admin"]);
    let admin = router.addr("admin");

    // front: 4 AA, 1 CA, 2 AE (unreadable), 3 AR (no route), 1 AR (a rule's reject).
    // back: 2 AA, 1 AR (no route).
    let mut sent: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    let mut front = Sender::connect(router.addr("front")).unwrap();
    let mut back = Sender::connect(router.addr("back")).unwrap();
    let mut exchange = |sender: &mut Sender, listener: &'static str, message: Vec<u8>, code| {
        let ack = sender.exchange(&message).unwrap();
        assert_eq!(msa(&ack).0, code, "{}", String::from_utf8_lossy(&message));
        sent.entry(listener).or_default().push(message);
    };
    for i in 0..4 {
        exchange(&mut front, "front", adt(&format!("F{i}")), "AA");
    }
    exchange(&mut front, "front", adt_enhanced("FE"), "CA");
    for bytes in [&b"this is not HL7"[..], b"MSH|^~\\&|broken"] {
        exchange(&mut front, "front", bytes.to_vec(), "AE");
    }
    for i in 0..3 {
        exchange(&mut front, "front", oru(&format!("FU{i}")), "AR");
    }
    exchange(&mut front, "front", from_test_system("FT"), "AR");
    for i in 0..2 {
        exchange(&mut back, "back", adt(&format!("B{i}")), "AA");
    }
    exchange(&mut back, "back", oru("BU"), "AR");
    assert!(epr.inbox.wait_for(7, WAIT));
    // itk: a response, a client fault (unreadable), and a GET refused as a bad request (not a
    // message: neither received nor answered).
    let mut itk = HttpClient::connect(router.addr("itk")).unwrap();
    // An infrastructure ACK, which the test's route for that service takes.
    let inf_ack = inf_ack_request("7C1B2A3D-4E5F-4061-9728-3A4B5C6D7E8F");
    let response = itk
        .post("/syncsoap", codecs::itk::SERVICE_INF_ACK, &inf_ack)
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let not_xml = b"<not xml";
    let response = itk
        .post("/syncsoap", codecs::itk::SERVICE_INF_ACK, not_xml)
        .unwrap();
    assert_eq!(response.status, 500);
    itk.send_raw(b"GET /syncsoap HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(itk.response().unwrap().status, 405);
    sent.entry("itk")
        .or_default()
        .extend([inf_ack, not_xml.to_vec()]);
    assert!(sink.inbox.wait_for(1, WAIT));

    // The ACK's latency is recorded once it is written, the delivery's once the endpoint's
    // ACK is read: wait for both rather than race them.
    wait_until("latencies recorded", WAIT, || {
        let text = scrape(admin, "/metrics");
        sum(&text, "ganglion_listener_ack_latency_seconds_count", &[]) == 16.0
            && sum(&text, "ganglion_delivery_latency_seconds_count", &[]) == 8.0
    });
    let text = scrape(admin, "/metrics");
    let count = |name: &str, with: &[(&str, &str)]| sum(&text, name, with);
    let codes = [
        ("front", "AA", 4.0),
        ("front", "CA", 1.0),
        ("front", "AE", 2.0),
        ("front", "AR", 4.0),
        ("front", "CE", 0.0),
        ("front", "CR", 0.0),
        ("back", "AA", 2.0),
        ("back", "AR", 1.0),
        ("back", "AE", 0.0),
        ("itk", "response", 1.0),
        ("itk", "client_fault", 1.0),
        ("itk", "server_fault", 0.0),
    ];
    for (listener, code, n) in codes {
        assert_eq!(
            count(
                "ganglion_listener_answered_total",
                &[("listener", listener), ("code", code)]
            ),
            n,
            "{listener} {code}\n{text}"
        );
    }
    let reasons = [
        ("front", "unreadable", 2.0),
        ("front", "no_route", 3.0),
        ("front", "rejected", 1.0),
        ("front", "not_stored", 0.0),
        ("back", "no_route", 1.0),
        ("back", "unreadable", 0.0),
        ("itk", "unreadable", 1.0),
        ("itk", "bad_request", 1.0),
    ];
    for (listener, reason, n) in reasons {
        assert_eq!(
            count(
                "ganglion_listener_refused_total",
                &[("listener", listener), ("reason", reason)]
            ),
            n,
            "{listener} {reason}\n{text}"
        );
    }
    for (listener, messages) in &sent {
        let received = messages.len() as f64;
        let bytes = messages.iter().map(Vec::len).sum::<usize>() as f64;
        let with = [("listener", *listener)];
        assert_eq!(count("ganglion_listener_received_total", &with), received);
        assert_eq!(
            count("ganglion_listener_received_bytes_total", &with),
            bytes
        );
        assert_eq!(
            count("ganglion_listener_ack_latency_seconds_count", &with),
            received,
            "{listener}"
        );
        assert_eq!(
            count(
                "ganglion_listener_ack_latency_seconds_bucket",
                &[("listener", *listener), ("le", "+Inf")]
            ),
            received
        );
        assert_eq!(count("ganglion_listener_connections", &with), 1.0);
    }
    assert_eq!(
        count(
            "ganglion_listener_unreadable_total",
            &[("listener", "front")]
        ),
        2.0
    );
    // The process totals say the same as the listeners summed.
    assert_eq!(count("ganglion_received_total", &[]), 16.0);
    assert_eq!(count("ganglion_accepted_total", &[]), 8.0);
    assert_eq!(count("ganglion_delivered_total", &[]), 8.0);
    assert_eq!(count("ganglion_shard_queued", &[]), 0.0);
    assert_eq!(count("ganglion_shard_connect_failures_total", &[]), 0.0);
    // No series per endpoint unless asked: only the totals and the worst few.
    assert!(!text.contains("ganglion_endpoint_queue_depth{"), "{text}");
    assert!(
        !text.contains("ganglion_endpoint_delivered_total{"),
        "{text}"
    );

    let each = scrape(admin, "/metrics?per_endpoint=1");
    let epr_label = [("endpoint", "epr")];
    assert_eq!(
        sum(&each, "ganglion_endpoint_delivered_total", &epr_label),
        7.0,
        "{each}"
    );
    assert_eq!(sum(&each, "ganglion_endpoint_queue_depth", &epr_label), 0.0);
    assert_eq!(sum(&each, "ganglion_endpoint_connected", &epr_label), 1.0);
    assert_eq!(
        request(admin, "GET", "/metrics?per_endpoint=maybe", &[])
            .unwrap()
            .status,
        400
    );

    // Connections closed by their senders leave the open-connections gauge.
    drop((front, back, itk));
    wait_until("senders' connections closed", WAIT, || {
        sum(
            &scrape(admin, "/metrics"),
            "ganglion_listener_connections",
            &[],
        ) == 0.0
    });

    // A reload that removes `back` ends its series; the others keep their counts.
    std::fs::write(&config, routes(false)).unwrap();
    let token = std::fs::read_to_string(scratch.join("data/admin.token")).unwrap();
    let bearer = format!("Authorization: Bearer {}", token.trim());
    let reloaded = request(admin, "POST", "/reload", &[&host(admin), &bearer]).unwrap();
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    let text = scrape(admin, "/metrics");
    assert!(!text.contains("listener=\"back\""), "{text}");
    let front = [("listener", "front")];
    assert_eq!(sum(&text, "ganglion_listener_received_total", &front), 11.0);
    assert_eq!(sum(&text, "ganglion_received_total", &[]), 16.0);
    assert!(router.terminate(WAIT).success());
}
