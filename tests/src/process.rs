//! The router as a child process: started on a config, its listening addresses read from
//! its standard output, stopped with SIGTERM (or killed) when the test is done.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// The binary under test: `ganglion-it`, which cargo builds beside the test executables
/// (`target/<profile>/`) for this package's integration tests.
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    profile_dir.join(format!("ganglion-it{}", std::env::consts::EXE_SUFFIX))
}

pub struct RouterProcess {
    child: Child,
    listeners: HashMap<String, SocketAddr>,
    log: mpsc::Receiver<(bool, String)>,
    lines: Vec<String>,
    /// The lines of `lines` that came from stderr (the log), in order.
    stderr: Vec<String>,
}

impl RouterProcess {
    /// Starts `ganglion run --config CONFIG ARGS…` and waits until it has printed the address
    /// of every listener named in `expect` (the admin address is `admin`).
    pub fn start(config: &Path, args: &[&str], expect: &[&str]) -> RouterProcess {
        let mut all = vec!["--no-watch"];
        all.extend_from_slice(args);
        RouterProcess::start_watching(config, &all, expect)
    }

    /// As [`RouterProcess::start`], with settings that make a test router quick to retry and
    /// recover (20 ms first retry, 200 ms circuit cool-down, 1 s shutdown grace) and the given
    /// reply timeout in seconds.
    pub fn start_quick(config: &Path, reply_timeout_s: u32, expect: &[&str]) -> RouterProcess {
        RouterProcess::start_quick_through(&[], config, reply_timeout_s, expect)
    }

    /// As [`RouterProcess::start_quick`], with the router's command line handed to `wrapper`
    /// (a program and its arguments, which must end by running the command given after them:
    /// `unshare … sh -c '…; exec "$@"' sh`, say); no wrapper runs the router directly.
    pub fn start_quick_through(
        wrapper: &[&str],
        config: &Path,
        reply_timeout_s: u32,
        expect: &[&str],
    ) -> RouterProcess {
        let timeout = reply_timeout_s.to_string();
        let args = [
            "--retry-base-ms",
            "20",
            "--breaker-cooldown-ms",
            "200",
            "--grace",
            "1",
            "--reply-timeout",
            &timeout,
            "--no-watch",
        ];
        RouterProcess::launch(wrapper, config, &args, &[], expect)
    }

    /// As [`RouterProcess::start`], without `--no-watch`: the router reloads when the file
    /// changes.
    pub fn start_watching(config: &Path, args: &[&str], expect: &[&str]) -> RouterProcess {
        RouterProcess::launch(&[], config, args, &[], expect)
    }

    /// As [`RouterProcess::start`], with these environment variables set for the router
    /// (`NOTIFY_SOCKET`, say).
    pub fn start_with_env(
        config: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        expect: &[&str],
    ) -> RouterProcess {
        let mut all = vec!["--no-watch"];
        all.extend_from_slice(args);
        RouterProcess::launch(&[], config, &all, env, expect)
    }

