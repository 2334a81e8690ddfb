//! Crash safety over real sockets: senders stream messages, the router is killed with SIGKILL
//! at a seeded random moment, restarted on the same data directory, and every message that was
//! acknowledged must reach its endpoint, in order per sender and endpoint. Duplicates are
//! allowed (delivery is at-least-once), counted and reported.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codecs::hl7v2::AckCode;
use tests::endpoint::{msa, unused_port, Endpoint, Reply, Sender};
use tests::filling::send_until_refused;
use tests::numbered::{self, arrived, check_order, control_id};
use tests::process::{metric, wait_until, RouterProcess};
use tests::scratch::Scratch;
use tests::small_disk::SmallDisk;
use tests::WAIT;

const FACILITIES: [&str; 3] = ["EAST", "WEST", "NORTH"];

fn message(sender: usize, i: usize) -> Vec<u8> {
    numbered::message(&FACILITIES, sender, i)
}

fn config(scratch: &Scratch, endpoints: &[Endpoint]) -> PathBuf {
    let mut text = format!(
        "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n",
        scratch.join("data").display()
    );
    for (facility, endpoint) in FACILITIES.iter().zip(endpoints) {
        text.push_str(&format!(
            "[[endpoint]]\nname = \"{facility}\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[route]]\nname = \"{facility}\"\nhl7.receiving_facility = \"{facility}\"\nto = \"{facility}\"\n\n",
            endpoint.addr
        ));
    }
    scratch.file("routes.toml", text)
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start_quick(config, 2, &["in", "admin"])
}

/// Two shards, and every ADT to the endpoint `late` at `port` (down until the test says).
fn late_config(scratch: &Scratch, port: std::net::SocketAddr) -> PathBuf {
    scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"late\"\nprotocol = \"mllp\"\naddress = \"{port}\"\n\n\
             [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"late\"\n",
            scratch.join("data").display()
        ),
    )
}

/// xorshift64*, seeded: the kill moment of each run is repeatable.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// `driver`: the router's I/O driver (`auto` is io_uring here, whose ring takes the log's
/// fsyncs; `epoll` hands them to a thread).
fn crash_and_recover(seed: u64, driver: &str) {
    let scratch = Scratch::new(&format!("crash-{seed}"));
    let endpoints: Vec<Endpoint> = (0..FACILITIES.len())
        .map(|_| Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA)))
        .collect();
    let config = config(&scratch, &endpoints);
    let driven = format!("GANGLION_DRIVER={driver}");
    let start = |config: &Path| {
        RouterProcess::start_quick_through(&["env", &driven], config, 2, &["in", "admin"])
    };
    let mut router = start(&config);
    if driver == "epoll" {
        assert!(router.wait_for_output("I/O driver: epoll", WAIT));
    }
    let addr = router.addr("in");

    const SENDERS: usize = 4;
    const LIMIT: usize = 5_000;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                let Ok(mut sender) = Sender::connect(addr) else {
                    return;
                };
                for i in 0..LIMIT {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    match sender.exchange(&message(s, i)) {
                        Ok(ack) => {
                            let (code, id) = msa(&ack);
                            assert_eq!(code, "AA", "S{s}-{i}");
                            assert_eq!(id, format!("S{s}-{i}"));
                            acked.lock().unwrap().insert(id);
                        }
                        // The router died: whatever was not acknowledged is the sender's to
                        // send again, and this test does not count it.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();

    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let kill_after = Duration::from_millis(300 + next(&mut state) % 1200);
    std::thread::sleep(kill_after);
    assert!(
        metric(router.addr("admin"), "ganglion_wal_fsync_seconds_count") > 0,
        "the log's fsyncs are timed on {driver}"
    );
    router.kill();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );

    let restarted = start(&config);
    let deadline = Instant::now() + WAIT;
    while !acked.is_subset(&arrived(&endpoints)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = arrived(&endpoints);
    let lost: Vec<_> = acked.difference(&got).collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: {} acknowledged message(s) lost: {lost:?}",
        lost.len()
    );

    // Order per endpoint and sender: first arrivals in the order they were sent.
    let duplicates = check_order(&FACILITIES, &endpoints, &format!("seed {seed}"));
    println!(
        "seed {seed} ({driver}): killed after {kill_after:?}; {} acknowledged, all delivered; \
         {duplicates} duplicate(s)",
        acked.len()
    );
    assert!(restarted.terminate(WAIT).success());
}

#[test]
fn kill_9_loses_no_acknowledged_message() {
    for seed in [1, 2, 3] {
        crash_and_recover(seed, "auto");
    }
}

#[test]
fn kill_9_on_the_epoll_driver_loses_no_acknowledged_message() {
    crash_and_recover(4, "epoll");
}

