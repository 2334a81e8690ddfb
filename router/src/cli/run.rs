//! `ganglion run --config routes.toml`: the daemon.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::daemon::{self, RunError, RunOptions};
use crate::egress::settings::EgressSettings;
use crate::runtime::driver::DriverChoice;

#[derive(clap::Args)]
pub struct Args {
    /// The routes file.
    #[arg(long, default_value = "routes.toml")]
    pub config: PathBuf,
    /// I/O driver: auto (io_uring where the kernel allows it, else epoll), uring or epoll.
    #[arg(long, default_value = "auto", env = "GANGLION_DRIVER")]
    pub driver: DriverChoice,
    /// Number of shards; overrides `[server] workers`.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds shutdown waits for queued messages to be delivered.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
    /// Do not reload when the routes file changes (SIGHUP and `ganglion reload` still work).
    #[arg(long)]
    pub no_watch: bool,
    /// Seconds an endpoint has to acknowledge a message.
    #[arg(long, default_value_t = 30)]
    pub reply_timeout: u64,
    /// Milliseconds before the first retry of a failed delivery (later ones back off from it).
    #[arg(long, default_value_t = 100)]
    pub retry_base_ms: u64,
    /// Milliseconds an endpoint is left alone after repeated failures before one probe.
    #[arg(long, default_value_t = 30_000)]
    pub breaker_cooldown_ms: u64,
    /// For measurements only: acknowledge messages once queued in memory, without the
    /// write-ahead log. A crash then loses what was acknowledged and not yet delivered.
    #[arg(long)]
    pub no_durability: bool,
    /// Disk the write-ahead log may take, in MiB, all shards together; overrides
    /// `[server] wal_budget` (default 4096). Past it, senders are told to try again later.
    #[arg(long)]
    pub wal_budget_mib: Option<u64>,
    /// Let the kernel place the shards' threads instead of pinning one to each core: for
    /// machines where other busy processes share the cores, where a pinned shard waits for
    /// its core while another is idle.
    #[arg(long)]
    pub no_pin: bool,
    /// Start even when group or others can reach the data directory (it holds messages, so
    /// this is refused by default); as `[server] allow_shared_data_dir = true`.
    #[arg(long)]
    pub allow_shared_data_dir: bool,
    /// How log lines are written to stderr: human (one readable line per event) or json (one
    /// object per line, for log shippers).
    #[arg(long, value_enum, default_value = "human", env = "GANGLION_LOG_FORMAT")]
    pub log_format: crate::logging::LogFormat,
    /// Put message bodies (escaped, at most 4 KiB each) into refusal and delivery-failure
    /// events. Bodies are patient data: the log then needs the care the data directory gets.
    #[arg(long)]
    pub log_bodies: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let defaults = EgressSettings::default();
    let options = RunOptions {
        config: args.config,
        driver: args.driver,
        workers: args.workers,
        grace: Duration::from_secs(args.grace),
        watch: !args.no_watch,
        durable: !args.no_durability,
        private_fds: true,
        pin: !args.no_pin,
        allow_shared_data_dir: args.allow_shared_data_dir,
        wal: crate::wal::WalConfig {
            preallocate: true,
            ..crate::wal::WalConfig::default()
        },
        wal_budget: args.wal_budget_mib.map(|mib| mib.saturating_mul(1 << 20)),
        egress: EgressSettings {
            reply_timeout: Duration::from_secs(args.reply_timeout),
            backoff: crate::egress::backoff::BackoffPolicy {
                base: Duration::from_millis(args.retry_base_ms),
                ..defaults.backoff
            },
            breaker_cooldown: Duration::from_millis(args.breaker_cooldown_ms),
            ..defaults
        },
    };
    match daemon::run(options) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(RunError::Config(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            Ok(ExitCode::from(78))
        }
        Err(e) => Err(e.into()),
    }
}
