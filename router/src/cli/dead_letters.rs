//! `ganglion dead-letters list|show|replay|drop --data-dir DIR`: works on the files of a data
//! directory, so it needs no running router. `replay` puts letters back in a shard's log as new
//! pending records, which the router delivers when it starts; it refuses while a router holds
//! the log (the log's lock), so it never writes beside one.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::deadletter::{DeadLetter, DeadLetterId, DeadLetterStore, State, Summary};
use crate::wal::{shard_dir, Log, NewRecord, ShardLog, WalConfig};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Args)]
struct DataDir {
    /// The router's data directory (holds `dead-letters/` and `shard-N/`).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
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
    /// router starts.
    Replay {
        #[command(flatten)]
        data: DataDir,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete dead letters.
    Drop {
        #[command(flatten)]
        data: DataDir,
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Exit status 2 when any id could not be handled, after every id has been tried.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let ok = match args.action {
        Action::List { data, json } => list(&store(&data.data_dir)?, json, &mut out)?,
        Action::Show {
            data,
            id,
            json,
            raw,
        } => {
            let (letter, state) = store(&data.data_dir)?.show(&DeadLetterId::parse(&id)?)?;
            if raw {
                out.write_all(&letter.message)?;
            } else if json {
                writeln!(out, "{}", letter_json(&letter, state))?;
            } else {
                show(&letter, state, &mut out)?;
            }
            true
        }
        Action::Replay { data, ids } => replay(&data.data_dir, &ids, &mut out)?,
        Action::Drop { data, ids } => {
            let store = store(&data.data_dir)?;
            each(&ids, |id| {
                store.remove(id)?;
                writeln!(out, "dropped {id}")?;
                Ok(())
            })
        }
    };
    out.flush()?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn store(data_dir: &Path) -> anyhow::Result<DeadLetterStore> {
    anyhow::ensure!(
        data_dir.is_dir(),
        "data directory {} does not exist",
        data_dir.display()
    );
    Ok(DeadLetterStore::open(data_dir)?)
}

/// Runs `f` for every id, reporting failures on stderr; true when all succeeded.
fn each(ids: &[String], mut f: impl FnMut(&DeadLetterId) -> anyhow::Result<()>) -> bool {
    let mut ok = true;
    for raw in ids {
        if let Err(err) = DeadLetterId::parse(raw)
            .map_err(anyhow::Error::from)
            .and_then(|id| f(&id))
        {
            eprintln!("ganglion: {raw}: {err:#}");
            ok = false;
        }
    }
    ok
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
                rfc3339(s.time_unix_nanos),
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

fn replay(data_dir: &Path, ids: &[String], out: &mut impl Write) -> anyhow::Result<bool> {
    let store = store(data_dir)?;
    let mut logs: Vec<(u32, ShardLog)> = Vec::new();
    Ok(each(ids, |id| {
        let (claim, letter) = store.claim(id)?;
        let shard = letter
            .source
            .map(|s| s.shard)
            .filter(|&n| shard_dir(data_dir, n as usize).is_dir())
            .unwrap_or(0);
        let appended = append(data_dir, &mut logs, shard, &letter);
        match appended {
            Ok(record) => {
                claim.finish()?;
                writeln!(out, "replayed {id} into shard-{shard} as record {record}")?;
                Ok(())
            }
            Err(err) => {
                claim.release()?;
                Err(err)
            }
        }
    }))
}

fn append(
    data_dir: &Path,
    logs: &mut Vec<(u32, ShardLog)>,
    shard: u32,
    letter: &DeadLetter,
) -> anyhow::Result<crate::wal::RecordId> {
    let index = match logs.iter().position(|(n, _)| *n == shard) {
        Some(i) => i,
        None => {
            let dir = shard_dir(data_dir, shard as usize);
            // No budget offline: the running router enforces its own when it starts.
            let config = WalConfig {
                budget_bytes: u64::MAX,
                ..WalConfig::default()
            };
            let (log, recovery) = ShardLog::open(&dir, config)
                .with_context(|| format!("cannot open the log in {}", dir.display()))?;
            for damage in &recovery.damage {
                eprintln!("ganglion: warning: {damage}");
            }
            logs.push((shard, log));
            logs.len() - 1
        }
    };
    let Some((_, log)) = logs.get_mut(index) else {
        anyhow::bail!("log of shard-{shard} went missing"); // cannot happen: index is in range
    };
    let destinations = [letter.endpoint.as_str()];
    let record = NewRecord {
        destinations: &destinations,
        origin: letter.origin.as_origin(),
        message: &letter.message,
    };
    Ok(log.append_durably(&[record])?.first)
}

fn show(letter: &DeadLetter, state: State, out: &mut impl Write) -> std::io::Result<()> {
    let o = &letter.origin;
    writeln!(out, "id:         {}", letter.id)?;
    writeln!(out, "state:      {}", state_name(state))?;
    writeln!(out, "time:       {}", rfc3339(letter.time_unix_nanos))?;
    writeln!(out, "endpoint:   {}", letter.endpoint)?;
    writeln!(out, "reason:     {}", letter.reason.as_str())?;
    writeln!(out, "detail:     {}", one_line(&letter.detail))?;
    if let Some(s) = letter.source {
        writeln!(out, "source:     shard-{} record {}", s.shard, s.record)?;
    }
    writeln!(out, "listener:   {}", o.listener)?;
    writeln!(out, "peer:       {}", o.peer)?;
    writeln!(out, "arrival:    {}", rfc3339(o.arrival_unix_nanos))?;
    writeln!(out, "control id: {}", o.control_id)?;
    if let Some(reply) = &letter.reply {
        writeln!(out, "reply:      {} bytes", reply.len())?;
        writeln!(out, "{}", as_lines(reply))?;
    }
    writeln!(out, "message:    {} bytes", letter.message.len())?;
    writeln!(out, "{}", as_lines(&letter.message))
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Ready => "ready",
        State::Replaying => "replaying",
    }
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

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "id": s.id.as_str(),
        "state": state_name(s.state),
        "time": rfc3339(s.time_unix_nanos),
        "endpoint": s.endpoint,
        "reason": s.reason.as_str(),
        "control_id": s.control_id,
        "bytes": s.message_len,
        "detail": s.detail,
    })
}

fn letter_json(l: &DeadLetter, state: State) -> serde_json::Value {
    json!({
        "id": l.id.as_str(),
        "state": state_name(state),
        "time": rfc3339(l.time_unix_nanos),
        "endpoint": l.endpoint,
        "reason": l.reason.as_str(),
        "detail": l.detail,
        "source": l.source.map(|s| json!({"shard": s.shard, "record": s.record.0})),
        "listener": l.origin.listener,
        "peer": l.origin.peer,
        "arrival": rfc3339(l.origin.arrival_unix_nanos),
        "control_id": l.origin.control_id,
        "reply": l.reply.as_ref().map(|r| String::from_utf8_lossy(r)),
        "message": String::from_utf8_lossy(&l.message),
    })
}

/// `2026-11-25T12:33:27.123456789Z` from unix nanoseconds (no clock or time crate needed).
fn rfc3339(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let nanos = unix_nanos % 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01 (never negative here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 12:34:56.5 UTC = 951827696.5 s (leap day of a century leap year).
        assert_eq!(
            rfc3339(951_827_696_500_000_000),
            "2000-02-29T12:34:56.500000000Z"
        );
        // 2024-12-31 23:59:59 UTC = 1735689599 s.
        assert_eq!(
            rfc3339(1_735_689_599_000_000_000),
            "2024-12-31T23:59:59.000000000Z"
        );
    }
}
