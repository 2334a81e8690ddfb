//! The cluster link (router::cluster) against real nats-server JetStream clusters: publishing,
//! consuming in order, de-duplication, partition ownership and takeover, the routes version
//! check, and losing NATS servers.
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use router::cluster::{
    message_id, Cluster, ClusterError, ClusterSettings, Consumed, Outgoing, ShardLink,
};
use tests::nats::NatsCluster;

/// Each test starts its own NATS servers; one at a time keeps a two-core machine responsive.
static SERIAL: Mutex<()> = Mutex::new(());

const PARTITIONS: u16 = 8;
const LEASE: Duration = Duration::from_secs(3);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    ClusterSettings {
        servers: nats.urls(),
        node: node.into(),
        partitions: PARTITIONS,
        stream: "GANGLION".into(),
        replicas: nats.urls().len(),
        lease: LEASE,
        publish_timeout: Duration::from_secs(5),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn message(i: usize) -> (u16, Bytes) {
    (
        (i % usize::from(PARTITIONS)) as u16,
        Bytes::from(format!("MSH|message {i}")),
    )
}

fn outgoing(partition: u16, payload: Bytes) -> Outgoing {
    Outgoing {
        partition,
        msg_id: message_id(&payload, partition),
        payload,
    }
}

/// Takes what the links have consumed until `want` messages arrived or `limit` passed.
fn collect(
    rt: &tokio::runtime::Runtime,
    links: &mut [&mut ShardLink],
    want: usize,
    limit: Duration,
) -> Vec<Consumed> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want && start.elapsed() < limit {
        for link in links.iter_mut() {
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(20), link.consumed(&mut got)).await
            });
        }
    }
    got
}

/// Waits until the stream holds nothing: every message acked, and so removed.
fn stream_ends_empty(nats: &NatsCluster) {
    wait_until(Duration::from_secs(10), "the stream ends empty", || {
        nats.stream_messages("GANGLION") == Some(0)
    });
}

fn all_partitions() -> Vec<u16> {
    (0..PARTITIONS).collect()
}

#[test]
fn two_nodes_consume_every_message_once_in_order() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    let rt = runtime();
    // A first node creates the stream and buckets and goes; then a and b start alike, fast,
    // register in their first round and share the partitions from their second.
    let (first, _) = Cluster::start(&settings(&nats, "first"), "v1", 1).expect("first starts");
    first.stop();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Cluster::start(&settings(&nats, "a"), "v1", 2));
        let b = s.spawn(|| Cluster::start(&settings(&nats, "b"), "v1", 2));
        (a.join().expect("a starts"), b.join().expect("b starts"))
    });
    let (a, mut a_links) = a.expect("node a starts");
    let (b, mut b_links) = b.expect("node b starts");
    wait_until(
        Duration::from_secs(10),
        "a and b own every partition between them",
        || {
            let mut owned = a.status().partitions_owned;
            owned.extend(b.status().partitions_owned);
            owned.sort_unstable();
            owned == all_partitions()
        },
    );
    assert!(!a.status().partitions_owned.is_empty() && !b.status().partitions_owned.is_empty());

    let started = Instant::now();
    for chunk in (0..1000).collect::<Vec<_>>().chunks(100) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let (p, m) = message(i);
                outgoing(p, m)
            })
            .collect();
        rt.block_on(a_links[0].publish(batch))
            .expect("JetStream acks the batch");
    }
    eprintln!("published 1,000 in {:?}", started.elapsed());
    assert_eq!(a.status().published, 1000);

    let [a0, a1] = &mut a_links[..] else {
        panic!("two shards")
    };
    let [b0, b1] = &mut b_links[..] else {
        panic!("two shards")
    };
    let got = collect(&rt, &mut [a0, a1, b0, b1], 1000, Duration::from_secs(30));
    assert_eq!(got.len(), 1000, "every message consumed");
    let payloads: HashSet<&Bytes> = got.iter().map(|c| &c.payload).collect();
    assert_eq!(payloads.len(), 1000, "none twice");
    let mut per_partition: BTreeMap<u16, Vec<(u64, usize)>> = BTreeMap::new();
    for c in &got {
        let text = std::str::from_utf8(&c.payload).expect("utf-8");
        let i: usize = text
            .trim_start_matches("MSH|message ")
            .parse()
            .expect("an index");
        assert_eq!(message(i).0, c.partition, "consumed from its partition");
        assert!(!c.redelivered);
        per_partition
            .entry(c.partition)
            .or_default()
            .push((c.sequence, i));
    }
    for (p, seen) in &per_partition {
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "partition {p} out of order"
        );
    }
    for c in got {
        c.ack.ack();
    }
    stream_ends_empty(&nats);
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa.consumed + sb.consumed, 1000);
    assert_eq!(sa.acked + sb.acked, 1000);
    wait_until(Duration::from_secs(5), "lag falls to 0", || {
        a.status().lag == 0 && b.status().lag == 0
    });
    a.stop();
    b.stop();
}

