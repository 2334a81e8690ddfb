//! `loadgen soak`: is ganglion safe to leave running? The proof's set-up (the TLS endpoint
//! fleet, `ganglion run` durable and prewarmed, the open-loop driver and its loss accounting)
//! holds one rate for a long time while a share of the endpoints flaps ([`flap`]) and the
//! routing is reloaded every minute ([`reload`]); the router's memory and load are sampled
//! every few seconds ([`sample`]). At the end the flapping stops and the run drains until
//! everything acknowledged has been delivered (bounded). The verdicts ([`report`]): nothing
//! acknowledged lost, the RSS flat, every reload applied.
pub mod flap;
pub mod reload;
pub mod report;
pub mod sample;
pub mod svg;

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::drive::Targets;
use crate::gen::Generator;
use crate::progress::Progress;
use crate::proof::{self, ProofConfig};
use flap::{FlapConfig, Flapper};
use reload::Reloader;
pub use report::SoakReport;
use sample::{Sample, Sampler};

#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// The set-up and the traffic, as for a proof: endpoints, rate, `duration` (the load),
    /// mix, seed, the router's options, work directory, `json` and `svg`.
    pub base: ProofConfig,
    pub flap: FlapConfig,
    /// Time between reloads; zero for none.
    pub reload_every: Duration,
    pub sample_every: Duration,
    /// Samples before this (from the start of the load) are not judged.
    pub warmup: Duration,
    /// How much the RSS of the last third may exceed that of the first: a fraction of it, or
    /// this many MiB, whichever is larger.
    pub rss_tolerance: f64,
    pub rss_tolerance_mib: f64,
    /// Longest wait after the last send for answers and deliveries.
    pub drain: Duration,
    /// Length of the windows of the per-minute table.
    pub window: Duration,
}

/// What runs beside the driver: the flapping, the reloads and the samples, on one thread
/// that wakes for whichever is due next.
struct Timeline {
    flapper: Flapper,
    reloader: Reloader,
    sampler: Sampler,
    samples: Vec<Sample>,
}

impl Timeline {
    fn run(
        mut self,
        config: &SoakConfig,
        start: Instant,
        finished: &AtomicBool,
        stop: &AtomicBool,
    ) -> Timeline {
        let load = config.base.duration;
        let every = config.reload_every;
        let mut next_reload = (!every.is_zero()).then_some(every);
        let mut next_sample = config.sample_every;
        let mut flapping = true;
        loop {
            let now = start.elapsed();
            let load_over = now >= load || stop.load(Ordering::Relaxed);
            if flapping && load_over {
                self.flapper.end();
                flapping = false;
            } else if flapping {
                self.flapper.play(now);
            } else {
                self.flapper.flush();
            }
            match next_reload {
                Some(at) if at >= load || load_over => next_reload = None,
                Some(mut at) if at <= now => {
                    if let Err(e) = self.reloader.trigger(at.as_secs_f64()) {
                        eprintln!("soak: could not ask for a reload: {e:#}");
                    }
                    // Should this thread have been held up, skip what it missed rather than
                    // reload twice in a row.
                    while at <= now {
                        at += every;
                    }
                    next_reload = Some(at);
                }
                _ => {}
            }
            self.reloader.poll();
            let done = finished.load(Ordering::Relaxed);
            let last_t = self.samples.last().map_or(-1.0, |s| s.t_s);
            if now >= next_sample || (done && now.as_secs_f64() - last_t >= 1.0) {
                let s = self.sampler.take(now, self.flapper.down_now(), now >= load);
                let line = sample_line(&s, self.reloader.applied(), self.flapper.downs_at.len());
                Progress::new(config.base.progress).result(&line);
                self.samples.push(s);
                next_sample += config.sample_every;
            }
            if done {
                break;
            }
            let mut wake = next_sample;
            if flapping {
                wake = wake.min(self.flapper.next_at().unwrap_or(load)).min(load);
            }
            if let Some(at) = next_reload {
                wake = wake.min(at);
            }
            let nap = wake
                .saturating_sub(start.elapsed())
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            std::thread::sleep(nap);
        }
        self.reloader.finish(Duration::from_secs(10));
        self
    }
}

/// One sample as a line of the soak's running log (a line each, kept: it is the time series).
fn sample_line(s: &Sample, reloads: usize, flaps: usize) -> String {
    let line = format!(
        "[soak] t={:.0}s rss={:.1}MiB router={:.2} cores queued={} down={} flaps={flaps} reloads={reloads} loadavg={:.2}",
        s.t_s,
        s.rss_mib(),
        s.router_cores,
        s.queued.map_or("-".to_string(), |q| q.to_string()),
        s.endpoints_down,
        s.loadavg
    );
    line
}

