//! `ganglion explain --config routes.toml [--json] MESSAGE_FILE…`: which route takes each
//! message, where it goes, and why every route before it did not take it.
//!
//! Files are cut into messages by the same finder `inspect` uses (HL7v2 files, batches, MLLP
//! captures, ITK XML or whole HTTP requests) and each is routed with
//! [`crate::routes::RouteTable::explain`], which follows the same rules as the daemon's matcher.
//! Exit status: 0; 78 when the config does not load; 2 when some message could not be read.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::check::{print_diagnostics, EX_CONFIG};
use crate::charset::transcode_utf16;
use crate::inspect::find_messages;
use crate::routes::keys::{ItkKey, MshKey};
use crate::routes::{
    self, Explanation, Key, MessageView, Outcome, ParsedMessage, RouteTable, Unrouted,
};

#[derive(clap::Args)]
pub struct Args {
    /// The routes file.
    #[arg(long, default_value = "routes.toml")]
    pub config: PathBuf,
    /// One JSON object per message on stdout.
    #[arg(long)]
    pub json: bool,
    /// Files holding the messages to explain.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct EndpointOut<'a> {
    name: &'a str,
    address: String,
}

#[derive(Serialize)]
struct SkipOut<'a> {
    rule: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    index: usize,
    /// The route that decided; `null` when none did.
    rule: Option<&'a str>,
    /// Every route that matched, in order (more than one with `continue`).
    matched: Vec<&'a str>,
    endpoints: Vec<EndpointOut<'a>>,
    /// `deliver`, `reject`, `drop`, or `unrouted` (then `unrouted` says what happens).
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unrouted: Option<&'static str>,
    skipped: Vec<SkipOut<'a>>,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    file: &'a str,
    index: usize,
    error: &'a str,
    offset: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let table = match crate::config::load(&args.config) {
        Ok((table, mut warnings)) => {
            // Warnings go to stderr even with --json: stdout holds one explanation per line.
            print_diagnostics(&args.config, &mut warnings, false)?;
            table
        }
        Err(mut diags) => {
            print_diagnostics(&args.config, &mut diags, args.json)?;
            return Ok(ExitCode::from(EX_CONFIG));
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => transcode_utf16(&b).unwrap_or(b),
            Err(e) => {
                failed = true;
                error(
                    &mut out,
                    args.json,
                    &name,
                    0,
                    &format!("cannot read: {e}"),
                    0,
                )?;
                continue;
            }
        };
        for (index, found) in find_messages(&bytes).into_iter().enumerate() {
            let parsed = match &found.item {
                Ok(item) => ParsedMessage::parse(item),
                Err(e) => Err(e.clone()),
            };
            match parsed {
                Ok(msg) => {
                    let ex = table.explain(&msg);
                    if args.json {
                        serde_json::to_writer(&mut out, &line(&table, &name, index, &ex))?;
                        out.write_all(b"\n")?;
                    } else {
                        text(&mut out, &table, &name, index, &msg, &ex)?;
                    }
                }
                Err(e) => {
                    failed = true;
                    error(&mut out, args.json, &name, index, &e, found.offset)?;
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn error(
    out: &mut impl Write,
    json: bool,
    file: &str,
    index: usize,
    error: &str,
    offset: usize,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(
            &mut *out,
            &ErrorLine {
                file,
                index,
                error,
                offset,
            },
        )?;
        out.write_all(b"\n")?;
    } else {
        writeln!(
            out,
            "{file} #{}: cannot read the message at byte {offset}: {error}",
            index + 1
        )?;
    }
    Ok(())
}

fn rule_name(table: &RouteTable, id: routes::RuleId) -> &str {
    table.rule(id).map_or("", |r| r.name())
}

fn line<'a>(table: &'a RouteTable, file: &'a str, index: usize, ex: &'a Explanation) -> Line<'a> {
    let d = &ex.decision;
    let (action, reason, unrouted) = match d.outcome {
        Outcome::Deliver => ("deliver", None, None),
        Outcome::Reject(r) => ("reject", table.reject_reason(r), None),
        Outcome::Drop(_) => ("drop", None, None),
        Outcome::Unrouted(Unrouted::Reject) => ("unrouted", None, Some("reject")),
        Outcome::Unrouted(Unrouted::DeadLetter) => ("unrouted", None, Some("dead-letter")),
    };
    Line {
        file,
        index,
        rule: match d.outcome {
            Outcome::Unrouted(_) => None,
            _ => d.matched.last().map(|&r| rule_name(table, r)),
        },
        matched: d.matched.iter().map(|&r| rule_name(table, r)).collect(),
        endpoints: d
            .endpoints
            .iter()
            .filter_map(|&id| table.endpoint(id))
            .map(|e| EndpointOut {
                name: &e.name,
                address: e.address.to_string(),
            })
            .collect(),
        action,
        reason,
        unrouted,
        skipped: ex
            .skipped
            .iter()
            .map(|s| SkipOut {
                rule: rule_name(table, s.rule),
                reason: &s.reason,
            })
            .collect(),
    }
}

/// `ADT^A01 from PAS/RX8 to EPR/RX8`, or the ITK service and addresses.
fn headline(msg: &ParsedMessage<'_>) -> String {
    let v = |k: Key| {
        msg.value(&k, 0)
            .map_or_else(String::new, |v| String::from_utf8_lossy(&v).into_owned())
    };
    match msg {
        ParsedMessage::Hl7v2(_) => format!(
            "HL7v2 {}^{} from {}/{} to {}/{}",
            v(Key::Msh(MshKey::MessageType)),
            v(Key::Msh(MshKey::TriggerEvent)),
            v(Key::Msh(MshKey::SendingApplication)),
            v(Key::Msh(MshKey::SendingFacility)),
            v(Key::Msh(MshKey::ReceivingApplication)),
            v(Key::Msh(MshKey::ReceivingFacility)),
        ),
        ParsedMessage::Itk(_) => {
            let key = Key::Itk(ItkKey::Address);
            let addresses: Vec<String> = (0..)
                .map_while(|n| msg.value(&key, n))
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            format!(
                "ITK {} to {}",
                v(Key::Itk(ItkKey::Service)),
                addresses.join(", ")
            )
        }
    }
}

fn text(
    out: &mut impl Write,
    table: &RouteTable,
    file: &str,
    index: usize,
    msg: &ParsedMessage<'_>,
    ex: &Explanation,
) -> anyhow::Result<()> {
    writeln!(out, "{file} #{}: {}", index + 1, headline(msg))?;
    // Skipped and matched routes, merged back into file order.
    let mut steps: Vec<(routes::RuleId, Option<&str>)> = ex
        .skipped
        .iter()
        .map(|s| (s.rule, Some(s.reason.as_str())))
        .collect();
    steps.extend(ex.decision.matched.iter().map(|&r| (r, None)));
    steps.sort_by_key(|s| s.0);
    for (id, reason) in steps {
        let Some(rule) = table.rule(id) else { continue };
        match reason {
            Some(reason) => writeln!(
                out,
                "  passed over `{}` (line {}): {reason}",
                rule.name(),
                rule.line()
            )?,
            None => {
                let more = if rule.continues() {
                    ", and continues"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "  matched `{}` (line {}){more}",
                    rule.name(),
                    rule.line()
                )?;
            }
        }
    }
    let d = &ex.decision;
    match d.outcome {
        Outcome::Deliver => {
            let list: Vec<String> = d
                .endpoints
                .iter()
                .filter_map(|&id| table.endpoint(id))
                .map(|e| format!("{} ({} {})", e.name, e.protocol, e.address))
                .collect();
            writeln!(out, "  => deliver to {}", list.join(", "))?;
        }
        Outcome::Reject(r) => writeln!(
            out,
            "  => reject: \"{}\"",
            table.reject_reason(r).unwrap_or_default()
        )?,
        Outcome::Drop(_) => writeln!(out, "  => drop (accepted, not forwarded)")?,
        Outcome::Unrouted(Unrouted::Reject) => {
            writeln!(out, "  => no route matched: reject (unrouted = \"reject\")")?
        }
        Outcome::Unrouted(Unrouted::DeadLetter) => writeln!(
            out,
            "  => no route matched: dead letter (unrouted = \"dead-letter\")"
        )?,
    }
    Ok(())
}
