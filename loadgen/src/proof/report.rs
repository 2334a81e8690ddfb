//! The proof's report: steps with their percentiles and how the cores were shared, the
//! verdict on the target, the highest sustainable rate and the headroom, as text for people
//! and as JSON for tools.
use serde_json::{json, Value};

use crate::stats::{Percentiles, RunStats};
use crate::units::fmt_us;

use super::ProofConfig;

/// The Spine's national rate that the headroom is measured against.
pub const SPINE_RATE: f64 = 3200.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Ganglion,
    Relay,
    /// Several ganglion nodes sharing a NATS JetStream cluster (`proof --cluster N`).
    Cluster,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Ganglion => "ganglion",
            System::Relay => "relay",
            System::Cluster => "cluster",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    pub system: System,
    pub stats: RunStats,
    pub slo_met: bool,
    /// Cores used by the system under test (router or relay) during the step.
    pub subject_cores: f64,
    /// CPU seconds the system under test used during the step (user and system).
    pub subject_cpu_s: f64,
    /// Cores used by loadgen itself (the driver process).
    pub driver_cores: f64,
    /// Cores used by the endpoint fleet processes.
    pub fleet_cores: f64,
}

impl Step {
    /// CPU time the system under test spent per message it acknowledged in this step (µs):
    /// its fixed costs (timers, idle connections) spread over the step's messages included.
    pub fn cpu_us_per_message(&self) -> Option<f64> {
        (self.stats.acked > 0 && self.subject_cpu_s > 0.0)
            .then(|| self.subject_cpu_s * 1e6 / self.stats.acked as f64)
    }

    /// A projection, not a measurement: the messages per second one core would carry at this
    /// step's CPU cost per message, on a host whose cores the system has to itself.
    pub fn projected_rate_per_core(&self) -> Option<f64> {
        self.cpu_us_per_message().map(|us| 1e6 / us)
    }
}

/// The median of `values` (the lower middle one of an even count); `None` when empty.
/// Attempts at one rate, counted until most of `attempts` have gone one way.
#[derive(Debug, Clone, Copy)]
pub struct Majority {
    pub attempts: usize,
    pub met: usize,
    pub broken: usize,
}

impl Majority {
    pub fn of(attempts: usize) -> Majority {
        Majority {
            attempts,
            met: 0,
            broken: 0,
        }
    }

    pub fn count(&mut self, met: bool) {
        if met {
            self.met += 1;
        } else {
            self.broken += 1;
        }
    }

    fn needed(&self) -> usize {
        self.attempts / 2 + 1
    }

    /// More attempts could still change the verdict.
    pub fn undecided(&self) -> bool {
        self.met < self.needed()
            && self.broken < self.needed()
            && self.met + self.broken < self.attempts
    }

    pub fn credited(&self) -> bool {
        self.met >= self.needed()
    }
}

pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let upper = *values.get(n / 2)?;
    // Of an even count, the mean of the middle two: the lower one alone flatters a latency or
    // a cost when attempts stop at two that agree.
    Some(match n % 2 {
        0 => (values[n / 2 - 1] + upper) / 2.0,
        _ => upper,
    })
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub target_rate: f64,
    pub endpoints: usize,
    pub tls: bool,
    pub durable: bool,
    pub cores: usize,
    /// The router ran with its shards pinned to cores.
    pub router_pinned: bool,
    pub slo_p99_us: u64,
    pub max_error_ratio: f64,
    pub mix: String,
    pub seed: u64,
    pub steps: Vec<Step>,
    pub egress_connections: u64,
    pub relay_connections: Option<u64>,
    pub router_rss_bytes: u64,
    pub router_rss_after_bytes: u64,
    pub router_peak_rss_bytes: u64,
    pub target_held: bool,
    pub max_sustainable_rate: f64,
    pub relay_max_sustainable_rate: Option<f64>,
    pub lost_total: u64,
}

fn pct_json(p: &Percentiles) -> Value {
    json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "p999": p.p999, "max": p.max})
}

