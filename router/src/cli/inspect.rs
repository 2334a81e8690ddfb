//! `ganglion inspect [FILE…]`: one JSON object per message found, on stdout.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::charset::transcode_utf16;
use crate::inspect::{find_messages, report, Report};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// Files holding HL7v2 (raw, batched or MLLP-framed) or ITK (XML, SOAP or whole HTTP
    /// requests). Standard input when none is given.
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    index: usize,
    #[serde(flatten)]
    report: Report,
}

/// Exit status 2 when any input could not be read, after every file has been reported.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.into_iter().map(Some).collect()
    };
    for path in inputs {
        let name = path
            .as_ref()
            .map_or_else(|| "-".to_string(), |p| p.display().to_string());
        let bytes = match read_input(path.as_ref()) {
            Ok(bytes) => bytes,
            Err(err) => {
                failed = true;
                let report = Report::Error {
                    error: format!("cannot read: {err}"),
                    offset: 0,
                };
                write_line(&mut out, &name, 0, report)?;
                continue;
            }
        };
        let bytes = transcode_utf16(&bytes).unwrap_or(bytes);
        for (index, found) in find_messages(&bytes).into_iter().enumerate() {
            let report = match &found.item {
                Ok(item) => report(item, found.offset),
                Err(error) => Report::Error {
                    error: error.clone(),
                    offset: found.offset,
                },
            };
            failed |= matches!(report, Report::Error { .. });
            write_line(&mut out, &name, index, report)?;
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_input(path: Option<&PathBuf>) -> std::io::Result<Vec<u8>> {
    match path {
        Some(path) => std::fs::read(path),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin().lock().read_to_end(&mut bytes)?;
            Ok(bytes)
        }
    }
}

fn write_line(
    out: &mut impl Write,
    file: &str,
    index: usize,
    report: Report,
) -> anyhow::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &Line {
            file,
            index,
            report,
        },
    )?;
    out.write_all(b"\n")?;
    Ok(())
}
