//! `ganglion dead-letters list|show|replay|drop --data-dir DIR`: works on the files of a data
//! directory, so it needs no running router. `replay` puts letters back in a shard's log as new
//! pending records, which the router delivers when it starts; it refuses while a router holds
//! the log (the log's lock), so it never writes beside one.
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::admin_client::{AdminArgs, AdminClient};
use super::offline_log::{BudgetArgs, OfflineLogs};
use crate::deadletter::json::{letter_json, state_name, summary_json};
use crate::deadletter::{DeadLetter, DeadLetterId, DeadLetterStore, State};
use crate::wal::{shard_dir, Log, NewRecord};
use crate::wire_time::rfc3339_nanos;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// The routes file: with --admin, its `[server]` names the admin token file (and TLS;
    /// default `routes.toml`); offline, `replay` keeps to its `[server] wal_budget`.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    access: AdminArgs,
}

/// Where the dead letters are: a data directory (the files themselves; safe beside a running
/// router except for `replay`, which needs the log), or a running router's admin address.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct DataDir {
    /// The router's data directory (holds `dead-letters/` and `shard-N/`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A running router's admin address: the router does the work. Its token is read from
    /// the routes file's `[server]` (--config) or --token-file.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// One line per dead letter, oldest first: id, state, time, endpoint, reason, control id,
    /// message size, detail.
    List {
        #[command(flatten)]
        data: DataDir,
        /// One JSON object per line instead.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter in full: metadata, the endpoint's reply and the message.
    Show {
        #[command(flatten)]
        data: DataDir,
        id: String,
        /// As one JSON object (reply and message as lossy UTF-8 text).
        #[arg(long)]
        json: bool,
        /// Only the message, byte for byte.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// Put dead letters back in the log, to be delivered to their endpoint again when the
    /// router starts. Offline, the log's disk budget applies as in the router (give the
    /// routes file or the budget; the default is 4 GiB).
    Replay {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        budget: BudgetArgs,
        #[arg(required = true)]
        ids: Vec<String>,
        /// One JSON object per id (`id`, `ok`, and `done` or `error`) instead of a line of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete dead letters.
    Drop {
        #[command(flatten)]
        data: DataDir,
        #[arg(required = true)]
        ids: Vec<String>,
        /// One JSON object per id (`id`, `ok`, and `done` or `error`) instead of a line of text.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status 2 when any id could not be handled, after every id has been tried.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Some(admin) = args.action.data().admin {
        let client = AdminClient::new(
            Some(admin),
            args.config.as_deref().unwrap_or(Path::new("routes.toml")),
            &args.access,
        )?;
        let ok = through_admin(&client, &args.action, &mut out)?;
        out.flush()?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let ok = match args.action {
        Action::List { data, json } => list(&store(&data.dir()?)?, json, &mut out)?,
        Action::Show {
            data,
            id,
            json,
            raw,
        } => {
            let (letter, state) = store(&data.dir()?)?.show(&DeadLetterId::parse(&id)?)?;
            if raw {
                out.write_all(&letter.message)?;
            } else if json {
                writeln!(out, "{}", letter_json(&letter, state))?;
            } else {
                show(&letter, state, &mut out)?;
            }
            true
        }
        Action::Replay {
            data,
            budget,
            ids,
            json,
        } => replay(
            &data.dir()?,
            budget.bytes(args.config.as_deref())?,
            &ids,
            json,
            &mut out,
        )?,
        Action::Drop { data, ids, json } => {
            let store = store(&data.dir()?)?;
            each(&ids, json, &mut out, |id| {
                store.remove(id)?;
                Ok(format!("dropped {id}"))
            })?
        }
    };
    out.flush()?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

impl Action {
    fn data(&self) -> &DataDir {
        match self {
            Action::List { data, .. }
            | Action::Show { data, .. }
            | Action::Replay { data, .. }
            | Action::Drop { data, .. } => data,
        }
    }
}

impl DataDir {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        self.data_dir
            .clone()
            .ok_or_else(|| anyhow::anyhow!("give --data-dir or --admin"))
    }
}

/// The same four actions, done by a running router through its admin address.
fn through_admin(
    client: &AdminClient,
    action: &Action,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let mut ok = true;
    // `Some(id)`: a replay or drop of one id, said as one JSON object with --json.
    let json_for = |id: &str| match action {
        Action::Replay { json: true, .. } | Action::Drop { json: true, .. } => Some(id.to_string()),
        _ => None,
    };
    let mut call = |method: &str, path: &str, json: Option<String>| -> anyhow::Result<()> {
        let (status, body) = client.request(method, path)?;
        ok &= status == 200;
        match json {
            Some(id) => writeln!(out, "{}", outcome_json(&id, status == 200, body.trim_end()))?,
            None if status == 200 => out.write_all(body.as_bytes())?,
            None => eprintln!("ganglion: {path}: {}", body.trim_end()),
        }
        Ok(())
    };
    match action {
        Action::List { json, .. } => {
            if !json {
                eprintln!("ganglion: through --admin, letters are listed as JSON");
            }
            call("GET", "/dead-letters", None)?;
        }
        Action::Show { id, .. } => call("GET", &format!("/dead-letters/{id}"), None)?,
        Action::Replay { ids, .. } => {
            for id in ids {
                call("POST", &format!("/dead-letters/{id}/replay"), json_for(id))?;
            }
        }
        Action::Drop { ids, .. } => {
            for id in ids {
                call("POST", &format!("/dead-letters/{id}/drop"), json_for(id))?;
            }
        }
    }
    Ok(ok)
}

fn store(data_dir: &Path) -> anyhow::Result<DeadLetterStore> {
    anyhow::ensure!(
        data_dir.is_dir(),
        "data directory {} does not exist",
        data_dir.display()
    );
    Ok(DeadLetterStore::open(data_dir)?)
}

/// Runs `f` for every id and says what it did: a line each on stdout, failures on stderr, or
/// with `json` one object each on stdout. True when all succeeded.
fn each(
    ids: &[String],
    json: bool,
    out: &mut impl Write,
    mut f: impl FnMut(&DeadLetterId) -> anyhow::Result<String>,
) -> anyhow::Result<bool> {
    let mut ok = true;
    for raw in ids {
        let done = DeadLetterId::parse(raw)
            .map_err(anyhow::Error::from)
            .and_then(|id| f(&id));
        ok &= done.is_ok();
        match (done, json) {
            (Ok(text), false) => writeln!(out, "{text}")?,
            (Err(err), false) => eprintln!("ganglion: {raw}: {err:#}"),
            (Ok(text), true) => writeln!(out, "{}", outcome_json(raw, true, &text))?,
            (Err(err), true) => writeln!(out, "{}", outcome_json(raw, false, &format!("{err:#}")))?,
        }
    }
    Ok(ok)
}

/// What became of one id, for --json: `{"id", "ok", "done"}` or `{"id", "ok", "error"}`.
fn outcome_json(id: &str, ok: bool, text: &str) -> serde_json::Value {
    let key = if ok { "done" } else { "error" };
    serde_json::json!({ "id": id, "ok": ok, key: text })
}

fn list(store: &DeadLetterStore, json: bool, out: &mut impl Write) -> anyhow::Result<bool> {
    let mut ok = true;
    if !json {
        writeln!(
            out,
            "ID\tSTATE\tTIME\tENDPOINT\tREASON\tCONTROL-ID\tBYTES\tDETAIL"
        )?;
    }
    for entry in store.list()? {
        match (entry, json) {
            (Ok(s), false) => writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                s.id,
                state_name(s.state),
                rfc3339_nanos(s.time_unix_nanos),
                s.endpoint,
                s.reason.as_str(),
                s.control_id,
                s.message_len,
                one_line(&s.detail)
            )?,
            (Ok(s), true) => writeln!(out, "{}", summary_json(&s))?,
            (Err(e), _) => {
                ok = false;
                eprintln!("ganglion: {e}");
            }
        }
    }
    Ok(ok)
}

fn replay(
    data_dir: &Path,
    budget: u64,
    ids: &[String],
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let store = store(data_dir)?;
    let mut logs = OfflineLogs::new(data_dir, budget);
    each(ids, json, out, |id| {
        let (claim, letter) = store.claim(id)?;
        let shard = letter
            .source
            .map(|s| s.shard)
            .filter(|&n| shard_dir(data_dir, n as usize).is_dir())
            .unwrap_or(0);
        let appended = append(&mut logs, shard, &letter);
        match appended {
            Ok(record) => {
                claim.finish()?;
                Ok(format!(
                    "replayed {id} into shard-{shard} as record {record}"
                ))
            }
            Err(err) => {
                claim.release()?;
                Err(err)
            }
        }
    })
}

fn append(
    logs: &mut OfflineLogs,
    shard: u32,
    letter: &DeadLetter,
) -> anyhow::Result<crate::wal::RecordId> {
    let log = logs.get(shard as usize)?;
    let destinations = [letter.endpoint.as_str()];
    let parsed = crate::shard::logged::describe(&letter.message);
    let record = NewRecord {
        destinations: &destinations,
        origin: letter.origin.as_origin(),
        parsed: parsed.as_parsed(),
        message: &letter.message,
    };
    Ok(log.append_durably(&[record])?.first)
}

fn show(letter: &DeadLetter, state: State, out: &mut impl Write) -> std::io::Result<()> {
    let o = &letter.origin;
    writeln!(out, "id:         {}", letter.id)?;
    writeln!(out, "state:      {}", state_name(state))?;
    writeln!(out, "time:       {}", rfc3339_nanos(letter.time_unix_nanos))?;
    writeln!(out, "endpoint:   {}", letter.endpoint)?;
    writeln!(out, "reason:     {}", letter.reason.as_str())?;
    writeln!(out, "detail:     {}", one_line(&letter.detail))?;
    if let Some(s) = letter.source {
        writeln!(out, "source:     shard-{} record {}", s.shard, s.record)?;
    }
    writeln!(out, "listener:   {}", o.listener)?;
    writeln!(out, "peer:       {}", o.peer)?;
    writeln!(out, "arrival:    {}", rfc3339_nanos(o.arrival_unix_nanos))?;
    writeln!(out, "control id: {}", o.control_id)?;
    if let Some(reply) = &letter.reply {
        writeln!(out, "reply:      {} bytes", reply.len())?;
        writeln!(out, "{}", as_lines(reply))?;
    }
    writeln!(out, "message:    {} bytes", letter.message.len())?;
    writeln!(out, "{}", as_lines(&letter.message))
}

/// Bytes for a terminal: HL7 segment ends (CR) become line ends.
fn as_lines(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end()
        .to_owned()
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n', '\t'], " ")
}
