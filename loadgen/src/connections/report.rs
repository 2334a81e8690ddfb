//! What `loadgen connections` measured, as a short text report and as JSON. Memory per
//! connection is (VmRSS with every connection up − VmRSS of the same router, same directory,
//! prewarm off and no connection, measured first in the same run) / connections.
use serde_json::json;

/// The router's CPU over a stretch without traffic.
#[derive(Clone, Debug, Default)]
pub struct IdleCpu {
    /// Length of the stretch.
    pub secs: f64,
    /// The whole process: CPU seconds per second.
    pub cores: f64,
    /// The same per thread name (numbers left off), busiest first.
    pub by_thread: Vec<(String, f64)>,
}

impl IdleCpu {
    fn text(&self) -> String {
        let threads: Vec<String> = self
            .by_thread
            .iter()
            .filter(|(_, cores)| *cores > 0.0)
            .map(|(name, cores)| format!("{name} {cores:.4}"))
            .collect();
        match threads.is_empty() {
            true => format!("{:.4} core", self.cores),
            false => format!("{:.4} core ({})", self.cores, threads.join(", ")),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "duration_s": self.secs,
            "cores": self.cores,
            "by_thread": self.by_thread.iter().map(|(name, cores)| (name.clone(), json!(cores))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// The forced reconnect: every fleet process closed all its connections at once.
#[derive(Clone, Debug, Default)]
pub struct Reconnect {
    /// Connections the fleet held when it was told to drop them.
    pub dropped: u64,
    /// Connections established again by the end of the wait.
    pub reestablished: u64,
    /// From the drop command to the last connection established again.
    pub secs: f64,
    /// Handshake counter deltas across the reconnect (ganglion's /metrics).
    pub full: u64,
    pub resumed: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ConnectionsReport {
    pub endpoints: usize,
    pub workers: Option<usize>,
    pub breaker_cooldown_ms: u64,
    /// Established connections counted by the fleet (TLS handshakes completed server-side).
    pub established: u64,
    /// ganglion's own `ganglion_egress_connections` once they were all up.
    pub router_gauge: u64,
    /// From spawning the router to the fleet counting the last connection.
    pub establish_secs: f64,
    /// Handshakes of the first establishment (full / resumed).
    pub initial_full: u64,
    pub initial_resumed: u64,
    pub baseline_rss_bytes: u64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// The router without connections (prewarm off), then with every connection held, no
    /// traffic either time: the fixed cost of holding the endpoints.
    pub idle_cold: IdleCpu,
    pub idle_warm: IdleCpu,
    pub reconnect: Reconnect,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl ConnectionsReport {
    /// (RSS with the connections − RSS without) / connections; 0 without connections.
    pub fn rss_per_connection_bytes(&self) -> f64 {
        if self.established == 0 {
            return 0.0;
        }
        self.rss_bytes.saturating_sub(self.baseline_rss_bytes) as f64 / self.established as f64
    }

    /// Everything connected, and everything came back after the drop.
    pub fn passed(&self) -> bool {
        self.established == self.endpoints as u64
            && self.reconnect.reestablished == self.endpoints as u64
    }

    pub fn text(&self) -> String {
        let r = &self.reconnect;
        let shards = self
            .workers
            .map_or_else(|| "ganglion's default".to_string(), |w| w.to_string());
        format!(
            "loadgen connections: {n} TLS endpoints (client certificates), ganglion durable, prewarm on every row, \
             {shards} shards, --breaker-cooldown-ms {cool}\n\
             connections established   {est} / {n} (ganglion's gauge: {gauge})\n\
             time to establish all     {secs:.2} s from the router's start to the last (fleet counts every 0.2 s)\n\
             first handshakes          {if_} full, {ir} resumed\n\
             router RSS                {rss:.1} MiB with the connections, {base:.1} MiB without (prewarm off, same run)\n\
             RSS per connection        {per:.1} KiB  ((RSS − RSS without) / {est})\n\
             router CPU, no traffic    {warm} with the connections, over {wsecs:.0} s\n\
             \x20                         {cold} without, over {csecs:.0} s\n\
             forced reconnect          {again} / {dropped} re-established in {rsecs:.2} s\n\
             handshakes after it       {resumed} resumed, {full} full\n\
             router peak RSS (VmHWM)   {peak:.1} MiB\n",
            n = self.endpoints,
            cool = self.breaker_cooldown_ms,
            est = self.established,
            gauge = self.router_gauge,
            secs = self.establish_secs,
            if_ = self.initial_full,
            ir = self.initial_resumed,
            rss = mib(self.rss_bytes),
            base = mib(self.baseline_rss_bytes),
            per = self.rss_per_connection_bytes() / 1024.0,
            warm = self.idle_warm.text(),
            wsecs = self.idle_warm.secs,
            cold = self.idle_cold.text(),
            csecs = self.idle_cold.secs,
            again = r.reestablished,
            dropped = r.dropped,
            rsecs = r.secs,
            resumed = r.resumed,
            full = r.full,
            peak = mib(self.peak_rss_bytes),
        )
    }

    pub fn json(&self) -> serde_json::Value {
        let r = &self.reconnect;
        json!({
            "endpoints": self.endpoints,
            "workers": self.workers,
            "breaker_cooldown_ms": self.breaker_cooldown_ms,
            "established": self.established,
            "router_egress_connections": self.router_gauge,
            "establish_s": self.establish_secs,
            "initial_handshakes": {"full": self.initial_full, "resumed": self.initial_resumed},
            "router_rss_bytes": self.rss_bytes,
            "router_rss_no_connections_bytes": self.baseline_rss_bytes,
            "rss_per_connection_bytes": self.rss_per_connection_bytes(),
            "router_peak_rss_bytes": self.peak_rss_bytes,
            "router_idle_cpu": {"with_connections": self.idle_warm.json(), "without": self.idle_cold.json()},
            "reconnect": {
                "dropped": r.dropped,
                "reestablished": r.reestablished,
                "duration_s": r.secs,
                "handshakes_full": r.full,
                "handshakes_resumed": r.resumed,
            },
        })
    }
}
