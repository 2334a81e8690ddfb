//! A real browser for tests that look at a page as a person would: Debian's Chromium, driven
//! through playwright-core (`tests/browser/driver.mjs`, run by node). The test sends commands
//! and makes its own assertions; the driver only opens pages, reads text and reports what the
//! page complained about (console errors and warnings, exceptions, CSP violations).
//!
//! What it needs: `chromium` (`/usr/bin/chromium`, or `GANGLION_CHROMIUM`), node, and
//! playwright-core installed by `npm ci --prefix tests/browser`. In CI (`CI` set) a missing
//! piece fails the test; on a developer's machine the test says loudly that it skipped.
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

/// How long any one command may take, waits included, before the test gives up.
const COMMAND_LIMIT: Duration = Duration::from_secs(45);

/// Something the page complained about.
#[derive(Debug, Clone)]
pub struct Problem {
    /// `console.error`, `console.warning`, `exception` or `request-failed`.
    pub kind: String,
    pub text: String,
    pub url: String,
}

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails in CI, skips with a loud notice elsewhere.
fn missing(what: &str, fix: &str) -> Option<Browser> {
    if corpus::in_ci() {
        panic!("{what}: in CI the browser tests must run ({fix})");
    }
    println!("\n*** SKIPPED: {what} ({fix}) ***\n");
    eprintln!("SKIPPED: {what} ({fix})");
    None
}

impl Browser {
    /// Starts Chromium with a fresh profile in `profile` (an empty folder of the test's), or
    /// `None` on a developer's machine that lacks it.
    ///
    /// # Panics
    /// In CI when Chromium, node or playwright-core is missing, or when Chromium won't start.
    pub fn launch(profile: &Path) -> Option<Browser> {
        let chromium = std::env::var_os("GANGLION_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        if !chromium.exists() {
            return missing("chromium not installed", "apt-get install chromium");
        }
        let node_ok = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !node_ok {
            return missing("node not installed", "apt-get install nodejs");
        }
        if !browser_dir().join("node_modules/playwright-core").is_dir() {
            return missing(
                "playwright-core not installed",
                "npm ci --prefix tests/browser",
            );
        }
        let mut child = Command::new("node")
            .arg(browser_dir().join("driver.mjs"))
            .arg(&chromium)
            .arg(profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        // Answers are read on a thread so that every wait for one is bounded.
        let (send, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Some(Browser {
            child,
            stdin,
            answers,
        })
    }

    /// Sends one command; its value, or the driver's error.
    pub fn command(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}").map_err(|e| format!("driver gone: {e}"))?;
        self.stdin
            .flush()
            .map_err(|e| format!("driver gone: {e}"))?;
        let line = self
            .answers
            .recv_timeout(COMMAND_LIMIT)
            .map_err(|_| format!("no answer from the browser within {COMMAND_LIMIT:?}"))?;
        let answer: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or(&line).to_string())
        }
    }

    /// Opens `url`; the HTTP status of the page.
    pub fn open(&mut self, url: &str) -> Result<u16, String> {
        let status = self.command(json!({"cmd": "open", "url": url}))?;
        Ok(status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0))
    }

    /// The trimmed text of the first element `selector` names.
    pub fn text(&mut self, selector: &str) -> Result<String, String> {
        let value = self.command(json!({"cmd": "text", "selector": selector}))?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// Waits until the first element `selector` names reads exactly `text`.
    pub fn wait_text(
        &mut self,
        selector: &str,
        text: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.command(json!({
            "cmd": "wait_text", "selector": selector, "text": text, "timeout_ms": timeout_ms
        }))
        .map(|_| ())
    }

    /// Evaluates a read-only expression in the page.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        self.command(json!({"cmd": "eval", "expr": expression}))
    }

    /// Everything the page complained about since it was opened.
    pub fn problems(&mut self) -> Result<Vec<Problem>, String> {
        let list = self.command(json!({"cmd": "problems"}))?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| Problem {
                kind: p["kind"].as_str().unwrap_or_default().to_string(),
                text: p["text"].as_str().unwrap_or_default().to_string(),
                url: p["url"].as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// A PNG of the whole page, for a person to look at when a test fails.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        self.command(json!({"cmd": "screenshot", "path": path}))
            .map(|_| ())
    }
}

impl Drop for Browser {
    /// Asks the driver to close Chromium; kills it if it has not exited within a few seconds.
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "close"}));
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
