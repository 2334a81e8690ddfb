//! The open-loop driver. A run has a schedule of intended send times fixed in advance
//! ([`schedule`]); one thread sends each message when its time comes, whether or not earlier
//! messages were answered (pipelined on a few connections), reads answers as they come, and
//! joins the fleets' arrival reports ([`observer`]) with its own intended times. Latency is
//! always measured from the intended time, so a router that stalls cannot hide the stall by
//! slowing the sender down (no coordinated omission).
//!
//! The loop wakes on a timerfd armed for the next intended time (nanosecond resolution), so
//! pacing adds tens of microseconds at most, and sends everything that is due on each wake.
pub mod observer;
pub mod schedule;
pub mod sender;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use codecs::{http1, mllp};

use crate::clock::now_ns;
use crate::directory::{Proto, Row};
use crate::gen::{hl7, Dest, Generator, Kind, Mix};
use crate::order::{self, PerKeyOrder};
use crate::poll::{Poller, Timer, READ, READ_WRITE};
use crate::rng::Rng;
use crate::stats::{Latency, RunStats, Window};
use observer::Observer;
use schedule::Arrivals;
use sender::{Answer, Sender, Wire};

/// What one run does.
#[derive(Clone, Debug)]
pub struct DriveConfig {
    /// The MLLP listeners of the router(s) or relay (needed when the mix has HL7v2); the
    /// connections are spread over them in turn (the nodes of a cluster).
    pub mllp: Vec<SocketAddr>,
    /// The ITK (HTTP) listeners (needed when the mix has ITK), spread alike.
    pub itk: Vec<SocketAddr>,
    pub rate: f64,
    pub duration: Duration,
    /// MLLP connections; ITK gets as many.
    pub connections: usize,
    pub mix: Mix,
    pub seed: u64,
    pub arrivals: Arrivals,
    /// Identifies this run's messages (see [`crate::ids`]).
    pub tag: u32,
    /// How long after the last intended send time answers and deliveries are waited for.
    pub drain: Duration,
    /// A label for the progress line; `None` prints none.
    pub progress: Option<String>,
    /// Also count and time each window of this length apart, by intended send time (a soak's
    /// minutes); `None` for a run read as a whole.
    pub window: Option<Duration>,
    /// Give each HL7v2 message one of this many patients (PID-3), send each patient's messages
    /// on one connection, and check that each patient's arrive in the order sent
    /// ([`crate::order`]); `None` leaves the templates' own patients and spreads messages over
    /// the connections in turn.
    pub patients: Option<u32>,
}

const TIMER: u64 = u64::MAX;
const WATCH: u64 = 1 << 40;

/// Bookkeeping per message.
#[derive(Clone, Copy, Default)]
struct Slot {
    sent: bool,
    answered: bool,
    acked: bool,
    arrivals: u16,
    accepted: bool,
    refused: bool,
}

/// Destinations by protocol.
pub struct Targets {
    hl7: Vec<String>,
    itk: Vec<String>,
}

impl Targets {
    pub fn new(rows: &[Row]) -> Targets {
        Targets {
            hl7: rows
                .iter()
                .filter(|r| r.proto == Proto::Mllp)
                .map(Row::facility)
                .collect(),
            itk: rows
                .iter()
                .filter(|r| r.proto == Proto::Itk)
                .map(Row::itk_address)
                .collect(),
        }
    }

    /// The mix without kinds that no endpoint can take.
    pub fn usable(&self, mix: &Mix) -> Mix {
        let mut m = mix.clone();
        if self.itk.is_empty() {
            m = m.without(Kind::Itk);
        }
        if self.hl7.is_empty() {
            m.weights.retain(|(k, _)| k.is_itk());
        }
        m
    }
}

