//! `/endpoints`, `/endpoints/NAME` and `ganglion endpoints` against a running router: one
//! endpoint that takes its messages and one that is down, each shown as it is, filtered,
//! sorted and paged as asked, behind the admin token.
use std::path::Path;
use std::time::{Duration, Instant};

use codecs::hl7v2::AckCode;
use serde_json::Value;
use tests::admin::{host, request, AdminResponse};
use tests::endpoint::{msa, unused_port, Endpoint, Reply, Sender};
use tests::process::{ganglion, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A01|{id}|P|2.4\rPID|1||{id}\r").into_bytes()
}

fn oru(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|LAB|RX8|EPR|RX8|20261125||ORU^R01|{id}|P|2.4\rPID|1||{id}\r").into_bytes()
}

fn json(response: &AdminResponse) -> Value {
    assert_eq!(response.status, 200, "{response:?}");
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {response:?}"))
}

fn names(listing: &Value) -> Vec<String> {
    listing["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn endpoints_show_each_endpoint_as_it_is_filtered_sorted_and_paged() {
    let scratch = Scratch::new("admin-endpoints");
    let up = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let down = unused_port();
    let config = scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[endpoint]]\nname = \"lab-archive\"\nprotocol = \"mllp\"\naddress = \"{down}\"\n\n\
             [[route]]\nname = \"admissions\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n\n\
             [[route]]\nname = \"results\"\nhl7.message_type = \"ORU\"\nto = \"lab-archive\"\n",
            scratch.join("data").display(),
            up.addr
        ),
    );
    let mut router = RouterProcess::start(
        &config,
        &["--retry-base-ms", "20", "--grace", "1"],
        &["in", "admin"],
    );
    let admin = router.addr("admin");
    let token = std::fs::read_to_string(scratch.join("data/admin.token")).unwrap();
    let bearer = format!("Authorization: Bearer {}", token.trim());
    let host = host(admin);
    let get = |path: &str| request(admin, "GET", path, &[&host, &bearer]).unwrap();

    let mut sender = Sender::connect(router.addr("in")).unwrap();
    for i in 0..3 {
        assert_eq!(
            msa(&sender.exchange(&adt(&format!("A{i}"))).unwrap()).0,
            "AA"
        );
    }
    for i in 0..2 {
        assert_eq!(
            msa(&sender.exchange(&oru(&format!("R{i}"))).unwrap()).0,
            "AA"
        );
    }
    assert!(up.inbox.wait_for(3, WAIT));

    // The down endpoint has retried and says why.
    let deadline = Instant::now() + WAIT;
    let archive = loop {
        let one = json(&get("/endpoints/lab-archive"));
        if one["retried"].as_u64() >= Some(1) || Instant::now() > deadline {
            break one;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(archive["name"], "lab-archive");
    assert_eq!(archive["connection"], "down", "{archive}");
    assert_eq!(archive["queued"], 2, "{archive}");
    assert_eq!(archive["delivered"], 0);
    assert!(archive["retried"].as_u64() >= Some(1), "{archive}");
    assert!(
        archive["oldest_queued_age_ms"].as_u64().is_some(),
        "{archive}"
    );
    let error = archive["last_error"]["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{archive}");
    assert_eq!(archive["address"], down.to_string());

    let all = json(&get("/endpoints"));
    assert_eq!(all["total"], 2);
    assert_eq!(names(&all), ["epr", "lab-archive"]);
    let epr = &all["endpoints"][0];
    assert_eq!(epr["connection"], "connected", "{epr}");
    assert_eq!(
        (epr["delivered"].as_u64(), epr["queued"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(epr["last_error"], Value::Null);
    assert_eq!(epr["oldest_queued_age_ms"], Value::Null);

    for filter in ["failing", "down", "backlog"] {
        let listing = json(&get(&format!("/endpoints?state={filter}")));
        assert_eq!(names(&listing), ["lab-archive"], "{filter}: {listing}");
        assert_eq!(listing["total"], 1);
    }
    let open = json(&get("/endpoints?state=open-circuit"));
    assert!(names(&open).iter().all(|n| n == "lab-archive"), "{open}");
    // Oldest first puts the waiting queue ahead of the empty one; paging keeps the total.
    let oldest = json(&get("/endpoints?sort=oldest&limit=1"));
    assert_eq!(
        (names(&oldest), oldest["total"].as_u64()),
        (vec!["lab-archive".to_string()], Some(2))
    );
    let second = json(&get("/endpoints?sort=oldest&limit=1&offset=1"));
    assert_eq!(names(&second), ["epr"]);

    let unknown = get("/endpoints/nobody");
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.body.contains("nobody"));
    let bad = get("/endpoints?state=grumpy");
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.body.contains("grumpy"), "{bad:?}");
    // Endpoint addresses are the hospital's map: not for anyone without the token.
    let anonymous = request(admin, "GET", "/endpoints", &[&host]).unwrap();
    assert_eq!(anonymous.status, 401);

    // The command line reads the same, through the address and token the routes file names.
    let admin_flag = admin.to_string();
    let cli = |args: &[&str]| {
        let mut all = vec![
            "endpoints",
            "--config",
            path(&config),
            "--admin",
            &admin_flag,
        ];
        all.extend_from_slice(args);
        let output = ganglion(&all);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let failing = cli(&["--failing"]);
    assert!(
        failing
            .lines()
            .any(|l| l.starts_with("lab-archive") && l.contains("down")),
        "{failing}"
    );
    assert!(!failing.contains("epr "), "{failing}");
    assert!(failing.contains("1 shown of 1 matching"), "{failing}");
    let listed: Value = serde_json::from_str(&cli(&["--json"])).unwrap();
    assert_eq!(listed["total"], 2);
    let one = cli(&["epr"]);
    assert!(
        one.lines()
            .any(|l| l.starts_with("delivered") && l.ends_with(" 3")),
        "{one}"
    );
    let missing = ganglion(&[
        "endpoints",
        "--config",
        path(&config),
        "--admin",
        &admin_flag,
        "nobody",
    ]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");

    // One screen: ready, rates, and the endpoint in trouble with its wait.
    let screen = {
        let output = ganglion(&[
            "status",
            "--config",
            path(&config),
            "--admin",
            &admin_flag,
            "--interval",
            "0.2",
        ]);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(
        screen
            .lines()
            .next()
            .unwrap_or_default()
            .ends_with(": ready"),
        "{screen}"
    );
    assert!(screen.contains("per second (over 0."), "{screen}");
    assert!(screen.contains("1 in trouble of 2 (1 down"), "{screen}");
    assert!(
        screen.lines().any(|l| l.starts_with("lab-archive")),
        "{screen}"
    );
    let report = ganglion(&[
        "status",
        "--config",
        path(&config),
        "--admin",
        &admin_flag,
        "--interval",
        "0.2",
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        (
            report["ready"].as_bool(),
            report["endpoints"]["failing"].as_u64()
        ),
        (Some(true), Some(1))
    );
    assert_eq!(report["now"]["queued"].as_f64(), Some(2.0), "{report}");
    assert_eq!(report["worst"][0]["name"], "lab-archive");

    // The table in force: which version, from which bytes, and what each rule matched.
    let routes = json(&get("/routes"));
    assert_eq!(routes["version"], 1, "{routes}");
    let sha = std::process::Command::new("sha256sum")
        .arg(&config)
        .output()
        .unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(routes["files"][0]["sha256"], sha.as_str(), "{routes}");
    assert_eq!(routes["files"][0]["path"], path(&config));
    let hits = |routes: &Value| -> Vec<(String, u64)> {
        routes["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["hits"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        hits(&routes),
        [("admissions".to_string(), 3), ("results".to_string(), 2)]
    );
    assert_eq!(routes["rules"][1]["action"], "deliver");
    // A reload makes version 2; a rule that kept its name keeps its count.
    let applied = router.count_output("reload applied");
    router.signal(rustix::process::Signal::HUP);
    assert!(router.wait_for_count("reload applied", applied + 1, WAIT));
    assert_eq!(msa(&sender.exchange(&adt("A9")).unwrap()).0, "AA");
    let reloaded = json(&get("/routes"));
    assert_eq!(reloaded["version"], 2, "{reloaded}");
    assert_eq!(
        hits(&reloaded),
        [("admissions".to_string(), 4), ("results".to_string(), 2)]
    );
    assert!(reloaded["loaded_at"].as_str() >= routes["loaded_at"].as_str());

    // /metrics adds what the routing, the log and the shards show at the moment of scraping.
    let scraped = request(admin, "GET", "/metrics", &[]).unwrap().body;
    let metric = |name: &str| -> Option<f64> {
        scraped
            .lines()
            .find(|l| l.rsplit_once(' ').is_some_and(|(n, _)| n == name))
            .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
    };
    assert_eq!(
        metric("ganglion_endpoints{state=\"all\"}"),
        Some(2.0),
        "{scraped}"
    );
    assert_eq!(
        metric("ganglion_endpoints{state=\"down\"}"),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(
        metric("ganglion_endpoints{state=\"backlog\"}"),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(metric("ganglion_ready"), Some(1.0));
    assert_eq!(metric("ganglion_routes_version"), Some(2.0));
    assert_eq!(
        metric("ganglion_reloads_total{outcome=\"applied\"}"),
        Some(1.0)
    );
    assert!(
        metric("ganglion_endpoint_oldest_queued_seconds{endpoint=\"lab-archive\"}") > Some(0.0),
        "{scraped}"
    );
    assert!(metric("ganglion_endpoint_oldest_queued_seconds_max") > Some(0.0));
    assert!(metric("ganglion_wal_used_bytes") > Some(0.0));
    // Every metric the shipped alert rules use is one the router serves.
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/prometheus/ganglion-alerts.yml"),
    )
    .unwrap();
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ganglion_"))
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        // OpenMetrics names a counter's family without the `_total` its samples carry.
        let counter = name
            .strip_suffix("_total")
            .map(|family| format!("# TYPE {family} counter\n"));
        assert!(
            scraped.contains(&format!("# TYPE {name} "))
                || counter.is_some_and(|c| scraped.contains(&c)),
            "the alert rules use {name}, which /metrics does not serve"
        );
    }
    assert!(scraped.ends_with("# EOF\n"), "{scraped}");

    assert_eq!(request(admin, "GET", "/readyz", &[]).unwrap().status, 200);
    assert!(router.terminate(WAIT).success());
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
