//! The router under a service manager: `ganglion run` with `NOTIFY_SOCKET` naming a unix
//! datagram socket this test binds, as systemd does for `Type=notify`. `READY=1` comes only once
//! the MLLP listener answers; a SIGHUP reload is framed by `RELOADING=1` (with the monotonic
//! clock) and `READY=1`, after which the new routing is in force; SIGTERM says `STOPPING=1`.
use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Instant;

use codecs::hl7v2::AckCode;
use rustix::process::Signal;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::process::RouterProcess;
use tests::scratch::Scratch;
use tests::WAIT;

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

fn aa() -> impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static {
    |_, _| Reply::Ack(AckCode::AA)
}

/// The notifications the router sends, as the service manager would read them.
struct Manager {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(addr: &SocketAddr) -> Manager {
        let socket = UnixDatagram::bind_addr(addr).expect("bind the notify socket");
        Manager {
            socket,
            seen: Vec::new(),
        }
    }

    /// The next notification, within `WAIT`.
    fn next(&mut self) -> String {
        let mut buf = [0u8; 4096];
        self.socket.set_read_timeout(Some(WAIT)).unwrap();
        let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
            panic!(
                "no notification within {WAIT:?} ({e}); so far: {:?}",
                self.seen
            )
        });
        let text = String::from_utf8(buf[..n].to_vec()).expect("notifications are text");
        self.seen.push(text.clone());
        text
    }

    /// Notifications up to and including the first with the line `line`; panics after `WAIT`.
    fn until(&mut self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let text = self.next();
            let done = text.lines().any(|l| l == line);
            got.push(text);
            if done {
                return got;
            }
        }
        panic!("no {line} within {WAIT:?}; got {got:?}");
    }
}

/// The value of `KEY=` in one notification.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

fn start(config: &Path, notify_socket: &OsStr) -> RouterProcess {
    let args = ["--retry-base-ms", "20", "--grace", "1"];
    // Wait for nothing: the test's own wait is for READY=1.
    RouterProcess::start_with_env(config, &args, &[("NOTIFY_SOCKET", notify_socket)], &[])
}

/// Sends `id` on a new connection; the router must answer AA, and `endpoint` receive it.
fn route_one(router: &mut RouterProcess, id: &str, endpoint: &Endpoint) {
    assert!(
        router.wait_for_output("listening name=in", WAIT),
        "no listening line:\n{}",
        router.output()
    );
    let before = endpoint.inbox.len();
    let mut sender = Sender::connect(router.addr("in")).expect("the listener accepts");
    let ack = sender.exchange(&adt(id)).expect("an ACK");
    assert_eq!(msa(&ack), ("AA".into(), id.into()));
    assert!(
        endpoint.inbox.wait_for(before + 1, WAIT),
        "{id} did not reach its endpoint"
    );
}

