//! `ganglion check --config routes.toml [--json]`: the stages a reload runs, then the tests.
//!
//! Loading is [`crate::config::load`], the very function start-up and reload call (parse,
//! directory, compile, TLS files), so a file `check` passes is a file the daemon takes. Then the
//! `[[test]]` cases run. Every diagnostic is printed: to stderr as `file:line:col: …` with the
//! source line, or to stdout as one JSON object per line with `--json`. Exit status 0 when
//! there is no error (warnings allowed), 78 (EX_CONFIG) otherwise.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{diag, testcase, Diagnostic, Severity};
use crate::routes;

/// sysexits' EX_CONFIG: the configuration is wrong.
pub const EX_CONFIG: u8 = 78;

#[derive(clap::Args)]
pub struct Args {
    /// The routes file.
    #[arg(long, default_value = "routes.toml")]
    pub config: PathBuf,
    /// Print each diagnostic as a JSON object on its own line, on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (mut diags, summary) = match crate::config::load(&args.config) {
        Ok((table, mut warnings)) => {
            let failures = testcase::run_tests(&table);
            let tests = table.tests().len();
            let count = |n: usize, what: &str| format!("{n} {what}{}", plural(n));
            let summary = format!(
                "{}: {}, {}, {}, {}; {} of {} passed",
                args.config.display(),
                count(table.endpoints().len(), "endpoint"),
                count(table.groups().len(), "group"),
                count(table.rules().len(), "route"),
                count(table.listeners().len(), "listener"),
                tests - failing_tests(&failures).min(tests),
                count(tests, "test"),
            );
            warnings.extend(failures);
            warnings.extend(no_routes(&args.config, &table));
            (warnings, Some(summary))
        }
        Err(diags) => (diags, None),
    };
    let errors = diags.iter().filter(|d| d.is_error()).count();
    print_diagnostics(&args.config, &mut diags, args.json)?;
    if !args.json {
        let warnings = diags.len() - errors;
        match (&summary, errors) {
            (Some(s), 0) => println!("{s}"),
            _ => eprintln!(
                "{}: {errors} error{}, {warnings} warning{}",
                args.config.display(),
                plural(errors),
                plural(warnings)
            ),
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EX_CONFIG)
    })
}

/// A file with no route is valid, and what an editor's half-written file often looks like; a
/// running router refuses to reload into it without `--allow-empty`. Say so.
fn no_routes(config: &Path, table: &routes::RouteTable) -> Option<Diagnostic> {
    if !table.rules().is_empty() {
        return None;
    }
    let fate = match table.unrouted() {
        routes::Unrouted::Reject => "refused",
        routes::Unrouted::DeadLetter => "dead-lettered",
    };
    let warning = Diagnostic {
        severity: Severity::Warning,
        ..Diagnostic::file_error(config, format!("no routes: every message would be {fate}"))
    };
    Some(warning.with_hint(
        "a running router refuses to reload into this unless told `ganglion reload --allow-empty`",
    ))
}

/// Tests that failed: a test whose file holds several messages may fail on more than one.
fn failing_tests(failures: &[Diagnostic]) -> usize {
    let mut at: Vec<_> = failures.iter().map(|d| (d.line, d.col)).collect();
    at.dedup();
    at.len()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Diagnostics in reading order: JSON lines on stdout, or the human form on stderr.
pub fn print_diagnostics(
    config: &Path,
    diags: &mut [Diagnostic],
    json: bool,
) -> anyhow::Result<()> {
    diag::sort(config, diags);
    if json {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for d in diags.iter() {
            writeln!(out, "{}", d.to_json())?;
        }
        out.flush()?;
    } else {
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        for d in diags.iter() {
            writeln!(err, "{d}")?;
        }
    }
    Ok(())
}