pub fn step_json(s: &Step) -> Value {
    let st = &s.stats;
    json!({
        "offered_rate": st.offered_rate,
        "achieved_rate": (st.achieved_rate() * 10.0).round() / 10.0,
        "duration_s": st.duration_s,
        "sent": st.sent,
        "acked": st.acked,
        "delivered": st.delivered,
        "lost": st.lost,
        "duplicates": st.duplicates,
        "refused_by_endpoint": st.refused_by_endpoint,
        "errors": st.error_count(),
        "errors_by_kind": st.errors,
        "ack_latency_us": pct_json(&st.ack.percentiles()),
        "delivery_latency_us": pct_json(&st.delivery.percentiles()),
        "send_lag_us": pct_json(&st.send_lag.percentiles()),
        "cpu_cores": {"subject": round2(s.subject_cores), "loadgen": round2(s.driver_cores), "endpoints": round2(s.fleet_cores)},
        "cpu_us_per_message": s.cpu_us_per_message().map(round2),
        "projected_rate_per_core": s.projected_rate_per_core().map(f64::round),
        "slo_met": s.slo_met,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Report {
    pub fn new(config: &ProofConfig) -> Report {
        Report {
            target_rate: config.rate,
            endpoints: config.endpoints,
            tls: config.tls,
            durable: config.durable,
            cores: crate::sys::cores(),
            router_pinned: config.pin,
            slo_p99_us: config.slo.p99_us,
            max_error_ratio: config.slo.max_error_ratio,
            mix: config.mix.describe(),
            seed: config.seed,
            steps: Vec::new(),
            egress_connections: 0,
            relay_connections: None,
            router_rss_bytes: 0,
            router_rss_after_bytes: 0,
            router_peak_rss_bytes: 0,
            target_held: false,
            max_sustainable_rate: 0.0,
            relay_max_sustainable_rate: None,
            lost_total: 0,
        }
    }

    pub fn steps_of(&self, system: System) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.system == system)
    }

    /// The highest rate most of whose attempts met the objective.
    fn max_rate(&self, system: System) -> f64 {
        let mut rates: Vec<f64> = self
            .steps_of(system)
            .map(|s| s.stats.offered_rate)
            .collect();
        rates.dedup();
        rates
            .into_iter()
            .filter(|&rate| self.credited(system, rate))
            .fold(0.0, f64::max)
    }

    /// Whether most of `system`'s attempts at `rate` met the objective.
    pub fn credited(&self, system: System, rate: f64) -> bool {
        let (met, broken) = self
            .steps_of(system)
            .filter(|s| s.stats.offered_rate == rate)
            .fold(
                (0, 0),
                |(m, b), s| if s.slo_met { (m + 1, b) } else { (m, b + 1) },
            );
        met > broken
    }

    /// Computes the verdicts once every step is in.
    pub fn finish(&mut self) {
        self.target_held = self.credited(System::Ganglion, self.target_rate);
        self.max_sustainable_rate = self.max_rate(System::Ganglion);
        if self.steps_of(System::Relay).next().is_some() {
            self.relay_max_sustainable_rate = Some(self.max_rate(System::Relay));
        }
        self.lost_total = self.steps_of(System::Ganglion).map(|s| s.stats.lost).sum();
    }

    /// The median CPU cost per message (µs) of `system`'s attempts at the target rate.
    pub fn cpu_us_per_message_at_target(&self, system: System) -> Option<f64> {
        let target = self.target_rate;
        median(
            self.steps_of(system)
                .filter(|s| s.stats.offered_rate == target)
                .filter_map(Step::cpu_us_per_message)
                .collect(),
        )
    }

    pub fn headroom(&self) -> f64 {
        self.max_sustainable_rate / SPINE_RATE
    }

    /// Whether the run passes: the target held and nothing ACKed was lost.
    pub fn passed(&self) -> bool {
        self.target_held && self.lost_total == 0
    }

    pub fn json(&self) -> Value {
        let ganglion: Vec<Value> = self.steps_of(System::Ganglion).map(step_json).collect();
        let mut v = json!({
            "target_rate": self.target_rate,
            "endpoints": self.endpoints,
            "tls": self.tls,
            "durable": self.durable,
            "cores": self.cores,
            "router_pinned": self.router_pinned,
            "slo": {"p99_ack_latency_us": self.slo_p99_us, "max_error_ratio": self.max_error_ratio, "lost": 0},
            "mix": self.mix,
            "seed": self.seed,
            "target_held": self.target_held,
            "steps": ganglion,
            "max_sustainable_rate": self.max_sustainable_rate,
            "headroom": round2(self.headroom()),
            "egress_connections": self.egress_connections,
            "router_rss_bytes": self.router_rss_bytes,
            "router_rss_after_bytes": self.router_rss_after_bytes,
            "router_peak_rss_bytes": self.router_peak_rss_bytes,
        });
        if let Some(us) = self.cpu_us_per_message_at_target(System::Ganglion) {
            let relay = self.cpu_us_per_message_at_target(System::Relay);
            v["cpu_per_message_at_target"] = json!({
                "ganglion_us": round2(us),
                "relay_us": relay.map(round2),
                "ratio_to_relay": relay.filter(|r| *r > 0.0).map(|r| round2(us / r)),
                "projected_rate_per_core": (1e6 / us).round(),
                "projection": "messages per second one core would carry at this cost, on a host whose cores the router has to itself; not measured",
            });
        }
        if let Some(relay_max) = self.relay_max_sustainable_rate {
            let steps: Vec<Value> = self.steps_of(System::Relay).map(step_json).collect();
            v["baseline"] = json!({
                "system": "relay",
                "connections": self.relay_connections,
                "steps": steps,
                "max_sustainable_rate": relay_max,
                "ganglion_fraction": if relay_max > 0.0 { round2(self.max_sustainable_rate / relay_max) } else { 0.0 },
            });
        }
        v
    }

    /// The router's CPU per message at the target, beside the relay's, and the projection.
    fn cpu_line(&self) -> Option<String> {
        let us = self.cpu_us_per_message_at_target(System::Ganglion)?;
        let relay = match self.cpu_us_per_message_at_target(System::Relay) {
            Some(r) if r > 0.0 => format!(" (bare relay {r:.0} µs: {:.2}x)", us / r),
            _ => String::new(),
        };
        Some(format!(
            "router CPU per message at the target: {us:.0} µs{relay}; projected {:.0} msgs/s per core \
             on a host whose cores the router has to itself (a projection, not a measurement)",
            1e6 / us
        ))
    }

    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let push = |out: &mut String, s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        push(
            &mut out,
            format!(
                "ganglion headroom proof: {} endpoints, {}, {}, {} cores shared by router ({}) and load generator",
                self.endpoints,
                if self.tls { "TLS with client certificates" } else { "plain TCP" },
                if self.durable { "durable (ACK after fsync)" } else { "NOT durable" },
                self.cores,
                if self.router_pinned { "shards pinned" } else { "shards not pinned" },
            ),
        );
        push(
            &mut out,
            format!(
                "objective per step: p99 ACK latency <= {}, nothing lost, errors <= {:.3} %; mix {}",
                fmt_us(self.slo_p99_us),
                self.max_error_ratio * 100.0,
                self.mix
            ),
        );
        push(&mut out, String::new());
        let target = self.target_rate;
        let at_target: Vec<&Step> = self
            .steps_of(System::Ganglion)
            .filter(|s| s.stats.offered_rate == target)
            .collect();
        if let Some(first) = at_target.first() {
            let met = at_target.iter().filter(|s| s.slo_met).count();
            let p99 = median(
                at_target
                    .iter()
                    .map(|s| s.stats.ack.percentiles().p99 as f64)
                    .collect(),
            );
            push(
                &mut out,
                format!(
                    "target {:.0} msgs/s for {:.0} s: {} ({met} of {} attempts met; median p99 \
                     ACK {}, {} lost, {} errors)",
                    self.target_rate,
                    first.stats.duration_s,
                    if self.target_held { "HELD" } else { "NOT HELD" },
                    at_target.len(),
                    fmt_us(p99.unwrap_or(0.0) as u64),
                    at_target.iter().map(|s| s.stats.lost).sum::<u64>(),
                    at_target.iter().map(|s| s.stats.error_count()).sum::<u64>()
                ),
            );
        }
        push(
            &mut out,
            format!(
                "highest sustainable rate: {:.0} msgs/s; headroom {:.1}x the Spine's {:.0} msgs/s",
                self.max_sustainable_rate,
                self.headroom(),
                SPINE_RATE
            ),
        );
        if let Some(relay) = self.relay_max_sustainable_rate {
            push(
                &mut out,
                format!(
                    "bare relay (same run, same traffic): {relay:.0} msgs/s; ganglion reaches {:.0} % of it",
                    if relay > 0.0 { 100.0 * self.max_sustainable_rate / relay } else { 0.0 }
                ),
            );
        }
        if let Some(line) = self.cpu_line() {
            push(&mut out, line);
        }
        push(
            &mut out,
            format!(
                "egress connections established at start: {}/{}; router memory {} MiB at start, {} MiB at the end, peak {} MiB",
                self.egress_connections,
                self.endpoints,
                self.router_rss_bytes >> 20,
                self.router_rss_after_bytes >> 20,
                self.router_peak_rss_bytes >> 20
            ),
        );
        push(&mut out, String::new());
        push(&mut out, header());
        for s in &self.steps {
            push(&mut out, step_line(s));
        }
        push(&mut out, String::new());
        push(
            &mut out,
            "latencies are measured from each message's intended send time (open loop); cores: \
             system under test / loadgen driver / endpoint fleet"
                .to_string(),
        );
        out
    }
}

