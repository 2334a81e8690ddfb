//! The proof as a picture: ACK latency percentiles (p50, p99, p99.9) against offered rate for
//! ganglion and, when it ran, the bare relay; a logarithmic latency axis so that 0.2 ms and
//! 200 ms are both readable; the Spine's 3,200 msgs/s as a vertical line, the objective as a
//! horizontal one, and steps that broke the objective drawn hollow. Written by hand: a few
//! dozen SVG elements do not need a plotting library.
use std::fmt::Write as _;

use super::report::{Report, Step, System, SPINE_RATE};

pub(crate) const W: f64 = 960.0;
pub(crate) const H: f64 = 560.0;
pub(crate) const LEFT: f64 = 90.0;
pub(crate) const RIGHT: f64 = 230.0;
pub(crate) const TOP: f64 = 70.0;
pub(crate) const BOTTOM: f64 = 70.0;

struct Axes {
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Axes {
    fn x(&self, rate: f64) -> f64 {
        LEFT + (rate / self.x_max) * (W - LEFT - RIGHT)
    }

    fn y(&self, us: f64) -> f64 {
        let v = us.clamp(self.y_min, self.y_max);
        let f = (v.log10() - self.y_min.log10()) / (self.y_max.log10() - self.y_min.log10());
        H - BOTTOM - f * (H - TOP - BOTTOM)
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A round step for about six grid lines up to `max`.
pub(crate) fn nice_step(max: f64) -> f64 {
    let raw = max / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(mag * 10.0)
}

fn fmt_latency(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.0} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn series(
    out: &mut String,
    axes: &Axes,
    steps: &[&Step],
    pick: fn(&Step) -> u64,
    color: &str,
    dash: &str,
    width: f64,
) {
    let mut pts: Vec<(f64, f64, bool)> = steps
        .iter()
        .map(|s| {
            (
                axes.x(s.stats.offered_rate),
                axes.y(pick(s) as f64),
                s.slo_met,
            )
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    if pts.len() > 1 {
        let d: Vec<String> = pts
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}"/>"#,
            d.join(" ")
        );
    }
    for (x, y, met) in pts {
        let fill = if met { color } else { "white" };
        let _ = writeln!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{fill}" stroke="{color}" stroke-width="2"/>"#
        );
    }
}

/// Opens a picture of the standard size: the document, a white ground, a title and a line
/// under it.
pub(crate) fn open(out: &mut String, title: &str, subtitle: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="28" font-size="17" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="50" fill="#333">{}</text>"##,
        esc(subtitle)
    );
}

/// The legend's lines, `(name, colour, dash)`, from the top of the plot at `x`; returns the
/// height reached.
/// The plot area's border and its two axis titles (escaped here).
pub(crate) fn frame(out: &mut String, (x0, y0, x1, y1): (f64, f64, f64, f64), x: &str, y: &str) {
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{y0}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 22.0,
        esc(x)
    );
    let mid = (y0 + y1) / 2.0;
    let _ = writeln!(
        out,
        r#"<text x="22" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 22 {mid:.1})">{}</text>"#,
        esc(y)
    );
}

pub(crate) fn legend_lines(out: &mut String, x: f64, entries: &[(&str, &str, &str)]) -> f64 {
    for (i, (name, color, dash)) in entries.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 24.0;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{color}" stroke-width="2.5" stroke-dasharray="{dash}"/>"#,
            x + 30.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 38.0,
            y + 4.0,
            esc(name)
        );
    }
    TOP + 10.0 + entries.len() as f64 * 24.0
}

