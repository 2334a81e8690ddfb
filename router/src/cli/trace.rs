//! `ganglion trace`: where a message is, from a running router's `/trace`. By control id or
//! tracking id (`ganglion trace MSG00042`), by patient id (`--patient 9434765919`, PID-3), or
//! by time (`--from -1h`); a timeline per message by default, the JSON with `--json`.
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::admin_client::{percent_encode, text, AdminTarget};

#[derive(clap::Args)]
pub struct Args {
    /// The HL7 control id (MSH-10) or ITK tracking id.
    #[arg(required_unless_present_any = ["patient", "from", "to"], conflicts_with = "patient")]
    pub id: Option<String>,
    /// A patient id as PID-3 gives it (any repetition's first component).
    #[arg(long)]
    pub patient: Option<String>,
    /// From this time: 2026-12-04T19:00:00Z, Unix seconds, or relative (-90m, -2h, -1d).
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Until this time, as `--from`.
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// At most this many messages (the newest).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print the admin address's JSON as it came.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Exit status 0 when messages were found, 1 when none were or the router said no.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.target.client()?;
    let mut query = Vec::new();
    if let Some(id) = &args.id {
        query.push(format!("id={}", percent_encode(id)));
    }
    if let Some(patient) = &args.patient {
        query.push(format!("patient={}", percent_encode(patient)));
    }
    if let Some(from) = &args.from {
        query.push(format!("from={}", percent_encode(from)));
    }
    if let Some(to) = &args.to {
        query.push(format!("to={}", percent_encode(to)));
    }
    query.push(format!("limit={}", args.limit));
    let (status, body) = client.request("GET", &format!("/trace?{}", query.join("&")))?;
    if status != 200 {
        eprint!("{body}");
        return Ok(ExitCode::from(1));
    }
    let value: Value = serde_json::from_str(&body).context("the router's answer is not JSON")?;
    let found = value["messages"].as_array().is_some_and(|m| !m.is_empty());
    if args.json {
        print!("{body}");
    } else if found {
        print!("{}", timeline(&value));
    } else {
        println!("no message found");
    }
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn list(value: &Value) -> String {
    let items: Vec<String> = value
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

/// One block per message: its arrival, each event, and where each destination stands.
pub fn timeline(value: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    for m in value["messages"].as_array().unwrap_or(&empty) {
        let r = &m["received"];
        let _ = writeln!(
            out,
            "{} ({})",
            text(&m["control_id"]),
            if r.is_null() {
                "-".to_string()
            } else {
                text(&r["kind"])
            }
        );
        if r.is_null() {
            let _ = writeln!(out, "  (its arrival is not in the index: received before the index began, or in the moments before a crash)");
        } else {
            let _ = writeln!(
                out,
                "  {}  received on {} from {}",
                text(&r["at"]),
                text(&r["listener"]),
                text(&r["peer"])
            );
            let _ = writeln!(
                out,
                "  {:<30}  rule {} -> {}",
                "",
                list(&r["rules"]),
                list(&r["destinations"])
            );
        }
        for e in m["events"].as_array().unwrap_or(&empty) {
            let what = match e["what"].as_str() {
                Some("delivered") => format!("delivered, ACK {}", text(&e["detail"])),
                Some("dead-lettered") => format!(
                    "dead-lettered in {}: {}",
                    text(&e["dead_letter"]),
                    text(&e["detail"])
                ),
                _ => format!("attempt failed, will retry: {}", text(&e["detail"])),
            };
            let _ = writeln!(
                out,
                "  {}  {}: {what}",
                text(&e["at"]),
                text(&e["endpoint"])
            );
        }
        for d in m["destinations"].as_array().unwrap_or(&empty) {
            let name = text(&d["endpoint"]);
            let line = match d["state"].as_str() {
                Some("delivered") => format!(
                    "delivered at {} with ACK {}",
                    text(&d["at"]),
                    text(&d["ack"])
                ),
                Some("dead-lettered") => format!(
                    "dead letter {} ({}): {}",
                    text(&d["dead_letter"]),
                    text(&d["dead_letter_state"]),
                    text(&d["reason"])
                ),
                _ => waiting(&name, d),
            };
            let _ = writeln!(out, "  => {name}: {line}");
        }
        out.push('\n');
    }
    if value["more"].as_bool() == Some(true) {
        out.push_str("(more messages match: narrow the time range or raise --limit)\n");
    }
    out
}

fn waiting(name: &str, d: &Value) -> String {
    let now = &d["endpoint_now"];
    if now.is_null() {
        return format!("waiting; {name} is no longer in the directory");
    }
    let circuit = match now["circuit"].as_str() {
        Some("open") => format!("circuit open since {}", text(&now["circuit_open_since"])),
        _ => "circuit closed".to_string(),
    };
    let error = match &now["last_error"] {
        Value::Null => "no error".to_string(),
        e => format!("{} ({})", text(&e["error"]), text(&e["at"])),
    };
    format!(
        "queued at {name} ({} in its queue), connection {}, {circuit}, last error: {error}",
        text(&now["queued"]),
        text(&now["connection"]),
    )
}
