//! Reloading routes.toml in a running router: by SIGHUP, by `ganglion reload`, and by a change
//! to the file. A good edit takes effect, a broken one is refused (with file:line:col) and the
//! old rules keep routing, and a steady stream of messages through many reloads loses none and
//! routes each by exactly one table.
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codecs::hl7v2::{AckCode, Message};
use rustix::process::Signal;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::process::{ganglion, RouterProcess};
use tests::scratch::Scratch;

const WAIT: Duration = Duration::from_secs(20);

fn routes(scratch: &Scratch, a: &Endpoint, b: &Endpoint, to: &str) -> String {
    format!(
        "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
         [[endpoint]]\nname = \"a\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
         [[endpoint]]\nname = \"b\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
         [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"{to}\"\n",
        scratch.join("data").display(),
        a.addr,
        b.addr
    )
}

fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A08|{id}|P|2.4\rPID|1\r").into_bytes()
}

fn ids(endpoint: &Endpoint) -> Vec<String> {
    endpoint
        .inbox
        .messages()
        .iter()
        .map(|m| {
            let parsed = Message::parse(m).unwrap();
            String::from_utf8_lossy(parsed.msh().control_id().unwrap()).into_owned()
        })
        .collect()
}

fn aa() -> impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static {
    |_, _| Reply::Ack(AckCode::AA)
}

/// `ganglion reload` with the admin token the router made in its data directory (named as a
/// file: a broken routes file cannot say where it is).
fn admin_reload(router: &RouterProcess, scratch: &Scratch) -> std::process::Output {
    let token = scratch.join("data/admin.token").display().to_string();
    let admin = router.addr("admin").to_string();
    ganglion(&["reload", "--admin", &admin, "--token-file", &token])
}

fn start(config: &Path, watch: bool) -> RouterProcess {
    let args = ["--retry-base-ms", "20", "--grace", "1"];
    if watch {
        RouterProcess::start_watching(config, &args, &["in", "admin"])
    } else {
        RouterProcess::start(config, &args, &["in", "admin"])
    }
}

/// Sends `id` and waits until it shows up at `endpoint`.
fn route_one(sender: &mut Sender, id: &str, endpoint: &Endpoint) {
    let before = endpoint.inbox.len();
    assert_eq!(
        msa(&sender.exchange(&adt(id)).unwrap()),
        ("AA".into(), id.into())
    );
    assert!(
        endpoint.inbox.wait_for(before + 1, WAIT),
        "{id} did not arrive"
    );
    assert_eq!(ids(endpoint).last().map(String::as_str), Some(id));
}

#[test]
fn good_edits_take_effect_and_broken_ones_are_refused() {
    let scratch = Scratch::new("reload");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let mut router = start(&config, false);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    route_one(&mut sender, "before", &a);

    // `ganglion reload` through the admin address.
    std::fs::write(&config, routes(&scratch, &a, &b, "b")).unwrap();
    let output = admin_reload(&router, &scratch);
    assert!(output.status.success(), "{output:?}");
    route_one(&mut sender, "after-admin", &b);

    // SIGHUP.
    std::fs::write(&config, routes(&scratch, &a, &b, "a")).unwrap();
    let applied = router.count_output("reload applied");
    router.signal(Signal::HUP);
    assert!(router.wait_for_count("reload applied", applied + 1, WAIT));
    route_one(&mut sender, "after-hup", &a);

    // A broken edit: refused with where it went wrong; the running rules stay.
    let broken = routes(&scratch, &a, &b, "b").replace("to = \"b\"", "to = \"nowhere\"");
    std::fs::write(&config, broken).unwrap();
    let output = admin_reload(&router, &scratch);
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    // Line 24 is the route's `to`, column 6 its value.
    assert!(
        said.contains("routes.toml:24:6: error: unknown endpoint or group `nowhere`"),
        "{said}"
    );
    assert!(said.contains("nowhere"), "{said}");
    router.signal(Signal::HUP);
    assert!(router.wait_for_output("reload refused", WAIT));
    route_one(&mut sender, "still-a", &a);
    assert_eq!(ids(&b), vec!["after-admin"]);
    // The endpoints themselves never changed: each kept the one connection it had.
    assert_eq!((a.inbox.connections(), b.inbox.connections()), (1, 1));
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_change_to_the_file_is_picked_up() {
    let scratch = Scratch::new("watch");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let mut router = start(&config, true);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    route_one(&mut sender, "first", &a);
    // Make sure the new file's modification time differs from the old one's.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&config, routes(&scratch, &a, &b, "b")).unwrap();
    assert!(
        router.wait_for_output("reload applied", WAIT),
        "{}",
        router.output()
    );
    route_one(&mut sender, "second", &b);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn reloads_under_a_steady_stream_lose_nothing_and_use_one_table_per_message() {
    let scratch = Scratch::new("reload-stream");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let router = start(&config, false);
    let addr = router.addr("in");
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let senders: Vec<_> = (0..3)
        .map(|s| {
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut sender = Sender::connect(addr).unwrap();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("S{s}-{i}");
                    let ack = sender.exchange(&adt(&id)).unwrap();
                    assert_eq!(msa(&ack), ("AA".into(), id.clone()));
                    acked.lock().unwrap().push(id);
                    i += 1;
                }
            })
        })
        .collect();
    for round in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        let to = if round % 2 == 0 { "b" } else { "a" };
        std::fs::write(&config, routes(&scratch, &a, &b, to)).unwrap();
        let output = admin_reload(&router, &scratch);
        assert!(output.status.success(), "round {round}: {output:?}");
    }
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(a.inbox.wait_for(1, WAIT));
    let deadline = std::time::Instant::now() + WAIT;
    while a.inbox.len() + b.inbox.len() < acked.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let at_a: HashSet<String> = ids(&a).into_iter().collect();
    let at_b: HashSet<String> = ids(&b).into_iter().collect();
    assert!(
        !at_a.is_empty() && !at_b.is_empty(),
        "both tables were in use"
    );
    for id in &acked {
        // Exactly one table routed each message: it reached a or b, never both, never none.
        assert!(
            at_a.contains(id) ^ at_b.contains(id),
            "{id}: a={} b={}",
            at_a.contains(id),
            at_b.contains(id)
        );
    }
    assert_eq!(
        a.inbox.len() + b.inbox.len(),
        acked.len(),
        "a message arrived twice"
    );
    assert!(router.terminate(WAIT).success());
}