pub fn plot(report: &Report) -> String {
    let ganglion: Vec<&Step> = report.steps_of(System::Ganglion).collect();
    let relay: Vec<&Step> = report.steps_of(System::Relay).collect();
    let all: Vec<&Step> = ganglion.iter().chain(relay.iter()).copied().collect();
    let x_top = all
        .iter()
        .map(|s| s.stats.offered_rate)
        .fold(SPINE_RATE * 1.2, f64::max)
        * 1.08;
    let y_hi = all
        .iter()
        .map(|s| {
            s.stats
                .ack
                .percentiles()
                .p999
                .max(s.stats.ack.percentiles().p99) as f64
        })
        .fold(report.slo_p99_us as f64 * 2.0, f64::max);
    let y_lo = all
        .iter()
        .map(|s| s.stats.ack.percentiles().p50 as f64)
        .filter(|v| *v > 0.0)
        .fold(1000.0, f64::min);
    let axes = Axes {
        x_max: x_top,
        y_min: 10f64.powf(y_lo.max(1.0).log10().floor()),
        y_max: 10f64.powf(y_hi.log10().ceil()),
    };
    let title = format!(
        "ganglion: ACK latency against offered load ({} endpoints, {}, {})",
        report.endpoints,
        if report.tls { "TLS" } else { "plain TCP" },
        if report.durable {
            "durable"
        } else {
            "not durable"
        }
    );
    let verdict = format!(
        "target {:.0}/s {}; highest sustainable {:.0}/s = {:.1}x headroom{}",
        report.target_rate,
        if report.target_held {
            "held"
        } else {
            "NOT held"
        },
        report.max_sustainable_rate,
        report.headroom(),
        match report.relay_max_sustainable_rate {
            Some(r) if r > 0.0 => format!(
                "; bare relay {:.0}/s (ganglion {:.0} % of it)",
                r,
                100.0 * report.max_sustainable_rate / r
            ),
            _ => String::new(),
        }
    );
    let verdict = match report.cpu_us_per_message_at_target(System::Ganglion) {
        Some(us) => format!(
            "{verdict}; {us:.0} µs CPU/msg at the target (projected {:.0}/s per core)",
            1e6 / us
        ),
        None => verdict,
    };
    let mut out = String::new();
    open(&mut out, &title, &verdict);

    // Grid and axes.
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let step = nice_step(axes.x_max);
    let mut r = 0.0;
    while r <= axes.x_max {
        let x = axes.x(r);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/>"##
        );
        let label = if r >= 1000.0 {
            format!("{}k", r / 1000.0)
        } else {
            format!("{r:.0}")
        };
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            y1 + 18.0
        );
        r += step;
    }
    let mut decade = axes.y_min;
    while decade <= axes.y_max * 1.001 {
        let y = axes.y(decade);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 8.0,
            y + 4.0,
            fmt_latency(decade)
        );
        decade *= 10.0;
    }
    frame(
        &mut out,
        (x0, y0, x1, y1),
        "offered rate (messages per second)",
        "ACK latency (log scale)",
    );

    // The Spine rate and the objective.
    let xs = axes.x(SPINE_RATE);
    let _ = writeln!(
        out,
        r##"<line x1="{xs:.1}" y1="{y0}" x2="{xs:.1}" y2="{y1}" stroke="#c0392b" stroke-width="2" stroke-dasharray="6 4"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#c0392b">Spine rate 3,200/s</text>"##,
        xs + 6.0,
        y0 + 16.0
    );
    let ys = axes.y(report.slo_p99_us as f64);
    let _ = writeln!(
        out,
        r##"<line x1="{x0}" y1="{ys:.1}" x2="{x1}" y2="{ys:.1}" stroke="#e67e22" stroke-width="2" stroke-dasharray="2 4"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#e67e22" text-anchor="end">objective: p99 ≤ {}</text>"##,
        x1 - 6.0,
        ys - 6.0,
        fmt_latency(report.slo_p99_us as f64)
    );

    let p50 = |s: &Step| s.stats.ack.percentiles().p50;
    let p99 = |s: &Step| s.stats.ack.percentiles().p99;
    let p999 = |s: &Step| s.stats.ack.percentiles().p999;
    let mut legend: Vec<(&str, &str, &str)> = Vec::new();
    if !relay.is_empty() {
        series(&mut out, &axes, &relay, p50, "#7f8c8d", "5 4", 1.5);
        series(&mut out, &axes, &relay, p99, "#2c3e50", "5 4", 1.5);
        legend.push(("relay p50", "#7f8c8d", "5 4"));
        legend.push(("relay p99", "#2c3e50", "5 4"));
    }
    series(&mut out, &axes, &ganglion, p50, "#27ae60", "", 2.5);
    series(&mut out, &axes, &ganglion, p99, "#2980b9", "", 2.5);
    series(&mut out, &axes, &ganglion, p999, "#8e44ad", "", 2.0);
    legend.insert(0, ("ganglion p99.9", "#8e44ad", ""));
    legend.insert(0, ("ganglion p99", "#2980b9", ""));
    legend.insert(0, ("ganglion p50", "#27ae60", ""));

    let lx = W - RIGHT + 20.0;
    let y = legend_lines(&mut out, lx, &legend) + 12.0;
    let _ = writeln!(
        out,
        r##"<circle cx="{:.1}" cy="{y:.1}" r="4.5" fill="#555" stroke="#555" stroke-width="2"/>"##,
        lx + 15.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}">objective met</text>"#,
        lx + 38.0,
        y + 4.0
    );
    let y = y + 24.0;
    let _ = writeln!(
        out,
        r##"<circle cx="{:.1}" cy="{y:.1}" r="4.5" fill="white" stroke="#555" stroke-width="2"/>"##,
        lx + 15.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}">objective broken</text>"#,
        lx + 38.0,
        y + 4.0
    );
    out.push_str("</svg>\n");
    out
}
