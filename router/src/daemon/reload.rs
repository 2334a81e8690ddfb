//! Reloading, start-up included: read the config while it holds still, compile, diff, refuse
//! what the running router cannot or should not take, build what the diff needs, then apply it
//! on every shard in two phases. A file that fails validation, a reload that is refused, or one
//! that any shard cannot prepare changes nothing; "applied" is said only once every shard has
//! confirmed that the new table and listeners are in force.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::listeners::Listeners;
use super::plan::Plan;
use super::watch::{self, Snapshot};
use crate::ingress::budget::InputBudget;
use crate::mailbox::{Command, Control, PhaseAnswer, ShardError};
use crate::routes::server::Workers;
use crate::routes::{self, RouteTable, ServerChange, TableDiff};
use crate::runtime::shards;
use crate::shard::routing::Provenance;
use crate::shard::Routing;

/// How long the shards together have to answer one phase.
const PHASE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a reload did, for the log and for `ganglion reload`.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The new table and listeners are in force on every shard.
    Applied(Summary),
    /// The file has errors; every diagnostic, `file:line:col: error: …`.
    Invalid(Vec<String>),
    /// The file is valid, but taking it would close every listener or drop every route
    /// (without `allow_empty`), or it changes what only a restart can change. Each reason.
    Refused(Vec<String>),
    /// Some shard could not prepare it; every shard kept the running configuration.
    Aborted(Vec<ApplyError>),
    /// Every shard was told to commit, but not every one confirmed in time.
    Unconfirmed(Vec<ApplyError>),
}

impl ReloadOutcome {
    /// Each reason it was not applied (or not confirmed), one line each; none when applied.
    pub fn reasons(&self) -> Vec<String> {
        let errors = |failures: &[ApplyError]| failures.iter().map(ToString::to_string).collect();
        match self {
            ReloadOutcome::Applied(_) => Vec::new(),
            ReloadOutcome::Invalid(reasons) | ReloadOutcome::Refused(reasons) => reasons.clone(),
            ReloadOutcome::Aborted(failures) | ReloadOutcome::Unconfirmed(failures) => {
                errors(failures)
            }
        }
    }

    /// A word for the outcome, for JSON answers and log fields.
    pub fn name(&self) -> &'static str {
        match self {
            ReloadOutcome::Applied(_) => "applied",
            ReloadOutcome::Invalid(_) => "invalid",
            ReloadOutcome::Refused(_) => "refused",
            ReloadOutcome::Aborted(_) => "aborted",
            ReloadOutcome::Unconfirmed(_) => "unconfirmed",
        }
    }

    /// The outcome as one JSON object (`ganglion reload --json`, `POST /reload?format=json`).
    pub fn to_json(&self) -> serde_json::Value {
        let summary = match self {
            ReloadOutcome::Applied(s) => serde_json::json!({
                "endpoints_added": s.added,
                "endpoints_removed": s.removed,
                "endpoints_changed": s.changed,
                "endpoints_unchanged": s.unchanged,
                "endpoints_rearranged": s.rearranged,
                "rules_changed": s.rules_changed,
                "listeners_added": s.listeners_added,
                "listeners_removed": s.listeners_removed,
                "listeners_moved": s.listeners_moved,
                "listeners_changed": s.listeners_changed,
            }),
            _ => serde_json::Value::Null,
        };
        serde_json::json!({
            "outcome": self.name(),
            "applied": matches!(self, ReloadOutcome::Applied(_)),
            "headline": self.headline(),
            "reasons": self.reasons(),
            "summary": summary,
        })
    }

    /// The first line of what the log says, without the reasons.
    pub fn headline(&self) -> String {
        match self {
            ReloadOutcome::Applied(summary) => format!("reload applied: {summary}"),
            ReloadOutcome::Invalid(_) => {
                "reload refused: the file has errors; the running configuration stays".into()
            }
            ReloadOutcome::Refused(_) => "reload refused; the running configuration stays".into(),
            ReloadOutcome::Aborted(_) => {
                "reload aborted; every shard keeps the running configuration".into()
            }
            ReloadOutcome::Unconfirmed(_) => {
                "reload committed, but not every shard confirmed it".into()
            }
        }
    }
}