#[test]
fn the_same_message_id_twice_makes_one_copy() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    let rt = runtime();
    let (a, mut links) = Cluster::start(&settings(&nats, "a"), "v1", 1).expect("starts");
    let (p, m) = message(3);
    rt.block_on(links[0].publish(vec![outgoing(p, m.clone())]))
        .expect("first");
    rt.block_on(links[0].publish(vec![outgoing(p, m.clone()), outgoing(p, m.clone())]))
        .expect("again");
    assert_eq!(nats.stream_messages("GANGLION"), Some(1));
    let [link] = &mut links[..] else {
        panic!("one shard")
    };
    let got = collect(&rt, &mut [link], 1, Duration::from_secs(15));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, m);
    assert_eq!(
        nats.stream_messages("GANGLION"),
        Some(1),
        "still one copy, unacked"
    );
    got.into_iter().for_each(|c| c.ack.ack());
    stream_ends_empty(&nats);
    a.stop();
}

#[test]
fn partitions_move_when_their_owner_stops_joins_or_vanishes() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    let rt = runtime();
    let (a, _a_links) = alone(&nats, "a");
    // b joins: a, above its fair share now and with nothing in flight, hands half over.
    let (b, mut b_links) = Cluster::start(&settings(&nats, "b"), "v1", 1).expect("b starts");
    let shared = wait_until(Duration::from_secs(10), "a hands b its share", || {
        a.status().partitions_owned.len() == 4 && b.status().partitions_owned.len() == 4
    });
    eprintln!("after b joined: a and b had 4 each in {shared:?}");

    a.stop();
    let moved = wait_until(Duration::from_secs(3), "b owns all after a stopped", || {
        b.status().partitions_owned == all_partitions()
    });
    eprintln!("after stop: b owned all in {moved:?}");

    let (c, mut c_links) = Cluster::start(&settings(&nats, "c"), "v1", 1).expect("c starts");
    wait_until(Duration::from_secs(10), "b hands c its share", || {
        b.status().partitions_owned.len() == 4 && c.status().partitions_owned.len() == 4
    });
    let on_b_partitions = b.status().partitions_owned;
    let batch: Vec<Outgoing> = (0..24)
        .map(|i| {
            let (p, m) = message(i);
            outgoing(p, m)
        })
        .collect();
    rt.block_on(b_links[0].publish(batch)).expect("published");
    let [b_link] = &mut b_links[..] else {
        panic!("one shard")
    };
    let [c_link] = &mut c_links[..] else {
        panic!("one shard")
    };
    let consumed = collect(&rt, &mut [b_link, c_link], 24, Duration::from_secs(15));
    assert_eq!(consumed.len(), 24, "b and c consumed all");
    let (held, on_c): (Vec<Consumed>, Vec<Consumed>) = consumed
        .into_iter()
        .partition(|m| on_b_partitions.contains(&m.partition));
    assert_eq!(
        (held.len(), on_c.len()),
        (12, 12),
        "each from its own partitions"
    );
    on_c.into_iter().for_each(|m| m.ack.ack());

    // b crashes with 12 messages delivered and unacked.
    let vanished = Instant::now();
    b.abandon();
    wait_until(
        LEASE + Duration::from_secs(4),
        "c owns all after b vanished",
        || c.status().partitions_owned == all_partitions(),
    );
    eprintln!("after loss: c owned all in {:?}", vanished.elapsed());
    let [c_link] = &mut c_links[..] else {
        panic!("one shard")
    };
    let again = collect(&rt, &mut [c_link], 12, Duration::from_secs(15));
    assert_eq!(again.len(), 12, "c re-read every message b had not acked");
    assert!(
        again.iter().all(|m| m.redelivered),
        "each counted as redelivered"
    );
    assert_eq!(c.status().redelivered, 12);
    let order = |ms: &[Consumed]| {
        let mut by: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
        ms.iter()
            .for_each(|m| by.entry(m.partition).or_default().push(m.sequence));
        by
    };
    assert_eq!(
        order(&again),
        order(&held),
        "from the oldest, in stream order"
    );
    drop(held);
    again.into_iter().for_each(|m| m.ack.ack());
    stream_ends_empty(&nats);
    c.stop();
}