/// Runs one open-loop run. `stop` ends it early (Ctrl-C); the stats then cover what was sent.
pub fn run(
    config: &DriveConfig,
    generator: &Generator,
    targets: &Targets,
    observer: &mut Observer,
    stop: &AtomicBool,
) -> anyhow::Result<RunStats> {
    let mix = targets.usable(&config.mix);
    anyhow::ensure!(
        !mix.weights.is_empty(),
        "no endpoint can take any kind in the mix"
    );
    let duration_ns = config.duration.as_nanos() as u64;
    let offsets = schedule::offsets(
        config.rate,
        duration_ns,
        config.arrivals,
        config.seed ^ u64::from(config.tag),
    );
    let n = offsets.len();
    let mut slots = vec![Slot::default(); n];
    let mut per_key = config
        .patients
        .filter(|&keys| keys > 0)
        .map(|keys| PerKeyOrder::new(n, keys));
    let window_ns = config
        .window
        .map(|w| w.as_nanos() as u64)
        .filter(|&w| w > 0);
    let mut stats = RunStats {
        offered_rate: config.rate,
        duration_s: config.duration.as_secs_f64(),
        scheduled: n as u64,
        windows: match window_ns {
            Some(w) => (0..duration_ns.div_ceil(w))
                .map(|i| Window::starting(i as f64 * w as f64 / 1e9))
                .collect(),
            None => Vec::new(),
        },
        ..RunStats::default()
    };
    let window_of = |seq: u64| -> usize {
        match (window_ns, offsets.get(seq as usize)) {
            (Some(w), Some(&at)) => (at / w) as usize,
            _ => usize::MAX,
        }
    };

    let mut poller = Poller::new(256)?;
    let mut senders: Vec<Sender> = Vec::new();
    let conns = config.connections.max(1);
    if mix.has_hl7() {
        anyhow::ensure!(
            !config.mllp.is_empty(),
            "the mix has HL7v2 but no MLLP target was given"
        );
        senders.extend(Sender::spread(&config.mllp, conns, Wire::Mllp));
    }
    let first_itk = senders.len();
    if mix.has(Kind::Itk) {
        anyhow::ensure!(
            !config.itk.is_empty(),
            "the mix has ITK but no ITK target was given"
        );
        senders.extend(Sender::spread(&config.itk, conns, Wire::Http));
    }
    for (i, s) in senders.iter_mut().enumerate() {
        let conn = sender::connect(s.addr)?;
        poller.add(&conn.tcp, i as u64, READ)?;
        s.conn = Some(conn);
    }
    for (i, w) in observer.watches.iter().enumerate() {
        poller.add(&w.tcp, WATCH + i as u64, READ)?;
    }
    let mut timer = Timer::new()?;
    poller.add(timer.fd(), TIMER, READ)?;

    let mut rng = Rng::derive(config.seed, 0xD21E ^ u64::from(config.tag));
    let start = now_ns() + 20_000_000;
    let last_intended = start + offsets.last().copied().unwrap_or(0);
    let deadline = last_intended + config.drain.as_nanos() as u64;
    let mut next = 0usize;
    let (mut rr_hl7, mut rr_itk) = (0usize, 0usize);
    let mut body = Vec::with_capacity(64 * 1024);
    let mut framed = Vec::with_capacity(64 * 1024);
    let mut dirty: Vec<usize> = Vec::new();
    let mut last_ack = start;
    let mut last_delivery = start;
    let mut window = Latency::new();
    let mut progress = RateLine::new(config.progress.clone(), start);
    let mut stale = 0u64;
    let mut unanswered = 0usize; // sent and not yet answered
    let mut awaiting_delivery = 0usize; // acked and not yet accepted or refused
    let observing = !observer.watches.is_empty();

    loop {
        let now = now_ns();
        // Send everything that is due, in schedule order.
        while next < n && start + offsets[next] <= now && !stop.load(Ordering::Relaxed) {
            let seq = next as u64;
            let intended = start + offsets[next];
            next += 1;
            let kind = mix.pick(&mut rng);
            let Some(template) = generator.variant(kind, &mut rng) else {
                stats.error("kind not generated");
                continue;
            };
            body.clear();
            framed.clear();
            let index = if kind.is_itk() {
                let address = rng.pick(&targets.itk).map(String::as_str).unwrap_or("");
                Generator::write(
                    template,
                    kind,
                    Dest::Itk { address },
                    config.tag,
                    seq,
                    &mut body,
                );
                let action = between(&body, b"<wsa:Action>", b"</wsa:Action>").unwrap_or("");
                let spec = http1::PostSpec {
                    path: crate::directory::ITK_PATH,
                    host: "ganglion",
                    soap_action: action,
                    content_type: "text/xml; charset=utf-8",
                    keep_alive: true,
                };
                let _ = http1::write_post(&mut framed, &spec, &body);
                rr_itk += 1;
                first_itk + rr_itk % conns
            } else {
                let facility = rng.pick(&targets.hl7).map(String::as_str).unwrap_or("");
                Generator::write(
                    template,
                    kind,
                    Dest::Hl7 {
                        application: "",
                        facility,
                    },
                    config.tag,
                    seq,
                    &mut body,
                );
                // A patient's messages keep to one connection: the router owes them their order
                // only as one sender sent them.
                let turn = match per_key.as_mut() {
                    Some(checker) => {
                        let key = rng.below(u64::from(checker.keys())) as u32;
                        checker.sent(seq, key);
                        hl7::set_patient(&mut body, &order::patient_id(key));
                        key as usize
                    }
                    None => {
                        rr_hl7 += 1;
                        rr_hl7
                    }
                };
                mllp::encode(&body, &mut framed);
                turn % conns
            };
            let Some(s) = senders.get_mut(index) else {
                continue;
            };
            if s.conn.is_none() && now >= s.retry_at {
                match sender::connect(s.addr) {
                    Ok(conn) => {
                        let _ = poller.add(&conn.tcp, index as u64, READ);
                        s.writing = false;
                        s.conn = Some(conn);
                    }
                    Err(_) => {
                        s.retry_at = now + 100_000_000;
                        s.fail_over();
                    }
                }
            }
            let Some(conn) = s.conn.as_mut() else {
                stats.error("cannot connect");
                slots[seq as usize].answered = true;
                continue;
            };
            conn.queue(&framed);
            s.outstanding.push_back(seq);
            slots[seq as usize].sent = true;
            unanswered += 1;
            stats.sent += 1;
            if let Some(w) = stats.windows.get_mut(window_of(seq)) {
                w.sent += 1;
            }
            stats.send_lag.record_ns(now.saturating_sub(intended));
            if !dirty.contains(&index) {
                dirty.push(index);
            }
        }
        for index in dirty.drain(..) {
            flush(&mut senders, &mut poller, index);
        }

        let sending_done = next >= n || stop.load(Ordering::Relaxed);
        let now = now_ns();
        if sending_done
            && ((unanswered == 0 && (!observing || awaiting_delivery == 0))
                || now >= deadline
                || stop.load(Ordering::Relaxed))
        {
            break;
        }
        if next < n {
            timer.arm(start + offsets[next])?;
        }
        let events = poller.wait(Some(50))?;
        let now = now_ns();
        for (token, flags) in events {
            if token == TIMER {
                timer.clear();
                continue;
            }
            if token >= WATCH {
                let index = (token - WATCH) as usize;
                let res = observer.read(index, |at, outcome, id| {
                    let Some((tag, seq)) = crate::ids::parse(id) else {
                        return;
                    };
                    let Some(slot) = slots.get_mut(seq as usize).filter(|_| tag == config.tag)
                    else {
                        stale += 1;
                        return;
                    };
                    slot.arrivals = slot.arrivals.saturating_add(1);
                    if slot.arrivals > 1 {
                        stats.duplicates += 1;
                    }
                    if let Some(checker) = per_key.as_mut() {
                        checker.arrived(seq);
                    }
                    let settled_before = slot.accepted || slot.refused;
                    match outcome {
                        b'A' if !slot.accepted => {
                            slot.accepted = true;
                            stats.delivered += 1;
                            last_delivery = last_delivery.max(at);
                            let latency = at.saturating_sub(start + offsets[seq as usize]);
                            stats.delivery.record_ns(latency);
                            if let Some(w) = stats.windows.get_mut(window_of(seq)) {
                                w.delivered += 1;
                                w.delivery.record_ns(latency);
                            }
                        }
                        b'R' => slot.refused = true,
                        _ => {}
                    }
                    if slot.acked && !settled_before && (slot.accepted || slot.refused) {
                        awaiting_delivery = awaiting_delivery.saturating_sub(1);
                    }
                });
                if res.is_err() {
                    poller.delete(&observer.watches[index].tcp);
                }
                continue;
            }
            let index = token as usize;
            let Some(s) = senders.get_mut(index) else {
                continue;
            };
            if flags.contains(crate::poll::Flags::OUT) {
                dirty.push(index);
            }
            let open = s.receive(config.tag, |seq, answer| {
                let Some(slot) = slots.get_mut(seq as usize) else {
                    return;
                };
                if slot.answered {
                    return;
                }
                slot.answered = true;
                unanswered = unanswered.saturating_sub(1);
                match answer {
                    Answer::Ok => {
                        slot.acked = true;
                        stats.acked += 1;
                        let latency = now.saturating_sub(start + offsets[seq as usize]);
                        stats.ack.record_ns(latency);
                        if let Some(w) = stats.windows.get_mut(window_of(seq)) {
                            w.acked += 1;
                            w.ack.record_ns(latency);
                        }
                        window.record_ns(latency);
                        last_ack = last_ack.max(now);
                        if !(slot.accepted || slot.refused) {
                            awaiting_delivery += 1;
                        }
                    }
                    Answer::Failed(kind) => stats.error(kind),
                }
            });
            if !open {
                if let Some(conn) = s.conn.take() {
                    poller.delete(&conn.tcp);
                }
                for seq in s.outstanding.drain(..) {
                    if let Some(slot) = slots.get_mut(seq as usize) {
                        if !slot.answered {
                            slot.answered = true;
                            unanswered = unanswered.saturating_sub(1);
                            stats.error("connection closed before the answer");
                        }
                    }
                }
                s.retry_at = now + 100_000_000;
            }
        }
        progress.tick(now, next, &stats, &mut window);
    }
    progress.finish(&stats);

    for slot in &slots {
        if slot.sent && !slot.answered {
            stats.error("no answer before the drain deadline");
        }
        if slot.acked && observing && !slot.accepted && !slot.refused {
            stats.lost += 1;
        }
        if slot.refused {
            stats.refused_by_endpoint += 1;
        }
    }
    if stale > 0 {
        stats
            .errors
            .insert("late arrivals of earlier runs (ignored)".into(), 0);
    }
    stats.ack_span_s = (last_ack.saturating_sub(start)) as f64 / 1e9;
    stats.delivery_span_s = (last_delivery.saturating_sub(start)) as f64 / 1e9;
    stats.out_of_order = per_key.map_or(0, |checker| checker.counts.out_of_order);
    for s in &mut senders {
        if let Some(conn) = s.conn.take() {
            poller.delete(&conn.tcp);
        }
    }
    for w in &observer.watches {
        poller.delete(&w.tcp);
    }
    Ok(stats)
}