impl fmt::Display for ReloadOutcome {
    /// What the log and `ganglion reload` say: a headline, then one indented line per reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headline = self.headline();
        if let ReloadOutcome::Applied(_) = self {
            return f.write_str(&headline);
        }
        write!(f, "{headline}:")?;
        for reason in self.reasons() {
            write!(f, "\n  {reason}")?;
        }
        Ok(())
    }
}

/// What an applied reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Of those changed or unchanged, how many rebuild their lanes.
    pub rearranged: usize,
    pub rules_changed: bool,
    pub listeners_added: usize,
    pub listeners_removed: usize,
    pub listeners_moved: usize,
    pub listeners_changed: usize,
}

impl Summary {
    fn of(diff: &TableDiff) -> Summary {
        Summary {
            added: diff.added.len(),
            removed: diff.removed.len(),
            changed: diff.changed.len(),
            unchanged: diff.unchanged.len(),
            rearranged: diff.rearranged.len(),
            rules_changed: diff.rules_changed,
            listeners_added: diff.listeners.added.len(),
            listeners_removed: diff.listeners.removed.len(),
            listeners_moved: diff.listeners.moved.len(),
            listeners_changed: diff.listeners.changed.len(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} endpoint(s) added, {} removed, {} changed, {} unchanged, {} rearranged; rules {}; \
             listener(s): {} added, {} removed, {} moved, {} changed",
            self.added,
            self.removed,
            self.changed,
            self.unchanged,
            self.rearranged,
            if self.rules_changed {
                "changed"
            } else {
                "unchanged"
            },
            self.listeners_added,
            self.listeners_removed,
            self.listeners_moved,
            self.listeners_changed
        )
    }
}

/// Why a shard did not take a reload.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("shard {shard}: {error}")]
    Shard { shard: usize, error: ShardError },
    /// The shard is stuck or very slow; a prepare it answers late is aborted, a commit it
    /// answers late still takes effect when it gets to it.
    #[error("shard {shard} did not answer the {phase} within {} s", waited.as_secs())]
    NoAnswer {
        shard: usize,
        phase: &'static str,
        waited: Duration,
    },
}

/// Owns the configuration in force, from the control thread's side.
pub struct Reloader {
    config: PathBuf,
    shards: usize,
    /// `--workers`, which overrides `[server] workers`.
    workers_flag: Option<usize>,
    current: Arc<Routing>,
    listeners: Listeners,
    control: Arc<Control>,
    /// The files as the last reload read them, for the watch.
    files: Snapshot,
    /// Every shard has read its log and answered that it accepts.
    serving: bool,
}

/// What a reloader is fixed to for the router's life: the config file and the shard count
/// (`workers_flag`: `--workers`, which overrides `[server] workers`).
pub struct Setup {
    pub config: PathBuf,
    pub shards: usize,
    pub workers_flag: Option<usize>,
}

impl Reloader {
    /// Start-up: applies `table` (read by [`watch::read_stable`] from `files`) to shards that
    /// hold the empty routing `empty`, through the same diff, plan, prepare and commit as any
    /// reload, then tells them to start serving. `Err` says what stopped it.
    pub fn start(
        setup: Setup,
        empty: Arc<Routing>,
        control: Arc<Control>,
        table: RouteTable,
        files: Snapshot,
        input_budget: Arc<InputBudget>,
    ) -> Result<Reloader, ReloadOutcome> {
        let mut reloader = Reloader {
            config: setup.config,
            shards: setup.shards,
            workers_flag: setup.workers_flag,
            current: empty,
            listeners: Listeners::new(input_budget),
            control,
            files,
            serving: false,
        };
        let diff = routes::diff(None, &table);
        match reloader.apply(table, diff) {
            ReloadOutcome::Applied(summary) => tracing::info!("start-up: {summary}"),
            failed => return Err(failed),
        }
        reloader.replay_then_serve();
        Ok(reloader)
    }

