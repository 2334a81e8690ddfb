//! `ganglion run` over real sockets: HL7v2 senders over MLLP, stand-in endpoints over MLLP
//! (plain and TLS), exact bytes on both sides. Runs on the driver named by GANGLION_DRIVER
//! (`.ci/run` runs the suite once with each).
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use codecs::hl7v2::AckCode;
use tests::endpoint::{msa, unused_port, Endpoint, Reply, Sender};
use tests::pki::TestPki;
use tests::process::{dead_letters, metric, show_dead_letter, wait_until, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

fn adt(control_id: &str, receiving_facility: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RX8|EPR|{receiving_facility}|20261125093015||ADT^A01^ADT_A01|{control_id}|P|2.4\r\
         EVN|A01|20261125093000\rPID|1||9449305552^^^NHS^NH||O'NEIL^Siobh\u{e1}n||19620314|F\r"
    )
    .into_bytes()
}

/// Writes a routes file: one MLLP listener (`in`), the given endpoints (name → `[[endpoint]]`
/// body) and routes, two shards, a fast retry base.
fn config(
    scratch: &Scratch,
    listener_extra: &str,
    endpoints: &[(&str, String)],
    routes: &str,
) -> PathBuf {
    let mut text = format!(
        "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n{listener_extra}\n",
        scratch.join("data").display()
    );
    for (name, body) in endpoints {
        text.push_str(&format!("[[endpoint]]\nname = \"{name}\"\n{body}\n"));
    }
    text.push_str(routes);
    scratch.file("routes.toml", text)
}

fn mllp_endpoint(endpoint: &Endpoint) -> String {
    format!("protocol = \"mllp\"\naddress = \"{}\"\n", endpoint.addr)
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start_quick(config, 2, &["in", "admin"])
}

fn always(code: AckCode) -> impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static {
    move |_, _| Reply::Ack(code)
}

