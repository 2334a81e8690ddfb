//! The write-ahead log of a data directory as offline tools write to it (`ganglion
//! dead-letters replay`, `ganglion wal replay`): each shard's log opened when first needed,
//! holding its lock (so never beside a running router), and every append judged by the disk
//! budget of the whole log, as the router would judge it: what every shard directory takes
//! counts, not only the log written to.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::wal::inspect::{disk_usage, shard_dirs};
use crate::wal::{shard_dir, DiskBudget, ShardLog, WalConfig};

/// Where the budget comes from: the router's routes file, or a number (which wins).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BudgetArgs {
    /// The disk budget of the whole log in MiB, as `ganglion run --wal-budget-mib`.
    #[arg(long, value_name = "MIB")]
    pub wal_budget_mib: Option<u64>,
}

impl BudgetArgs {
    /// The budget in bytes: `--wal-budget-mib`, else that of the routes file `config` (the
    /// command's `--config`, when given), else the default.
    pub fn bytes(&self, config: Option<&Path>) -> anyhow::Result<u64> {
        if let Some(mib) = self.wal_budget_mib {
            return Ok(mib.saturating_mul(1 << 20));
        }
        let Some(config) = config else {
            return Ok(WalConfig::DEFAULT_BUDGET_BYTES);
        };
        let (table, _) = crate::config::load(config).map_err(|diagnostics| {
            let text: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{}", text.join("\n"))
        })?;
        Ok(table
            .server()
            .wal_budget
            .unwrap_or(WalConfig::DEFAULT_BUDGET_BYTES))
    }
}

pub struct OfflineLogs {
    data_dir: PathBuf,
    budget: Arc<DiskBudget>,
    logs: Vec<(usize, ShardLog)>,
}

impl OfflineLogs {
    pub fn new(data_dir: &Path, budget_bytes: u64) -> Self {
        let budget = DiskBudget::new(budget_bytes);
        // Every shard's log counts; a log's own bytes are counted again, exactly, when it is
        // opened (see `get`).
        for (_, dir) in shard_dirs(data_dir) {
            budget.take(disk_usage(&dir));
        }
        Self {
            data_dir: data_dir.to_path_buf(),
            budget,
            logs: Vec::new(),
        }
    }

    /// Shard `shard`'s log, opened (and recovered) on first use.
    pub fn get(&mut self, shard: usize) -> anyhow::Result<&mut ShardLog> {
        let index = match self.logs.iter().position(|(n, _)| *n == shard) {
            Some(i) => i,
            None => {
                let dir = shard_dir(&self.data_dir, shard);
                let counted = disk_usage(&dir);
                self.budget.give_back(counted);
                let opened =
                    ShardLog::open_shared(&dir, WalConfig::default(), Arc::clone(&self.budget));
                let (log, recovery) = match opened {
                    Ok(opened) => opened,
                    Err(e) => {
                        self.budget.take(counted);
                        return Err(e)
                            .with_context(|| format!("cannot open the log in {}", dir.display()));
                    }
                };
                for damage in &recovery.damage {
                    eprintln!("ganglion: warning: {damage}");
                }
                self.logs.push((shard, log));
                self.logs.len() - 1
            }
        };
        match self.logs.get_mut(index) {
            Some((_, log)) => Ok(log),
            None => anyhow::bail!("log of shard-{shard} went missing"), // index is in range
        }
    }
}