pub fn header() -> String {
    format!(
        "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>4} {:>5} {:>5} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>14} | {:>7} | SLO",
        "system", "offered", "achieved", "sent", "acked", "deliver", "lost", "dups", "errs",
        "ack p50", "p90", "p99", "p99.9", "max", "dlv p50", "dlv p99", "cores s/d/f", "µs/msg"
    )
}

/// One row of the table.
pub fn step_line(s: &Step) -> String {
    let st = &s.stats;
    let a = st.ack.percentiles();
    let d = st.delivery.percentiles();
    format!(
        "{:<8} {:>8.0} {:>8.0} {:>8} {:>8} {:>8} {:>4} {:>5} {:>5} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>4.2}/{:.2}/{:.2} | {:>7} | {}",
        s.system.name(),
        st.offered_rate,
        st.achieved_rate(),
        st.sent,
        st.acked,
        st.delivered,
        st.lost,
        st.duplicates,
        st.error_count(),
        fmt_us(a.p50),
        fmt_us(a.p90),
        fmt_us(a.p99),
        fmt_us(a.p999),
        fmt_us(a.max),
        fmt_us(d.p50),
        fmt_us(d.p99),
        s.subject_cores,
        s.driver_cores,
        s.fleet_cores,
        s.cpu_us_per_message()
            .map_or_else(|| "-".to_string(), |us| format!("{us:.0}")),
        if s.slo_met { "met" } else { "BROKEN" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(system: System, offered: f64, acked: u64, cpu_s: f64) -> Step {
        Step {
            system,
            stats: RunStats {
                offered_rate: offered,
                acked,
                duration_s: 10.0,
                ..RunStats::default()
            },
            slo_met: true,
            subject_cores: cpu_s / 10.0,
            subject_cpu_s: cpu_s,
            driver_cores: 0.0,
            fleet_cores: 0.0,
        }
    }

    #[test]
    fn cpu_per_message_is_cpu_time_over_messages_and_the_projection_its_inverse() {
        let s = step(System::Ganglion, 3200.0, 32_000, 6.08);
        assert_eq!(s.cpu_us_per_message().map(f64::round), Some(190.0));
        assert_eq!(s.projected_rate_per_core().map(f64::round), Some(5263.0));
        // Nothing acknowledged, or no CPU figure (the process could not be read): no figure.
        assert_eq!(
            step(System::Ganglion, 3200.0, 0, 6.0).cpu_us_per_message(),
            None
        );
        assert_eq!(
            step(System::Ganglion, 3200.0, 10, 0.0).cpu_us_per_message(),
            None
        );
    }

    #[test]
    fn the_target_figure_is_the_median_of_its_attempts_and_is_set_beside_the_relay() {
        let config_rate = 3200.0;
        let mut report = Report {
            steps: vec![
                step(System::Ganglion, config_rate, 1000, 0.30),
                step(System::Ganglion, config_rate, 1000, 0.10),
                step(System::Ganglion, config_rate, 1000, 0.20),
                step(System::Ganglion, 4800.0, 1000, 0.01),
                step(System::Relay, config_rate, 1000, 0.05),
            ],
            target_rate: config_rate,
            ..Report::default()
        };
        report.finish();
        assert_eq!(
            report
                .cpu_us_per_message_at_target(System::Ganglion)
                .map(f64::round),
            Some(200.0)
        );
        let json = report.json();
        let cpu = &json["cpu_per_message_at_target"];
        assert_eq!(cpu["ganglion_us"], 200.0);
        assert_eq!(cpu["relay_us"], 50.0);
        assert_eq!(cpu["ratio_to_relay"], 4.0);
        assert_eq!(cpu["projected_rate_per_core"], 5000.0);
        assert_eq!(json["steps"][0]["cpu_us_per_message"], 300.0);
        assert!(report
            .text()
            .contains("router CPU per message at the target: 200 µs"));
    }

    fn attempt(system: System, offered: f64, met: bool) -> Step {
        Step {
            slo_met: met,
            ..step(system, offered, 1000, 1.0)
        }
    }

    #[test]
    fn a_majority_stops_counting_once_it_is_known() {
        let mut three = Majority::of(3);
        three.count(true);
        assert!(three.undecided());
        three.count(true);
        assert!(!three.undecided() && three.credited(), "2 of 3 already");
        let mut split = Majority::of(3);
        for met in [true, false] {
            split.count(met);
        }
        assert!(split.undecided(), "1 to 1: the third decides");
        split.count(false);
        assert!(!split.undecided() && !split.credited());
        let mut one = Majority::of(1);
        one.count(false);
        assert!(!one.undecided() && !one.credited());
    }

    #[test]
    fn a_rate_is_credited_only_when_most_of_its_attempts_met_for_either_system() {
        let mut report = Report {
            steps: vec![
                attempt(System::Ganglion, 3200.0, false),
                attempt(System::Ganglion, 3200.0, true),
                attempt(System::Ganglion, 3200.0, true),
                attempt(System::Ganglion, 4800.0, true),
                attempt(System::Ganglion, 4800.0, false),
                attempt(System::Ganglion, 4800.0, false),
                attempt(System::Ganglion, 4000.0, true),
                attempt(System::Ganglion, 4000.0, true),
                attempt(System::Relay, 3200.0, true),
                attempt(System::Relay, 3200.0, true),
                // One lucky attempt at a higher rate is not credited.
                attempt(System::Relay, 9600.0, true),
                attempt(System::Relay, 9600.0, false),
                attempt(System::Relay, 9600.0, false),
            ],
            target_rate: 3200.0,
            ..Report::default()
        };
        report.finish();
        assert!(report.target_held);
        assert_eq!(report.max_sustainable_rate, 4000.0);
        assert_eq!(report.relay_max_sustainable_rate, Some(3200.0));
        assert!(
            report.text().contains("HELD (2 of 3 attempts met"),
            "{}",
            report.text()
        );
        report.steps[1].slo_met = false;
        report.finish();
        assert!(!report.target_held, "1 of 3 is not most");
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 4.0]), Some(4.5));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
