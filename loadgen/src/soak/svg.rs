//! The soak as a picture: the router's RSS against time (MiB from zero, so that the eye sees
//! growth at its true size), the warm-up and the drain shaded, each reload as a thin vertical
//! line, the medians of the first and last thirds that the verdict compares, and the highest
//! the last third may reach. Drawn with the proof's plotting pieces.
use std::fmt::Write as _;

use super::report::SoakReport;
use crate::proof::svg::{
    esc, frame, legend_lines, nice_step, open, BOTTOM, H, LEFT, RIGHT, TOP, W,
};

struct Axes {
    t_max: f64,
    mib_max: f64,
}

impl Axes {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t / self.t_max).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }

    fn y(&self, mib: f64) -> f64 {
        H - BOTTOM - (mib / self.mib_max).clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }
}

pub fn plot(report: &SoakReport) -> String {
    let t_max = report
        .samples
        .iter()
        .map(|s| s.t_s)
        .fold(report.duration_s, f64::max)
        .max(1.0);
    let peak = report
        .samples
        .iter()
        .map(|s| s.rss_mib())
        .fold(1.0, f64::max);
    let axes = Axes {
        t_max,
        mib_max: peak * 1.15,
    };
    let title = format!(
        "ganglion soak: router RSS, {} endpoints, {:.0} msgs/s for {} s",
        report.endpoints, report.rate, report.duration_s,
    );
    let verdict = match &report.rss {
        Some(v) => format!(
            "{:.0} % flapping, a reload every {} s; RSS {:.1} → {:.1} MiB (third medians), {:+.1} %: {}; lost {}",
            report.flap_share * 100.0,
            report.reload_every_s,
            v.first_mib,
            v.last_mib,
            100.0 * v.growth_mib() / v.first_mib.max(1e-9),
            if v.flat() { "flat" } else { "GREW" },
            report.lost(),
        ),
        None => "too few samples to judge the memory".to_string(),
    };
    let mut out = String::new();
    open(&mut out, &title, &verdict);
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);

    // Warm-up and drain.
    let shade = |out: &mut String, from: f64, to: f64, fill: &str| {
        if to > from {
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{y0}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#,
                axes.x(from),
                axes.x(to) - axes.x(from),
                y1 - y0
            );
        }
    };
    shade(&mut out, 0.0, report.warmup_s, "#f2f2f2");
    shade(&mut out, report.duration_s, t_max, "#eaf2fb");

    // Grid.
    let step = nice_step(axes.t_max);
    let mut t = 0.0;
    while t <= axes.t_max {
        let x = axes.x(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#e4e4e4"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{t:.0}</text>"#,
            y1 + 18.0
        );
        t += step;
    }
    let step = nice_step(axes.mib_max);
    let mut m = 0.0;
    while m <= axes.mib_max {
        let y = axes.y(m);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#e4e4e4"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{m:.0}</text>"#,
            x0 - 8.0,
            y + 4.0
        );
        m += step;
    }
    frame(
        &mut out,
        (x0, y0, x1, y1),
        "seconds from the start of the load (grey: warm-up, blue: drain)",
        "router RSS (MiB)",
    );

    // Reloads.
    for r in &report.reloads {
        let x = axes.x(r.at_s);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#27ae60" stroke-width="1" stroke-dasharray="3 3"/>"##
        );
    }

    // What the verdict compares.
    if let Some(v) = &report.rss {
        for ((from, to), mib) in [(v.first_s, v.first_mib), (v.last_s, v.last_mib)] {
            let y = axes.y(mib);
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e67e22" stroke-width="3"/>"##,
                axes.x(from),
                axes.x(to)
            );
        }
        let y = axes.y(v.first_mib + v.allowed_mib());
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c0392b" stroke-width="2" stroke-dasharray="6 4"/>"##,
            axes.x(v.last_s.0),
            axes.x(v.last_s.1)
        );
    }

    // The curve.
    let points: Vec<String> = report
        .samples
        .iter()
        .map(|s| format!("{:.1},{:.1}", axes.x(s.t_s), axes.y(s.rss_mib())))
        .collect();
    if points.len() > 1 {
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="#2980b9" stroke-width="2.5"/>"##,
            points.join(" ")
        );
    }
    for s in &report.samples {
        let _ = writeln!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#2980b9"/>"##,
            axes.x(s.t_s),
            axes.y(s.rss_mib())
        );
    }

    let tolerance = report
        .rss
        .as_ref()
        .map(|v| format!("limit (+{:.1} MiB)", v.allowed_mib()))
        .unwrap_or_default();
    let mut legend = vec![
        ("router RSS", "#2980b9", ""),
        ("third medians", "#e67e22", ""),
        ("reload", "#27ae60", "3 3"),
    ];
    if !tolerance.is_empty() {
        legend.push((tolerance.as_str(), "#c0392b", "6 4"));
    }
    let y = legend_lines(&mut out, x1 + 20.0, &legend);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
        x1 + 20.0,
        y + 16.0,
        esc(&format!(
            "{}/{} reloads applied, {} flaps",
            report.reloads_applied(),
            report.reloads.len(),
            report.flaps_sent
        ))
    );
    out.push_str("</svg>\n");
    out
}
