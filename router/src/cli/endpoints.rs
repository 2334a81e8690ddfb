//! `ganglion endpoints`: a running router's endpoints (connection, circuit, queue, last
//! error), from its admin address's `/endpoints`; one endpoint with `ganglion endpoints NAME`.
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::admin_client::{percent_encode, text, AdminTarget};

#[derive(clap::Args)]
pub struct Args {
    /// One endpoint, by name, with everything known about it.
    pub name: Option<String>,
    /// Only endpoints in trouble: down, with an open circuit, or with messages waiting behind
    /// the one in flight.
    #[arg(long, conflicts_with = "state")]
    pub failing: bool,
    /// Only endpoints in this state.
    #[arg(long, value_parser = ["down", "open-circuit", "backlog", "failing", "all"])]
    pub state: Option<String>,
    /// The longest-waiting queue first, instead of by name.
    #[arg(long)]
    pub oldest_first: bool,
    /// How many to show (at most 10,000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Skip this many (for the next page).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Print the admin address's JSON as it came.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Exit status 0 when the router answered, 1 when it did not or said no (a 404 for an unknown
/// name among them).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.target.client()?;
    let path = match &args.name {
        Some(name) => format!("/endpoints/{}", percent_encode(name)),
        None => {
            let state = if args.failing {
                "failing"
            } else {
                args.state.as_deref().unwrap_or("all")
            };
            let sort = if args.oldest_first { "oldest" } else { "name" };
            format!(
                "/endpoints?state={state}&sort={sort}&limit={}&offset={}",
                args.limit, args.offset
            )
        }
    };
    let (status, body) = client.request("GET", &path)?;
    if status != 200 || args.json {
        print!("{body}");
        return Ok(if status == 200 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let value: Value = serde_json::from_str(&body).context("the router's answer is not JSON")?;
    if args.name.is_some() {
        print!("{}", detail(&value));
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&value));
    Ok(ExitCode::SUCCESS)
}

/// `1.2s`, `3m05s`, `2h10m` for a number of milliseconds; `-` for none.
fn age(value: &Value) -> String {
    let Some(ms) = value.as_u64() else {
        return "-".to_string();
    };
    let s = ms / 1000;
    match s {
        0..=59 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// One line per endpoint, then how many there were.
pub fn table(value: &Value) -> String {
    let mut out = format!(
        "{:<24} {:<10} {:<8} {:>7} {:>8} {:>9} {:>7} {:>6}  {}\n",
        "ENDPOINT",
        "CONNECTION",
        "CIRCUIT",
        "QUEUED",
        "OLDEST",
        "DELIVERED",
        "RETRIED",
        "DEAD",
        "LAST ERROR"
    );
    let endpoints = value["endpoints"].as_array().cloned().unwrap_or_default();
    for e in &endpoints {
        let last = match &e["last_error"] {
            Value::Null => String::new(),
            error => format!("{} ({} ago)", text(&error["error"]), age(&error["age_ms"])),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:<8} {:>7} {:>8} {:>9} {:>7} {:>6}  {}",
            text(&e["name"]),
            text(&e["connection"]),
            text(&e["circuit"]),
            text(&e["queued"]),
            age(&e["oldest_queued_age_ms"]),
            text(&e["delivered"]),
            text(&e["retried"]),
            text(&e["dead_lettered"]),
            last
        );
    }
    let shown = endpoints.len();
    let total = value["total"].as_u64().unwrap_or(shown as u64);
    let offset = value["offset"].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "{shown} shown of {total} matching{}",
        if offset as usize + shown < total as usize {
            format!(" (next page: --offset {})", offset as usize + shown)
        } else {
            String::new()
        }
    );
    out
}

/// Every field of one endpoint, one per line.
fn detail(value: &Value) -> String {
    let mut out = String::new();
    if let Some(fields) = value.as_object() {
        for (key, field) in fields {
            let shown = match (key.as_str(), field) {
                ("oldest_queued_age_ms", v) => age(v),
                (_, Value::Object(_)) => field.to_string(),
                (_, v) => text(v),
            };
            let _ = writeln!(out, "{key:<22} {shown}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_ages_read_as_people_say_them() {
        assert_eq!(percent_encode("epr-rx8"), "epr-rx8");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(age(&Value::from(1_250)), "1.2s");
        assert_eq!(age(&Value::from(185_000)), "3m05s");
        assert_eq!(age(&Value::from(7_800_000)), "2h10m");
        assert_eq!(age(&Value::Null), "-");
    }
}
