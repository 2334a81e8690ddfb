//! The hot-endpoint report: what was offered and delivered, latency, losses, duplicates and
//! order breaks, and the verdict against the goal, as text for people and JSON for tools.
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::proof::report::step_json;
use crate::proof::Step;
use crate::units::fmt_us;

use super::HotConfig;

#[derive(Clone, Debug)]
pub struct HotReport {
    pub config: HotConfig,
    /// Connections from the router the fleet counted at the end of the run.
    pub egress_connections: u64,
    pub step: Step,
}

impl HotReport {
    /// Why the run missed the goal; empty when it met it.
    pub fn failures(&self) -> Vec<String> {
        let s = &self.step.stats;
        let mut why = Vec::new();
        if s.delivered_rate() < self.config.goal_rate {
            why.push(format!(
                "{:.0} msgs/s delivered, under the goal of {:.0}",
                s.delivered_rate(),
                self.config.goal_rate
            ));
        }
        if s.out_of_order > 0 {
            why.push(format!(
                "{} messages arrived after a later one of the same patient",
                s.out_of_order
            ));
        }
        if s.lost > 0 {
            why.push(format!(
                "{} acknowledged messages were never delivered",
                s.lost
            ));
        }
        why
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    pub fn text(&self) -> String {
        let c = &self.config;
        let b = &c.base;
        let s = &self.step.stats;
        let (ack, delivery) = (s.ack.percentiles(), s.delivery.percentiles());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "hot endpoint: {} endpoint(s) answering {} after each arrival, {}, {}; \
             max_in_flight {} × {} connections, order by PID-3; {} patients",
            b.endpoints,
            fmt_us(b.endpoint_delay.as_micros() as u64),
            if b.tls { "TLS" } else { "plain TCP" },
            if b.durable { "durable" } else { "not durable" },
            c.in_flight,
            c.connections,
            c.patients,
        );
        let _ = write!(
            out,
            "offered   {:.0} msgs/s for {:.0} s: {} sent, {} acknowledged, {} errors",
            s.offered_rate,
            s.duration_s,
            s.sent,
            s.acked,
            s.error_count(),
        );
        for (kind, n) in &s.errors {
            let _ = write!(out, "; {kind}: {n}");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "delivered {} = {:.0} msgs/s; delivery latency p50 {}, p99 {}; ACK p50 {}, p99 {}",
            s.delivered,
            s.delivered_rate(),
            fmt_us(delivery.p50),
            fmt_us(delivery.p99),
            fmt_us(ack.p50),
            fmt_us(ack.p99),
        );
        let _ = writeln!(
            out,
            "lost {}, duplicates {}, out of order {}; router connections to the endpoints {}",
            s.lost, s.duplicates, s.out_of_order, self.egress_connections,
        );
        let _ = writeln!(
            out,
            "cores     router {:.2}, loadgen {:.2}, endpoint {:.2}",
            self.step.subject_cores, self.step.driver_cores, self.step.fleet_cores,
        );
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(
                out,
                "PASS: at least {:.0} msgs/s delivered, every patient's messages in order, nothing lost",
                c.goal_rate
            );
        } else {
            let _ = writeln!(out, "FAIL: {}", failures.join("; "));
        }
        out
    }

    pub fn json(&self) -> Value {
        let c = &self.config;
        let s = &self.step.stats;
        json!({
            "scenario": "hot",
            "endpoints": c.base.endpoints,
            "delay_us": c.base.endpoint_delay.as_micros() as u64,
            "tls": c.base.tls,
            "durable": c.base.durable,
            "max_in_flight": c.in_flight,
            "connections": c.connections,
            "order_by": "PID-3",
            "patients": c.patients,
            "goal_rate": c.goal_rate,
            "delivered_rate": s.delivered_rate().round(),
            "out_of_order": s.out_of_order,
            "egress_connections": self.egress_connections,
            "passed": self.passed(),
            "failures": self.failures(),
            "step": step_json(&self.step),
        })
    }
}
