//! Delivery to endpoints over real sockets: the retry budget and dead letters of a message an
//! endpoint keeps failing, endpoints that replay earlier ACKs, back-pressure from a slow
//! endpoint with a small queue, endpoints reached by host name, and endpoints that take several
//! messages at a time (`max_in_flight`, `connections`) with each patient's kept in order. Runs on the driver named by
//! GANGLION_DRIVER (`.ci/run` runs the suite once with each).
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use codecs::hl7v2::AckCode;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::process::{dead_letters, show_dead_letter, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

fn adt(control_id: &str) -> Vec<u8> {
    patient_adt("9449305552", control_id)
}

/// An ADT for the patient whose NHS number (PID-3) is `patient`.
fn patient_adt(patient: &str, control_id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RX8|EPR|RX8|20261125093015||ADT^A08^ADT_A01|{control_id}|P|2.4\r\
         EVN|A08|20261125093000\rPID|1||{patient}^^^NHS^NH||DOE^JANE||19620314|F\r"
    )
    .into_bytes()
}

fn msh10(message: &[u8]) -> String {
    let parsed = codecs::hl7v2::Message::parse(message).expect("a message the test sent");
    String::from_utf8_lossy(parsed.msh().control_id().unwrap_or_default()).into_owned()
}

/// A routes file with one MLLP listener (`in`), two shards, `extra` (endpoints, groups,
/// `[delivery]`), and one route sending every ADT to `to`.
fn config(scratch: &Scratch, top: &str, extra: &str, to: &str) -> PathBuf {
    scratch.file(
        "routes.toml",
        format!(
            "{top}[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             {extra}\n[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"{to}\"\n",
            scratch.join("data").display()
        ),
    )
}

fn start(config: &std::path::Path) -> RouterProcess {
    RouterProcess::start_quick(config, 2, &["in", "admin"])
}

/// AE for the message called POISON, AA for every other.
fn poisoned(_: usize, frame: &[u8]) -> Reply {
    if msh10(frame) == "POISON" {
        Reply::Ack(AckCode::AE)
    } else {
        Reply::Ack(AckCode::AA)
    }
}

