//! `ganglion wal inspect|replay --data-dir DIR`: the write-ahead log's files, for operators.
//! `inspect` only reads (safe beside a running router) and lists segments, records, marks and
//! quarantined files with byte offsets; `replay` puts the intact records of quarantined files
//! back in a shard's log, offline, as `dead-letters replay` does for letters.
//!
//! Patient data stays out of the listing: records are shown by number, control id, sender,
//! listener, time, destinations and size, never by content.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::offline_log::{BudgetArgs, OfflineLogs};
use crate::wal::inspect::{
    inspect_bytes_of, inspect_segment, is_marks_file, shard_dirs, shard_files, FileInfo,
    StoredRecord,
};
use crate::wal::{Log, MessageKind, NewRecord, RecordId};
use crate::wire_time::rfc3339_nanos;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List each shard's segments (records, damage, marks) and quarantined files (the intact
    /// records they hold), with byte offsets. Reads only: safe while the router runs.
    Inspect {
        /// The router's data directory (holds `shard-N/`).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Only this shard's log.
        #[arg(long)]
        shard: Option<usize>,
        /// One line per record too (segments and quarantined files).
        #[arg(long)]
        records: bool,
    },
    /// Append the intact records of quarantined FILEs to a shard's log as new records, for
    /// every destination not marked done, to be delivered when the router starts. Refuses while
    /// a router holds the log; the log's disk budget applies as in the router.
    Replay {
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The shard whose log takes the records (default: the one whose quarantine/ holds
        /// the file, else 0).
        #[arg(long)]
        shard: Option<usize>,
        /// Only the records with these numbers (as `inspect` shows them).
        #[arg(long = "record", value_name = "N")]
        only: Vec<u64>,
        /// Say what would be replayed, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The router's routes file, for its `[server] wal_budget`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        budget: BudgetArgs,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Exit status 2 when a file could not be read or a record not replayed, after trying all.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let ok = match args.action {
        Action::Inspect {
            data_dir,
            shard,
            records,
        } => inspect(&data_dir, shard, records, &mut out)?,
        Action::Replay {
            data_dir,
            shard,
            only,
            dry_run,
            config,
            budget,
            files,
        } => {
            let mut logs = (!dry_run)
                .then(|| {
                    budget
                        .bytes(config.as_deref())
                        .map(|b| OfflineLogs::new(&data_dir, b))
                })
                .transpose()?;
            let mut ok = true;
            for file in &files {
                let target = shard.or_else(|| shard_of(file)).unwrap_or(0);
                ok &= replay(file, target, &only, logs.as_mut(), &mut out)?;
            }
            ok
        }
    };
    out.flush()?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn inspect(
    data_dir: &Path,
    only: Option<usize>,
    records: bool,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    anyhow::ensure!(
        data_dir.is_dir(),
        "data directory {} does not exist",
        data_dir.display()
    );
    let mut ok = true;
    let shards: Vec<_> = shard_dirs(data_dir)
        .into_iter()
        .filter(|(n, _)| only.is_none_or(|o| o == *n))
        .collect();
    if shards.is_empty() {
        writeln!(out, "no shard log in {}", data_dir.display())?;
    }
    for (n, dir) in shards {
        let files = shard_files(&dir)?;
        write!(out, "shard-{n} {}:", dir.display())?;
        write!(out, " {} segment(s)", files.segments.len())?;
        if let Some(next) = files.next_seq_mark {
            write!(out, ", next record #{next} kept in LOCK")?;
        }
        if files.spare_bytes > 0 {
            write!(out, ", spare segment {} bytes", files.spare_bytes)?;
        }
        writeln!(out, ", {} quarantined file(s)", files.quarantined.len())?;
        for path in &files.segments {
            match inspect_segment(path) {
                Ok(info) => segment(&info, records, out)?,
                Err(e) => {
                    ok = false;
                    eprintln!("ganglion: {e}");
                }
            }
        }
        for path in &files.quarantined {
            let shown = path.strip_prefix(&dir).unwrap_or(path);
            if is_marks_file(path) {
                writeln!(
                    out,
                    "{}: delivery marks of the segment beside it",
                    shown.display()
                )?;
                continue;
            }
            match inspect_bytes_of(path) {
                Ok(info) => quarantined(shown, &info, records, out)?,
                Err(e) => {
                    ok = false;
                    eprintln!("ganglion: {e}");
                }
            }
        }
    }
    Ok(ok)
}

fn segment(info: &FileInfo, records: bool, out: &mut impl Write) -> std::io::Result<()> {
    let pending = info
        .records
        .iter()
        .filter(|r| r.done.as_ref().is_none_or(|d| d.iter().any(|done| !done)))
        .count();
    write!(
        out,
        "segment {}: {} bytes, {} record(s)",
        name(&info.path),
        info.bytes,
        info.records.len()
    )?;
    if let (Some(first), Some(last)) = (info.records.first(), info.records.last()) {
        write!(out, " #{}..#{}", first.seq, last.seq)?;
    }
    write!(out, ", {pending} with destinations pending")?;
    match &info.marks {
        Some(m) => writeln!(
            out,
            "; marks {}: {} entries, {} damaged",
            name(&m.path),
            m.entries,
            m.damaged_entries
        )?,
        None => writeln!(out, "; no marks yet")?,
    }
    for d in &info.damage {
        writeln!(
            out,
            "  damage at bytes {}..{} ({} bytes){}: {}; {} intact record(s) in it",
            d.range.start,
            d.range.end,
            d.range.end - d.range.start,
            if d.tail { ", to the end" } else { "" },
            d.reason,
            d.intact_records
        )?;
    }
    if let Some(at) = info.unused_from {
        writeln!(
            out,
            "  zeros never written from byte {at} (space made ahead of time)"
        )?;
    }
    if records {
        for r in &info.records {
            record(r, out)?;
        }
    }
    Ok(())
}

fn quarantined(
    shown: &Path,
    info: &FileInfo,
    records: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let seqs: Vec<String> = info.records.iter().map(|r| format!("#{}", r.seq)).collect();
    write!(
        out,
        "{}: {} bytes, {} intact record(s)",
        shown.display(),
        info.bytes,
        info.records.len()
    )?;
    if !seqs.is_empty() && seqs.len() <= 10 {
        write!(out, " ({})", seqs.join(", "))?;
    }
    writeln!(out)?;
    if records {
        for r in &info.records {
            record(r, out)?;
        }
    }
    Ok(())
}

fn record(r: &StoredRecord, out: &mut impl Write) -> std::io::Result<()> {
    let kind = match r.parsed.kind {
        Some(MessageKind::Hl7v2) => "HL7v2",
        Some(MessageKind::Itk) => "ITK",
        None => "kind not stored",
    };
    write!(
        out,
        "  #{} at byte {} ({} bytes, format v{}): {kind}, control id {}, from {} on {}, \
         arrived {}, message {} bytes, to",
        r.seq,
        r.offset,
        r.len,
        r.version,
        r.origin.control_id,
        r.origin.peer,
        r.origin.listener,
        rfc3339_nanos(r.origin.arrival_unix_nanos),
        r.message.len()
    )?;
    for (i, d) in r.destinations.iter().enumerate() {
        let state = match r.done.as_ref().and_then(|done| done.get(i)) {
            Some(true) => "done",
            Some(false) => "pending",
            None => "not known",
        };
        write!(out, " {d} ({state})")?;
    }
    writeln!(out)
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `N` for a file in `…/shard-N/quarantine/`.
fn shard_of(file: &Path) -> Option<usize> {
    let shard = file.parent()?.parent()?.file_name()?.to_str()?;
    shard.strip_prefix("shard-")?.parse().ok()
}

/// Replays the intact records of one file into shard `target`'s log (`logs` is `None` for
/// a dry run); true when every chosen record was replayed or had nothing left to do.
fn replay(
    file: &Path,
    target: usize,
    only: &[u64],
    mut logs: Option<&mut OfflineLogs>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let info = inspect_bytes_of(file)?;
    let mut ok = true;
    let shown = file.display();
    for r in info
        .records
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.seq))
    {
        let pending: Vec<&str> = r
            .destinations
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                r.done
                    .as_ref()
                    .is_none_or(|d| !d.get(*i).copied().unwrap_or(false))
            })
            .map(|(_, d)| d.as_str())
            .collect();
        let what = format!(
            "#{} (control id {}) at byte {}",
            r.seq, r.origin.control_id, r.offset
        );
        if pending.is_empty() {
            writeln!(out, "skipped {what} of {shown}: every destination is done")?;
            continue;
        }
        let Some(logs) = logs.as_deref_mut() else {
            writeln!(
                out,
                "would replay {what} of {shown} into shard-{target}, for {}",
                pending.join(", ")
            )?;
            continue;
        };
        let log = logs.get(target)?;
        if still_in_log(log, r) {
            writeln!(
                out,
                "skipped {what} of {shown}: the log still holds it, pending"
            )?;
            continue;
        }
        let record = NewRecord {
            destinations: &pending,
            origin: r.origin.as_origin(),
            parsed: r.parsed.as_parsed(),
            message: &r.message,
        };
        match log.append_durably(&[record]) {
            Ok(appended) => writeln!(
                out,
                "replayed {what} of {shown} into shard-{target} as record {}, for {}",
                appended.first,
                pending.join(", ")
            )?,
            Err(e) => {
                ok = false;
                eprintln!("ganglion: {what} of {shown}: {e}");
            }
        }
    }
    Ok(ok)
}

/// Whether the log holds this very record still pending (a copy of a live range).
fn still_in_log(log: &impl Log, r: &StoredRecord) -> bool {
    log.read(RecordId(r.seq))
        .is_ok_and(|live| live.message == r.message && live.destinations == r.destinations)
}
