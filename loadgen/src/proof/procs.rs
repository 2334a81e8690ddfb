//! The child processes of a proof: endpoint fleets (`loadgen endpoints`), the router
//! (`ganglion run`) and the bare relay (`loadgen relay`). Each announces itself on standard
//! output (`listening name=… addr=…`, `control addr=…`, `ready …`); those lines are collected
//! by a reader thread, and everything else a child prints goes to a log file in the work
//! directory. Children are stopped with SIGTERM (then killed) by id, never by name.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::process::{kill_process, Pid, Signal};

pub struct ChildProc {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// `name=` → `addr=` of every `listening` line, and `control` for a fleet's control address.
    pub addrs: HashMap<String, SocketAddr>,
    pub said: Vec<String>,
}

impl ChildProc {
    /// Starts `program args…`, standard error to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<ChildProc> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let (send, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(ChildProc {
            name: name.to_string(),
            child,
            lines,
            addrs: HashMap::new(),
            said: Vec::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn take(&mut self, line: String) {
        let mut name = None;
        let mut addr = None;
        for part in line.split_whitespace() {
            if let Some(v) = part.strip_prefix("name=") {
                name = Some(v.to_string());
            }
            if let Some(v) = part.strip_prefix("addr=") {
                addr = v.parse().ok();
            }
        }
        if line.starts_with("control ") {
            name = Some("control".into());
        }
        if let (Some(name), Some(addr)) = (name, addr) {
            self.addrs.insert(name, addr);
        }
        self.said.push(line);
    }

    /// Waits until a line starting with `prefix` (or every name in `names` has an address).
    pub fn wait_for(
        &mut self,
        prefix: &str,
        names: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if names.iter().all(|n| self.addrs.contains_key(*n))
                && (prefix.is_empty() || self.said.iter().any(|l| l.starts_with(prefix)))
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) before it was ready; it said: {}",
                    self.name,
                    self.said.join(" | ")
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{} was not ready in {timeout:?}; it said: {}",
                    self.name,
                    self.said.join(" | ")
                );
            }
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                self.take(line);
            }
        }
    }

    pub fn addr(&self, name: &str) -> anyhow::Result<SocketAddr> {
        self.addrs
            .get(name)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("{} announced no {name} address", self.name))
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`; returns whether it stopped by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The workspace this loadgen was built from.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `ganglion` program to test: `explicit` when given; else built (release, or the debug
/// profile when `release` is false) with cargo (`$CARGO`, else `cargo` on the PATH) and taken
/// from the target directory this loadgen runs from, or the workspace's.
///
/// What is built is `ganglion-lg`: the router's own `main.rs` compiled as a binary of this
/// package. It is the same program as `ganglion`, but building it for this package reuses every
/// dependency already compiled for loadgen (with `-p router` cargo would compile rustls, ring
/// and friends again for the router's own feature set).
pub fn find_ganglion(
    explicit: Option<&Path>,
    release: bool,
    build: bool,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "{} does not exist", p.display());
        return Ok(p.to_path_buf());
    }
    let profile = if release { "release" } else { "debug" };
    let mut dirs = Vec::new();
    // Beside our own executable when we run from target/<profile>/ (or its deps/ folder).
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        let dir = if dir.ends_with("deps") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        if dir.ends_with(profile) {
            dirs.push(dir.to_path_buf());
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    dirs.push(target.join(profile));
    if build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "loadgen", "--bin", "ganglion-lg"]);
        if release {
            cmd.arg("--release");
        }
        cmd.arg("--manifest-path")
            .arg(workspace().join("Cargo.toml"));
        // Run by `cargo run`, this process has the package's CARGO_PKG_*, CARGO_MANIFEST_*, …
        // in its environment. Build scripts (ring's) ask to be rerun when those change, so
        // passing them on would have cargo rebuild ring and everything above it, minutes on a
        // shared machine, every time the command line's build and this one take turns.
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str() {
                if k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_MANIFEST_")
                    || matches!(
                        k,
                        "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                    )
                {
                    cmd.env_remove(&key);
                }
            }
        }
        eprintln!("building ganglion ({profile}) …");
        let status = cmd.status().context("running cargo to build ganglion")?;
        anyhow::ensure!(
            status.success(),
            "cargo could not build ganglion ({status})"
        );
    }
    let names: &[&str] = if build {
        &["ganglion-lg"]
    } else {
        &["ganglion-lg", "ganglion"]
    };
    dirs.iter()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no {profile} ganglion binary found; build it with `cargo build --release -p loadgen --bin ganglion-lg` \
                 (or -p router --bin ganglion) or pass --ganglion PATH"
            )
        })
}

/// A fresh, empty work directory: `explicit` when given, else `target/loadgen/<name>-<pid>`.
pub fn fresh_workdir(explicit: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => workspace()
            .join("target")
            .join("loadgen")
            .join(format!("{name}-{}", std::process::id())),
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).ok();
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Removes the work directory, or says where it is when asked to keep it.
pub fn leave_workdir(dir: &Path, keep: bool) {
    if keep {
        eprintln!("work directory kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}
