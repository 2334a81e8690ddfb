//! `ganglion reload`: asks a running router to reload its routes, through its admin address.
use std::process::ExitCode;

use super::admin_client::AdminTarget;

#[derive(clap::Args)]
pub struct Args {
    /// Take the file even if it closes every listener or removes every route (otherwise such
    /// a reload is refused: it is what a half-written file looks like).
    #[arg(long)]
    pub allow_empty: bool,
    /// Print the router's answer as one JSON object: `outcome` (applied, invalid, refused,
    /// aborted, unconfirmed), `applied`, `headline`, `reasons`, and what changed (`summary`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Exit status 0 when the reload was applied, 78 when the file was refused (errors, it would
/// empty the router, or it needs a restart), 1 otherwise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.target.client()?;
    let path = match (args.allow_empty, args.json) {
        (false, false) => "/reload",
        (true, false) => "/reload?allow_empty=1",
        (false, true) => "/reload?format=json",
        (true, true) => "/reload?allow_empty=1&format=json",
    };
    let (status, body) = client.request("POST", path)?;
    if args.json && serde_json::from_str::<serde_json::Value>(&body).is_err() {
        // The router did not get as far as an outcome (a wrong token, no answer in time):
        // still one JSON object, so that scripts need not parse two formats.
        let error = serde_json::json!({
            "outcome": "error",
            "applied": false,
            "status": status,
            "headline": body.trim_end(),
        });
        println!("{error}");
    } else {
        print!("{body}");
    }
    Ok(match status {
        200 => ExitCode::SUCCESS,
        422 | 409 => ExitCode::from(78),
        _ => ExitCode::from(1),
    })
}
