//! Telling a service manager how the router is doing: systemd's `Type=notify` protocol
//! (sd_notify(3)). When `NOTIFY_SOCKET` names a socket, the router sends `READY=1` once every
//! shard is serving, `RELOADING=1` with `MONOTONIC_USEC=…` when a reload starts and `READY=1`
//! when it is over (applied or not: the router serves either way), `STOPPING=1` at shutdown,
//! and a one-line `STATUS=…` with each, which `systemctl status` shows. Without the variable
//! nothing is sent; a failure to send is logged and never stops the router.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to a unix socket, so this is a few lines
//! over std's `UnixDatagram` rather than a dependency: the `sd-notify` crate (pure Rust,
//! maintained) connects to `NOTIFY_SOCKET` as a file path only, and systemd also hands out
//! abstract socket names (`@name`), which std reaches through `SocketAddrExt`.
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go, from `NOTIFY_SOCKET`.
#[derive(Debug)]
enum Target {
    /// Not run by a service manager that listens (or one this module cannot reach).
    None,
    Socket(SocketAddr),
}

/// The router's line to its service manager.
#[derive(Debug)]
pub struct Service {
    target: Target,
    /// `READY=1` was sent: start-up is over, so reloads are announced.
    ready: bool,
}

impl Service {
    /// The service manager named by `NOTIFY_SOCKET`, if any. A value this module cannot use is
    /// logged once and ignored.
    pub fn from_env() -> Service {
        let target = match std::env::var_os("NOTIFY_SOCKET") {
            None => Target::None,
            Some(value) => match parse_target(value.as_encoded_bytes()) {
                Ok(target) => target,
                Err(why) => {
                    tracing::warn!(
                        "NOTIFY_SOCKET={}: {why}; the service manager will not be told when \
                         the router is ready",
                        value.to_string_lossy()
                    );
                    Target::None
                }
            },
        };
        Service {
            target,
            ready: false,
        }
    }

    /// Whether `READY=1` has been sent.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// What the router is doing now, for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[("STATUS", status)]);
    }

    /// Start-up is over: every shard serves.
    pub fn ready(&mut self, status: &str) {
        self.ready = true;
        self.send(&[("READY", "1"), ("STATUS", status)]);
    }

    /// A reload starts. Before start-up is over there is nothing to announce: the service
    /// manager still waits for the first `READY=1`.
    pub fn reloading(&self, status: &str) {
        if !self.ready {
            return self.status(status);
        }
        let now = monotonic_usec().to_string();
        self.send(&[
            ("RELOADING", "1"),
            ("MONOTONIC_USEC", &now),
            ("STATUS", status),
        ]);
    }

    /// The reload is over, whatever its outcome: the router serves.
    pub fn reloaded(&self, status: &str) {
        if !self.ready {
            return self.status(status);
        }
        self.send(&[("READY", "1"), ("STATUS", status)]);
    }

    /// Shutdown has begun.
    pub fn stopping(&self, status: &str) {
        self.send(&[("STOPPING", "1"), ("STATUS", status)]);
    }

    fn send(&self, fields: &[(&str, &str)]) {
        let Target::Socket(addr) = &self.target else {
            return;
        };
        let datagram = message(fields);
        // A socket per message, as sd_notify does: notifications are rare, and a service
        // manager that re-executed itself has bound its socket anew.
        let sent = UnixDatagram::unbound().and_then(|socket| socket.send_to_addr(&datagram, addr));
        match sent {
            Ok(n) if n == datagram.len() => {}
            Ok(n) => tracing::warn!(
                "service manager: only {n} of {} bytes of a notification were sent",
                datagram.len()
            ),
            Err(e) => tracing::warn!("service manager: cannot send a notification: {e}"),
        }
    }
}

/// `NOTIFY_SOCKET` as sd_notify(3) reads it: an absolute path, or `@name` for a name in the
/// abstract namespace. (`vsock:` addresses, for virtual machines, are not supported.)
fn parse_target(value: &[u8]) -> io::Result<Target> {
    use std::os::unix::ffi::OsStrExt;
    match value.first() {
        None => Ok(Target::None),
        Some(b'/') => Ok(Target::Socket(SocketAddr::from_pathname(
            std::ffi::OsStr::from_bytes(value),
        )?)),
        Some(b'@') => Ok(Target::Socket(SocketAddr::from_abstract_name(&value[1..])?)),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "not an absolute path or an @abstract name",
        )),
    }
}

/// One datagram: `KEY=VALUE` lines. A value is one line: line breaks in it (a status built
/// from an error's text) become "; ".
fn message(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (key, value) in fields {
        out.push_str(key);
        out.push('=');
        let mut lines = value.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(first) = lines.next() {
            out.push_str(first);
        }
        for line in lines {
            out.push_str("; ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec / 1_000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn service_at(addr: SocketAddr) -> Service {
        Service {
            target: Target::Socket(addr),
            ready: false,
        }
    }

    fn next(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notify_socket_values() {
        assert!(matches!(parse_target(b""), Ok(Target::None)));
        let Ok(Target::Socket(path)) = parse_target(b"/run/systemd/notify") else {
            panic!("a path");
        };
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let Ok(Target::Socket(abstract_name)) = parse_target(b"@ganglion/notify") else {
            panic!("an abstract name");
        };
        assert_eq!(
            abstract_name.as_abstract_name(),
            Some(&b"ganglion/notify"[..])
        );
        assert!(parse_target(b"vsock:2:1234").is_err());
        assert!(parse_target(b"relative/path").is_err());
    }

    #[test]
    fn a_status_is_one_line() {
        assert_eq!(
            message(&[
                ("READY", "1"),
                ("STATUS", "reload refused:\n  a.toml:1:1: error\n")
            ]),
            b"READY=1\nSTATUS=reload refused:; a.toml:1:1: error\n"
        );
    }

    /// Start-up, a reload and shutdown, received on a path socket: before `READY=1` a reload
    /// only updates the status; after it, it is announced with the monotonic clock.
    #[test]
    fn the_sequence_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("ganglion-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut service = service_at(SocketAddr::from_pathname(&path).unwrap());

        service.reloading("reloading early");
        assert_eq!(next(&socket), "STATUS=reloading early\n");
        service.ready("serving");
        assert!(service.is_ready());
        assert_eq!(next(&socket), "READY=1\nSTATUS=serving\n");

        let before = monotonic_usec();
        service.reloading("reloading");
        let said = next(&socket);
        let mut lines = said.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .expect("MONOTONIC_USEC");
        assert!(usec >= before && usec <= monotonic_usec(), "{usec}");
        assert_eq!(lines.next(), Some("STATUS=reloading"));
        service.reloaded("serving again");
        assert_eq!(next(&socket), "READY=1\nSTATUS=serving again\n");
        service.stopping("stopping");
        assert_eq!(next(&socket), "STOPPING=1\nSTATUS=stopping\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_abstract_socket_is_reached() {
        let name = format!("ganglion-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let Ok(target) = parse_target(format!("@{name}").as_bytes()) else {
            panic!("an abstract name");
        };
        let service = Service {
            target,
            ready: false,
        };
        service.stopping("bye");
        assert_eq!(next(&socket), "STOPPING=1\nSTATUS=bye\n");
    }

    /// Nobody listening is logged, not fatal.
    #[test]
    fn a_missing_socket_is_not_an_error() {
        let service =
            service_at(SocketAddr::from_pathname("/nonexistent/ganglion/notify").unwrap());
        service.status("nobody hears this");
    }
}
