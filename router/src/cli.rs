//! The `ganglion` command line: one module per subcommand, each with its `Args` and `run`.
//! `anyhow` is used here and nowhere else in the library: this is where errors meet people.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin_client;
pub mod check;
pub mod dead_letters;
pub mod endpoints;
pub mod explain;
pub mod inspect;
mod offline_log;
pub mod reload;
pub mod run;
pub mod status;
pub mod trace;
pub mod wal;

#[derive(Parser)]
#[command(
    name = "ganglion",
    version,
    about = "HL7v2/MLLP and NHS ITK message router"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the routing keys of every message in FILEs (stdin when none), one JSON object each.
    Inspect(inspect::Args),
    /// Validate the routes file as a reload would, then run its [[test]] cases (exit 78 on error).
    Check(check::Args),
    /// Show which route and endpoints each message in FILEs would get, and why.
    Explain(explain::Args),
    /// Run the router.
    Run(run::Args),
    /// Ask a running router to reload its routes file.
    Reload(reload::Args),
    /// Show a running router's endpoints: connection, circuit, queue, last error.
    Endpoints(endpoints::Args),
    /// One screen on a running router: ready or not, rates, queues, endpoints in trouble.
    Status(status::Args),
    /// Where a message is: by control id / tracking id, patient id (PID-3) or time range.
    Trace(trace::Args),
    /// List, show, replay or drop dead letters in a data directory (offline: works on the files).
    DeadLetters(dead_letters::Args),
    /// Inspect the write-ahead log's files, or replay records kept in its quarantine.
    Wal(wal::Args),
}

/// Parses the command line, runs the subcommand, and turns its outcome into an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so that stdout stays machine-readable (inspect's JSON, the listening
    // lines); RUST_LOG chooses the level, info by default. Only `run` chooses a format.
    match &cli.command {
        Command::Run(args) => crate::logging::init(args.log_format, args.log_bodies),
        _ => crate::logging::init(crate::logging::LogFormat::Human, false),
    }
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(args),
        Command::Explain(args) => explain::run(args),
        Command::DeadLetters(args) => dead_letters::run(args),
        Command::Wal(args) => wal::run(args),
        Command::Run(args) => run::run(args),
        Command::Reload(args) => reload::run(args),
        Command::Endpoints(args) => endpoints::run(args),
        Command::Status(args) => status::run(args),
        Command::Trace(args) => trace::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ganglion: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