    /// Start-up, once every shard has the first table: each shard reads its log and holds
    /// back new messages for the endpoints it still has messages for; only once all have (so
    /// that no shard takes a new message for an endpoint another shard's log holds an older
    /// one for) do they serve. Reading a large log takes a while: no deadline, but word of it.
    fn replay_then_serve(&mut self) {
        let (reply, answers) = mpsc::channel();
        for shard in 0..self.shards {
            let reply = reply.clone();
            self.control.send(shard, Command::Start { reply });
        }
        drop(reply);
        let started = Instant::now();
        let mut read = 0;
        while read < self.shards {
            match answers.recv_timeout(PHASE_TIMEOUT) {
                Ok(_) => read += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => tracing::info!(
                    "start-up: {read} of {} shard(s) have read their logs ({:.0}s)",
                    self.shards,
                    started.elapsed().as_secs_f64()
                ),
                // A shard that stopped has said why in the log; the others still serve.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let (reply, answers) = mpsc::channel();
        for shard in 0..self.shards {
            let reply = reply.clone();
            self.control.send(shard, Command::Serve { reply });
        }
        drop(reply);
        let serving = answers.iter().take(self.shards).count();
        self.serving = serving == self.shards;
    }

    /// Whether every shard has read its log and is accepting on every listener (each
    /// listener's socket has been listening since the start-up reload bound it).
    pub fn serving(&self) -> bool {
        self.serving
    }

    /// The shards' mailboxes.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The routing in force.
    pub fn current(&self) -> &Arc<Routing> {
        &self.current
    }

    /// The files as the last reload read them.
    pub fn files(&self) -> &Snapshot {
        &self.files
    }

    /// Reads the config again and, if it is valid and may be taken, puts it in force on every
    /// shard. `allow_empty` lets it close every listener or drop every route.
    pub fn reload(&mut self, allow_empty: bool) -> ReloadOutcome {
        let outcome = self.try_reload(allow_empty);
        let name = outcome.name();
        match &outcome {
            ReloadOutcome::Applied(_) => tracing::info!(outcome = name, "{outcome}"),
            // The reasons as a field too: in JSON, one list rather than lines to split.
            _ => tracing::error!(outcome = name, reasons = ?outcome.reasons(), "{outcome}"),
        }
        outcome
    }

    fn try_reload(&mut self, allow_empty: bool) -> ReloadOutcome {
        let directory = self.current.table.directory_path().map(Path::to_path_buf);
        let read = match watch::read_stable(&self.config, directory.as_deref()) {
            Ok(read) => read,
            Err(unsettled) => return ReloadOutcome::Refused(vec![unsettled.to_string()]),
        };
        self.files = read.files;
        let table = match read.loaded {
            Ok((table, warnings)) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                table
            }
            Err(diagnostics) => {
                return ReloadOutcome::Invalid(
                    diagnostics.iter().map(ToString::to_string).collect(),
                )
            }
        };
        let old = &self.current.table;
        let diff = routes::diff(Some(old), &table);
        let mut reasons = self.needs_restart(&diff.server);
        if !allow_empty {
            reasons.extend(empties(old, &table));
        }
        if !reasons.is_empty() {
            return ReloadOutcome::Refused(reasons);
        }
        self.apply(table, diff)
    }

    /// The `[server]` changes a running router cannot make, each said with its values.
    fn needs_restart(&self, changes: &[ServerChange]) -> Vec<String> {
        let mut reasons = Vec::new();
        for change in changes {
            if let ServerChange::Workers { new, .. } = change {
                let wanted = match new {
                    Workers::Auto => shards::available_cores(),
                    Workers::Count(n) => usize::from(*n),
                };
                if let Some(flag) = self.workers_flag {
                    tracing::warn!("{change}: ignored while --workers {flag} is given");
                    continue;
                }
                if wanted == self.shards {
                    continue;
                }
            }
            reasons.push(format!("{change}: needs a restart"));
        }
        reasons
    }

    /// Builds what `diff` needs (routing, TLS configurations, ports), then prepare and commit.
    fn apply(&mut self, table: RouteTable, diff: TableDiff) -> ReloadOutcome {
        let old = &self.current.table;
        let planned = match self.listeners.plan(old, &table, &diff.listeners) {
            Ok(planned) => planned,
            Err(errors) => {
                return ReloadOutcome::Invalid(errors.iter().map(ToString::to_string).collect())
            }
        };
        let table = Arc::new(table);
        let routing = match Routing::build(table, self.shards, Some(&self.current)) {
            Ok(mut routing) => {
                routing.provenance = Provenance {
                    version: self.current.provenance.version + 1,
                    loaded_at: Some(SystemTime::now()),
                    files: self
                        .files
                        .digests()
                        .map(|(path, digest)| (path.to_path_buf(), digest))
                        .collect(),
                };
                Arc::new(routing)
            }
            Err(e) => return ReloadOutcome::Invalid(vec![e.to_string()]),
        };
        let summary = Summary::of(&diff);
        let plan = Arc::new(Plan {
            routing: Arc::clone(&routing),
            diff,
            listeners: planned.steps,
        });
        let held_ports = planned.ports;

        let (reply, answers) = mpsc::channel();
        for shard in 0..self.shards {
            let (plan, reply) = (Arc::clone(&plan), reply.clone());
            self.control.send(shard, Command::Prepare { plan, reply });
        }
        let failures = self.collect(&answers, "prepare");
        // The shards have bound their sockets (or given up): ports picked for port-0
        // listeners need no holding any more.
        drop(held_ports);
        if !failures.is_empty() {
            for shard in 0..self.shards {
                self.control.send(shard, Command::Abort);
            }
            return ReloadOutcome::Aborted(failures);
        }

        let (reply, answers) = mpsc::channel();
        for shard in 0..self.shards {
            let reply = reply.clone();
            self.control.send(shard, Command::Commit { reply });
        }
        let failures = self.collect(&answers, "commit");
        // Sent to every shard: the new configuration is in force, or will be as soon as a
        // slow shard reads its mailbox.
        self.current = routing;
        self.listeners.committed(&plan.listeners);
        if failures.is_empty() {
            ReloadOutcome::Applied(summary)
        } else {
            ReloadOutcome::Unconfirmed(failures)
        }
    }

    /// Every shard's answer to one phase: the failures, and the shards that did not answer
    /// within [`PHASE_TIMEOUT`].
    fn collect(
        &self,
        answers: &mpsc::Receiver<PhaseAnswer>,
        phase: &'static str,
    ) -> Vec<ApplyError> {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        let mut answered = vec![false; self.shards];
        let mut failures = Vec::new();
        while answered.iter().any(|a| !a) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(answer) = answers.recv_timeout(left) else {
                break;
            };
            if let Some(seen) = answered.get_mut(answer.shard) {
                *seen = true;
            }
            if let Err(error) = answer.result {
                failures.push(ApplyError::Shard {
                    shard: answer.shard,
                    error,
                });
            }
        }
        failures.extend(
            answered
                .iter()
                .enumerate()
                .filter(|(_, answered)| !**answered)
                .map(|(shard, _)| ApplyError::NoAnswer {
                    shard,
                    phase,
                    waited: PHASE_TIMEOUT,
                }),
        );
        failures
    }
}

/// What `new` would take away entirely: every listener, or every route.
fn empties(old: &RouteTable, new: &RouteTable) -> Vec<String> {
    let mut reasons = Vec::new();
    if !old.listeners().is_empty() && new.listeners().is_empty() {
        reasons.push(format!(
            "it would close every listener ({} now): no sender could connect",
            old.listeners().len()
        ));
    }
    if !old.rules().is_empty() && new.rules().is_empty() {
        reasons.push(format!(
            "it would remove every route ({} now): every message would be {}",
            old.rules().len(),
            match new.unrouted() {
                routes::Unrouted::Reject => "refused",
                routes::Unrouted::DeadLetter => "dead-lettered",
            }
        ));
    }
    if !reasons.is_empty() {
        reasons.push(
            "to do that on purpose, reload with `ganglion reload --allow-empty` \
             (POST /reload?allow_empty=1)"
                .to_string(),
        );
    }
    reasons
}
