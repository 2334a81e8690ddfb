//! `ganglion reload`: asks a running router to reload its routes, through its admin address.
use std::process::ExitCode;

use super::admin_client::AdminTarget;

#[derive(clap::Args)]
pub struct Args {
    /// Take the file even if it closes every listener or removes every route (otherwise such
    /// a reload is refused: it is what a half-written file looks like).
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Exit status 0 when the reload was applied, 78 when the file was refused (errors, it would
/// empty the router, or it needs a restart), 1 otherwise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.target.client()?;
    let path = if args.allow_empty {
        "/reload?allow_empty=1"
    } else {
        "/reload"
    };
    let (status, body) = client.request("POST", path)?;
    print!("{body}");
    Ok(match status {
        200 => ExitCode::SUCCESS,
        422 | 409 => ExitCode::from(78),
        _ => ExitCode::from(1),
    })
}
