//! `ganglion reload`: asks a running router to reload its routes, through its admin address.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The routes file; its `[server] admin` says where the router listens.
    #[arg(long, default_value = "routes.toml")]
    pub config: PathBuf,
    /// The admin address, instead of reading it from the routes file.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
}

/// Exit status 0 when the reload was applied, 78 when the file was refused, 1 otherwise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let admin = match args.admin {
        Some(addr) => addr,
        None => {
            let (table, _) = crate::routes::load(&args.config).map_err(|diagnostics| {
                for d in &diagnostics {
                    eprintln!("{d}");
                }
                anyhow::anyhow!(
                    "cannot read the admin address from {}",
                    args.config.display()
                )
            })?;
            table.server().admin
        }
    };
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
        .with_context(|| format!("connecting to the router's admin address {admin}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(70)))?;
    stream.write_all(
        format!("POST /reload HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    print!("{body}");
    Ok(match status {
        200 => ExitCode::SUCCESS,
        422 => ExitCode::from(78),
        _ => ExitCode::from(1),
    })
}