#[test]
fn routes_by_receiving_facility_with_exact_bytes_and_acks() {
    let scratch = Scratch::new("route");
    let rx8 = Endpoint::mllp(None, always(AckCode::AA));
    let j82 = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &[("rx8", mllp_endpoint(&rx8)), ("j82", mllp_endpoint(&j82))],
        "[[route]]\nname = \"rx8\"\nhl7.receiving_facility = \"RX8\"\nto = \"rx8\"\n\n\
         [[route]]\nname = \"j82\"\nhl7.receiving_facility = \"J82001\"\nto = \"j82\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let first = adt("C1", "RX8");
    let second = adt("C2", "J82001");
    let ack = sender.exchange(&first).unwrap();
    assert_eq!(msa(&ack), ("AA".into(), "C1".into()));
    let text = String::from_utf8_lossy(&ack).into_owned();
    // Sender and receiver are swapped in the ACK's MSH.
    assert!(text.starts_with("MSH|^~\\&|EPR|RX8|PAS|RX8|"), "{text}");
    assert!(text.contains("|ACK^A01^ACK|"), "{text}");
    assert_eq!(
        msa(&sender.exchange(&second).unwrap()),
        ("AA".into(), "C2".into())
    );

    assert!(rx8.inbox.wait_for(1, WAIT) && j82.inbox.wait_for(1, WAIT));
    // Forwarded exactly as received, non-ASCII bytes included.
    assert_eq!(rx8.inbox.messages(), vec![first]);
    assert_eq!(j82.inbox.messages(), vec![second]);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn pipelined_messages_are_acked_in_order_and_delivered_in_order() {
    let scratch = Scratch::new("pipeline");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let messages: Vec<Vec<u8>> = (0..200).map(|i| adt(&format!("P{i}"), "RX8")).collect();
    let mut burst = Vec::new();
    for m in &messages {
        codecs::mllp::encode(m, &mut burst);
    }
    sender.send_raw(&burst).unwrap();
    for i in 0..200 {
        assert_eq!(msa(&sender.ack().unwrap()), ("AA".into(), format!("P{i}")));
    }
    assert!(epr.inbox.wait_for(200, WAIT));
    assert_eq!(epr.inbox.messages(), messages);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn fan_out_sends_the_same_bytes_to_every_endpoint() {
    let scratch = Scratch::new("fanout");
    let audit = Endpoint::mllp(None, always(AckCode::AA));
    let epr = Endpoint::mllp(None, always(AckCode::CA));
    let config = config(
        &scratch,
        "",
        &[("audit", mllp_endpoint(&audit)), ("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"audit\"\nhl7.message_type = \"ADT\"\nto = \"audit\"\ncontinue = true\n\n\
         [[route]]\nname = \"epr\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let message = adt("F1", "RX8");
    assert_eq!(msa(&sender.exchange(&message).unwrap()).0, "AA");
    assert!(audit.inbox.wait_for(1, WAIT) && epr.inbox.wait_for(1, WAIT));
    assert_eq!(audit.inbox.messages(), vec![message.clone()]);
    assert_eq!(epr.inbox.messages(), vec![message]);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn concurrent_senders_keep_their_order_at_the_endpoint() {
    let scratch = Scratch::new("order");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let addr = router.addr("in");
    const SENDERS: usize = 6;
    const EACH: usize = 100;
    let threads: Vec<_> = (0..SENDERS)
        .map(|s| {
            std::thread::spawn(move || {
                // Several connections land on both shards (SO_REUSEPORT spreads them).
                let mut sender = Sender::connect(addr).unwrap();
                for i in 0..EACH {
                    let ack = sender.exchange(&adt(&format!("S{s}-{i}"), "RX8")).unwrap();
                    assert_eq!(msa(&ack), ("AA".into(), format!("S{s}-{i}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(epr.inbox.wait_for(SENDERS * EACH, WAIT));
    let mut next: HashMap<String, usize> = HashMap::new();
    for message in epr.inbox.messages() {
        let id = msh10(&message);
        let (sender, i) = id.split_once('-').unwrap();
        let i: usize = i.parse().unwrap();
        let expected = next.entry(sender.to_string()).or_default();
        assert_eq!(i, *expected, "sender {sender} out of order");
        *expected += 1;
    }
    assert!(next.values().all(|&n| n == EACH), "{next:?}");
    assert!(router.terminate(WAIT).success());
}

fn msh10(message: &[u8]) -> String {
    let parsed = codecs::hl7v2::Message::parse(message).unwrap();
    String::from_utf8_lossy(parsed.msh().control_id().unwrap()).into_owned()
}

#[test]
fn an_endpoint_that_is_down_gets_the_message_once_it_comes_up() {
    let scratch = Scratch::new("down");
    // Reserve a port, then close it: the endpoint is down.
    let port = unused_port();
    let config = config(
        &scratch,
        "",
        &[(
            "late",
            format!("protocol = \"mllp\"\naddress = \"{port}\"\n"),
        )],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"late\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let message = adt("D1", "RX8");
    // Accepted while the endpoint is down: it is queued, not refused.
    assert_eq!(msa(&sender.exchange(&message).unwrap()).0, "AA");
    // It tried while the endpoint was down, and will try again.
    wait_until("a failed attempt", WAIT, || {
        metric(router.addr("admin"), "ganglion_retries_total") >= 1
    });
    let listener = std::net::TcpListener::bind(port).unwrap();
    let late = Endpoint::mllp_on(listener, None, always(AckCode::AA));
    router.wait_settled(1, 0);
    assert_eq!(late.inbox.messages(), vec![message]);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn ae_is_retried_until_aa_and_ar_is_dead_lettered() {
    let scratch = Scratch::new("retry");
    // First attempt AE, second AA.
    let flaky = Endpoint::mllp(None, |n, _| {
        Reply::Ack(if n == 0 { AckCode::AE } else { AckCode::AA })
    });
    let refuser = Endpoint::mllp(None, always(AckCode::AR));
    let config = config(
        &scratch,
        "",
        &[
            ("flaky", mllp_endpoint(&flaky)),
            ("refuser", mllp_endpoint(&refuser)),
        ],
        "[[route]]\nname = \"flaky\"\nhl7.receiving_facility = \"FLAKY\"\nto = \"flaky\"\n\n\
         [[route]]\nname = \"refuser\"\nhl7.receiving_facility = \"NO\"\nto = \"refuser\"\n",
    );
    let mut router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let retried = adt("R1", "FLAKY");
    let refused = adt("R2", "NO");
    assert_eq!(msa(&sender.exchange(&retried).unwrap()).0, "AA");
    assert_eq!(msa(&sender.exchange(&refused).unwrap()).0, "AA");
    assert!(flaky.inbox.wait_for(2, WAIT));
    assert!(refuser.inbox.wait_for(1, WAIT));
    assert!(
        router.wait_for_output("endpoint=\"refuser\" control_id=\"R2\"", WAIT),
        "{}",
        router.output()
    );
    router.wait_settled(1, 1);
    // AE: sent again (same bytes), then done; AR: never sent again.
    assert_eq!(flaky.inbox.messages(), vec![retried.clone(), retried]);
    assert_eq!(refuser.inbox.messages(), vec![refused.clone()]);
    assert!(router.terminate(WAIT).success());
    // The refused message is in the dead-letter store with the endpoint's reply beside it.
    let letters = dead_letters(&scratch.join("data"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["endpoint"], "refuser");
    assert_eq!(letters[0]["reason"], "rejected");
    assert_eq!(letters[0]["control_id"], "R2");
    let id = letters[0]["id"].as_str().unwrap();
    let shown = show_dead_letter(&scratch.join("data"), id, "--raw");
    assert_eq!(shown, refused);
}

#[test]
fn a_reply_for_another_message_is_not_delivery() {
    let scratch = Scratch::new("wrongid");
    let confused = Endpoint::mllp(None, |n, _| {
        if n == 0 {
            Reply::WrongId
        } else {
            Reply::Ack(AckCode::AA)
        }
    });
    let config = config(
        &scratch,
        "",
        &[("confused", mllp_endpoint(&confused))],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"confused\"\n",
    );
    let mut router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let message = adt("W1", "RX8");
    assert_eq!(msa(&sender.exchange(&message).unwrap()).0, "AA");
    router.wait_settled(1, 0);
    assert_eq!(confused.inbox.messages(), vec![message.clone(), message]);
    assert!(
        router
            .output()
            .contains("acknowledges \\\"SOMEONE-ELSE\\\"")
            || router.output().contains("SOMEONE-ELSE")
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn broken_input_gets_an_answer_and_the_connection_stays_usable() {
    let scratch = Scratch::new("garbage");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "max_message_bytes = 2048\n",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    // Line ends between frames are skipped (other bytes outside a frame close the connection:
    // see bytes_that_are_not_mllp_are_closed_at_once_with_one_log_line); garbage inside a
    // frame gets AE with where it failed.
    sender.send_raw(b"\n\n").unwrap();
    let ack = sender.exchange(b"this is not HL7").unwrap();
    assert_eq!(msa(&ack).0, "AE");
    let text = String::from_utf8_lossy(&ack).into_owned();
    assert!(text.contains("ERR|"), "{text}");
    // A frame over the limit gets AR, and the connection still works.
    let mut big = adt("BIG", "RX8");
    big.extend(std::iter::repeat_n(b'x', 4096));
    let ack = sender.exchange(&big).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "BIG".into()));
    assert!(String::from_utf8_lossy(&ack).contains("2048"));
    let ok = adt("OK1", "RX8");
    assert_eq!(
        msa(&sender.exchange(&ok).unwrap()),
        ("AA".into(), "OK1".into())
    );
    // Half a frame, then the sender goes away: nothing is acknowledged or delivered. Once the
    // router has closed its side it has done all it will with those bytes.
    let mut half = std::net::TcpStream::connect(router.addr("in")).unwrap();
    half.write_all(b"\x0bMSH|^~\\&|PAS|RX8|EPR|RX8|2026||ADT^A01|HALF|P|2.4\r")
        .unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    half.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    half.read_to_end(&mut answer)
        .expect("the router closes the connection");
    assert!(answer.is_empty(), "{answer:?}");
    router.wait_settled(1, 0);
    assert_eq!(epr.inbox.messages(), vec![ok]);
    // And the router still serves new senders.
    let mut again = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(msa(&again.exchange(&adt("OK2", "RX8")).unwrap()).0, "AA");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn unrouted_and_rejected_messages_get_ar_with_the_reason() {
    let scratch = Scratch::new("reject");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"tests\"\nhl7.sending_application = \"ZZ*\"\nreject = \"test systems may not send here\"\n\n\
         [[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let from_test = String::from_utf8(adt("T1", "RX8"))
        .unwrap()
        .replace("|PAS|", "|ZZTEST|");
    let ack = sender.exchange(from_test.as_bytes()).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "T1".into()));
    assert!(String::from_utf8_lossy(&ack).contains("test systems may not send here"));
    let oru = b"MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|U1|P|2.4\rPID|1\r";
    let ack = sender.exchange(oru).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "U1".into()));
    assert!(String::from_utf8_lossy(&ack).contains("no route"));
    router.wait_settled(0, 0);
    assert!(epr.inbox.is_empty());
    assert!(router.terminate(WAIT).success());
}

#[test]
fn tls_on_both_sides_and_mtls_refuses_anonymous_senders() {
    let scratch = Scratch::new("tls");
    let pki = TestPki::new();
    let secure = Endpoint::mllp(Some(pki.server(false)), always(AckCode::AA));
    let listener = format!(
        "cert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nclient_cert = \"required\"\n",
        pki.toml("server.crt"),
        pki.toml("server.key"),
        pki.toml("ca.crt")
    );
    let mut text = std::fs::read_to_string(config(
        &scratch,
        &listener,
        &[(
            "secure",
            format!(
                "protocol = \"mllps\"\naddress = \"{}\"\ntls = \"lab\"\n",
                secure.addr
            ),
        )],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"secure\"\n",
    ))
    .unwrap();
    text = text.replace("protocol = \"mllp\"\nbind", "protocol = \"mllps\"\nbind");
    text.push_str(&format!("\n[tls.lab]\nca = \"{}\"\n", pki.toml("ca.crt")));
    let config = scratch.file("routes.toml", text);
    let router = start(&config);

    let connect = |with_cert: bool| -> std::io::Result<Sender> {
        let tcp = std::net::TcpStream::connect(router.addr("in"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(pki.client(with_cert), name)
            .map_err(std::io::Error::other)?;
        Ok(Sender::over(Box::new(rustls::StreamOwned::new(conn, tcp))))
    };
    let mut sender = connect(true).unwrap();
    let message = adt("TLS1", "RX8");
    assert_eq!(
        msa(&sender.exchange(&message).unwrap()),
        ("AA".into(), "TLS1".into())
    );
    assert!(secure.inbox.wait_for(1, WAIT));
    assert_eq!(secure.inbox.messages(), vec![message]);
    // One full handshake each way: the sender's with listener `in`, ours with the endpoint.
    let admin = router.addr("admin");
    let on_shards = |series: &dyn Fn(usize) -> String| -> u64 {
        (0..2).map(|shard| metric(admin, &series(shard))).sum()
    };
    let sender_side = |kind: &str| {
        on_shards(&|shard| {
            format!(
                "ganglion_listener_tls_handshakes_total{{listener=\"in\",shard=\"{shard}\",kind=\"{kind}\"}}"
            )
        })
    };
    let endpoint_side = on_shards(&|shard| {
        format!("ganglion_shard_tls_handshakes_total{{shard=\"{shard}\",kind=\"full\"}}")
    });
    assert_eq!((sender_side("full"), sender_side("resumed")), (1, 0));
    assert_eq!(endpoint_side, 1);

    let mut anonymous = connect(false).unwrap();
    assert!(anonymous.exchange(&adt("TLS2", "RX8")).is_err());
    router.wait_settled(1, 0);
    assert_eq!(secure.inbox.len(), 1);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn idle_senders_are_closed_and_connections_are_limited() {
    let scratch = Scratch::new("limits");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "idle_timeout = \"1s\"\nmax_connections = 2\n",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut first = Sender::connect(router.addr("in")).unwrap();
    let mut second = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(msa(&first.exchange(&adt("L1", "RX8")).unwrap()).0, "AA");
    assert_eq!(msa(&second.exchange(&adt("L2", "RX8")).unwrap()).0, "AA");
    // A third is one too many: it is closed without an answer.
    let mut third = Sender::connect(router.addr("in")).unwrap();
    assert!(third.exchange(&adt("L3", "RX8")).is_err());
    // Idle for longer than the timeout, the first two are closed by the router (an end of
    // stream, not our own read timing out)...
    for idle in [&mut first, &mut second] {
        let closed = idle.ack().expect_err("nothing more to read");
        assert!(
            matches!(
                closed.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{closed:?}"
        );
    }
    // ...which frees their places.
    let mut fourth = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(msa(&fourth.exchange(&adt("L5", "RX8")).unwrap()).0, "AA");
    router.wait_settled(3, 0);
    let ids: Vec<String> = epr.inbox.messages().iter().map(|m| msh10(m)).collect();
    assert_eq!(ids, vec!["L1", "L2", "L5"]);
    assert!(router.terminate(WAIT).success());
}

/// The segment called `id` of an ACK, as text.
fn segment(ack: &[u8], id: &str) -> String {
    let text = String::from_utf8_lossy(ack).into_owned();
    text.split('\r')
        .find(|s| s.starts_with(id))
        .unwrap_or_else(|| panic!("no {id} in {text:?}"))
        .to_string()
}

/// Where MSH-`n` starts in an MSH line with `|` as field separator (MSH-1 is the first `|`).
fn msh_field_offset(message: &[u8], n: usize) -> usize {
    let mut seen = 0;
    for (i, &b) in message.iter().enumerate() {
        if b == b'|' {
            seen += 1;
            if seen == n - 1 {
                return i + 1;
            }
        }
    }
    panic!("MSH-{n} not in {message:?}")
}

#[test]
fn missing_required_msh_fields_get_ae_101_with_their_place_never_aa() {
    let scratch = Scratch::new("required");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    // A route with no conditions takes every message: routing itself needs no field.
    let config = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"everything\"\nto = \"epr\"\n",
    );
    let mut router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let no_type = b"MSH|^~\\&|PAS|RX8|EPR|RX8|2026|||E9|P|2.4\rPID|1\r".to_vec();
    let no_id = b"MSH|^~\\&|PAS|RX8|EPR|RX8|2026||ADT^A01||P|2.4\rPID|1\r".to_vec();
    let no_version = b"MSH|^~\\&|PAS|RX8|EPR|RX8|2026||ADT^A01|E12|P\rPID|1\r".to_vec();
    let truncated = b"MSH|^~\\&|App|Fac".to_vec();
    let cases = [
        (&no_type, "E9", 9, msh_field_offset(&no_type, 9)),
        (&no_id, "", 10, msh_field_offset(&no_id, 10)),
        (
            &no_version,
            "E12",
            12,
            no_version.iter().position(|&b| b == b'\r').unwrap(),
        ),
        (&truncated, "", 9, truncated.len()),
    ];
    for (message, control_id, field, offset) in cases {
        let ack = sender.exchange(message).unwrap();
        assert_eq!(msa(&ack), ("AE".into(), control_id.into()));
        let err = segment(&ack, "ERR|");
        assert!(
            err.contains(&format!(
                "|MSH^1^{field}|101^Required field missing^HL70357|E|"
            )),
            "{err}"
        );
        assert!(err.contains(&format!("|byte {offset}|")), "{err}");
    }
    // Nothing of it reached the endpoint, whose queue still moves.
    let ok = adt("OK1", "RX8");
    assert_eq!(
        msa(&sender.exchange(&ok).unwrap()),
        ("AA".into(), "OK1".into())
    );
    assert!(epr.inbox.wait_for(1, WAIT));
    assert_eq!(epr.inbox.messages(), vec![ok]);
    assert!(
        router.output().contains("required field"),
        "{}",
        router.output()
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_bad_escape_in_a_routing_field_is_unreadable_not_unroutable() {
    let scratch = Scratch::new("escape");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n\n\
         [[route]]\nname = \"nhs\"\nhl7.\"PID-3.4\" = \"NHS\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    // `\X4G\` is not hex: MSH-9 cannot be read, so whether a route takes it cannot be known.
    let bad_type = b"MSH|^~\\&|PAS|RX8|EPR|RX8|2026||ADT\\X4G\\^A01|B1|P|2.4\rPID|1\r".to_vec();
    let ack = sender.exchange(&bad_type).unwrap();
    assert_eq!(msa(&ack), ("AE".into(), "B1".into()));
    let err = segment(&ack, "ERR|");
    let at = bad_type.windows(2).position(|w| w == b"\\X").unwrap();
    assert!(err.contains("|MSH^1^9|102^"), "{err}");
    assert!(err.contains(&format!("|byte {at}|")), "{err}");
    // The same in a field a later route reads by path.
    let bad_pid =
        b"MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|B2|P|2.4\rPID|1||945^^^NH\\X0\\S\r".to_vec();
    let ack = sender.exchange(&bad_pid).unwrap();
    assert_eq!(msa(&ack), ("AE".into(), "B2".into()));
    let err = segment(&ack, "ERR|");
    let at = bad_pid.windows(2).position(|w| w == b"\\X").unwrap();
    assert!(err.contains("|PID^1^3|102^"), "{err}");
    assert!(err.contains(&format!("|byte {at}|")), "{err}");
    // A readable message that no route takes is still AR "no route".
    let oru = b"MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|B3|P|2.4\rPID|1||945^^^X\r";
    let ack = sender.exchange(oru).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "B3".into()));
    // And a well-escaped value routes as its decoded text.
    let escaped = b"MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|B4|P|2.4\rPID|1||945^^^N\\X48\\S\r";
    assert_eq!(msa(&sender.exchange(escaped).unwrap()).0, "AA");
    assert!(epr.inbox.wait_for(1, WAIT));
    assert_eq!(epr.inbox.messages(), vec![escaped.to_vec()]);
    assert!(router.terminate(WAIT).success());
}

/// The router's log lines about refusals from `peer` (`WARN refused: … peer=ADDR …`).
fn refusals_of(router: &mut RouterProcess, peer: std::net::SocketAddr) -> Vec<String> {
    let needle = format!(" peer={peer} ");
    router
        .output()
        .lines()
        .filter(|l| l.contains(" refused: ") && l.contains(&needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_refusal_is_logged_once_with_its_place_and_never_the_message() {
    let scratch = Scratch::new("refusal-log");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "max_message_bytes = 2048\n",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"tests\"\nhl7.sending_application = \"ZZ*\"\nreject = \"test systems may not send here\"\n\n\
         [[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let mut router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let peer = sender.local_addr().unwrap();
    let rejected = String::from_utf8(adt("T1", "RX8"))
        .unwrap()
        .replace("|PAS|", "|ZZTEST|");
    assert_eq!(msa(&sender.exchange(rejected.as_bytes()).unwrap()).0, "AR");
    let unrouted = String::from_utf8(adt("U1", "RX8"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ORU^R01");
    assert_eq!(msa(&sender.exchange(unrouted.as_bytes()).unwrap()).0, "AR");
    let unreadable = adt("", "RX8");
    let missing_at = msh_field_offset(&unreadable, 10);
    assert_eq!(msa(&sender.exchange(&unreadable).unwrap()).0, "AE");
    let mut big = adt("BIG", "RX8");
    big.extend(std::iter::repeat_n(b'x', 4096));
    assert_eq!(msa(&sender.exchange(&big).unwrap()).0, "AR");
    assert!(
        router.wait_for_count(&format!(" peer={peer} "), 4, WAIT),
        "{}",
        router.output()
    );
    let lines = refusals_of(&mut router, peer);
    let expect = [
        ("T1", "test systems may not send here"),
        ("U1", "no route"),
        (&*format!("byte {missing_at}, MSH-10"), "required field"),
        ("BIG", "2048"),
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    for (line, (id, reason)) in lines.iter().zip(expect) {
        assert!(
            line.contains(" refused: ")
                && line.contains("listener=\"in\"")
                && line.contains(id)
                && line.contains(reason),
            "{line}"
        );
    }
    // Patient data never reaches the log.
    let output = router.output();
    assert!(
        !output.contains("O'NEIL") && !output.contains("9449305552"),
        "{output}"
    );
    assert!(router.terminate(WAIT).success());
}

/// The counts in summary lines (`N more refusals like this`) that contain `needle`.
fn summarised(router: &mut RouterProcess, needle: &str) -> usize {
    router
        .output()
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let (before, _) = l.split_once(" more refusals like this")?;
            before
                .rsplit(' ')
                .next()?
                .replace(',', "")
                .parse::<usize>()
                .ok()
        })
        .sum()
}

#[test]
fn a_flood_of_refusals_is_summarised_not_logged_line_by_line() {
    let scratch = Scratch::new("refusal-flood");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "max_connections = 1\n",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let mut router = start(&config);
    // One connection (the only one allowed) sends 300 messages nothing routes.
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let peer = sender.local_addr().unwrap();
    let mut burst = Vec::new();
    for i in 0..300 {
        let oru = format!("MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|F{i}|P|2.4\rPID|1\r");
        codecs::mllp::encode(oru.as_bytes(), &mut burst);
    }
    sender.send_raw(&burst).unwrap();
    for i in 0..300 {
        assert_eq!(msa(&sender.ack().unwrap()), ("AR".into(), format!("F{i}")));
    }
    // A few lines, then a summary for the rest.
    let deadline = std::time::Instant::now() + WAIT;
    let told = |router: &mut RouterProcess| {
        refusals_of(router, peer).len() + summarised(router, "(no route)")
    };
    while told(&mut router) < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(told(&mut router), 300, "{}", router.output());
    let logged = refusals_of(&mut router, peer).len();
    assert!((1..=5).contains(&logged), "{logged} lines");
    // 200 connections over the limit: each refused, few lines, the rest summarised.
    for _ in 0..200 {
        drop(std::net::TcpStream::connect(router.addr("in")).unwrap());
    }
    let deadline = std::time::Instant::now() + WAIT;
    let count = |router: &mut RouterProcess| {
        router.count_output("refused: connection limit") + summarised(router, "(connection limit)")
    };
    while count(&mut router) < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count(&mut router), 200, "{}", router.output());
    // At most a handful of lines per shard.
    assert!(
        router.count_output("refused: connection limit") <= 2 * 5,
        "{}",
        router.output()
    );
    drop(sender);
    assert!(router.terminate(WAIT).success());
}

/// Sends `bytes` on a fresh connection and reports whether the router closed it (rather than
/// leaving it to the idle timeout, which is minutes away).
fn closed_after(addr: std::net::SocketAddr, bytes: &[u8]) -> (std::net::SocketAddr, Vec<u8>) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut got = Vec::new();
    match tcp.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was not closed: {e}"),
    }
    (tcp.local_addr().unwrap(), got)
}

#[test]
fn bytes_that_are_not_mllp_are_closed_at_once_with_one_log_line() {
    let scratch = Scratch::new("not-mllp");
    let pki = TestPki::new();
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "idle_timeout = \"10m\"\n",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let mut router = start(&config);
    let addr = router.addr("in");
    let (http, _) = closed_after(addr, b"GET / HTTP/1.1\r\nHost: ganglion\r\n\r\n");
    let mut hello = Vec::new();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    rustls::ClientConnection::new(pki.client(false), name)
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    let (tls, _) = closed_after(addr, &hello);
    let (noise, _) = closed_after(addr, b"hello");
    // A frame and then noise: the frame is answered before the connection is closed.
    let mut framed = Vec::new();
    codecs::mllp::encode(&adt("N1", "RX8"), &mut framed);
    framed.extend_from_slice(b"log text\n");
    let (after, answered) = closed_after(addr, &framed);
    let mut decoder = codecs::mllp::Decoder::new(1 << 20);
    match decoder.decode(&answered).event {
        Some(codecs::mllp::Event::Frame(ack)) => assert_eq!(msa(ack), ("AA".into(), "N1".into())),
        other => panic!("no ACK before the close: {other:?}"),
    }
    for (peer, what) in [
        (http, "HTTP request"),
        (tls, "TLS ClientHello"),
        (noise, "5 bytes outside a frame"),
        (after, "9 bytes outside a frame"),
    ] {
        assert!(
            router.wait_for_output(&format!("peer={peer} reason=\"not MLLP\""), WAIT),
            "{}",
            router.output()
        );
        let lines = refusals_of(&mut router, peer);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains(what), "{}", lines[0]);
    }
    // Line ends between frames are common and harmless: the connection carries on.
    let mut sender = Sender::connect(addr).unwrap();
    assert_eq!(msa(&sender.exchange(&adt("N2", "RX8")).unwrap()).0, "AA");
    sender.send_raw(b"\r\n").unwrap();
    assert_eq!(msa(&sender.exchange(&adt("N3", "RX8")).unwrap()).0, "AA");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn the_ack_carries_the_character_set_of_the_message() {
    let scratch = Scratch::new("charset");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let config = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"tests\"\nhl7.sending_application = \"ZZ*\"\nreject = \"envoi refus\u{e9}\"\n\n\
         [[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    // Latin-1 bytes in MSH-4, which the ACK sends back as MSH-6.
    let latin1 = b"MSH|^~\\&|PAS|H\xd4PITAL|EPR|RX8|2026||ADT^A01|L1|P|2.4|||||FRA|8859/1\rPID|1||1^^^X||M\xdcLLER\r";
    let ack = sender.exchange(latin1).unwrap();
    assert_eq!(msa(&ack), ("AA".into(), "L1".into()));
    let parsed = codecs::hl7v2::Message::parse(&ack).unwrap();
    assert_eq!(parsed.msh().charset(), Some(&b"8859/1"[..]));
    assert_eq!(parsed.msh().field(6).unwrap().raw(), b"H\xd4PITAL");
    // A refusal's text is written in that character set too.
    let refused =
        b"MSH|^~\\&|ZZTEST|H\xd4PITAL|EPR|RX8|2026||ADT^A01|L2|P|2.4|||||FRA|8859/1\rPID|1\r";
    let ack = sender.exchange(refused).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "L2".into()));
    let parsed = codecs::hl7v2::Message::parse(&ack).unwrap();
    assert_eq!(parsed.msh().charset(), Some(&b"8859/1"[..]));
    let msa3 = parsed
        .segment(b"MSA")
        .unwrap()
        .field(3)
        .unwrap()
        .raw()
        .to_vec();
    assert_eq!(msa3, b"envoi refus\xe9");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn an_unrouted_message_is_acknowledged_only_once_its_dead_letter_is_stored() {
    let scratch = Scratch::new("unrouted-dl");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let path = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let config = scratch.file("routes.toml", format!("unrouted = \"dead-letter\"\n{text}"));
    let mut router = start(&config);
    let data = scratch.join("data");
    let oru = |id: &str| {
        format!("MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|{id}|P|2.4\rPID|1\r").into_bytes()
    };
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(
        msa(&sender.exchange(&oru("K1")).unwrap()),
        ("AA".into(), "K1".into())
    );
    // Acknowledged means kept: the dead letter is there already.
    let ids = |data: &Path| -> Vec<String> {
        dead_letters(data)
            .iter()
            .map(|l| l["control_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&data), vec!["K1"]);
    // The dead-letter store cannot be written (a file where its folder should be: this stops
    // root too, unlike permissions): the sender is told to try again, not acknowledged.
    let store = data.join("dead-letters");
    let away = data.join("dead-letters.away");
    std::fs::rename(&store, &away).unwrap();
    std::fs::write(&store, b"").unwrap();
    let ack = sender.exchange(&oru("K2")).unwrap();
    assert_eq!(msa(&ack), ("AE".into(), "K2".into()));
    assert!(
        segment(&ack, "MSA|").contains("try again later"),
        "{}",
        segment(&ack, "MSA|")
    );
    assert!(router.wait_for_output("K2", WAIT));
    // Once it can be written again, the same message is taken.
    std::fs::remove_file(&store).unwrap();
    std::fs::rename(&away, &store).unwrap();
    assert_eq!(
        msa(&sender.exchange(&oru("K2")).unwrap()),
        ("AA".into(), "K2".into())
    );
    assert_eq!(ids(&data), vec!["K1", "K2"]);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn an_unrouted_message_is_not_acknowledged_when_the_disk_is_full() {
    let scratch = Scratch::new("unrouted-full");
    let epr = Endpoint::mllp(None, always(AckCode::AA));
    let path = config(
        &scratch,
        "",
        &[("epr", mllp_endpoint(&epr))],
        "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let config = scratch.file("routes.toml", format!("unrouted = \"dead-letter\"\n{text}"));
    // The router runs in a mount namespace of its own, where the dead-letter folder is a
    // 16 KiB tmpfs filled to the last byte; the mount goes when the router does.
    let store = scratch.join("data").join("dead-letters");
    std::fs::create_dir_all(&store).unwrap();
    // The router refuses a data directory others can reach.
    std::fs::set_permissions(
        scratch.join("data"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let store = store.display().to_string();
    let script = "dir=$1; shift; mount -t tmpfs -o size=16k,mode=0700 ganglion-full \"$dir\" \
                  || exit 97; cat /dev/zero > \"$dir/fill\" 2>/dev/null; exec \"$@\"";
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        &store,
    ];
    let probe = std::process::Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg("true")
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED an_unrouted_message_is_not_acknowledged_when_the_disk_is_full: cannot mount \
             a tmpfs in a private mount namespace here (needs unshare and CAP_SYS_ADMIN): \
             {probe:?}; the unwritable-store case is covered by \
             an_unrouted_message_is_acknowledged_only_once_its_dead_letter_is_stored"
        );
        return;
    }
    let mut router = RouterProcess::start_quick_through(&wrapper, &config, 2, &["in", "admin"]);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let oru = b"MSH|^~\\&|LAB|RX8|EPR|RX8|2026||ORU^R01|Z1|P|2.4\rPID|1\r";
    let ack = sender.exchange(oru).unwrap();
    assert_eq!(msa(&ack), ("AE".into(), "Z1".into()));
    assert!(segment(&ack, "MSA|").contains("try again later"));
    assert!(
        router.wait_for_output("cannot be kept as dead letters", WAIT),
        "{}",
        router.output()
    );
    assert!(
        router.output().contains("No space left on device"),
        "{}",
        router.output()
    );
    assert!(router.terminate(WAIT).success());
}