#[test]
fn two_nodes_keep_an_even_split_of_many_partitions() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    // Many leases, renewed every round: no node hands any over while both live.
    let many = |node: &str| ClusterSettings {
        partitions: 64,
        ..settings(&nats, node)
    };
    let (a, _a_links) = Cluster::start(&many("a"), "v1", 1).expect("a starts");
    let (b, _b_links) = Cluster::start(&many("b"), "v1", 1).expect("b starts");
    wait_until(Duration::from_secs(20), "a and b hold 32 each", || {
        a.status().partitions_owned.len() == 32 && b.status().partitions_owned.len() == 32
    });
    let (held_a, held_b) = (a.status().partitions_owned, b.status().partitions_owned);
    let watch = Instant::now();
    while watch.elapsed() < 3 * LEASE {
        assert_eq!(
            a.status().partitions_owned,
            held_a,
            "a's partitions changed"
        );
        assert_eq!(
            b.status().partitions_owned,
            held_b,
            "b's partitions changed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.stop();
    b.stop();
}

/// Publishes one message per partition through the first link, and returns them as the links'
/// nodes consumed them, not yet acked.
fn one_per_partition(
    rt: &tokio::runtime::Runtime,
    links: &mut [&mut ShardLink],
    from: usize,
) -> Vec<Consumed> {
    let batch: Vec<Outgoing> = (from..from + usize::from(PARTITIONS))
        .map(|i| {
            let (p, m) = message(i);
            outgoing(p, m)
        })
        .collect();
    let [first, ..] = links else { panic!("a link") };
    rt.block_on(first.publish(batch)).expect("published");
    let got = collect(rt, links, usize::from(PARTITIONS), Duration::from_secs(15));
    assert_eq!(got.len(), usize::from(PARTITIONS), "every message consumed");
    got
}

/// Starts node `name` alone and waits until it owns every partition.
fn alone(nats: &NatsCluster, name: &str) -> (Cluster, Vec<ShardLink>) {
    let (node, links) = Cluster::start(&settings(nats, name), "v1", 1).expect("starts");
    wait_until(Duration::from_secs(10), "the node owns all", || {
        node.status().partitions_owned == all_partitions()
    });
    (node, links)
}

const IN_FLIGHT_HANDED_OVER: &str = "a partition with a message in flight was handed over";

/// Checks, for `long`, that `node` is given no partition; `wrong` says what that would mean.
fn given_none_for(node: &Cluster, long: Duration, wrong: &str) {
    let watch = Instant::now();
    while watch.elapsed() < long {
        assert!(node.status().partitions_owned.is_empty(), "{wrong}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_partition_is_handed_over_only_once_its_messages_in_flight_are_acked() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    let rt = runtime();
    let (a, mut a_links) = alone(&nats, "a");
    let held = one_per_partition(&rt, &mut [&mut a_links[0]], 0);
    let (b, mut b_links) = Cluster::start(&settings(&nats, "b"), "v1", 1).expect("b starts");
    // Well past b's registration and a's next rounds, within the wait for acks (2 leases).
    given_none_for(&b, LEASE, IN_FLIGHT_HANDED_OVER);
    held.into_iter().for_each(|m| m.ack.ack());
    wait_until(Duration::from_secs(10), "a hands b its share", || {
        a.status().partitions_owned.len() == 4 && b.status().partitions_owned.len() == 4
    });

    let [a_link] = &mut a_links[..] else {
        panic!("one shard")
    };
    let [b_link] = &mut b_links[..] else {
        panic!("one shard")
    };
    one_per_partition(&rt, &mut [a_link, b_link], 100)
        .into_iter()
        .for_each(|m| m.ack.ack());
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(
        sa.redelivered + sb.redelivered,
        0,
        "nothing delivered twice"
    );
    assert_eq!(sa.consumed + sb.consumed, 2 * u64::from(PARTITIONS));
    stream_ends_empty(&nats);
    a.stop();
    b.stop();
}

#[test]
fn a_partition_whose_messages_stay_in_flight_is_kept_and_consumed() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    let rt = runtime();
    let (a, mut a_links) = alone(&nats, "a");
    let held = one_per_partition(&rt, &mut [&mut a_links[0]], 0);
    let (b, _b_links) = Cluster::start(&settings(&nats, "b"), "v1", 1).expect("b starts");
    // An endpoint down: nothing acked for longer than a hand-over waits (2 leases).
    given_none_for(&b, 3 * LEASE, IN_FLIGHT_HANDED_OVER);
    assert_eq!(a.status().partitions_owned, all_partitions());
    // a gave up handing over and consumes its partitions again, those paused included.
    let next = one_per_partition(&rt, &mut [&mut a_links[0]], 100);
    assert!(next.iter().all(|m| !m.redelivered));
    held.into_iter().chain(next).for_each(|m| m.ack.ack());
    stream_ends_empty(&nats);
    // Drained now, but offered again only when the membership changes: a pause would hold up
    // the partition's other messages again.
    given_none_for(
        &b,
        LEASE,
        "a kept partition was offered again with no change of nodes",
    );
    a.stop();
    b.stop();
}

#[test]
fn a_node_with_other_routes_is_refused() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::start(3);
    let (a, _links) = Cluster::start(&settings(&nats, "a"), "v1", 1).expect("a starts");
    let refused = Cluster::start(&settings(&nats, "b"), "v2", 1);
    match refused {
        Err(e @ ClusterError::RoutesDiffer { .. }) => {
            let said = e.to_string();
            assert!(said.contains("ours v2, cluster v1"), "{said}");
            assert!(
                said.contains("deploy the same file to every node"),
                "{said}"
            );
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a node with other routes was let in"),
    }
    a.set_routes_version("v2");
    let mut b = None;
    wait_until(Duration::from_secs(10), "b accepted once a runs v2", || {
        b = Cluster::start(&settings(&nats, "b"), "v2", 1).ok();
        b.is_some()
    });
    if let Some((b, _)) = b {
        b.stop();
    }
    a.stop();
}

#[test]
fn publishing_goes_on_when_one_server_of_three_dies() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let mut nats = NatsCluster::start(3);
    let rt = runtime();
    let (a, links) = Cluster::start(&settings(&nats, "a"), "v1", 1).expect("starts");
    let batch = |from: usize| {
        (from..from + 10)
            .map(|i| {
                let (p, m) = message(i);
                outgoing(p, m)
            })
            .collect::<Vec<_>>()
    };
    rt.block_on(links[0].publish(batch(0))).expect("before");
    nats.kill(0);
    let killed = Instant::now();
    let mut failures = 0;
    for round in 1..=20 {
        // A stream whose leader died elects another in a few seconds: retry until then.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match rt.block_on(links[0].publish(batch(round * 10))) {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    assert!(Instant::now() < deadline, "publishing did not recover: {e}");
                    // Not a wait for a condition: paces the retries.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    eprintln!(
        "200 published after the kill in {:?} ({failures} failed attempts)",
        killed.elapsed()
    );
    nats.restart(0);
    rt.block_on(links[0].publish(batch(1000)))
        .expect("after the restart");
    a.stop();
}

#[test]
fn publishing_fails_in_time_when_nats_is_gone() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let mut nats = NatsCluster::single();
    let rt = runtime();
    let mut s = settings(&nats, "a");
    s.replicas = 1;
    s.publish_timeout = Duration::from_millis(800);
    let (a, links) = Cluster::start(&s, "v1", 1).expect("starts");
    let (p, m) = message(1);
    rt.block_on(links[0].publish(vec![outgoing(p, m)]))
        .expect("while up");
    nats.kill_all();
    let asked = Instant::now();
    let (p, m) = message(2);
    let answer = rt.block_on(links[0].publish(vec![outgoing(p, m)]));
    let took = asked.elapsed();
    assert!(answer.is_err(), "a publish with no server must fail");
    assert!(
        took < Duration::from_millis(800) + Duration::from_millis(500),
        "took {took:?}"
    );
    wait_until(Duration::from_secs(5), "status says disconnected", || {
        !a.status().connected
    });
    assert!(a.status().publish_failures >= 1);
    let stopping = Instant::now();
    a.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(6),
        "stop took {:?}",
        stopping.elapsed()
    );
}

