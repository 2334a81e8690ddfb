//! What the soak reads of the router every few seconds: its resident memory (`VmRSS`), the
//! CPU it used since the last sample, and from its admin `/metrics` the messages it accepted
//! (the load it took), the deliveries queued and the connections it holds; and the machine's
//! load average, since the machine is shared.
use std::net::SocketAddr;
use std::time::Duration;

use crate::connections::metrics;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds from the start of the load.
    pub t_s: f64,
    pub rss_bytes: u64,
    /// Cores the router used since the previous sample.
    pub router_cores: f64,
    /// Messages the router accepted per second since the previous sample.
    pub accepted_per_s: Option<f64>,
    /// Deliveries accepted and not yet done (`ganglion_queued`).
    pub queued: Option<u64>,
    pub egress_connections: Option<u64>,
    /// Flapping endpoints down at the time.
    pub endpoints_down: usize,
    /// The machine's one-minute load average.
    pub loadavg: f64,
    /// Taken after the last intended send (the drain).
    pub drain: bool,
}

impl Sample {
    pub fn rss_mib(&self) -> f64 {
        self.rss_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// Takes samples of one router process.
pub struct Sampler {
    pid: u32,
    admin: SocketAddr,
    last: Option<(f64, Option<f64>, Option<u64>)>,
}

impl Sampler {
    pub fn new(pid: u32, admin: SocketAddr) -> Sampler {
        Sampler {
            pid,
            admin,
            last: None,
        }
    }

    pub fn take(&mut self, elapsed: Duration, endpoints_down: usize, drain: bool) -> Sample {
        let t_s = elapsed.as_secs_f64();
        let cpu = crate::sys::cpu_seconds(self.pid);
        // The admin address is optional reading: should it ask for a token, the memory curve
        // is still the measurement.
        let text = metrics::scrape_text(self.admin).ok();
        let value = |name| text.as_deref().and_then(|t| metrics::sample(t, name));
        let accepted = value("ganglion_accepted_total");
        let mut sample = Sample {
            t_s,
            rss_bytes: crate::sys::status_bytes(self.pid, "VmRSS").unwrap_or(0),
            queued: value("ganglion_queued"),
            egress_connections: value("ganglion_egress_connections"),
            endpoints_down,
            loadavg: loadavg().unwrap_or(0.0),
            drain,
            ..Sample::default()
        };
        if let Some((t0, cpu0, accepted0)) = self.last {
            let dt = (t_s - t0).max(1e-9);
            if let (Some(a), Some(b)) = (cpu0, cpu) {
                sample.router_cores = (b - a) / dt;
            }
            if let (Some(a), Some(b)) = (accepted0, accepted) {
                sample.accepted_per_s = Some(b.saturating_sub(a) as f64 / dt);
            }
        }
        self.last = Some((t_s, cpu, accepted));
        sample
    }
}

/// The one-minute load average of the machine.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