/// The whole soak. Returns the report; the caller prints it and sets the exit status.
pub fn run(config: &SoakConfig, stop: &AtomicBool) -> anyhow::Result<SoakReport> {
    let report = proof::in_workdir(&config.base, "soak", |workdir, nofile| {
        run_in(config, workdir, nofile, stop)
    })?;
    if let Some(path) = &config.base.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &config.base.svg {
        std::fs::write(path, svg::plot(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn run_in(
    config: &SoakConfig,
    workdir: &Path,
    nofile: u64,
    stop: &AtomicBool,
) -> anyhow::Result<SoakReport> {
    let base = &config.base;
    let (pki, mut fleet) = proof::pki_and_fleet(base, workdir, nofile)?;
    let targets = Targets::new(&fleet.rows);
    let generator = Generator::new(base.seed, &base.mix);
    let head = proof::routes_head(workdir, pki.as_ref(), &fleet.directory);
    let mut subject = proof::start_ganglion(base, workdir, &reload::routes(&head, 0))?;
    let egress_connections = proof::prewarm(base, &mut fleet);
    let pid = subject.proc_.pid();
    let rss_start_bytes = crate::sys::status_bytes(pid, "VmRSS").unwrap_or(0);

    let plan = flap::plan(base.endpoints, &config.flap, base.duration, base.seed);
    let flapping_endpoints = plan.endpoints.len();
    let streams = fleet
        .observer
        .watches
        .iter()
        .map(|w| w.tcp.try_clone())
        .collect::<Result<Vec<TcpStream>, _>>()
        .context("cloning the fleet's control streams")?;
    let mut sampler = Sampler::new(pid, subject.proc_.addr("admin")?);
    let start = Instant::now();
    let first = sampler.take(Duration::ZERO, 0, false);
    let timeline = Timeline {
        flapper: Flapper::new(plan, streams),
        reloader: Reloader::new(
            head,
            workdir.join("routes.toml"),
            workdir.join("ganglion.log"),
            pid,
        ),
        sampler,
        samples: vec![first],
    };
    let finished = AtomicBool::new(false);
    let mut drive = proof::drive_config(base, &subject, base.rate, base.duration, 0);
    drive.drain = config.drain;
    drive.window = Some(config.window);
    drive.progress = base.progress.then(|| format!("[soak {:.0}/s]", base.rate));
    let (step, ended, timeline) = std::thread::scope(|scope| {
        let side = scope.spawn(|| timeline.run(config, start, &finished, stop));
        let step = proof::measure(
            &base.slo, &subject, &mut fleet, &generator, &targets, &drive, stop,
        );
        let ended = start.elapsed();
        finished.store(true, Ordering::Relaxed);
        (step, ended, side.join())
    });
    let drain_s = ended.saturating_sub(base.duration).as_secs_f64();
    let timeline = timeline.map_err(|_| anyhow::anyhow!("the soak's timeline thread panicked"))?;
    let step = step?;
    // The fleet's latest counts: the flaps it did, and that every endpoint is back.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        fleet.observer.pump();
        if fleet.observer.down() == 0 || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    fleet.observer.pump();
    let rss_peak_bytes = crate::sys::status_bytes(pid, "VmHWM").unwrap_or(0);
    if !subject.proc_.stop(Duration::from_secs(20)) {
        eprintln!("ganglion did not stop on SIGTERM within 20 s; killed");
    }
    for p in &mut fleet.procs {
        p.stop(Duration::from_secs(5));
    }

    let warmup_s = config.warmup.as_secs_f64();
    let duration_s = base.duration.as_secs_f64();
    let rss = report::rss_verdict(
        &timeline.samples,
        warmup_s,
        duration_s,
        (config.rss_tolerance, config.rss_tolerance_mib),
    );
    Ok(SoakReport {
        endpoints: base.endpoints,
        tls: base.tls,
        durable: base.durable,
        cores: crate::sys::cores(),
        router_pinned: base.pin,
        mix: base.mix.describe(),
        seed: base.seed,
        router_args: base.router_args.clone(),
        rate: base.rate,
        duration_s,
        flap_share: config.flap.share,
        flapping_endpoints,
        flap_down: config.flap.down.to_string(),
        flap_up: config.flap.up.to_string(),
        reload_every_s: config.reload_every.as_secs_f64(),
        warmup_s,
        window_s: config.window.as_secs_f64(),
        slo_p99_us: base.slo.p99_us,
        step,
        egress_connections,
        rss_start_bytes,
        rss_peak_bytes,
        samples: timeline.samples,
        reloads: timeline.reloader.records,
        flaps_sent: timeline.flapper.downs_at.len(),
        flaps_done: fleet.observer.flaps(),
        downs_at_s: timeline
            .flapper
            .downs_at
            .iter()
            .map(Duration::as_secs_f64)
            .collect(),
        most_down: timeline.flapper.most_down,
        down_at_end: fleet.observer.down(),
        drain_s,
        drain_limit_s: config.drain.as_secs_f64(),
        rss,
    })
}