#[test]
fn ready_reloading_and_stopping_reach_the_service_manager() {
    let scratch = Scratch::new("notify");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let path = scratch.join("notify");
    let mut manager = Manager::bind(&SocketAddr::from_pathname(&path).unwrap());
    let mut router = start(&config, path.as_os_str());

    // Start-up: status lines, then READY=1 once; nothing about reloads before it.
    let start_up = manager.until("READY=1");
    let ready = start_up.last().unwrap();
    assert!(
        start_up[..start_up.len() - 1]
            .iter()
            .all(|n| n.starts_with("STATUS=starting: ")),
        "{start_up:?}"
    );
    let status = field(ready, "STATUS").unwrap_or_default();
    let runtime = status
        .strip_prefix("serving: 1 listener(s), 2 endpoint(s), 1 route(s); 2 shard(s), ")
        .unwrap_or_else(|| panic!("{ready:?}"));
    assert!(["io_uring", "epoll"].contains(&runtime), "{ready:?}");
    // READY means serving: a sender is answered now, and its message delivered.
    route_one(&mut router, "after-ready", &a);

    // A SIGHUP reload that changes the route: RELOADING=1 with the monotonic clock, then
    // READY=1, and by then the new route is in force.
    std::fs::write(&config, routes(&scratch, &a, &b, "b")).unwrap();
    let before = monotonic_usec();
    router.signal(Signal::HUP);
    let reloading = manager.next();
    assert_eq!(
        reloading.lines().next(),
        Some("RELOADING=1"),
        "{reloading:?}"
    );
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("MONOTONIC_USEC in {reloading:?}"));
    assert!(
        (before..=monotonic_usec()).contains(&usec),
        "MONOTONIC_USEC {usec} is not between the signal ({before}) and now"
    );
    assert!(
        field(&reloading, "STATUS").is_some_and(|s| s.starts_with("reloading; serving: ")),
        "{reloading:?}"
    );
    let reloaded = manager.next();
    assert_eq!(reloaded.lines().next(), Some("READY=1"), "{reloaded:?}");
    assert!(
        field(&reloaded, "STATUS").is_some_and(|s| s.contains("; last reload applied: ")),
        "{reloaded:?}"
    );
    route_one(&mut router, "after-reload", &b);

    // A broken file: the reload is refused, and still framed, so that systemd does not wait.
    std::fs::write(&config, "[[route]]\nname = \"x\"\nto = \"nowhere\"\n").unwrap();
    router.signal(Signal::HUP);
    assert_eq!(manager.next().lines().next(), Some("RELOADING=1"));
    let refused = manager.next();
    assert_eq!(refused.lines().next(), Some("READY=1"), "{refused:?}");
    assert!(
        field(&refused, "STATUS").is_some_and(|s| s.contains("; last reload refused")),
        "{refused:?}"
    );
    route_one(&mut router, "after-refusal", &b);

    // SIGTERM: STOPPING=1 before the router exits, and it exits cleanly.
    let status = router.terminate(WAIT);
    assert!(status.success(), "{status:?}");
    let stopping = manager.next();
    assert_eq!(stopping.lines().next(), Some("STOPPING=1"), "{stopping:?}");
    assert!(
        field(&stopping, "STATUS").is_some_and(|s| s.starts_with("stopping: ")),
        "{stopping:?}"
    );
}

/// systemd may name its socket in the abstract namespace (`@name`): the router reaches it.
#[test]
fn an_abstract_notify_socket_is_reached() {
    let scratch = Scratch::new("notify-abstract");
    let (a, b) = (Endpoint::mllp(None, aa()), Endpoint::mllp(None, aa()));
    let config = scratch.file("routes.toml", routes(&scratch, &a, &b, "a"));
    let name = format!("ganglion-test-notify-{}", std::process::id());
    let mut manager = Manager::bind(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap());
    let mut router = start(&config, OsStr::new(&format!("@{name}")));
    manager.until("READY=1");
    route_one(&mut router, "abstract", &a);
    assert!(router.terminate(WAIT).success());
    manager.until("STOPPING=1");
}

/// A router that cannot start says why in its status before it exits.
#[test]
fn a_failed_start_is_reported_in_the_status() {
    let scratch = Scratch::new("notify-failed");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    let config = scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"{taken}\"\n",
            scratch.join("data").display()
        ),
    );
    let path = scratch.join("notify");
    let mut manager = Manager::bind(&SocketAddr::from_pathname(&path).unwrap());
    let output = std::process::Command::new(tests::process::bin())
        .args(["run", "--no-watch", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &path)
        .output()
        .expect("run ganglion");
    assert!(!output.status.success(), "{output:?}");
    // The router has exited: every notification it sent is waiting in the socket.
    manager.next();
    manager.socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    while let Ok(n) = manager.socket.recv(&mut buf) {
        manager
            .seen
            .push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let last = manager.seen.last().unwrap();
    assert!(
        field(last, "STATUS")
            .is_some_and(|s| s.starts_with("failed to start: ") && s.contains(&taken.to_string())),
        "{last:?}"
    );
    assert!(!manager.seen.iter().any(|n| n.contains("READY=1")));
}
