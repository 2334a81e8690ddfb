//! A ganglion cluster over real NATS JetStream servers on loopback: senders through different
//! nodes reach every endpoint once or more, in order per sender and endpoint; a node killed
//! with SIGKILL loses nothing it acknowledged and its partitions move to the other node; losing
//! one NATS server of three does not stop traffic; restarted, both rejoin; a node that cannot
//! reach NATS stops acknowledging and says so; a node with other routes is refused.
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use codecs::hl7v2::AckCode;
use tests::admin::request;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::nats::NatsCluster;
use tests::numbered::{self, arrived};
use tests::process::{ganglion_exit, metric, wait_until, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

/// One test at a time: each runs its own NATS servers and two routers on two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

const FACILITIES: [&str; 6] = ["EAST", "WEST", "NORTH", "SOUTH", "CITY", "COAST"];
const PARTITIONS: u16 = 8;

fn message(sender: usize, i: usize) -> Vec<u8> {
    numbered::message(&FACILITIES, sender, i)
}

/// One node's routes.toml: its own data, addresses and name; the cluster's routes.
fn node_config(
    scratch: &Scratch,
    node: &str,
    nats: &[String],
    replicas: usize,
    endpoints: &[Endpoint],
    extra_route: &str,
) -> PathBuf {
    let servers: Vec<String> = nats.iter().map(|u| format!("\"{u}\"")).collect();
    let mut text = format!(
        "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [cluster]\nservers = [{}]\nnode = \"{node}\"\npartitions = {PARTITIONS}\n\
         replicas = {replicas}\nlease = \"2s\"\npublish_timeout = \"2s\"\n\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n",
        scratch.join(&format!("data-{node}")).display(),
        servers.join(", "),
    );
    for (facility, endpoint) in FACILITIES.iter().zip(endpoints) {
        text.push_str(&format!(
            "[[endpoint]]\nname = \"{facility}\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[route]]\nname = \"{facility}\"\nhl7.receiving_facility = \"{facility}\"\n\
             to = \"{facility}\"\n\n",
            endpoint.addr
        ));
    }
    text.push_str(extra_route);
    scratch.file(&format!("routes-{node}.toml"), text)
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start_quick(config, 2, &["in", "admin"])
}

fn endpoints() -> Vec<Endpoint> {
    FACILITIES
        .iter()
        .map(|_| Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA)))
        .collect()
}

/// Senders that each send their numbered messages through one node until told to stop (or
/// `limit`), recording what was acknowledged with AA.
struct Senders {
    acked: Arc<Mutex<HashSet<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<usize>>,
}

impl Senders {
    fn start(through: &[(usize, SocketAddr)], limit: usize, pace: Duration) -> Senders {
        let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = through
            .iter()
            .map(|&(s, addr)| {
                let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let Ok(mut sender) = Sender::connect(addr) else {
                        return 0;
                    };
                    let mut i = 0;
                    while i < limit {
                        if stop.load(Ordering::SeqCst) {
                            return i;
                        }
                        match sender.exchange(&message(s, i)) {
                            Ok(ack) => {
                                let (code, id) = msa(&ack);
                                assert_eq!(id, format!("S{s}-{i}"));
                                if code == "AA" {
                                    acked.lock().unwrap().insert(id);
                                    i += 1;
                                } else {
                                    // Not stored (NATS failing over): sent again, as a real
                                    // sender does after an AE.
                                    std::thread::sleep(Duration::from_millis(50));
                                    continue;
                                }
                            }
                            // The node died: what it did not acknowledge is not counted.
                            Err(_) => return i,
                        }
                        std::thread::sleep(pace);
                    }
                    limit
                })
            })
            .collect();
        Senders {
            acked,
            stop,
            threads,
        }
    }

    fn acked(&self) -> HashSet<String> {
        self.acked.lock().unwrap().clone()
    }

    /// Stops every sender; the messages each got through.
    fn finish(self) -> (HashSet<String>, Vec<usize>) {
        self.stop.store(true, Ordering::SeqCst);
        self.finish_all()
    }

    /// Waits for every sender to send all it was to send; the messages each got through.
    fn finish_all(self) -> (HashSet<String>, Vec<usize>) {
        let sent = self
            .threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        (self.acked.lock().unwrap().clone(), sent)
    }
}