#[test]
fn a_message_failing_past_its_attempts_is_dead_lettered_and_the_next_is_delivered() {
    let scratch = Scratch::new("poison");
    let epr = Endpoint::mllp(None, poisoned);
    let config = config(
        &scratch,
        "",
        &format!(
            "[[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{}\"\nmax_attempts = 3\n",
            epr.addr
        ),
        "epr",
    );
    let mut router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    for id in ["POISON", "N1", "N2"] {
        assert_eq!(
            msa(&sender.exchange(&adt(id)).unwrap()),
            ("AA".into(), id.into())
        );
    }
    assert!(epr.inbox.wait_for(5, WAIT), "{}", router.output());
    // Three attempts at the poison message, then the queue moves on, in order.
    let ids: Vec<String> = epr.inbox.messages().iter().map(|m| msh10(m)).collect();
    assert_eq!(ids, ["POISON", "POISON", "POISON", "N1", "N2"]);
    assert!(
        router.wait_for_output("dead letter", WAIT),
        "{}",
        router.output()
    );
    assert!(router.terminate(WAIT).success());
    let letters = dead_letters(&scratch.join("data"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["endpoint"], "epr");
    assert_eq!(letters[0]["control_id"], "POISON");
    assert_eq!(letters[0]["reason"], "retries-exhausted");
    // The endpoint's last reply is kept beside the message.
    let id = letters[0]["id"].as_str().unwrap();
    let shown = show_dead_letter(&scratch.join("data"), id, "--json");
    let letter: serde_json::Value = serde_json::from_slice(&shown).unwrap();
    assert!(
        letter["reply"].as_str().unwrap().contains("MSA|AE|POISON"),
        "{letter}"
    );
    assert!(
        letter["detail"].as_str().unwrap().contains("3 attempts"),
        "{letter}"
    );
}

#[test]
fn a_group_s_time_budget_dead_letters_and_a_stuck_queue_is_logged_once_then_cleared() {
    let scratch = Scratch::new("stuck");
    let epr = Endpoint::mllp(None, poisoned);
    let config = config(
        &scratch,
        "[delivery]\nstuck_after = \"400ms\"\n\n",
        &format!(
            "[[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[group]]\nname = \"slow-to-give-up\"\nmembers = [\"epr\"]\nretry_for = \"2s\"\n",
            epr.addr
        ),
        "epr",
    );
    let mut router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    for id in ["POISON", "N1"] {
        assert_eq!(msa(&sender.exchange(&adt(id)).unwrap()).0, "AA");
    }
    assert!(
        router.wait_for_output("alert stuck cleared: caught up", WAIT),
        "{}",
        router.output()
    );
    let ids: Vec<String> = epr.inbox.messages().iter().map(|m| msh10(m)).collect();
    assert!(ids.len() > 3, "retried for two seconds: {ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("N1"), "{ids:?}");
    assert!(
        ids[..ids.len() - 1].iter().all(|id| id == "POISON"),
        "{ids:?}"
    );
    // Said once, however many retries there were, naming the endpoint and the message.
    assert_eq!(router.count_output("alert stuck: the oldest message"), 1);
    assert_eq!(
        router.count_output("endpoint=\"epr\" alert=\"stuck\" control_id=\"POISON\""),
        1,
        "{}",
        router.output()
    );
    assert!(router.terminate(WAIT).success());
    let letters = dead_letters(&scratch.join("data"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "retries-exhausted");
}

#[test]
fn acks_of_earlier_messages_replayed_before_the_current_one_are_skipped() {
    let scratch = Scratch::new("replayed-acks");
    let node = Endpoint::mllp(None, |_, _| Reply::ReplayingEarlier(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &format!(
            "[[endpoint]]\nname = \"node\"\nprotocol = \"mllp\"\naddress = \"{}\"\n",
            node.addr
        ),
        "node",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let messages: Vec<Vec<u8>> = (0..6).map(|i| adt(&format!("R{i}"))).collect();
    for m in &messages {
        assert_eq!(msa(&sender.exchange(m).unwrap()).0, "AA");
    }
    assert!(node.inbox.wait_for(messages.len(), WAIT));
    // Each message sent once, on one connection: no reconnect, no resend.
    let ids: Vec<String> = node.inbox.messages().iter().map(|m| msh10(m)).collect();
    assert_eq!(ids, ["R0", "R1", "R2", "R3", "R4", "R5"]);
    assert_eq!(node.inbox.messages(), messages);
    assert_eq!(node.inbox.connections(), 1);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_full_queue_holds_the_senders_back_and_nothing_is_lost() {
    const LIMIT: usize = 4;
    const SENDERS: usize = 2;
    const EACH: usize = 25;
    let scratch = Scratch::new("backpressure");
    // A slow endpoint: a stand-in for one that takes a while over each message.
    let slow = Endpoint::mllp(None, |_, _| {
        std::thread::sleep(Duration::from_millis(20));
        Reply::Ack(AckCode::AA)
    });
    let config = config(
        &scratch,
        "",
        &format!(
            "[[endpoint]]\nname = \"slow\"\nprotocol = \"mllp\"\naddress = \"{}\"\nqueue_limit = {LIMIT}\n",
            slow.addr
        ),
        "slow",
    );
    let router = start(&config);
    let addr = router.addr("in");
    // Two connections (the kernel spreads them over both shards), each sending all its
    // messages at once: one read, one batch, far more than the queue holds.
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let inbox = slow.inbox.clone();
            std::thread::spawn(move || {
                let mut sender = Sender::connect(addr).unwrap();
                let mut burst = Vec::new();
                for i in 0..EACH {
                    codecs::mllp::encode(&adt(&format!("S{s}-{i}")), &mut burst);
                }
                sender.send_raw(&burst).unwrap();
                for i in 0..EACH {
                    assert_eq!(
                        msa(&sender.ack().unwrap()),
                        ("AA".into(), format!("S{s}-{i}"))
                    );
                    // An ACK means queued; with at most LIMIT queued, the endpoint has had all
                    // but LIMIT of what was acknowledged so far (this sender's share included).
                    let (acked, received) = (i + 1, inbox.len());
                    assert!(
                        received + LIMIT >= acked,
                        "{acked} acknowledged while the endpoint had received {received}: \
                         the queue grew past {LIMIT}"
                    );
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    assert!(slow.inbox.wait_for(SENDERS * EACH, WAIT));
    let ids: Vec<String> = slow.inbox.messages().iter().map(|m| msh10(m)).collect();
    assert_eq!(ids.len(), SENDERS * EACH, "{ids:?}");
    // Every message once, each sender's in its order.
    for s in 0..SENDERS {
        let mine: Vec<&String> = ids
            .iter()
            .filter(|id| id.starts_with(&format!("S{s}-")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("S{s}-{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
    assert!(router.terminate(WAIT).success());
}

#[test]
fn an_endpoint_named_by_host_is_reached_on_whichever_address_listens() {
    let scratch = Scratch::new("localhost");
    let epr = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let port = epr.addr.port();
    // Where `localhost` also means ::1 (most hosts list it first), nothing listens there: the
    // connection is refused and 127.0.0.1 must be tried next.
    if let Ok(v6) = std::net::TcpListener::bind(("::1", port)) {
        drop(v6);
    }
    let config = config(
        &scratch,
        "",
        &format!(
            "[[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"localhost:{port}\"\n"
        ),
        "epr",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let message = adt("L1");
    assert_eq!(msa(&sender.exchange(&message).unwrap()).0, "AA");
    assert!(epr.inbox.wait_for(1, WAIT));
    assert_eq!(epr.inbox.messages(), vec![message]);
    assert!(router.terminate(WAIT).success());
}

/// Alert thresholds from routes.toml: an endpoint that is down passes its queue depth and keeps
/// its circuit open past the limit; each alert is one warning, shown as a metric, and one
/// notice when it clears once the endpoint is back.
#[test]
fn alerts_are_raised_once_shown_and_cleared_once() {
    alerts_of_a_down_endpoint_are_raised_once_shown_and_cleared_once("");
}

/// As for one message at a time: the alerts are the endpoint's, not each connection's.
#[test]
fn alerts_of_an_endpoint_with_many_in_flight_are_raised_once_shown_and_cleared_once() {
    alerts_of_a_down_endpoint_are_raised_once_shown_and_cleared_once(HOT);
}

fn alerts_of_a_down_endpoint_are_raised_once_shown_and_cleared_once(keys: &str) {
    let scratch = Scratch::new("alerts");
    let port = tests::endpoint::unused_port();
    let config = config(
        &scratch,
        "[delivery]\nalert_queue_depth = 2\nalert_circuit_open = \"300ms\"\n\n",
        &hot_endpoint(port, keys),
        "epr",
    );
    let mut router = start(&config);
    let admin = router.addr("admin");
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    for i in 0..4 {
        assert_eq!(
            msa(&sender.exchange(&adt(&format!("Q{i}"))).unwrap()).0,
            "AA"
        );
    }
    for line in ["alert queue_depth: ", "alert circuit_open: the circuit"] {
        assert!(
            router.wait_for_output(line, WAIT),
            "{line}: {}",
            router.output()
        );
    }
    let alerts = |name: &str| {
        tests::process::metric(
            admin,
            &format!("ganglion_endpoint_alerts{{alert=\"{name}\"}}"),
        )
    };
    assert_eq!((alerts("queue_depth"), alerts("circuit_open")), (1, 1));
    // More messages and more failed probes: still one warning each.
    let tried = tests::process::metric(admin, "ganglion_retries_total");
    assert_eq!(msa(&sender.exchange(&adt("Q4")).unwrap()).0, "AA");
    tests::process::wait_until("two more failed attempts", WAIT, || {
        tests::process::metric(admin, "ganglion_retries_total") >= tried + 2
    });
    assert_eq!(
        router.count_output("alert queue_depth: "),
        1,
        "{}",
        router.output()
    );
    assert_eq!(router.count_output("alert circuit_open: "), 1);

    let epr = Endpoint::mllp_on(std::net::TcpListener::bind(port).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AA)
    });
    assert!(epr.inbox.wait_for(5, WAIT));
    for line in ["alert queue_depth cleared", "alert circuit_open cleared"] {
        assert!(
            router.wait_for_output(line, WAIT),
            "{line}: {}",
            router.output()
        );
        assert_eq!(router.count_output(line), 1);
    }
    assert_eq!((alerts("queue_depth"), alerts("circuit_open")), (0, 0));
    assert!(router.terminate(WAIT).success());
}

/// Messages `P{p}-{i}` for `patients` patients, `each` apiece, interleaved as a busy feed sends
/// them: every patient's first, then every patient's second, and so on.
fn patients_feed(patients: usize, each: usize) -> Vec<(String, Vec<u8>)> {
    (0..each)
        .flat_map(|i| (0..patients).map(move |p| (p, i)))
        .map(|(p, i)| {
            let id = format!("P{p}-{i}");
            let message = patient_adt(&format!("9{p:09}"), &id);
            (id, message)
        })
        .collect()
}

/// Sends `feed` in one burst on one connection to `listener` and checks every ACK.
fn send_feed(listener: std::net::SocketAddr, feed: &[(String, Vec<u8>)]) {
    let mut sender = Sender::connect(listener).unwrap();
    let mut burst = Vec::new();
    for (_, message) in feed {
        codecs::mllp::encode(message, &mut burst);
    }
    sender.send_raw(&burst).unwrap();
    for (id, _) in feed {
        assert_eq!(msa(&sender.ack().unwrap()), ("AA".into(), id.clone()));
    }
}

/// Each patient's messages as the endpoint received them, a message sent again at once (its
/// connection failed before its ACK was read) counted once: `P3` → `["P3-0", "P3-1", …]`.
fn per_patient(received: &[Vec<u8>], patients: usize) -> Vec<Vec<String>> {
    let ids: Vec<String> = received.iter().map(|m| msh10(m)).collect();
    (0..patients)
        .map(|p| {
            let mut mine: Vec<String> = ids
                .iter()
                .filter(|id| id.starts_with(&format!("P{p}-")))
                .cloned()
                .collect();
            mine.dedup();
            mine
        })
        .collect()
}

fn in_order(patients: usize, each: usize) -> Vec<Vec<String>> {
    (0..patients)
        .map(|p| (0..each).map(|i| format!("P{p}-{i}")).collect())
        .collect()
}

/// An endpoint that answers `odd` to the first message `picks` (by its number and bytes), and
/// AA to everything else, that message sent again included.
fn answering_once(
    odd: Reply,
    picks: impl Fn(usize, &[u8]) -> bool + Send + Sync + 'static,
) -> Endpoint {
    let answered = AtomicBool::new(false);
    Endpoint::mllp(None, move |n, frame| {
        if picks(n, frame) && !answered.swap(true, Ordering::SeqCst) {
            odd.clone()
        } else {
            Reply::Ack(AckCode::AA)
        }
    })
}

fn hot_endpoint(addr: std::net::SocketAddr, keys: &str) -> String {
    format!("[[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{addr}\"\n{keys}")
}

#[test]
fn many_patients_in_flight_on_two_connections_each_keep_their_order() {
    const PATIENTS: usize = 24;
    const EACH: usize = 10;
    let scratch = Scratch::new("hot");
    // A receiver that takes a while over each message: what makes more than one in flight pay.
    let epr = Endpoint::mllp(None, |_, _| {
        std::thread::sleep(Duration::from_millis(2));
        Reply::Ack(AckCode::AA)
    });
    let keys = "max_in_flight = 8\nconnections = 2\n";
    let config = config(&scratch, "", &hot_endpoint(epr.addr, keys), "epr");
    let router = start(&config);
    send_feed(router.addr("in"), &patients_feed(PATIENTS, EACH));
    router.wait_settled((PATIENTS * EACH) as u64, 0);
    let received = epr.inbox.messages();
    assert_eq!(received.len(), PATIENTS * EACH, "each message once");
    assert_eq!(per_patient(&received, PATIENTS), in_order(PATIENTS, EACH));
    assert_eq!(epr.inbox.connections(), 2, "one per `connections`");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_prewarmed_endpoint_with_many_in_flight_connects_each_lane_before_its_first_message() {
    let scratch = Scratch::new("hot-prewarm");
    let epr = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let keys = "max_in_flight = 8\nconnections = 3\nprewarm = true\n";
    let config = config(&scratch, "", &hot_endpoint(epr.addr, keys), "epr");
    let router = start(&config);
    let deadline = std::time::Instant::now() + WAIT;
    while epr.inbox.connections() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        epr.inbox.connections(),
        3,
        "one per lane, before any message"
    );
    assert!(epr.inbox.messages().is_empty());
    send_feed(router.addr("in"), &patients_feed(3, 2));
    router.wait_settled(6, 0);
    assert_eq!(
        epr.inbox.connections(),
        3,
        "the messages went over the pre-warmed lanes"
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_declined_message_holds_back_its_patient_s_later_messages_only() {
    const PATIENTS: usize = 6;
    const EACH: usize = 5;
    let scratch = Scratch::new("hot-retry");
    let epr = answering_once(Reply::Ack(AckCode::AE), |_, frame| msh10(frame) == "P0-1");
    let config = config(
        &scratch,
        "",
        &hot_endpoint(epr.addr, "max_in_flight = 8\n"),
        "epr",
    );
    let router = start(&config);
    send_feed(router.addr("in"), &patients_feed(PATIENTS, EACH));
    router.wait_settled((PATIENTS * EACH) as u64, 0);
    let ids: Vec<String> = epr.inbox.messages().iter().map(|m| msh10(m)).collect();
    let at = |id: &str| ids.iter().rposition(|x| x == id).unwrap();
    assert_eq!(ids.iter().filter(|id| *id == "P0-1").count(), 2, "{ids:?}");
    assert!(
        at("P0-2") > at("P0-1"),
        "P0-2 overtook the retry of P0-1: {ids:?}"
    );
    assert_eq!(
        per_patient(&epr.inbox.messages(), PATIENTS),
        in_order(PATIENTS, EACH)
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn an_ack_naming_no_message_in_flight_closes_the_connection_and_nothing_is_lost() {
    const PATIENTS: usize = 8;
    const EACH: usize = 6;
    let scratch = Scratch::new("hot-wrong-id");
    let epr = answering_once(Reply::WrongId, |n, _| n == 5);
    let config = config(
        &scratch,
        "",
        &hot_endpoint(epr.addr, "max_in_flight = 4\n"),
        "epr",
    );
    let mut router = start(&config);
    send_feed(router.addr("in"), &patients_feed(PATIENTS, EACH));
    router.wait_settled((PATIENTS * EACH) as u64, 0);
    assert_eq!(
        per_patient(&epr.inbox.messages(), PATIENTS),
        in_order(PATIENTS, EACH)
    );
    assert_eq!(epr.inbox.connections(), 2, "closed once, opened again");
    assert!(
        router.wait_for_output("SOMEONE-ELSE\\\", which is not in flight", WAIT),
        "{}",
        router.output()
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn by_default_one_message_is_in_flight_and_a_retry_holds_every_patient_back() {
    let scratch = Scratch::new("strict");
    let epr = answering_once(Reply::Ack(AckCode::AE), |_, frame| msh10(frame) == "P0-0");
    let config = config(&scratch, "", &hot_endpoint(epr.addr, ""), "epr");
    let router = start(&config);
    let feed = patients_feed(3, 2);
    send_feed(router.addr("in"), &feed);
    router.wait_settled(feed.len() as u64, 0);
    let ids: Vec<String> = epr.inbox.messages().iter().map(|m| msh10(m)).collect();
    assert_eq!(
        ids,
        ["P0-0", "P0-0", "P1-0", "P2-0", "P0-1", "P1-1", "P2-1"]
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn after_a_restart_each_patient_s_messages_still_arrive_in_order() {
    const PATIENTS: usize = 10;
    const EACH: usize = 6;
    let scratch = Scratch::new("hot-restart");
    let port = tests::endpoint::unused_port();
    let keys = "max_in_flight = 8\nconnections = 2\n";
    let config = config(&scratch, "", &hot_endpoint(port, keys), "epr");
    let router = start(&config);
    send_feed(router.addr("in"), &patients_feed(PATIENTS, EACH));
    // Stopped while the endpoint is down: everything waits in the log.
    assert!(router.terminate(WAIT).success());
    let epr = Endpoint::mllp_on(std::net::TcpListener::bind(port).unwrap(), None, |_, _| {
        std::thread::sleep(Duration::from_millis(1));
        Reply::Ack(AckCode::AA)
    });
    let restarted = start(&config);
    restarted.wait_settled((PATIENTS * EACH) as u64, 0);
    assert_eq!(
        per_patient(&epr.inbox.messages(), PATIENTS),
        in_order(PATIENTS, EACH)
    );
    assert!(restarted.terminate(WAIT).success());
}

/// Many in flight on two connections.
const HOT: &str = "max_in_flight = 8\nconnections = 2\n";

/// A reload that switches an endpoint between one message at a time and many in flight, and
/// back, while a feed streams in: what the old arrangement had in flight is answered before
/// the new one sends, so every message arrives once and each patient's in order.
#[test]
fn a_reload_moves_an_endpoint_between_one_and_many_in_flight_under_traffic() {
    const PATIENTS: usize = 16;
    const EACH: usize = 30;
    let scratch = Scratch::new("hot-reload");
    let epr = Endpoint::mllp(None, |_, _| {
        std::thread::sleep(Duration::from_millis(1));
        Reply::Ack(AckCode::AA)
    });
    let routes = |keys: &str| config(&scratch, "", &hot_endpoint(epr.addr, keys), "epr");
    let router = start(&routes(""));
    let feed = patients_feed(PATIENTS, EACH);
    let total = feed.len();
    let listener = router.addr("in");
    std::thread::scope(|s| {
        s.spawn(|| {
            for chunk in feed.chunks(PATIENTS * 2) {
                send_feed(listener, chunk);
            }
        });
        for (round, keys) in [HOT, "", HOT, ""].into_iter().enumerate() {
            assert!(
                epr.inbox.wait_for((round + 1) * total / 6, WAIT),
                "round {round}: {} delivered",
                epr.inbox.len()
            );
            routes(keys);
            let output = router.reload(&scratch.join("data"));
            let said = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "round {round}: {output:?}");
            assert!(said.contains("1 rearranged"), "round {round}: {said}");
        }
    });
    router.wait_settled(total as u64, 0);
    let received = epr.inbox.messages();
    assert_eq!(received.len(), total, "each message once");
    assert_eq!(per_patient(&received, PATIENTS), in_order(PATIENTS, EACH));
    // One connection, then two for the lanes, then one again at least: each arrangement ran.
    assert!(epr.inbox.connections() >= 4, "{}", epr.inbox.connections());
    assert!(router.terminate(WAIT).success());
}

/// `/endpoints/epr` as JSON, with the admin token the router made.
fn endpoint_status(router: &RouterProcess, scratch: &Scratch) -> serde_json::Value {
    let admin = router.addr("admin");
    let token = std::fs::read_to_string(scratch.join("data/admin.token")).unwrap();
    let bearer = format!("Authorization: Bearer {}", token.trim());
    let host = tests::admin::host(admin);
    let response = tests::admin::request(admin, "GET", "/endpoints/epr", &[&host, &bearer]);
    serde_json::from_str(&response.unwrap().body).unwrap_or_default()
}

/// An endpoint that takes messages and answers nothing until told to: its oldest message
/// waits past `stuck_after` (shown by `/endpoints` meanwhile) and its queue passes
/// `alert_queue_depth`; each alert is one warning, and one notice once it answers again.
fn a_silent_endpoint_raises_stuck_and_queue_depth_once(keys: &str) {
    let scratch = Scratch::new("silent");
    let answering = std::sync::Arc::new(AtomicBool::new(false));
    let told = std::sync::Arc::clone(&answering);
    let epr = Endpoint::mllp(None, move |_, _| {
        if told.load(Ordering::SeqCst) {
            Reply::Ack(AckCode::AA)
        } else {
            Reply::Silent
        }
    });
    let top = "[delivery]\nstuck_after = \"300ms\"\nalert_queue_depth = 2\n\n";
    let config = config(&scratch, top, &hot_endpoint(epr.addr, keys), "epr");
    let mut router = start(&config);
    let feed = patients_feed(4, 1);
    send_feed(router.addr("in"), &feed);
    for line in ["alert stuck: the oldest message", "alert queue_depth: "] {
        assert!(
            router.wait_for_output(line, WAIT),
            "{line}: {}",
            router.output()
        );
    }
    tests::process::wait_until("the oldest message's age shown", WAIT, || {
        endpoint_status(&router, &scratch)["oldest_queued_age_ms"].as_u64() >= Some(300)
    });
    answering.store(true, Ordering::SeqCst);
    router.wait_settled(feed.len() as u64, 0);
    for line in ["alert stuck cleared", "alert queue_depth cleared"] {
        assert!(
            router.wait_for_output(line, WAIT),
            "{line}: {}",
            router.output()
        );
        assert_eq!(router.count_output(line), 1, "{}", router.output());
    }
    assert_eq!(router.count_output("alert stuck: the oldest message"), 1);
    assert_eq!(router.count_output("alert queue_depth: "), 1);
    assert_eq!(
        endpoint_status(&router, &scratch)["oldest_queued_age_ms"],
        serde_json::Value::Null
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_silent_endpoint_taking_one_at_a_time_raises_its_alerts_once() {
    a_silent_endpoint_raises_stuck_and_queue_depth_once("");
}

#[test]
fn a_silent_endpoint_taking_many_at_a_time_raises_its_alerts_as_one_at_a_time_does() {
    a_silent_endpoint_raises_stuck_and_queue_depth_once(HOT);
}
