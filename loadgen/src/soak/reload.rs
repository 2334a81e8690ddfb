//! Reloads under load. Each one really changes the routing: the file is rewritten with a
//! comment naming the reload, a route that no loadgen message can take (message type `ZSK`,
//! dropped) put at the top or taken away, and every other time the HL7v2 and ITK routes in the
//! other order. None of it changes where a loadgen message goes, so a message lost across a
//! reload is the router's fault; all of it makes the router build and swap a new routing
//! table on every shard ("rules changed" in its log).
//!
//! The reload is asked for with SIGHUP (the admin `POST /reload` may need a token) and its
//! outcome read from the router's log: `reload applied: …`, `reload refused …`,
//! `reload aborted …`.
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::proof::{HL7_ROUTE, ITK_ROUTE};

/// The route that takes no loadgen message.
const NO_OP_ROUTE: &str = "[[route]]\nname = \"soak: no traffic has this type\"\nhl7.message_type = \"ZSK\"\ndrop = true\n";

/// The routes file of reload `k` (0: the one the router starts with). Any two consecutive
/// ones differ in their rules.
pub fn routes(head: &str, k: usize) -> String {
    let mut text = String::from(head);
    if k > 0 {
        text.push_str(&format!("# soak reload {k}\n\n"));
    }
    if k % 2 == 1 {
        text.push_str(NO_OP_ROUTE);
        text.push('\n');
    }
    let (first, second) = if (k / 2) % 2 == 1 {
        (ITK_ROUTE, HL7_ROUTE)
    } else {
        (HL7_ROUTE, ITK_ROUTE)
    };
    text.push_str(first);
    text.push('\n');
    text.push_str(second);
    text
}

/// What became of one reload.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Applied after this long; whether the router said the rules changed.
    Applied { secs: f64, rules_changed: bool },
    /// Refused or aborted: the router's line.
    Failed(String),
    /// No word from the router before the next reload was due.
    Unanswered,
}

#[derive(Clone, Debug)]
pub struct Record {
    /// Seconds from the start of the load.
    pub at_s: f64,
    pub k: usize,
    pub outcome: Outcome,
}

/// Rewrites the routes file and signals the router; reads its log for the outcome.
pub struct Reloader {
    head: String,
    routes: PathBuf,
    log: PathBuf,
    pid: u32,
    /// How far the log has been read.
    offset: u64,
    partial: Vec<u8>,
    pending: Option<(usize, Instant, f64)>,
    pub records: Vec<Record>,
}

impl Reloader {
    pub fn new(head: String, routes: PathBuf, log: PathBuf, pid: u32) -> Reloader {
        // Only what the router logs from now on can be about our reloads.
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        Reloader {
            head,
            routes,
            log,
            pid,
            offset,
            partial: Vec::new(),
            pending: None,
            records: Vec::new(),
        }
    }

    /// Reloads sent so far.
    pub fn sent(&self) -> usize {
        self.records.len() + usize::from(self.pending.is_some())
    }

    pub fn applied(&self) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
            .count()
    }

    /// Writes reload `k`'s file (whole, then renamed over the old one, so the router never
    /// reads half of it) and sends SIGHUP. A reload still waiting for its outcome is given up.
    pub fn trigger(&mut self, at_s: f64) -> anyhow::Result<()> {
        self.poll();
        if let Some((k, _, at_s)) = self.pending.take() {
            self.records.push(Record {
                at_s,
                k,
                outcome: Outcome::Unanswered,
            });
        }
        let k = self.records.len() + 1;
        let tmp = self.routes.with_extension("toml.next");
        std::fs::write(&tmp, routes(&self.head, k))?;
        std::fs::rename(&tmp, &self.routes)?;
        let pid = Pid::from_raw(self.pid as i32)
            .ok_or_else(|| anyhow::anyhow!("no router process to signal"))?;
        kill_process(pid, Signal::HUP)?;
        self.pending = Some((k, Instant::now(), at_s));
        Ok(())
    }

    /// Reads what the router logged since the last call; settles the pending reload.
    pub fn poll(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.log) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut fresh = Vec::new();
        let Ok(n) = file.read_to_end(&mut fresh) else {
            return;
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(last_nl) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let whole: Vec<u8> = self.partial.drain(..=last_nl).collect();
        for line in String::from_utf8_lossy(&whole).lines() {
            let outcome = if line.contains("reload applied") {
                let secs = self.pending.map_or(0.0, |p| p.1.elapsed().as_secs_f64());
                Outcome::Applied {
                    secs,
                    rules_changed: line.contains("rules changed"),
                }
            } else if line.contains("reload refused") || line.contains("reload aborted") {
                Outcome::Failed(line.trim().to_string())
            } else {
                continue;
            };
            if let Some((k, _, at_s)) = self.pending.take() {
                self.records.push(Record { at_s, k, outcome });
            }
        }
    }

    /// Waits (at most `wait`) for the pending reload's outcome, then records it either way.
    pub fn finish(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while self.pending.is_some() && Instant::now() < until {
            self.poll();
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some((k, _, at_s)) = self.pending.take() {
            self.records.push(Record {
                at_s,
                k,
                outcome: Outcome::Unanswered,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{self, Proto, Row};

    #[test]
    fn every_reload_changes_the_rules_and_nothing_else_and_the_router_takes_it() {
        let dir = std::env::temp_dir().join(format!("loadgen-soak-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rows: Vec<Row> = (0..4)
            .map(|index| Row {
                index,
                proto: if index % 2 == 0 {
                    Proto::Mllp
                } else {
                    Proto::Itk
                },
                addr: format!("127.1.0.{}:2575", index + 1).parse().unwrap(),
                tls: false,
            })
            .collect();
        let csv = dir.join("endpoints.csv");
        directory::write(&csv, &rows, true).unwrap();
        let head = crate::proof::routes_head(&dir, None, &csv);
        assert_eq!(
            routes(&head, 0),
            crate::proof::routes_toml(&dir, None, &csv),
            "the router starts on the proof's file"
        );
        let path = dir.join("routes.toml");
        let mut tables = Vec::new();
        for k in 0..6 {
            let text = routes(&head, k);
            assert_eq!(text.contains("ZSK"), k % 2 == 1, "{k}");
            std::fs::write(&path, &text).unwrap();
            let (table, warnings) = router::config::load(&path)
                .unwrap_or_else(|d| panic!("reload {k} refused: {d:?}\n{text}"));
            assert!(warnings.is_empty(), "reload {k}: {warnings:?}");
            tables.push(table);
        }
        for (k, pair) in tables.windows(2).enumerate() {
            let d = router::routes::diff(Some(&pair[0]), &pair[1]);
            assert!(d.rules_changed, "reload {} changes no rule", k + 1);
            assert_eq!(d.unchanged.len(), 4, "reload {}: {d:?}", k + 1);
            assert!(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