/// Waits until every acknowledged message has reached its endpoint; panics naming the lost.
fn wait_delivered(endpoints: &[Endpoint], acked: &HashSet<String>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !acked.is_subset(&arrived(endpoints)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = arrived(endpoints);
    let mut lost: Vec<_> = acked.difference(&got).collect();
    lost.sort();
    assert!(
        lost.is_empty(),
        "{} acknowledged message(s) not delivered: {lost:?}",
        lost.len()
    );
}

/// First arrivals at each endpoint come in the order each sender sent them, each where its
/// route says; the duplicates (allowed: at-least-once).
fn check_order(endpoints: &[Endpoint]) -> usize {
    numbered::check_order(&FACILITIES, endpoints, "cluster")
}

fn owned(node: &RouterProcess) -> u64 {
    metric(node.addr("admin"), "ganglion_cluster_partitions_owned")
}

#[test]
fn senders_through_two_nodes_reach_every_endpoint_in_order() {
    if tests::nats::missing() {
        return;
    }
    let _one = one_at_a_time();
    let nats = NatsCluster::start(3);
    let scratch = Scratch::new("cluster-two");
    let endpoints = endpoints();
    let a = start(&node_config(&scratch, "a", &nats.urls(), 3, &endpoints, ""));
    let b = start(&node_config(&scratch, "b", &nats.urls(), 3, &endpoints, ""));
    wait_until("the partitions are all owned", WAIT, || {
        owned(&a) + owned(&b) == u64::from(PARTITIONS)
    });

    let through = [
        (0, a.addr("in")),
        (1, a.addr("in")),
        (2, b.addr("in")),
        (3, b.addr("in")),
    ];
    const EACH: usize = 150;
    let senders = Senders::start(&through, EACH, Duration::ZERO);
    let (acked, sent) = senders.finish_all();
    assert_eq!(
        sent, [EACH; 4],
        "every sender got every message acknowledged"
    );
    assert_eq!(acked.len(), 4 * EACH);
    wait_delivered(&endpoints, &acked, WAIT);
    let duplicates = check_order(&endpoints);
    let published = metric(a.addr("admin"), "ganglion_cluster_published_total")
        + metric(b.addr("admin"), "ganglion_cluster_published_total");
    assert_eq!(
        published,
        (4 * EACH) as u64,
        "one copy per message (one partition each)"
    );
    wait_until("every message acknowledged to the stream", WAIT, || {
        metric(a.addr("admin"), "ganglion_cluster_acked_total")
            + metric(b.addr("admin"), "ganglion_cluster_acked_total")
            >= (4 * EACH) as u64
    });
    // Acknowledged means gone: the work queue holds nothing a takeover would send again.
    wait_until("the stream to be empty", WAIT, || {
        nats.stream_messages("GANGLION") == Some(0)
    });
    println!(
        "{} messages through 2 nodes, all delivered in order; {duplicates} duplicate(s); \
         partitions owned: a {}, b {}",
        acked.len(),
        owned(&a),
        owned(&b)
    );
    // A cluster node's messages go to the stream, not its log: it writes no spare segment.
    for node in ["a", "b"] {
        for shard in 0..2 {
            let spare = scratch
                .join(&format!("data-{node}"))
                .join(format!("shard-{shard}"))
                .join("next.spare");
            assert!(!spare.exists(), "{} was written", spare.display());
        }
    }
    assert!(a.terminate(WAIT).success());
    assert!(b.terminate(WAIT).success());
}

/// The failure drill: kill -9 a ganglion node mid-stream (its partitions move, nothing
/// it acknowledged is lost, duplicates are counted), then kill one NATS server of three
/// (traffic goes on), then restart both (the cluster heals: the node takes back its share of the
/// partitions, and delivers again).
#[test]
fn a_killed_node_and_a_killed_nats_server_lose_nothing_and_the_cluster_heals() {
    if tests::nats::missing() {
        return;
    }
    let _one = one_at_a_time();
    let mut nats = NatsCluster::start(3);
    let scratch = Scratch::new("cluster-kill");
    let endpoints = endpoints();
    let config_a = node_config(&scratch, "a", &nats.urls(), 3, &endpoints, "");
    let a = start(&config_a);
    let b = start(&node_config(&scratch, "b", &nats.urls(), 3, &endpoints, ""));
    wait_until("the partitions are all owned", WAIT, || {
        owned(&a) + owned(&b) == u64::from(PARTITIONS)
    });

    let through = [(0, a.addr("in")), (1, a.addr("in")), (2, b.addr("in"))];
    let senders = Senders::start(&through, 100_000, Duration::from_millis(1));
    wait_until("traffic flowing", WAIT, || senders.acked().len() >= 300);
    a.kill();
    let killed = Instant::now();
    // B's sender goes on; A's senders see their connections close.
    wait_until("b owns every partition", WAIT, || {
        owned(&b) == u64::from(PARTITIONS)
    });
    let moved = killed.elapsed();
    let before = senders.acked().len();
    wait_until("more traffic through b", WAIT, || {
        senders.acked().len() >= before + 200
    });
    nats.kill(2);
    let before = senders.acked().len();
    wait_until("traffic through b without one NATS server", WAIT, || {
        senders.acked().len() >= before + 200
    });
    let (acked, _) = senders.finish();
    wait_delivered(&endpoints, &acked, WAIT);
    let duplicates = check_order(&endpoints);
    println!(
        "node a killed: its partitions moved to b in {:.1} s; {} acknowledged messages all \
         delivered, in order; {duplicates} duplicate(s)",
        moved.as_secs_f64(),
        acked.len(),
    );

    // Both back: the node takes traffic again, b hands it its share of the partitions while
    // messages flow, and every message reaches its endpoint in order.
    nats.restart(2);
    let a = start(&config_a);
    let senders = Senders::start(
        &[(4, a.addr("in")), (5, b.addr("in"))],
        600,
        Duration::from_millis(5),
    );
    let rejoined = Instant::now();
    wait_until("a takes its share back from b", WAIT, || {
        owned(&a) == u64::from(PARTITIONS / 2) && owned(&b) == u64::from(PARTITIONS / 2)
    });
    println!(
        "node a back: b handed it half the partitions in {:.1} s",
        rejoined.elapsed().as_secs_f64()
    );
    let (acked, sent) = senders.finish_all();
    assert_eq!(sent, [600, 600]);
    wait_delivered(&endpoints, &acked, WAIT);
    check_order(&endpoints);
    assert!(a.terminate(WAIT).success());
    assert!(b.terminate(WAIT).success());
}

#[test]
fn a_node_that_cannot_reach_nats_answers_ae_and_is_not_ready() {
    if tests::nats::missing() {
        return;
    }
    let _one = one_at_a_time();
    let mut nats = NatsCluster::start(1);
    let scratch = Scratch::new("cluster-unreachable");
    let endpoints = endpoints();
    let a = start(&node_config(&scratch, "a", &nats.urls(), 1, &endpoints, ""));
    let admin = a.addr("admin");
    let mut sender = Sender::connect(a.addr("in")).unwrap();
    let (code, _) = msa(&sender.exchange(&message(0, 0)).unwrap());
    assert_eq!(code, "AA");

    nats.kill(0);
    let refused = sender.exchange(&message(0, 1)).unwrap();
    let (code, id) = msa(&refused);
    assert_eq!((code.as_str(), id.as_str()), ("AE", "S0-1"));
    let text = String::from_utf8_lossy(&refused);
    assert!(
        text.contains("cannot reach its cluster's message store"),
        "{text}"
    );
    wait_until("/readyz to say why", WAIT, || {
        request(admin, "GET", "/readyz", &["Host: 127.0.0.1"]).is_ok_and(|r| {
            r.status == 503
                && r.body
                    .contains("not connected to the cluster's NATS servers")
        })
    });
    assert_eq!(metric(admin, "ganglion_cluster_connected"), 0);

    // Back: the same message is taken, and both reach the endpoint.
    nats.restart(0);
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, _) = msa(&sender.exchange(&message(0, 1)).unwrap());
        if code == "AA" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never accepted again after NATS came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let acked: HashSet<String> = ["S0-0", "S0-1"].map(String::from).into();
    wait_delivered(&endpoints, &acked, WAIT);
    assert!(a.terminate(WAIT).success());
}

#[test]
fn a_node_with_other_routes_is_refused_and_says_why() {
    if tests::nats::missing() {
        return;
    }
    let _one = one_at_a_time();
    let nats = NatsCluster::start(1);
    let scratch = Scratch::new("cluster-other-routes");
    let endpoints = endpoints();
    let a = start(&node_config(&scratch, "a", &nats.urls(), 1, &endpoints, ""));
    let other = node_config(
        &scratch,
        "b",
        &nats.urls(),
        1,
        &endpoints,
        "[[route]]\nname = \"extra\"\nhl7.message_type = \"ORU\"\nto = \"EAST\"\n",
    );
    let config = other.display().to_string();
    let out = ganglion_exit(&["run", "--config", &config, "--no-watch"], WAIT)
        .expect("a node with other routes exits by itself");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("differs from the cluster's"),
        "the refusal says why: {stderr}"
    );
    assert!(a.terminate(WAIT).success());
}
