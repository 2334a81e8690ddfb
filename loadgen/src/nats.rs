//! Real nats-server processes: a JetStream cluster of N servers (or a single server) on
//! 127.0.0.1 with free ports, each with its own store under a folder the caller gives; one can
//! be killed (-9) and restarted; all are killed when the value is dropped. For `proof
//! --cluster` and the tests' clusters (`tests::nats`).
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The server binary: `NATS_SERVER` if set, else `nats-server` on the PATH.
pub fn server_binary() -> PathBuf {
    std::env::var_os("NATS_SERVER").map_or_else(|| PathBuf::from("nats-server"), PathBuf::from)
}

/// Whether a nats-server can be run here.
pub fn available() -> bool {
    Command::new(server_binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True (after saying "SKIPPED") when no nats-server can run here, so a cluster test passes
/// on a developer's machine without one; in CI, which installs it, a missing server fails.
pub fn missing() -> bool {
    if available() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "nats-server is missing, and CI must run the cluster tests (.ci/run installs it)"
    );
    eprintln!("SKIPPED: no nats-server on the PATH (apt install nats-server, or set NATS_SERVER)");
    true
}

/// How long `start` and `restart` wait for JetStream to be ready.
const READY: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

struct Server {
    name: String,
    client: u16,
    route: u16,
    monitor: u16,
    store: PathBuf,
    child: Option<Child>,
}

pub struct NatsServers {
    dir: PathBuf,
    servers: Vec<Server>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("a free port on 127.0.0.1")?
        .port())
}

impl NatsServers {
    /// Starts `n` servers in `dir` (1: a lone JetStream server; more: a JetStream cluster) and
    /// waits until JetStream answers on every one (in a cluster: a meta leader is known to all).
    pub fn start(dir: &Path, n: usize) -> anyhow::Result<NatsServers> {
        anyhow::ensure!(n >= 1, "at least one NATS server");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            servers.push(Server {
                name: format!("n{i}"),
                client: free_port()?,
                route: free_port()?,
                monitor: free_port()?,
                store: dir.join(format!("n{i}")),
                child: None,
            });
        }
        let mut cluster = NatsServers {
            dir: dir.to_path_buf(),
            servers,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_ready(&(0..n).collect::<Vec<_>>())?;
        Ok(cluster)
    }

    /// The client URL of every server, `nats://127.0.0.1:<port>`.
    pub fn urls(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.url(i)).collect()
    }

    pub fn url(&self, i: usize) -> String {
        self.servers
            .get(i)
            .map_or_else(String::new, |s| format!("nats://127.0.0.1:{}", s.client))
    }

    /// The process ids of the servers running now.
    pub fn pids(&self) -> Vec<u32> {
        self.servers
            .iter()
            .filter_map(|s| s.child.as_ref().map(Child::id))
            .collect()
    }

    /// Where server `i` writes its log.
    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{i}.log"))
    }

    /// Kills server `i` with SIGKILL (no goodbye to its peers or clients) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers.get_mut(i).and_then(|s| s.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills every server.
    pub fn kill_all(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }

    /// Starts server `i` again on the same ports and store, and waits until it serves
    /// JetStream again.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_ready(&[i])
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let routes: Vec<String> = self
            .servers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| format!("nats://127.0.0.1:{}", s.route))
            .collect();
        let log = self.log(i);
        let clustered = self.servers.len() > 1;
        let server = self
            .servers
            .get_mut(i)
            .with_context(|| format!("no NATS server {i}"))?;
        let mut command = Command::new(server_binary());
        command
            .args(["-a", "127.0.0.1", "-js", "-n", &server.name])
            .args(["-p", &server.client.to_string()])
            .args(["-m", &server.monitor.to_string()])
            .arg("-sd")
            .arg(&server.store)
            .arg("-l")
            .arg(&log);
        if clustered {
            command
                .args(["--cluster_name", "ganglion"])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", server.route)])
                .args(["--routes", &routes.join(",")]);
        }
        // Several servers share this machine's cores (each would have a host of its own in
        // production): one Go scheduler thread each keeps them from fighting over the cores
        // with each other and with the routers. A caller's own GOMAXPROCS wins.
        if std::env::var_os("GOMAXPROCS").is_none() && clustered {
            command.env("GOMAXPROCS", "1");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        server.child = Some(command.spawn().with_context(|| {
            format!(
                "starting {} (is nats-server installed? apt install nats-server)",
                server_binary().display()
            )
        })?);
        Ok(())
    }

    fn wait_ready(&mut self, which: &[usize]) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY;
        let clustered = self.servers.len() > 1;
        for &i in which {
            loop {
                let log = self.log(i);
                let Some(server) = self.servers.get_mut(i) else {
                    bail!("no NATS server {i}");
                };
                let ready = match http_get(server.monitor, "/jsz") {
                    Some(body) if clustered => serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["meta_cluster"]["leader"].as_str().map(|l| !l.is_empty()))
                        .unwrap_or(false),
                    Some(_) => http_get(server.monitor, "/healthz").is_some(),
                    None => false,
                };
                if ready {
                    break;
                }
                if let Some(child) = server.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        bail!("nats-server n{i} exited ({status}); see {}", log.display());
                    }
                }
                if Instant::now() >= deadline {
                    bail!(
                        "nats-server n{i} not ready in {READY:?}; see {}",
                        log.display()
                    );
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// How many messages stream `name` holds, as the first server that answers reports it.
    pub fn stream_messages(&self, name: &str) -> Option<u64> {
        self.servers
            .iter()
            .filter(|s| s.child.is_some())
            .find_map(|s| {
                let body = http_get(s.monitor, "/jsz?accounts=true&streams=true")?;
                let v: serde_json::Value = serde_json::from_str(&body).ok()?;
                v["account_details"].as_array()?.iter().find_map(|account| {
                    account["stream_detail"]
                        .as_array()?
                        .iter()
                        .find_map(|stream| {
                            (stream["name"].as_str() == Some(name))
                                .then(|| stream["state"]["messages"].as_u64())
                                .flatten()
                        })
                })
            })
    }
}

impl Drop for NatsServers {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The body of a 200 answer to `GET path` on the monitoring port, or `None`.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")).then(|| body.to_owned())
}
