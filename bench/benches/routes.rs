//! Routing at national scale: a directory of 28,000 endpoints and 10,000 rules; and what
//! scraping `/metrics` costs at that scale.
//!
//! A seeded generator writes `routes.toml` and `endpoints.csv` into a temp folder (the same
//! files on every run and machine), then:
//! - `routes/load`: read, parse, compile (directory included): the cost of a reload. Goal ≤ 250 ms.
//! - `routes/route/*`: one message through the compiled table, from a parsed message. Goal
//!   ≤ 200 ns median, directory lookup included: HL7v2 by MSH-6 lookup after missing all
//!   10,000 specific rules, HL7v2 caught by a specific rule, ITK with two addresses by lookup.
//! - `routes/parse+route/hl7v2`: the codec's parse of the 1.8 KB ADT plus routing, as ingress
//!   does it.
//!
//! The rules look like a regional hub's: per sending facility and message type, a few field
//! conditions, some globs and negations, and catch-all directory lookups at the end.
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bench::fixtures;
use criterion::{criterion_group, criterion_main, Criterion};
use router::config::load;
use router::daemon::admin::scrape::{self, Options};
use router::metrics::listener::ListenerStats;
use router::metrics::Metrics;
use router::routes::message::{Hl7View, ItkView};
use router::routes::{Decision, Outcome, RouteTable};
use router::shard::Routing;
use router::wal::DiskBudget;

const ENDPOINTS: usize = 28_000;
const RULES: usize = 10_000;

/// splitmix64: a fixed seed gives the same table everywhere, and it needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Endpoint `i`: even ones are MLLP (keyed by HL7 facility), odd ones ITK (keyed by ODS code and
/// ITK address). Facility `F{i}` and ODS code `O{i}` are unique.
fn directory_csv() -> String {
    let mut s = String::from("id,protocol,address,server_name,tls,ods,itk_address,hl7_application,hl7_facility,prewarm\n");
    for i in 0..ENDPOINTS {
        if i % 2 == 0 {
            let _ = writeln!(
                s,
                "ep{i},mllps,h{i}.example.nhs.uk:6661,,nhs,,,APP{i},F{i},false"
            );
        } else {
            let _ = writeln!(
                s,
                "ep{i},itk-https,https://h{i}.example.nhs.uk/syncsoap,,nhs,O{i},urn:nhs-uk:addressing:ods:O{i},,,false"
            );
        }
    }
    s
}

fn routes_toml(seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut s = String::from(
        "unrouted = \"reject\"\n[tls.nhs]\n[directory]\nfile = \"endpoints.csv\"\n\
         [[group]]\nname = \"audit\"\nmembers = [\"ep0\", \"ep2\"]\n",
    );
    // A few broad rules first, as real files have: globs and negations (the scan list).
    s += "[[route]]\nname = \"test systems\"\nhl7.sending_application = \"ZZTEST*\"\nreject = \"test systems may not send here\"\n";
    s += "[[route]]\nname = \"training\"\nhl7.processing_id = { not = [\"P\", \"\"] }\ndrop = true\n";
    s += "[[route]]\nname = \"itk test senders\"\nitk.sender = \"urn:nhs-uk:addressing:ods:ZZ*\"\nreject = \"test senders\"\n";
    for i in 0..16 {
        let _ = write!(
            s,
            "[[route]]\nname = \"legacy {i}\"\nhl7.sending_application = \"LEG{i}*\"\nhl7.version = {{ not = \"2.5\" }}\nto = \"ep{}\"\n",
            2 * rng.below(ENDPOINTS / 2)
        );
    }
    let types = ["ADT", "ORU", "ORM", "MDM", "SIU", "DFT"];
    let specific = RULES - 3 - 16 - 2;
    for i in 0..specific {
        let target = 2 * rng.below(ENDPOINTS / 2);
        match i % 10 {
            // ITK rules by sender.
            0 => {
                let _ = write!(
                    s,
                    "[[route]]\nname = \"r{i}\"\nitk.sender = \"urn:nhs-uk:addressing:ods:S{i}\"\nto = \"ep{}\"\n",
                    target + 1
                );
            }
            // HL7 rules with a field condition and a fan-out to the audit group.
            1 => {
                let _ = write!(
                    s,
                    "[[route]]\nname = \"r{i}\"\nhl7.sending_facility = \"S{i}\"\nhl7.message_type = \"ADT\"\nhl7.\"PID-3.4\" = \"NHS\"\nto = [\"ep{target}\", \"audit\"]\n"
                );
            }
            // HL7 rules by sending facility and message type(s).
            _ => {
                let t1 = types[rng.below(types.len())];
                let t2 = types[rng.below(types.len())];
                let _ = write!(
                    s,
                    "[[route]]\nname = \"r{i}\"\nhl7.sending_facility = \"S{i}\"\nhl7.message_type = [\"{t1}\", \"{t2}\"]\nto = \"ep{target}\"\n"
                );
            }
        }
    }
    s += "[[route]]\nname = \"hl7 by facility\"\nto = { lookup = \"hl7.receiving_facility\" }\n";
    s += "[[route]]\nname = \"itk by address\"\nto = { lookup = \"itk.address\" }\n";
    s
}

/// Writes the generated files into a fresh temp folder; returns the `routes.toml` path.
fn generate() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ganglion-bench-routes-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let write = |name: &str, text: &str| {
        if let Err(e) = std::fs::write(dir.join(name), text) {
            panic!("cannot write the generated {name}: {e}");
        }
    };
    write("endpoints.csv", &directory_csv());
    write("routes.toml", &routes_toml(0x5EED));
    dir.join("routes.toml")
}

