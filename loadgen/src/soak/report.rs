//! What a soak measured and its verdicts, as text for people and as JSON for tools.
//!
//! **RSS flat**: the samples taken under load after the warm-up are cut in three by time; the
//! median RSS of the last third may exceed the median of the first third by at most the
//! tolerance: a fraction of the first, or a few MiB, whichever is larger (a router of a few
//! hundred endpoints lives in some 40 MiB, where allocator noise alone is several per cent). Medians, so that one sample taken in the middle of a
//! reload (two routing tables alive for a moment) does not decide; thirds, so that a leak has
//! the whole middle of the run to show. The least-squares slope over the same samples is
//! reported beside it, in MiB per minute.
use serde_json::{json, Value};

use super::reload::{Outcome, Record};
use super::sample::Sample;
use crate::proof::report::{header, step_json, step_line, Step};
use crate::stats::{Percentiles, Window};
use crate::units::fmt_us;

/// The memory verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct RssVerdict {
    /// Seconds (from the start of the load) that the first and last thirds cover.
    pub first_s: (f64, f64),
    pub last_s: (f64, f64),
    /// Median RSS of each third, MiB.
    pub first_mib: f64,
    pub last_mib: f64,
    /// The tolerance: a fraction of `first_mib`, or `tolerance_mib`, whichever is larger.
    pub tolerance: f64,
    pub tolerance_mib: f64,
    /// Least-squares slope over every judged sample, MiB per minute.
    pub slope_mib_per_min: f64,
    pub samples: usize,
}

impl RssVerdict {
    pub fn growth_mib(&self) -> f64 {
        self.last_mib - self.first_mib
    }

    /// The most the last third may exceed the first by, MiB.
    pub fn allowed_mib(&self) -> f64 {
        (self.tolerance * self.first_mib).max(self.tolerance_mib)
    }

    pub fn flat(&self) -> bool {
        self.growth_mib() <= self.allowed_mib()
    }

