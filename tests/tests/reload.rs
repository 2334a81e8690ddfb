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
use tests::WAIT;

fn routes(scratch: &Scratch, a: &Endpoint, b: &Endpoint, to: &str) -> String {
    routes_with(
        scratch,
        a,
        b,
        to,
        &listener("in", "mllp", "127.0.0.1:0", ""),
        2,
    )
}

/// A `[[listener]]` table.
fn listener(name: &str, protocol: &str, bind: &str, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nbind = \"{bind}\"\n{extra}\n"
    )
}

/// The routes file of these tests with the given listener tables and shard count.
fn routes_with(
    scratch: &Scratch,
    a: &Endpoint,
    b: &Endpoint,
    to: &str,
    listeners: &str,
    workers: u32,
) -> String {
    format!(
        "[server]\nworkers = {workers}\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         {listeners}\
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

fn admin_reload(router: &RouterProcess, scratch: &Scratch) -> std::process::Output {
    router.reload(&scratch.join("data"))
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
    // The same length as before: the watch compares contents, not only size and time.
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

fn admin_reload_allowing_empty(router: &RouterProcess, scratch: &Scratch) -> std::process::Output {
    let admin = router.addr("admin").to_string();
    let token = scratch.join("data/admin.token").display().to_string();
    ganglion(&[
        "reload",
        "--admin",
        &admin,
        "--token-file",
        &token,
        "--allow-empty",
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_half_written_file_is_refused_until_the_operator_allows_it() {
    let scratch = Scratch::new("half-written");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let full = routes(&scratch, &a, &b, "a");
    let config = scratch.file("routes.toml", &full);
    let mut router = start(&config, true);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    route_one(&mut sender, "before", &a);

    // An editor's half-written file: valid TOML, cut before the endpoints, so it has no route.
    let cut = full.find("[[endpoint]]").unwrap();
    std::fs::write(&config, &full[..cut]).unwrap();
    assert!(
        router.wait_for_output("reload refused", WAIT),
        "{}",
        router.output()
    );
    // The reasons follow the headline, one line each.
    assert!(
        router.wait_for_output("it would remove every route", WAIT),
        "{}",
        router.output()
    );
    route_one(&mut sender, "still-routed", &a);

    // `check` passes such a file, with a warning.
    let check = ganglion(&["check", "--config", &config.display().to_string()]);
    assert!(check.status.success(), "{check:?}");
    assert!(
        text(&check.stderr).contains("warning: no routes"),
        "{}",
        text(&check.stderr)
    );

    // An empty file would also close every listener; refused, naming both.
    std::fs::write(&config, "").unwrap();
    let output = admin_reload(&router, &scratch);
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    let said = text(&output.stdout);
    assert!(said.contains("every route"), "{said}");
    assert!(said.contains("every listener"), "{said}");
    route_one(&mut sender, "after-empty-file", &a);

    // The operator says it is meant: applied, and messages are then refused.
    std::fs::write(&config, &full[..cut]).unwrap();
    let output = admin_reload(&router, &scratch);
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    let output = admin_reload_allowing_empty(&router, &scratch);
    assert!(output.status.success(), "{output:?}");
    let ack = sender.exchange(&adt("unroutable")).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "unroutable".into()));
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_change_that_needs_a_restart_is_refused_by_name() {
    let scratch = Scratch::new("restart-needed");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let mut router = start(&config, false);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    route_one(&mut sender, "before", &a);

    // More shards, and a route change beside it: nothing of it is applied.
    let more_shards = routes_with(
        &scratch,
        &a,
        &b,
        "b",
        &listener("in", "mllp", "127.0.0.1:0", ""),
        3,
    );
    std::fs::write(&config, more_shards).unwrap();
    let output = admin_reload(&router, &scratch);
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    let said = text(&output.stdout);
    assert!(said.contains("[server] workers"), "{said}");
    assert!(said.contains("restart"), "{said}");
    assert!(router.wait_for_output("reload refused", WAIT));
    assert_eq!(router.count_output("reload applied"), 0);
    route_one(&mut sender, "still-a", &a);

    // Another data directory: the same.
    let moved = routes(&scratch, &a, &b, "b").replace("/data\"", "/elsewhere\"");
    std::fs::write(&config, moved).unwrap();
    let output = admin_reload(&router, &scratch);
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    assert!(text(&output.stdout).contains("data_dir"), "{output:?}");
    route_one(&mut sender, "still-a-again", &a);
    assert!(router.terminate(WAIT).success());
}

/// Waits until nothing accepts connections at `addr` any more.
fn refused(addr: std::net::SocketAddr) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn listeners_added_by_reload_take_messages_and_removed_ones_close() {
    let scratch = Scratch::new("reload-listeners");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let in_ = listener("in", "mllp", "127.0.0.1:0", "");
    let old = listener("old", "mllp", "127.0.0.1:0", "");
    let first = routes_with(&scratch, &a, &b, "a", &format!("{in_}{old}"), 2);
    let config = scratch.file("routes.toml", first);
    let mut router = RouterProcess::start(
        &config,
        &["--retry-base-ms", "20", "--grace", "1"],
        &["in", "old", "admin"],
    );
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let mut on_old = Sender::connect(router.addr("old")).unwrap();
    route_one(&mut sender, "via-in", &a);
    route_one(&mut on_old, "via-old", &a);
    let old_addr = router.addr("old");

    let new = listener("new", "mllp", "127.0.0.1:0", "");
    let second = routes_with(&scratch, &a, &b, "a", &format!("{in_}{new}"), 2);
    std::fs::write(&config, second).unwrap();
    let output = admin_reload(&router, &scratch);
    assert!(output.status.success(), "{output:?}");
    assert!(
        router.wait_for_output("listening name=new", WAIT),
        "{}",
        router.output()
    );
    let mut on_new = Sender::connect(router.addr("new")).unwrap();
    route_one(&mut on_new, "via-new", &a);
    // The unchanged listener kept its socket and its connections.
    route_one(&mut sender, "via-in-again", &a);
    // The removed one: its idle connection is closed, and nothing accepts at its address.
    assert!(
        on_old.ack().is_err(),
        "the removed listener's connection stayed open"
    );
    assert!(refused(old_addr), "{old_addr} still accepts connections");

    // `in` moves to another address: a new socket there, the old one closed.
    let in_addr = router.addr("in");
    let moved = listener("in", "mllp", "127.0.0.2:0", "");
    let third = routes_with(&scratch, &a, &b, "a", &format!("{moved}{new}"), 2);
    std::fs::write(&config, third).unwrap();
    let output = admin_reload(&router, &scratch);
    assert!(output.status.success(), "{output:?}");
    assert!(router.wait_for_count("listening name=in ", 2, WAIT));
    assert_ne!(router.addr("in"), in_addr);
    let mut on_moved = Sender::connect(router.addr("in")).unwrap();
    route_one(&mut on_moved, "via-moved-in", &a);
    assert!(refused(in_addr), "{in_addr} still accepts connections");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_listener_that_cannot_be_bound_aborts_the_whole_reload() {
    let scratch = Scratch::new("reload-bind");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let mut router = start(&config, false);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    route_one(&mut sender, "before", &a);

    // Another program holds the port the new listener wants; the route change beside it must
    // not be applied either.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let listeners = format!(
        "{}{}",
        listener("in", "mllp", "127.0.0.1:0", ""),
        listener("busy", "mllp", &busy, "")
    );
    std::fs::write(&config, routes_with(&scratch, &a, &b, "b", &listeners, 2)).unwrap();
    let output = admin_reload(&router, &scratch);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let said = text(&output.stdout);
    assert!(said.contains("shard"), "{said}");
    assert!(said.contains("busy"), "{said}");
    assert!(said.contains(&busy), "{said}");
    assert!(router.wait_for_output("reload aborted", WAIT));
    assert_eq!(router.count_output("reload applied"), 0);
    route_one(&mut sender, "still-a", &a);

    // Once the port is free the same file is taken whole.
    drop(taken);
    let output = admin_reload(&router, &scratch);
    assert!(output.status.success(), "{output:?}");
    route_one(&mut sender, "now-b", &b);
    let mut on_busy = Sender::connect(busy.parse().unwrap()).unwrap();
    route_one(&mut on_busy, "via-busy", &b);
    assert!(router.terminate(WAIT).success());
}

/// A TLS sender to `addr` that trusts `ca`, and the certificate the listener showed it. Each
/// connection has a configuration of its own, so none resumes another's session.
fn tls_sender(addr: std::net::SocketAddr, ca: &Path) -> (Sender, Vec<u8>) {
    use router::tls::config::{client_config, ClientSettings};
    use router::tls::sessions::SessionStore;
    let config = client_config(&ClientSettings {
        ca: Some(ca),
        client_cert: None,
        verify_server_name: true,
        sessions: Arc::new(SessionStore::for_endpoints([])),
    })
    .unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    let shown = stream.conn.peer_certificates().unwrap()[0].to_vec();
    (Sender::over(Box::new(stream)), shown)
}

/// The DER bytes of the first certificate in a PEM text.
fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn a_certificate_renewed_in_place_is_shown_to_new_connections() {
    use router::tls::pki::Authority;
    let scratch = Scratch::new("reload-renewed");
    let ca = Authority::new("reload test CA").unwrap();
    ca.write_cert(&scratch.join("ca.crt")).unwrap();
    let names = ["127.0.0.1".to_string()];
    let first = ca.issue_server(&names).unwrap();
    let renewed = ca.issue_server(&names).unwrap();
    first.write(scratch.path(), "server").unwrap();

    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let files = format!(
        "cert = \"{}\"\nkey = \"{}\"\n",
        scratch.join("server.crt").display(),
        scratch.join("server.key").display()
    );
    let listeners = listener("in", "mllps", "127.0.0.1:0", &files);
    let config = scratch.file(
        "routes.toml",
        routes_with(&scratch, &a, &b, "a", &listeners, 2),
    );
    let router = start(&config, false);
    let ca_file = scratch.join("ca.crt");
    let (mut before, shown) = tls_sender(router.addr("in"), &ca_file);
    assert_eq!(shown, der(&first.cert_pem));
    route_one(&mut before, "first-cert", &a);

    // Renewed under the same file names; the routes file itself is unchanged.
    renewed.write(scratch.path(), "server").unwrap();
    let output = admin_reload(&router, &scratch);
    assert!(output.status.success(), "{output:?}");
    let (mut after, shown) = tls_sender(router.addr("in"), &ca_file);
    assert_eq!(
        shown,
        der(&renewed.cert_pem),
        "a new connection got the old certificate"
    );
    route_one(&mut after, "renewed-cert", &a);
    // The connection made before the reload goes on as it was.
    route_one(&mut before, "still-first-cert", &a);
    assert!(router.terminate(WAIT).success());
}