#[test]
fn start_gives_up_when_no_server_answers() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let mut s = ClusterSettings {
        servers: vec!["nats://127.0.0.1:1".into()],
        ..ClusterSettings::default()
    };
    s.node = "lonely".into();
    let asked = Instant::now();
    match Cluster::start(&s, "v1", 1) {
        Err(ClusterError::Unreachable(_)) => {}
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("started with no server"),
    }
    assert!(asked.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_shard_on_monoio_publishes_consumes_and_acks() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let nats = NatsCluster::single();
    let mut s = settings(&nats, "a");
    s.replicas = 1;
    let (a, mut links) = Cluster::start(&s, "v1", 1).expect("starts");
    let mut link = links.pop().expect("one shard");
    // The shards' runtime, without any tokio reactor: the link's futures must not need one.
    let mut shard = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("a monoio runtime");
    let got = shard.block_on(async {
        let batch = (0..10)
            .map(|i| {
                let (p, m) = message(i);
                outgoing(p, m)
            })
            .collect();
        link.publish(batch).await.expect("published from monoio");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while got.len() < 10 && Instant::now() < deadline {
            let _ =
                monoio::time::timeout(Duration::from_millis(100), link.consumed(&mut got)).await;
        }
        got
    });
    assert_eq!(got.len(), 10);
    got.into_iter().for_each(|c| c.ack.ack());
    stream_ends_empty(&nats);
    a.stop();
    let closed = shard.block_on(async {
        let mut none = Vec::new();
        monoio::time::timeout(Duration::from_secs(5), link.consumed(&mut none)).await
    });
    assert!(
        matches!(closed, Ok(false)),
        "consumed says the cluster stopped"
    );
}

#[test]
fn publishing_recovers_when_nats_returns() {
    if tests::nats::missing() {
        return;
    }
    let _serial = serial();
    let mut nats = NatsCluster::single();
    let rt = runtime();
    let mut s = settings(&nats, "a");
    s.replicas = 1;
    s.publish_timeout = Duration::from_millis(800);
    let (a, links) = Cluster::start(&s, "v1", 1).expect("starts");
    nats.kill_all();
    let (p, m) = message(1);
    assert!(rt
        .block_on(links[0].publish(vec![outgoing(p, m.clone())]))
        .is_err());
    wait_until(Duration::from_secs(5), "disconnected", || {
        !a.status().connected
    });
    nats.restart(0);
    let back = wait_until(Duration::from_secs(20), "connected again", || {
        a.status().connected
    });
    eprintln!("reconnected {back:?} after the restart");
    // The store survived the restart: the stream is there, and the message is taken now.
    rt.block_on(links[0].publish(vec![outgoing(p, m)]))
        .expect("published after the restart");
    a.stop();
}
