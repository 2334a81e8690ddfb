//! Thousands of TLS endpoints on loopback, spread over 127/8: the router pre-warms a
//! verified TLS connection to every one, routes a message to each through a directory lookup,
//! each arrives once; then a tenth of them restart while traffic flows, nothing is lost and the
//! others keep their connections.
use std::path::Path;
use std::time::Duration;

use tests::endpoint::{msa, Sender};
use tests::fleet::Fleet;
use tests::pki::TestPki;
use tests::process::{metric, wait_until, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

const ENDPOINTS: usize = 3_000;

fn adt(i: usize, n: usize) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RX8|EPR|F{i}|20261125093015||ADT^A08^ADT_A01|M{i}-{n}|P|2.4\rPID|1||{i}^^^NHS\r"
    )
    .into_bytes()
}

fn config(scratch: &Scratch, pki: &TestPki, fleet: &Fleet) -> std::path::PathBuf {
    let mut csv = String::from("id,protocol,address,server_name,tls,ods,itk_address,hl7_application,hl7_facility,prewarm\n");
    for (i, addr) in fleet.addrs.iter().enumerate() {
        csv.push_str(&format!(
            "ep{i},mllps,{addr},endpoint.test,fleet,,,,F{i},true\n"
        ));
    }
    scratch.file("endpoints.csv", csv);
    let text = format!(
        "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
         [tls.fleet]\nca = \"{}\"\n\n[directory]\nfile = \"endpoints.csv\"\n\n\
         [[route]]\nname = \"by facility\"\nhl7.message_type = \"ADT\"\nto = {{ lookup = \"hl7.receiving_facility\" }}\n",
        scratch.join("data").display(),
        pki.toml("ca.crt"),
    );
    scratch.file("routes.toml", text)
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start_quick(config, 5, &["in", "admin"])
}

#[test]
fn thousands_of_prewarmed_tls_endpoints_each_get_their_message_once() {
    let scratch = Scratch::new("many");
    let pki = TestPki::with_server_names(&["endpoint.test"]);
    let fleet = Fleet::start(ENDPOINTS, Some(pki.server(false)));
    let config = config(&scratch, &pki, &fleet);
    let router = start(&config);
    let admin = router.addr("admin");

    // Pre-warm: every endpoint gets its verified TLS connection before any message.
    wait_until("every endpoint connected", Duration::from_secs(120), || {
        metric(admin, "ganglion_egress_connections") as usize == ENDPOINTS
    });
    assert_eq!(fleet.connections(), ENDPOINTS);
    assert_eq!(
        metric(admin, "ganglion_tls_handshakes_full_total")
            + metric(admin, "ganglion_tls_handshakes_resumed_total"),
        ENDPOINTS as u64
    );

    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let mut burst = Vec::new();
    for i in 0..ENDPOINTS {
        codecs::mllp::encode(&adt(i, 0), &mut burst);
    }
    sender.send_raw(&burst).unwrap();
    for i in 0..ENDPOINTS {
        assert_eq!(
            msa(&sender.ack().unwrap()),
            ("AA".into(), format!("M{i}-0"))
        );
    }
    router.wait_settled(ENDPOINTS as u64, 0);
    for (i, seen) in fleet.seen.iter().enumerate() {
        assert_eq!(
            *seen.control_ids.lock().unwrap(),
            vec![format!("M{i}-0")],
            "endpoint {i}"
        );
    }
    // The messages went over the pre-warmed connections: none was opened for them.
    assert_eq!(fleet.connections(), ENDPOINTS);

    // A tenth of the endpoints close their connections (a network blip): the router reconnects
    // each at once, and every one of those handshakes resumes a session (all endpoints here
    // share a server name and a ticket key, and the router kept one ticket per endpoint).
    let churned: Vec<usize> = (0..ENDPOINTS).step_by(10).collect();
    let full = metric(admin, "ganglion_tls_handshakes_full_total");
    let resumed = metric(admin, "ganglion_tls_handshakes_resumed_total");
    for &i in &churned {
        fleet.kick(i);
    }
    wait_until("kicked endpoints reconnected", WAIT, || {
        churned.iter().all(|&i| {
            fleet.seen[i]
                .connections
                .load(std::sync::atomic::Ordering::SeqCst)
                == 2
        }) && churned.iter().all(|&i| fleet.open_connections(i) == 1)
    });
    wait_until("their handshakes counted", WAIT, || {
        metric(admin, "ganglion_tls_handshakes_full_total")
            + metric(admin, "ganglion_tls_handshakes_resumed_total")
            == full + resumed + churned.len() as u64
    });
    assert_eq!(
        metric(admin, "ganglion_tls_handshakes_resumed_total") - resumed,
        churned.len() as u64
    );

    // Churn: the same tenth restart while traffic flows.
    for &i in &churned {
        fleet.set_down(i, true);
    }
    // The restart is real only once their connections are gone: on a fast machine the rounds
    // below could otherwise be acknowledged before an endpoint even noticed it was down.
    wait_until("churned endpoints closed", WAIT, || {
        churned.iter().all(|&i| fleet.open_connections(i) == 0)
    });
    for round in 1..=3 {
        let mut burst = Vec::new();
        for i in 0..ENDPOINTS {
            codecs::mllp::encode(&adt(i, round), &mut burst);
        }
        sender.send_raw(&burst).unwrap();
        for i in 0..ENDPOINTS {
            assert_eq!(msa(&sender.ack().unwrap()).0, "AA", "M{i}-{round}");
        }
        if round == 2 {
            for &i in &churned {
                fleet.set_down(i, false);
            }
        }
    }
    wait_until(
        "every message after churn",
        Duration::from_secs(120),
        || {
            fleet
                .seen
                .iter()
                .all(|s| s.control_ids.lock().unwrap().len() >= 4)
        },
    );
    for (i, seen) in fleet.seen.iter().enumerate() {
        let ids = seen.control_ids.lock().unwrap().clone();
        let mut first: Vec<String> = Vec::new();
        for id in ids {
            if !first.contains(&id) {
                first.push(id);
            }
        }
        let expected: Vec<String> = (0..=3).map(|n| format!("M{i}-{n}")).collect();
        assert_eq!(first, expected, "endpoint {i}: lost or out of order");
        let connections = seen.connections.load(std::sync::atomic::Ordering::SeqCst);
        if i % 10 != 0 {
            assert_eq!(connections, 1, "endpoint {i} was disturbed");
        } else {
            assert!(connections >= 3, "endpoint {i} should have reconnected");
        }
    }
    assert!(router.terminate(WAIT).success());
}
