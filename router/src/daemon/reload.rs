//! Reloading: parse and compile off the hot path, diff, then apply on every shard in two
//! phases. A table that fails validation, or that any shard cannot take, changes nothing.
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::control::{Command, Control};
use crate::routes;
use crate::shard::Routing;

/// How long a shard has to answer "prepare" before the reload is aborted.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a reload did, for the log and for `ganglion reload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new table is in force; the counts say what changed.
    Applied {
        added: usize,
        removed: usize,
        changed: usize,
        unchanged: usize,
        rules_changed: bool,
    },
    /// The file has errors; every diagnostic, `file:line:col: error: …`.
    Invalid(Vec<String>),
    /// A shard could not take the table; the running one stays.
    Aborted(String),
}

/// Owns the routing in force, from the control thread's side.
pub struct Reloader {
    config: PathBuf,
    shards: usize,
    current: Arc<Routing>,
    control: Arc<Control>,
}

impl Reloader {
    pub fn new(
        config: PathBuf,
        shards: usize,
        current: Arc<Routing>,
        control: Arc<Control>,
    ) -> Reloader {
        Reloader {
            config,
            shards,
            current,
            control,
        }
    }

    /// The shards' mailboxes.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The routing in force.
    pub fn current(&self) -> &Arc<Routing> {
        &self.current
    }

    /// Reads the config again and, if it is valid, puts it in force on every shard.
    pub fn reload(&mut self) -> ReloadOutcome {
        let outcome = self.try_reload();
        match &outcome {
            ReloadOutcome::Applied {
                added,
                removed,
                changed,
                unchanged,
                rules_changed,
            } => {
                log::info!(
                "reload applied: {added} endpoint(s) added, {removed} removed, {changed} changed, \
                 {unchanged} unchanged; rules {}",
                if *rules_changed { "changed" } else { "unchanged" }
            )
            }
            ReloadOutcome::Invalid(diagnostics) => {
                log::error!("reload refused; the running configuration stays:");
                for d in diagnostics {
                    log::error!("{d}");
                }
            }
            ReloadOutcome::Aborted(why) => {
                log::error!("reload aborted; the running configuration stays: {why}")
            }
        }
        outcome
    }

    fn try_reload(&mut self) -> ReloadOutcome {
        let table = match routes::load(&self.config) {
            Ok((table, warnings)) => {
                for w in warnings {
                    log::warn!("{w}");
                }
                table
            }
            Err(diagnostics) => {
                return ReloadOutcome::Invalid(
                    diagnostics.iter().map(ToString::to_string).collect(),
                )
            }
        };
        let diff = routes::diff(Some(&self.current.table), &table);
        let routing = match Routing::build(Arc::new(table), self.shards, Some(&self.current)) {
            Ok(routing) => Arc::new(routing),
            Err(e) => return ReloadOutcome::Invalid(vec![e.to_string()]),
        };
        if let Err(why) = self.apply(&routing) {
            return ReloadOutcome::Aborted(why);
        }
        self.current = routing;
        ReloadOutcome::Applied {
            added: diff.added.len(),
            removed: diff.removed.len(),
            changed: diff.changed.len(),
            unchanged: diff.unchanged.len(),
            rules_changed: diff.rules_changed,
        }
    }

    /// Phase one everywhere, then commit everywhere; or abort everywhere.
    fn apply(&self, routing: &Arc<Routing>) -> Result<(), String> {
        let (reply, answers) = mpsc::channel();
        for shard in 0..self.shards {
            self.control.send(
                shard,
                Command::Prepare {
                    routing: Arc::clone(routing),
                    reply: reply.clone(),
                },
            );
        }
        let mut failure = None;
        for _ in 0..self.shards {
            match answers.recv_timeout(PREPARE_TIMEOUT) {
                Ok(Ok(())) => {}
                Ok(Err(why)) => failure = Some(why),
                Err(_) => failure = Some("a shard did not answer in time".to_string()),
            }
        }
        let command = || {
            if failure.is_some() {
                Command::Abort
            } else {
                Command::Commit
            }
        };
        for shard in 0..self.shards {
            self.control.send(shard, command());
        }
        failure.map_or(Ok(()), Err)
    }
}