#[test]
fn messages_for_an_endpoint_still_down_after_a_restart_wait_and_then_flow() {
    let scratch = Scratch::new("restart-down");
    let port = unused_port();
    let config = late_config(&scratch, port);
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let sent: Vec<Vec<u8>> = (0..20).map(|i| message(0, i * 3)).collect();
    for m in &sent {
        assert_eq!(msa(&sender.exchange(m).unwrap()).0, "AA");
    }
    // Stopped (cleanly) while the endpoint is still down: the messages stay in the log.
    assert!(router.terminate(WAIT).success());
    let restarted = start(&config);
    // The restarted router tries the endpoint, still down, and keeps the messages.
    wait_until("a failed attempt after the restart", WAIT, || {
        metric(restarted.addr("admin"), "ganglion_retries_total") >= 1
    });
    let late = Endpoint::mllp_on(std::net::TcpListener::bind(port).unwrap(), None, |_, _| {
        Reply::Ack(AckCode::AA)
    });
    restarted.wait_settled(20, 0);
    assert_eq!(late.inbox.messages(), sent);
    assert!(restarted.terminate(WAIT).success());
}

/// A backlog larger than an endpoint's replay window (the messages it may have in memory at
/// start-up) waits in the logs of both shards for an endpoint that is down; after a kill -9 it
/// is read back a window at a time, and messages accepted after the restart reach the endpoint
/// only after all of it, each sender's in order.
#[test]
fn a_backlog_past_the_replay_window_goes_first_and_in_order_after_a_crash() {
    const SENDERS: usize = 4;
    const EACH: usize = 120;
    let scratch = Scratch::new("replay-window");
    let port = unused_port();
    let config = late_config(&scratch, port);
    let router = start(&config);
    // Several connections, so that both shards' logs hold part of the backlog.
    let mut senders: Vec<Sender> = (0..SENDERS)
        .map(|_| Sender::connect(router.addr("in")).unwrap())
        .collect();
    for i in 0..EACH {
        for (s, sender) in senders.iter_mut().enumerate() {
            assert_eq!(msa(&sender.exchange(&message(s, i)).unwrap()).0, "AA");
        }
    }
    router.kill();

    // A receiver slow enough that new senders arrive while the backlog is still being read.
    let late = Endpoint::mllp_on(std::net::TcpListener::bind(port).unwrap(), None, |_, _| {
        std::thread::sleep(Duration::from_millis(1));
        Reply::Ack(AckCode::AA)
    });
    let mut restarted = start(&config);
    let mut fresh = Sender::connect(restarted.addr("in")).unwrap();
    for i in 0..20 {
        assert_eq!(msa(&fresh.exchange(&message(9, i)).unwrap()).0, "AA");
    }
    let total = SENDERS * EACH + 20;
    assert!(
        late.inbox.wait_for(total, WAIT),
        "{} of {total} delivered",
        late.inbox.len()
    );
    let got: Vec<String> = late
        .inbox
        .messages()
        .iter()
        .map(|m| control_id(m))
        .collect();
    assert_eq!(got.len(), total, "nothing twice, nothing more");
    let last_old = got.iter().rposition(|id| !id.starts_with("S9-"));
    let first_new = got.iter().position(|id| id.starts_with("S9-"));
    assert!(
        last_old < first_new,
        "a message accepted after the restart overtook the backlog: {got:?}"
    );
    for s in [0, 1, 2, 3, 9] {
        let prefix = format!("S{s}-");
        let ids: Vec<&String> = got.iter().filter(|id| id.starts_with(&prefix)).collect();
        let count = if s == 9 { 20 } else { EACH };
        let expected: Vec<String> = (0..count).map(|i| format!("S{s}-{i}")).collect();
        assert_eq!(
            ids,
            expected.iter().collect::<Vec<_>>(),
            "sender {s} out of order"
        );
    }
    // Most of the backlog waited on disk, not in memory.
    assert!(
        restarted.wait_for_count("replay done", 1, WAIT),
        "the backlog was not read back from disk:\n{}",
        restarted.output()
    );
    assert!(restarted.terminate(WAIT).success());
}

