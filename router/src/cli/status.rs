//! `ganglion status`: one screen on a running router, from its admin address: ready or why
//! not, message rates over a short interval, queues and connections, and the endpoints in
//! trouble, longest wait first.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::admin_client::{AdminClient, AdminTarget};
use super::endpoints::table;

#[derive(clap::Args)]
pub struct Args {
    /// How long to watch the counters for the rates, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// How many endpoints in trouble to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Everything as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: AdminTarget,
}

/// The counters whose rates are shown, as `/metrics` names them.
const RATES: [(&str, &str); 6] = [
    ("received", "ganglion_received_total"),
    ("accepted", "ganglion_accepted_total"),
    ("rejected", "ganglion_rejected_total"),
    ("unreadable", "ganglion_unreadable_total"),
    ("delivered", "ganglion_delivered_total"),
    ("dead_lettered", "ganglion_dead_lettered_total"),
];

/// Gauges shown as they are.
const GAUGES: [(&str, &str); 3] = [
    ("queued", "ganglion_queued"),
    ("egress_connections", "ganglion_egress_connections"),
    ("ingress_buffered_bytes", "ganglion_ingress_buffered_bytes"),
];

/// Exit status 0 when the router is ready, 2 when it answered but is not, 1 when it could not
/// be asked.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(0.1..=60.0).contains(&args.interval) {
        bail!("--interval {}: from 0.1 to 60 seconds", args.interval);
    }
    let client = args.target.client()?;
    let (ready_status, ready_body) = client.request("GET", "/readyz")?;
    let before = metrics(&client)?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.interval));
    let after = metrics(&client)?;
    let seconds = started.elapsed().as_secs_f64();
    let count = |state: &str| -> anyhow::Result<Value> {
        let (status, body) = client.request(
            "GET",
            &format!(
                "/endpoints?state={state}&sort=oldest&limit={}",
                args.top.max(1)
            ),
        )?;
        if status != 200 {
            bail!("the router answered {status} for its endpoints: {body}");
        }
        serde_json::from_str(&body).context("the router's answer is not JSON")
    };
    let failing = count("failing")?;
    let mut trouble = json!({ "total_endpoints": count("all")?["total"] });
    for state in ["failing", "down", "open-circuit", "backlog"] {
        let total = if state == "failing" {
            failing["total"].clone()
        } else {
            count(state)?["total"].clone()
        };
        trouble[state] = total;
    }
    let rates: serde_json::Map<String, Value> = RATES
        .iter()
        .map(|(name, metric)| {
            let delta = after.get(*metric).unwrap_or(&0.0) - before.get(*metric).unwrap_or(&0.0);
            (name.to_string(), json!((delta.max(0.0) / seconds).round()))
        })
        .collect();
    let gauges: serde_json::Map<String, Value> = GAUGES
        .iter()
        .map(|(name, metric)| {
            (
                name.to_string(),
                json!(after.get(*metric).copied().unwrap_or(0.0)),
            )
        })
        .collect();
    let ready = ready_status == 200;
    let report = json!({
        "ready": ready,
        "not_ready": ready_body.lines().skip(1).map(str::trim).collect::<Vec<_>>(),
        "interval_seconds": seconds,
        "per_second": rates,
        "now": gauges,
        "endpoints": trouble,
        "worst": failing["endpoints"],
    });
    if args.json {
        println!("{report}");
    } else {
        print!("{}", screen(&client_name(&args), &report, &failing));
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn client_name(args: &Args) -> String {
    let target = &args.target;
    target
        .admin
        .map_or_else(|| target.config.display().to_string(), |a| a.to_string())
}

/// `/metrics` as name (labels included) → value; comments skipped.
fn metrics(client: &AdminClient) -> anyhow::Result<HashMap<String, f64>> {
    let (status, body) = client.request("GET", "/metrics")?;
    if status != 200 {
        bail!("the router answered {status} for its metrics");
    }
    Ok(parse_metrics(&body))
}

fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn screen(name: &str, report: &Value, failing: &Value) -> String {
    let mut out = String::new();
    if report["ready"] == true {
        let _ = writeln!(out, "ganglion ({name}): ready");
    } else {
        let _ = writeln!(out, "ganglion ({name}): NOT READY");
        for reason in report["not_ready"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  {}", reason.as_str().unwrap_or_default());
        }
    }
    let rate = |k: &str| report["per_second"][k].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        out,
        "per second (over {:.1}s): received {} · accepted {} · rejected {} · unreadable {} · \
         delivered {} · dead-lettered {}",
        report["interval_seconds"].as_f64().unwrap_or(0.0),
        rate("received"),
        rate("accepted"),
        rate("rejected"),
        rate("unreadable"),
        rate("delivered"),
        rate("dead_lettered"),
    );
    let now = |k: &str| report["now"][k].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        out,
        "now: {} queued · {} endpoint connections · {} bytes of unfinished input",
        now("queued"),
        now("egress_connections"),
        now("ingress_buffered_bytes"),
    );
    let e = &report["endpoints"];
    let _ = writeln!(
        out,
        "endpoints: {} in trouble of {} ({} down, {} with an open circuit, {} backing up)",
        e["failing"], e["total_endpoints"], e["down"], e["open-circuit"], e["backlog"]
    );
    if e["failing"].as_u64().unwrap_or(0) > 0 {
        out.push_str(&table(failing));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_is_read_by_name_with_labels() {
        let text = "# HELP x y\n# TYPE x counter\nganglion_received_total 42\n\
                    ganglion_ingress_closed_total{reason=\"idle\"} 3\nbroken\n";
        let m = parse_metrics(text);
        assert_eq!(m.get("ganglion_received_total"), Some(&42.0));
        assert_eq!(
            m.get("ganglion_ingress_closed_total{reason=\"idle\"}"),
            Some(&3.0)
        );
        assert_eq!(m.len(), 2);
    }
}