fn must_load(path: &Path) -> RouteTable {
    match load(path) {
        Ok((table, _warnings)) => table,
        Err(diags) => {
            let text: Vec<String> = diags.iter().take(5).map(|d| d.to_string()).collect();
            panic!("the generated config does not load:\n{}", text.join("\n"))
        }
    }
}

/// The fixture ADT with its MSH-4 (sending facility) and MSH-6 (receiving facility) replaced.
fn adt(sending: &str, receiving: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(&fixtures::adt_a01()).into_owned();
    text.replacen(
        "|PAS|RX8|ROUTE|RX8HUB|",
        &format!("|PAS|{sending}|ROUTE|{receiving}|"),
        1,
    )
    .into_bytes()
}

fn itk(addresses: [&str; 2]) -> Vec<u8> {
    let text = String::from_utf8_lossy(&fixtures::itk_request()).into_owned();
    text.replacen("urn:nhs-uk:addressing:ods:RX8:WARD12", addresses[0], 1)
        .replacen("urn:nhs-uk:addressing:ods:J82001", addresses[1], 1)
        .into_bytes()
}

fn routes(c: &mut Criterion) {
    let path = generate();
    let mut g = c.benchmark_group("routes");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("load", |b| b.iter(|| must_load(black_box(&path))));
    g.finish();

    let table = must_load(&path);
    let mut g = c.benchmark_group("routes/route");
    let mut d = Decision::default();

    // No specific rule has this sending facility: every candidate list misses, the scan rules
    // are tried, and the MSH-6 lookup finds endpoint 1234 in the directory.
    let by_lookup = adt("NOSUCH", "F1234");
    let view = Hl7View::parse(&by_lookup).unwrap_or_else(|e| panic!("fixture parses: {e}"));
    table.route(&view, &mut d);
    assert_eq!(d.outcome, Outcome::Deliver, "{d:?}");
    assert_eq!(
        d.endpoints
            .iter()
            .filter_map(|&e| table.endpoint(e))
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["ep1234"]
    );
    g.bench_function("hl7v2_directory_lookup", |b| {
        b.iter(|| {
            table.route(black_box(&view), &mut d);
            d.endpoints.len()
        })
    });

    // Rule r5001 (sending facility S5001, ADT, PID-3.4 = NHS) sends to one endpoint and the
    // audit group.
    let by_rule = adt("S5001", "F1234");
    let view = Hl7View::parse(&by_rule).unwrap_or_else(|e| panic!("fixture parses: {e}"));
    table.route(&view, &mut d);
    assert_eq!(d.outcome, Outcome::Deliver);
    assert_eq!(d.endpoints.len(), 3, "{d:?}");
    g.bench_function("hl7v2_specific_rule", |b| {
        b.iter(|| {
            table.route(black_box(&view), &mut d);
            d.endpoints.len()
        })
    });

    let itk_bytes = itk([
        "urn:nhs-uk:addressing:ods:O1235",
        "urn:nhs-uk:addressing:ods:O20001",
    ]);
    let view = ItkView::parse(&itk_bytes).unwrap_or_else(|e| panic!("fixture parses: {e}"));
    table.route(&view, &mut d);
    assert_eq!(d.outcome, Outcome::Deliver);
    assert_eq!(d.endpoints.len(), 2, "{d:?}");
    g.bench_function("itk_two_addresses_lookup", |b| {
        b.iter(|| {
            table.route(black_box(&view), &mut d);
            d.endpoints.len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("routes/parse+route");
    g.bench_function("hl7v2", |b| {
        b.iter(|| {
            if let Ok(view) = Hl7View::parse(black_box(&by_lookup)) {
                table.route(&view, &mut d);
            }
            d.endpoints.len()
        })
    });
    g.finish();
    scrape(c, table);
    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
}

/// `/metrics` at 28,000 endpoints on 2 shards with 4 listeners, a fifth of the endpoints with a
/// message waiting (so the worst-ten sort has work): the default scrape, and the one with a
/// series per endpoint. What the admin thread spends per scrape, never a shard.
fn scrape(c: &mut Criterion, table: RouteTable) {
    let shards = 2;
    let routing = Arc::new(Routing::build(Arc::new(table), shards, None).expect("routing"));
    let waiting = SystemTime::now() - Duration::from_secs(60);
    for (i, handle) in routing.endpoints.iter().enumerate() {
        if i % 5 == 0 {
            handle.queued.take();
            let at = waiting + Duration::from_millis(i as u64);
            handle.status.set_oldest(Some(at));
        }
        for _ in 0..i % 3 {
            handle.status.delivered();
        }
    }
    let metrics = Metrics::new(shards);
    let listeners = ["adt-in", "orders-in", "results-in", "itk-in"]
        .map(|name| ListenerStats::new(Arc::from(name), shards));
    metrics.listeners.set(listeners.to_vec());
    let budget = DiskBudget::new(1 << 30);
    let mut g = c.benchmark_group("metrics/scrape_28000_endpoints");
    g.sample_size(20);
    for (name, per_endpoint) in [("totals_and_worst_10", false), ("per_endpoint", true)] {
        let options = Options { per_endpoint };
        let text = scrape::text(&metrics, &routing, &budget, options).expect("text");
        println!("{name}: {} bytes", text.len());
        g.bench_function(name, |b| {
            b.iter(|| scrape::text(&metrics, &routing, &budget, black_box(options)))
        });
    }
    g.finish();
}

criterion_group!(benches, routes);
criterion_main!(benches);