    /// The tolerance as a person reads it.
    pub fn tolerance_text(&self) -> String {
        format!(
            "{:.0} % or {:.0} MiB, whichever is larger: {:.1} MiB",
            100.0 * self.tolerance,
            self.tolerance_mib,
            self.allowed_mib()
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Judges the samples taken under load from `warmup_s` to `end_s`; `None` when there are too
/// few (fewer than two in a third) to judge.
pub fn rss_verdict(
    samples: &[Sample],
    warmup_s: f64,
    end_s: f64,
    (tolerance, tolerance_mib): (f64, f64),
) -> Option<RssVerdict> {
    let judged: Vec<&Sample> = samples
        .iter()
        .filter(|s| !s.drain && s.t_s >= warmup_s && s.t_s <= end_s && s.rss_bytes > 0)
        .collect();
    let third = (end_s - warmup_s) / 3.0;
    let first_s = (warmup_s, warmup_s + third);
    let last_s = (end_s - third, end_s);
    let first: Vec<f64> = judged
        .iter()
        .filter(|s| s.t_s < first_s.1)
        .map(|s| s.rss_mib())
        .collect();
    let last: Vec<f64> = judged
        .iter()
        .filter(|s| s.t_s >= last_s.0)
        .map(|s| s.rss_mib())
        .collect();
    if first.len() < 2 || last.len() < 2 {
        return None;
    }
    let n = judged.len() as f64;
    let mean_t = judged.iter().map(|s| s.t_s).sum::<f64>() / n;
    let mean_m = judged.iter().map(|s| s.rss_mib()).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for s in &judged {
        num += (s.t_s - mean_t) * (s.rss_mib() - mean_m);
        den += (s.t_s - mean_t).powi(2);
    }
    let slope = if den > 0.0 { num / den * 60.0 } else { 0.0 };
    Some(RssVerdict {
        first_s,
        last_s,
        first_mib: median(first),
        last_mib: median(last),
        tolerance,
        tolerance_mib,
        slope_mib_per_min: slope,
        samples: judged.len(),
    })
}

/// The soak as run, and what it measured.
#[derive(Clone, Debug)]
pub struct SoakReport {
    pub endpoints: usize,
    pub tls: bool,
    pub durable: bool,
    pub cores: usize,
    pub router_pinned: bool,
    pub mix: String,
    pub seed: u64,
    /// Arguments given to `ganglion run` beyond the usual ones.
    pub router_args: Vec<String>,
    pub rate: f64,
    pub duration_s: f64,
    pub flap_share: f64,
    pub flapping_endpoints: usize,
    pub flap_down: String,
    pub flap_up: String,
    pub reload_every_s: f64,
    pub warmup_s: f64,
    pub window_s: f64,
    /// The proof's objective for p99 ACK latency, shown in the run's row for comparison.
    pub slo_p99_us: u64,
    /// The whole load, one driver run, cut in windows.
    pub step: Step,
    pub egress_connections: u64,
    pub rss_start_bytes: u64,
    pub rss_peak_bytes: u64,
    pub samples: Vec<Sample>,
    pub reloads: Vec<Record>,
    /// Down events sent, and those the fleet processes report having done.
    pub flaps_sent: usize,
    pub flaps_done: u64,
    /// Start of each down event (seconds from the start of the load).
    pub downs_at_s: Vec<f64>,
    pub most_down: usize,
    /// Endpoints the fleet still reported down after the flapping ended.
    pub down_at_end: u64,
    /// Seconds from the last intended send until everything was answered and delivered (or
    /// the drain gave up).
    pub drain_s: f64,
    pub drain_limit_s: f64,
    pub rss: Option<RssVerdict>,
}

impl SoakReport {
    pub fn reloads_applied(&self) -> usize {
        self.reloads
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
            .count()
    }

    pub fn lost(&self) -> u64 {
        self.step.stats.lost
    }

    /// Why the soak failed, one reason a line; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.lost() > 0 {
            why.push(format!(
                "{} acknowledged messages were never delivered",
                self.lost()
            ));
        }
        match &self.rss {
            Some(v) if !v.flat() => why.push(format!(
                "router RSS grew {:+.1} MiB ({:+.1} %), beyond the tolerance ({})",
                v.growth_mib(),
                100.0 * v.growth_mib() / v.first_mib.max(1e-9),
                v.tolerance_text()
            )),
            Some(_) => {}
            None => why.push("too few RSS samples under load to judge the memory".to_string()),
        }
        if self.reloads_applied() < self.reloads.len() {
            why.push(format!(
                "{} of {} reloads were not applied",
                self.reloads.len() - self.reloads_applied(),
                self.reloads.len()
            ));
        }
        if self.down_at_end > 0 {
            why.push(format!(
                "{} endpoints were still down after the flapping ended",
                self.down_at_end
            ));
        }
        why
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    fn reload_secs(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .reloads
            .iter()
            .filter_map(|r| match r.outcome {
                Outcome::Applied { secs, .. } => Some(secs),
                _ => None,
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn flaps_in(&self, w: &Window) -> usize {
        let end = w.start_s + self.window_s;
        self.downs_at_s
            .iter()
            .filter(|&&t| t >= w.start_s && t < end)
            .count()
    }

    fn reloads_in(&self, w: &Window) -> usize {
        let end = w.start_s + self.window_s;
        self.reloads
            .iter()
            .filter(|r| r.at_s >= w.start_s && r.at_s < end)
            .count()
    }

    pub fn json(&self) -> Value {
        let st = &self.step.stats;
        let windows: Vec<Value> = st
            .windows
            .iter()
            .map(|w| {
                json!({
                    "start_s": w.start_s, "sent": w.sent, "acked": w.acked, "delivered": w.delivered,
                    "ack_latency_us": pct_json(&w.ack.percentiles()),
                    "delivery_latency_us": pct_json(&w.delivery.percentiles()),
                    "flaps": self.flaps_in(w), "reloads": self.reloads_in(w),
                })
            })
            .collect();
        let samples: Vec<Value> = self
            .samples
            .iter()
            .map(|s| {
                json!({
                    "t_s": round1(s.t_s), "rss_bytes": s.rss_bytes, "rss_mib": round1(s.rss_mib()),
                    "router_cores": round2(s.router_cores), "accepted_per_s": s.accepted_per_s.map(round1),
                    "queued": s.queued, "egress_connections": s.egress_connections,
                    "endpoints_down": s.endpoints_down, "loadavg": s.loadavg, "drain": s.drain,
                })
            })
            .collect();
        let reloads: Vec<Value> = self
            .reloads
            .iter()
            .map(|r| {
                let (outcome, secs, rules_changed, line) = match &r.outcome {
                    Outcome::Applied {
                        secs,
                        rules_changed,
                    } => ("applied", Some(*secs), Some(*rules_changed), None),
                    Outcome::Failed(line) => ("failed", None, None, Some(line.clone())),
                    Outcome::Unanswered => ("unanswered", None, None, None),
                };
                json!({"at_s": round1(r.at_s), "k": r.k, "outcome": outcome, "secs": secs,
                       "rules_changed": rules_changed, "line": line})
            })
            .collect();
        json!({
            "endpoints": self.endpoints, "tls": self.tls, "durable": self.durable, "cores": self.cores,
            "router_pinned": self.router_pinned, "mix": self.mix, "seed": self.seed,
            "router_args": self.router_args,
            "rate": self.rate, "duration_s": self.duration_s,
            "flap": {"share": self.flap_share, "endpoints": self.flapping_endpoints,
                     "down": self.flap_down, "up": self.flap_up, "sent": self.flaps_sent,
                     "done": self.flaps_done, "most_down_at_once": self.most_down,
                     "down_at_end": self.down_at_end},
            "reload_every_s": self.reload_every_s,
            "reloads": reloads, "reloads_applied": self.reloads_applied(),
            "run": step_json(&self.step),
            "windows": windows, "window_s": self.window_s,
            "drain_s": round1(self.drain_s), "drain_limit_s": self.drain_limit_s,
            "egress_connections": self.egress_connections,
            "router_rss_start_bytes": self.rss_start_bytes, "router_peak_rss_bytes": self.rss_peak_bytes,
            "rss_samples": samples,
            "rss_verdict": self.rss.as_ref().map(|v| json!({
                "warmup_s": self.warmup_s, "first_third_s": [v.first_s.0, v.first_s.1],
                "last_third_s": [v.last_s.0, v.last_s.1], "first_third_median_mib": round1(v.first_mib),
                "last_third_median_mib": round1(v.last_mib), "growth_mib": round1(v.growth_mib()),
                "tolerance": v.tolerance, "tolerance_mib": v.tolerance_mib,
                "allowed_growth_mib": round1(v.allowed_mib()), "slope_mib_per_min": round2(v.slope_mib_per_min),
                "samples": v.samples, "flat": v.flat(),
            })),
            "passed": self.passed(), "failures": self.failures(),
        })
    }

    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let st = &self.step.stats;
        line(format!(
            "ganglion soak: {} endpoints ({}), {}, {:.0} msgs/s for {} s; {:.0} % of endpoints flapping \
             ({} endpoints, down {}, up {}); a reload every {} s; {} cores shared by router ({}), \
             load generator and fleet",
            self.endpoints,
            if self.tls { "TLS with client certificates" } else { "plain TCP" },
            if self.durable { "durable (ACK after fsync)" } else { "NOT durable" },
            self.rate,
            self.duration_s,
            self.flap_share * 100.0,
            self.flapping_endpoints,
            self.flap_down,
            self.flap_up,
            self.reload_every_s,
            self.cores,
            if self.router_pinned { "shards pinned" } else { "shards not pinned" },
        ));
        if !self.router_args.is_empty() {
            line(format!("ganglion run with: {}", self.router_args.join(" ")));
        }
        line(String::new());
        line(format!(
            "messages: offered {}, sent {}, acked {}, delivered {}, LOST {}, duplicates {} (at-least-once), \
             refused by endpoints {}, errors {}",
            st.scheduled, st.sent, st.acked, st.delivered, st.lost, st.duplicates,
            st.refused_by_endpoint, st.error_count()
        ));
        if !st.errors.is_empty() {
            line(format!("errors by kind: {:?}", st.errors));
        }
        let a = st.ack.percentiles();
        let d = st.delivery.percentiles();
        line(format!(
            "ACK latency over the run: p50 {}, p90 {}, p99 {}, p99.9 {}, max {}; delivery p50 {}, p99 {}, max {}",
            fmt_us(a.p50), fmt_us(a.p90), fmt_us(a.p99), fmt_us(a.p999), fmt_us(a.max),
            fmt_us(d.p50), fmt_us(d.p99), fmt_us(d.max)
        ));
        line(format!(
            "drain: {} {:.1} s after the last send (limit {:.0} s)",
            if st.lost == 0 && st.acked == st.delivered + st.refused_by_endpoint {
                "every ACKed message delivered"
            } else {
                "gave up"
            },
            self.drain_s,
            self.drain_limit_s
        ));
        let secs = self.reload_secs();
        line(format!(
            "reloads: {} sent, {} applied{}{}",
            self.reloads.len(),
            self.reloads_applied(),
            if secs.is_empty() {
                String::new()
            } else {
                format!(
                    " (each changing the rules; applied in {:.2}–{:.2} s after SIGHUP)",
                    secs[0],
                    secs[secs.len() - 1]
                )
            },
            if self.reloads.iter().any(|r| matches!(
                r.outcome,
                Outcome::Applied {
                    rules_changed: false,
                    ..
                }
            )) {
                "; some said the rules were unchanged"
            } else {
                ""
            }
        ));
        for r in &self.reloads {
            match &r.outcome {
                Outcome::Failed(why) => {
                    line(format!("  reload {} at {:.0} s failed: {why}", r.k, r.at_s))
                }
                Outcome::Unanswered => line(format!(
                    "  reload {} at {:.0} s: no outcome in the router's log",
                    r.k, r.at_s
                )),
                Outcome::Applied { .. } => {}
            }
        }
        line(format!(
            "flaps: {} down events sent, {} done by the fleet, over {} endpoints; at most {} down at once; \
             {} still down at the end",
            self.flaps_sent, self.flaps_done, self.flapping_endpoints, self.most_down, self.down_at_end
        ));
        line(format!(
            "egress connections at start: {}/{}; CPU cores during the run: router {:.2}, loadgen {:.2}, fleet {:.2}",
            self.egress_connections, self.endpoints, self.step.subject_cores, self.step.driver_cores,
            self.step.fleet_cores
        ));
        match &self.rss {
            Some(v) => line(format!(
                "router RSS: {:.1} MiB after prewarm; median {:.1} MiB over {:.0}–{:.0} s, {:.1} MiB over {:.0}–{:.0} s: \
                 {:+.1} MiB ({:+.1} %), tolerance {}: {}; slope {:+.2} MiB/min; peak {:.1} MiB",
                mib(self.rss_start_bytes), v.first_mib, v.first_s.0, v.first_s.1, v.last_mib,
                v.last_s.0, v.last_s.1, v.growth_mib(), 100.0 * v.growth_mib() / v.first_mib.max(1e-9),
                v.tolerance_text(), if v.flat() { "FLAT" } else { "GREW" }, v.slope_mib_per_min,
                mib(self.rss_peak_bytes)
            )),
            None => line("router RSS: too few samples under load after the warm-up to judge".to_string()),
        }
        line(String::new());
        line(format!(
            "the whole run (one open-loop schedule, latency from intended send times; SLO is the proof's \
             objective, p99 ACK <= {}, shown for comparison and not part of the soak's verdict):",
            fmt_us(self.slo_p99_us)
        ));
        line(header());
        line(step_line(&self.step));
        line(String::new());
        line(format!(
            "{:>6} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>5} {:>7}",
            "from",
            "sent",
            "acked",
            "deliver",
            "ack p50",
            "p99",
            "p99.9",
            "max",
            "dlv p50",
            "dlv p99",
            "flaps",
            "reloads"
        ));
        for w in &st.windows {
            let a = w.ack.percentiles();
            let d = w.delivery.percentiles();
            line(format!(
                "{:>5.0}s {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>5} {:>7}",
                w.start_s,
                w.sent,
                w.acked,
                w.delivered,
                fmt_us(a.p50),
                fmt_us(a.p99),
                fmt_us(a.p999),
                fmt_us(a.max),
                fmt_us(d.p50),
                fmt_us(d.p99),
                self.flaps_in(w),
                self.reloads_in(w)
            ));
        }
        line(String::new());
        line(format!(
            "{:>7} {:>8} {:>6} {:>10} {:>7} {:>7} {:>5} {:>7}",
            "t", "RSS MiB", "cores", "accepted/s", "queued", "egress", "down", "loadavg"
        ));
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        for s in &self.samples {
            line(format!(
                "{:>6.0}s {:>8.1} {:>6.2} {:>10} {:>7} {:>7} {:>5} {:>7.2}{}",
                s.t_s,
                s.rss_mib(),
                s.router_cores,
                s.accepted_per_s
                    .map_or("-".to_string(), |v| format!("{v:.0}")),
                opt(s.queued),
                opt(s.egress_connections),
                s.endpoints_down,
                s.loadavg,
                if s.drain {
                    "  drain"
                } else if s.t_s < self.warmup_s {
                    "  warm-up"
                } else {
                    ""
                }
            ));
        }
        line(String::new());
        line(
            "latencies are measured from each message's intended send time (open loop); the machine is shared: \
             loadavg is the whole machine's"
                .to_string(),
        );
        let failures = self.failures();
        line(if failures.is_empty() {
            "verdict: PASSED (nothing acknowledged lost, RSS flat, every reload applied)"
                .to_string()
        } else {
            format!("verdict: FAILED: {}", failures.join("; "))
        });
        out
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn pct_json(p: &Percentiles) -> Value {
    json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "p999": p.p999, "max": p.max})
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64, mib: f64) -> Sample {
        Sample {
            t_s,
            rss_bytes: (mib * 1024.0 * 1024.0) as u64,
            ..Sample::default()
        }
    }

    #[test]
    fn a_steady_curve_with_a_spike_is_flat_and_a_rising_one_is_not() {
        // 10 minutes every 5 s, warm-up 60 s: around 400 MiB with one reload spike of 60 MiB.
        let steady: Vec<Sample> = (0..=120)
            .map(|i| {
                let t = i as f64 * 5.0;
                let spike = if i == 100 { 60.0 } else { 0.0 };
                at(t, 400.0 + (i % 3) as f64 + spike)
            })
            .collect();
        let v = rss_verdict(&steady, 60.0, 600.0, (0.05, 8.0)).unwrap();
        assert!(v.flat(), "{v:?}");
        assert_eq!((v.first_s, v.last_s), ((60.0, 240.0), (420.0, 600.0)));
        assert!(v.growth_mib().abs() < 2.0, "{v:?}");
        assert!(v.slope_mib_per_min.abs() < 1.0, "{v:?}");

        // 8 MiB a minute: 400 MiB → 480 MiB over the judged part.
        let rising: Vec<Sample> = (0..=120)
            .map(|i| at(i as f64 * 5.0, 400.0 + i as f64 * 5.0 / 60.0 * 8.0))
            .collect();
        let v = rss_verdict(&rising, 60.0, 600.0, (0.05, 8.0)).unwrap();
        assert!(!v.flat(), "{v:?}");
        assert!((v.slope_mib_per_min - 8.0).abs() < 0.01, "{v:?}");
        assert!((v.growth_mib() - 48.0).abs() < 1.0, "{v:?}");

        // A small router: 40 MiB, 3 MiB more by the end is within the 8 MiB floor, 9 is not.
        let small = |grow: f64| -> Vec<Sample> {
            (0..=12)
                .map(|i| at(i as f64 * 5.0, if i >= 9 { 40.0 + grow } else { 40.0 }))
                .collect()
        };
        let v = rss_verdict(&small(3.0), 12.0, 60.0, (0.05, 8.0)).unwrap();
        assert!(v.flat() && v.allowed_mib() == 8.0, "{v:?}");
        assert!(!rss_verdict(&small(9.0), 12.0, 60.0, (0.05, 8.0))
            .unwrap()
            .flat());
    }

    #[test]
    fn warm_up_and_drain_samples_are_not_judged_and_too_few_cannot_be() {
        let mut samples: Vec<Sample> = (0..=12).map(|i| at(i as f64 * 5.0, 300.0)).collect();
        // A warm-up far below, and a drain far above: neither counts.
        samples[0].rss_bytes = 10 << 20;
        samples.push(Sample {
            drain: true,
            ..at(65.0, 900.0)
        });
        let v = rss_verdict(&samples, 12.0, 60.0, (0.05, 8.0)).unwrap();
        assert!(v.flat() && v.growth_mib() == 0.0, "{v:?}");
        assert_eq!(v.samples, 10);
        assert_eq!(rss_verdict(&samples[..4], 12.0, 60.0, (0.05, 8.0)), None);
    }
}
