//! The log's disk budget as the operator set it: `[server] wal_budget` in routes.toml, or
//! `--wal-budget-mib` on the command line, which wins. One [`DiskBudget`] for every shard's
//! log; a reload that changes `wal_budget` changes its limit in place (what is stored stays).
use std::sync::Arc;

use crate::routes::RouteTable;
use crate::wal::{DiskBudget, WalConfig};

pub struct BudgetSetting {
    pub budget: Arc<DiskBudget>,
    /// From the command line: then routes.toml is not consulted.
    cli: Option<u64>,
}

impl BudgetSetting {
    pub fn new(cli: Option<u64>, table: &RouteTable) -> Self {
        let limit = limit(cli, table);
        tracing::info!(
            "write-ahead log disk budget: {} MiB for all shards ({})",
            limit >> 20,
            match (cli, table.server().wal_budget) {
                (Some(_), _) => "--wal-budget-mib",
                (None, Some(_)) => "[server] wal_budget",
                (None, None) => "default",
            }
        );
        Self {
            budget: DiskBudget::new(limit),
            cli,
        }
    }

    /// Takes the limit of a reloaded table (unless the command line set it).
    pub fn follow(&self, table: &RouteTable) {
        let limit = limit(self.cli, table);
        if limit != self.budget.limit() {
            tracing::info!(
                "write-ahead log disk budget: {} MiB (was {} MiB)",
                limit >> 20,
                self.budget.limit() >> 20
            );
            self.budget.set_limit(limit);
        }
    }
}

fn limit(cli: Option<u64>, table: &RouteTable) -> u64 {
    cli.or(table.server().wal_budget)
        .unwrap_or(WalConfig::DEFAULT_BUDGET_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn table(server: &str) -> RouteTable {
        let text = format!("[server]\n{server}\n");
        let (table, _) = load_str(Path::new("routes.toml"), &text).expect("valid");
        table
    }

    #[test]
    fn routes_toml_sets_the_budget_the_command_line_overrides_and_reloads_follow() {
        let default = BudgetSetting::new(None, &table(""));
        assert_eq!(default.budget.limit(), WalConfig::DEFAULT_BUDGET_BYTES);

        let configured = BudgetSetting::new(None, &table("wal_budget = \"2 GiB\""));
        assert_eq!(configured.budget.limit(), 2 << 30);
        configured.follow(&table("wal_budget = \"512 MiB\""));
        assert_eq!(configured.budget.limit(), 512 << 20);
        configured.follow(&table(""));
        assert_eq!(configured.budget.limit(), WalConfig::DEFAULT_BUDGET_BYTES);

        let cli = BudgetSetting::new(Some(100 << 20), &table("wal_budget = \"2 GiB\""));
        assert_eq!(cli.budget.limit(), 100 << 20);
        cli.follow(&table("wal_budget = \"1 GiB\""));
        assert_eq!(cli.budget.limit(), 100 << 20);
    }
}