/// An endpoint removed by a reload while its backlog is still being read back from the log:
/// what is still on disk goes to the dead letters at once (nothing is lost), and the rest of
/// the router goes on.
#[test]
fn an_endpoint_removed_while_its_backlog_is_read_back_gets_it_as_dead_letters() {
    let scratch = Scratch::new("replay-removed");
    let data = scratch.join("data");
    let port = unused_port();
    let other = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let head = format!(
        "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
         [[endpoint]]\nname = \"other\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
         [[route]]\nname = \"results\"\nhl7.message_type = \"ORU\"\nto = \"other\"\n\n",
        data.display(),
        other.addr
    );
    let late = format!(
        "[[endpoint]]\nname = \"late\"\nprotocol = \"mllp\"\naddress = \"{port}\"\n\n\
         [[route]]\nname = \"admissions\"\nhl7.message_type = \"ADT\"\nto = \"late\"\n"
    );
    let config = scratch.file("routes.toml", format!("{head}{late}"));
    let router = start(&config);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    for i in 0..100 {
        assert_eq!(msa(&sender.exchange(&message(0, i)).unwrap()).0, "AA");
    }
    assert!(router.terminate(WAIT).success());

    let mut restarted = start(&config);
    assert!(restarted.wait_for_output("left on disk", WAIT));
    scratch.file("routes.toml", head);
    restarted.signal(rustix::process::Signal::HUP);
    assert!(
        restarted.wait_for_output("1 removed", WAIT),
        "{}",
        restarted.output()
    );
    // Everything that was still on disk: all but the window the endpoint had queued.
    let deadline = Instant::now() + WAIT;
    let removed = |letters: &[serde_json::Value]| {
        letters
            .iter()
            .filter(|l| l["detail"].as_str().unwrap_or("").contains("removed"))
            .count()
    };
    while removed(&tests::process::dead_letters(&data)) < 100 - 32 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(removed(&tests::process::dead_letters(&data)), 100 - 32);
    // The router still carries traffic for the endpoint that stayed.
    let result = b"MSH|^~\\&|LAB|RX8|EPR|RX8|20261125||ORU^R01|R1|P|2.4\rPID|1\r";
    assert_eq!(
        msa(&sender_to(&restarted).exchange(result).unwrap()).0,
        "AA"
    );
    assert!(other.inbox.wait_for(1, WAIT));
    assert!(restarted.terminate(WAIT).success());
}

fn sender_to(router: &RouterProcess) -> Sender {
    Sender::connect(router.addr("in")).unwrap()
}

/// Starts a router with its data directory at `data`, one endpoint, and `args`.
fn start_with_data(
    scratch: &Scratch,
    data: &Path,
    endpoint: &Endpoint,
    args: &[&str],
) -> RouterProcess {
    let text = format!(
        "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\nmax_message_bytes = \"4 MiB\"\n\n\
         [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
         [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
        data.display(),
        endpoint.addr
    );
    let config = scratch.file("routes.toml", text);
    RouterProcess::start(&config, args, &["in", "admin"])
}

/// Restarts on `data` with a willing endpoint and checks that everything in `acked` arrives.
fn restart_and_deliver(scratch: &Scratch, data: &Path, acked: &[String]) {
    let willing = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let router = start_with_data(scratch, data, &willing, &["--grace", "1"]);
    assert!(willing.inbox.wait_for(acked.len(), WAIT));
    let got: HashSet<String> = willing
        .inbox
        .messages()
        .iter()
        .map(|m| control_id(m))
        .collect();
    assert!(
        acked.iter().all(|id| got.contains(id)),
        "acknowledged {acked:?}, delivered {got:?}"
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_full_log_budget_answers_ae_and_acknowledges_only_what_was_stored() {
    let scratch = Scratch::new("budget");
    // The endpoint never answers, so nothing is delivered and the log only grows.
    let silent = Endpoint::mllp(None, |_, _| Reply::Silent);
    let data = scratch.join("data");
    let router = start_with_data(
        &scratch,
        &data,
        &silent,
        &[
            "--wal-budget-mib",
            "1",
            "--reply-timeout",
            "30",
            "--grace",
            "1",
        ],
    );
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let filled = send_until_refused(&mut sender, "B", 100, 50);
    let (acked, (code, text)) = filled.until_refused();
    assert_eq!(code, "AE", "{text}");
    assert!(text.contains("store is full; try again later"), "{text}");
    assert!(
        !acked.is_empty() && acked.len() < 11,
        "{} acknowledged",
        acked.len()
    );
    router.kill();

    // What was acknowledged is in the log: a willing endpoint gets all of it after a restart.
    restart_and_deliver(&scratch, &data, &acked);
}

#[test]
fn a_full_file_system_answers_ae_and_loses_nothing_stored() {
    let scratch = Scratch::new("enospc");
    let data = scratch.join("small-fs");
    // A 2 MiB tmpfs: the router's disk fills for real (ENOSPC), not just its budget.
    let Some(_disk) = SmallDisk::mount(&data, 2, "a_full_file_system_answers_ae") else {
        return;
    };
    let silent = Endpoint::mllp(None, |_, _| Reply::Silent);
    let router = start_with_data(
        &scratch,
        &data,
        &silent,
        &["--reply-timeout", "30", "--grace", "1"],
    );
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let filled = send_until_refused(&mut sender, "B", 200, 40);
    let (acked, (code, text)) = filled.until_refused();
    assert_eq!(code, "AE", "{text}");
    assert!(text.contains("disk is full; try again later"), "{text}");
    assert!(
        !acked.is_empty(),
        "nothing was stored before the disk filled"
    );
    // The router says so loudly.
    let mut router = router;
    assert!(
        router.wait_for_output("refusing messages", WAIT),
        "{}",
        router.output()
    );
    router.kill();

    restart_and_deliver(&scratch, &data, &acked);
}