fn flush(senders: &mut [Sender], poller: &mut Poller, index: usize) {
    let Some(s) = senders.get_mut(index) else {
        return;
    };
    let Some(conn) = s.conn.as_mut() else { return };
    let _ = conn.flush();
    let want = conn.wants_write();
    if want != s.writing {
        s.writing = want;
        let _ = poller.modify(
            &conn.tcp,
            index as u64,
            if want { READ_WRITE } else { READ },
        );
    }
}

fn between<'a>(hay: &'a [u8], open: &[u8], close: &[u8]) -> Option<&'a str> {
    let start = memchr::memmem::find(hay, open)? + open.len();
    let len = memchr::memmem::find(hay.get(start..)?, close)?;
    std::str::from_utf8(hay.get(start..start + len)?).ok()
}

/// The live rate line of a drive (shown through [`crate::progress::Progress`]).
struct RateLine {
    label: Option<String>,
    out: crate::progress::Progress,
    start: u64,
    next: u64,
    every: u64,
    last_sent: u64,
    last_at: u64,
}

impl RateLine {
    fn new(label: Option<String>, start: u64) -> RateLine {
        let every = 500_000_000;
        RateLine {
            out: crate::progress::Progress::new(label.is_some()),
            label,
            start,
            next: start + every,
            every,
            last_sent: 0,
            last_at: start,
        }
    }

    fn tick(&mut self, now: u64, _next: usize, stats: &RunStats, window: &mut Latency) {
        let Some(label) = &self.label else { return };
        if now < self.next {
            return;
        }
        let elapsed = (now - self.last_at) as f64 / 1e9;
        let rate = (stats.sent - self.last_sent) as f64 / elapsed.max(1e-9);
        let p = window.percentiles();
        let line = format!(
            "{label} t={:.0}s rate={rate:.0}/s sent={} acked={} delivered={} errors={} ack p50={} p99={}",
            (now.saturating_sub(self.start)) as f64 / 1e9,
            stats.sent,
            stats.acked,
            stats.delivered,
            stats.error_count(),
            crate::units::fmt_us(p.p50),
            crate::units::fmt_us(p.p99),
        );
        self.out.show(&line);
        *window = Latency::new();
        self.last_sent = stats.sent;
        self.last_at = now;
        self.next = now + self.every;
    }

    fn finish(&mut self, _stats: &RunStats) {
        self.out.finish();
    }
}