    fn launch(
        wrapper: &[&str],
        config: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        expect: &[&str],
    ) -> RouterProcess {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(bin());
                command
            }
            None => Command::new(bin()),
        };
        let mut child = command
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Only a test that asks for it talks to a service manager.
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ganglion");
        let (send, log) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (is_stderr, stream) in [
            (false, Box::new(stdout) as Box<dyn std::io::Read + Send>),
            (true, Box::new(stderr)),
        ] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if send.send((is_stderr, line)).is_err() {
                        break;
                    }
                }
            });
        }
        let mut router = RouterProcess {
            child,
            listeners: HashMap::new(),
            log,
            lines: Vec::new(),
            stderr: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !expect
            .iter()
            .all(|name| router.listeners.contains_key(*name))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match router.log.recv_timeout(left) {
                Ok((is_stderr, line)) => router.take_line(is_stderr, line),
                Err(_) => panic!(
                    "ganglion did not start listening in time; it said:\n{}",
                    router.lines.join("\n")
                ),
            }
        }
        router
    }

    fn take_line(&mut self, is_stderr: bool, line: String) {
        if is_stderr {
            self.stderr.push(line.clone());
        }
        if let Some(rest) = line.strip_prefix("listening ") {
            let mut name = None;
            let mut addr = None;
            for part in rest.split_whitespace() {
                if let Some(v) = part.strip_prefix("name=") {
                    name = Some(v.to_string());
                }
                if let Some(v) = part.strip_prefix("addr=") {
                    addr = v.parse().ok();
                }
            }
            if let (Some(name), Some(addr)) = (name, addr) {
                self.listeners.insert(name, addr);
            }
        }
        self.lines.push(line);
    }

    /// Where the listener called `name` listens.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener called {name}"))
    }

    /// Everything the router has printed so far.
    pub fn output(&mut self) -> String {
        while let Ok((is_stderr, line)) = self.log.try_recv() {
            self.take_line(is_stderr, line);
        }
        self.lines.join("\n")
    }

    /// The lines the router has written to stderr (its log) so far.
    pub fn log_lines(&mut self) -> Vec<String> {
        self.output();
        self.stderr.clone()
    }

    /// How many lines so far contain `needle`.
    pub fn count_output(&mut self, needle: &str) -> usize {
        self.output().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits up to `timeout` until at least `n` lines contain `needle`.
    pub fn wait_for_count(&mut self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count_output(needle) < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Waits up to `timeout` for a line containing `needle`.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        if self.output().contains(needle) {
            return true;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok((is_stderr, line)) => {
                    let hit = line.contains(needle);
                    self.take_line(is_stderr, line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the router.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, signal);
        }
    }

    /// SIGTERM, then waits (up to `timeout`) for the router to exit.
    pub fn terminate(mut self, timeout: Duration) -> ExitStatus {
        self.signal(Signal::TERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "ganglion did not stop on SIGTERM; it said:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, for durability tests.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `ganglion ARGS…` to completion (for the offline commands) and returns its output.
pub fn ganglion(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run ganglion")
}

/// What `ganglion dead-letters show ID --data-dir DIR FORM` prints (`--raw`: the message's
/// bytes; `--json`: the letter with its reply and detail), the command having succeeded.
pub fn show_dead_letter(data_dir: &Path, id: &str, form: &str) -> Vec<u8> {
    let data = data_dir.display().to_string();
    let output = ganglion(&["dead-letters", "show", id, "--data-dir", &data, form]);
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

/// The dead letters in `data_dir`, as `ganglion dead-letters list --json` reports them.
pub fn dead_letters(data_dir: &Path) -> Vec<serde_json::Value> {
    let output = ganglion(&[
        "dead-letters",
        "list",
        "--data-dir",
        &data_dir.display().to_string(),
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// One figure from the router's `/metrics` at `admin` (a name with its labels, if any, as
/// printed: `ganglion_x_total{kind="y"}`); 0 when the router does not answer or lacks it.
pub fn metric(admin: SocketAddr, name: &str) -> u64 {
    let Ok(mut stream) = TcpStream::connect(admin) else {
        return 0;
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl RouterProcess {
    /// `ganglion reload` through the admin listener, with the admin token the router made in
    /// `data_dir` (named as a file: a broken routes file cannot say where it is).
    pub fn reload(&self, data_dir: &Path) -> std::process::Output {
        let token = data_dir.join("admin.token").display().to_string();
        let admin = self.addr("admin").to_string();
        ganglion(&["reload", "--admin", &admin, "--token-file", &token])
    }

    /// Waits until the router has finished with everything it accepted: `delivered` deliveries
    /// acknowledged by endpoints, `dead_lettered` moved to the dead letters, and none queued.
    /// From then on it sends nothing more anywhere, so a test can assert that an endpoint got
    /// nothing else without sitting through a pause. Needs the `admin` listener.
    pub fn wait_settled(&self, delivered: u64, dead_lettered: u64) {
        let admin = self.addr("admin");
        let deadline = Instant::now() + crate::WAIT;
        loop {
            let seen = (
                metric(admin, "ganglion_delivered_total"),
                metric(admin, "ganglion_dead_lettered_total"),
                metric(admin, "ganglion_queued"),
            );
            if seen == (delivered, dead_lettered, 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the router did not settle at {delivered} delivered, {dead_lettered} \
                 dead-lettered, none queued: (delivered, dead-lettered, queued) = {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `done` until it holds; panics naming `what` when `timeout` passes first.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `ganglion ARGS…` and waits up to `timeout` for it to exit by itself: `None` (after
/// killing it) when it was still running, as a daemon that should have refused to start is.
pub fn ganglion_exit(args: &[&str], timeout: Duration) -> Option<std::process::Output> {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ganglion");
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
