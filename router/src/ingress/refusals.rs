//! One log event per refusal, rate-limited per peer.
//!
//! Whatever ingress refuses (a message no route takes, a rule's reject, an unreadable or
//! oversized message, an ITK client fault, one it cannot store now, bytes that are not MLLP, a
//! connection over the listener's limit) is logged once, as fields: `listener`, `peer`,
//! `reason` (the kind), `control_id`, `rule`, `position` where they apply and `detail`; never
//! message content unless `--log-bodies` (then `body`, see [`crate::logging`]). A peer that keeps being refused for the
//! same reason gets [`BURST`] lines and then, once per [`WINDOW`], a summary ("in: peer
//! 10.0.0.7: 2,950 more refusals like this (no route) in the last 10 s"), so one broken or
//! hostile sender cannot flood the log and bury the lines that matter.
//!
//! One [`Refusals`] per shard: no locks, and nothing is allocated unless a peer is refused for
//! the first time in a window (its entry) or a summary is written. Peers are told apart by IP
//! address (a flood of connections comes from many ports). At most [`MAX_PEERS`] are tracked;
//! refusals of further peers are counted together. Time is passed in ([`Refusals::note_at`],
//! [`Refusals::flush_at`]) so the limiter is tested without sleeping; a timer task runs only
//! while some peer is being tracked.
use super::cutoff::Cutoff;
use crate::metrics::listener::ListenerStats;
use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a peer's count runs before it is summarised.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines logged for one peer and reason per window before they are only counted.
pub const BURST: u32 = 5;
/// Peers tracked at once per shard.
pub const MAX_PEERS: usize = 1024;
/// How often the timer looks for windows that ended.
const TICK: Duration = Duration::from_secs(1);

/// Why ingress refused a message or a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No route takes the message (`unrouted = "reject"`).
    NoRoute,
    /// A route's `reject`.
    Rejected,
    /// The message cannot be read (HL7v2 AE, ITK Client fault).
    Unreadable,
    /// Over the listener's `max_message_bytes`.
    TooLarge,
    /// It could not be stored now (disk budget, a failed write): the sender is told to try
    /// again later.
    NotStored,
    /// Bytes outside an MLLP frame: the connection is closed.
    NotMllp,
    /// An HTTP request ITK cannot take (method, framing).
    BadRequest,
    /// The listener already holds `max_connections`.
    ConnectionLimit,
    /// Closed at a limit before the sender was done (a handshake or first byte too late, more
    /// unfinished input than its share or the budget allows).
    Cutoff(Cutoff),
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoRoute => "no route",
            Refusal::Rejected => "rejected by a rule",
            Refusal::Unreadable => "unreadable",
            Refusal::TooLarge => "too large",
            Refusal::NotStored => "not stored",
            Refusal::NotMllp => "not MLLP",
            Refusal::BadRequest => "bad request",
            Refusal::ConnectionLimit => "connection limit",
            Refusal::Cutoff(cutoff) => cutoff.label(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A control id (MSH-10, an ITK tracking id) as it may appear in a log: printable ASCII,
/// everything else escaped (a sender must not be able to write lines or colours into the log),
/// at most 64 bytes, `-` when empty.
pub struct ControlId<'a>(pub &'a [u8]);

impl fmt::Display for ControlId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MOST: usize = 64;
        if self.0.is_empty() {
            return f.write_str("-");
        }
        let shown = self.0.get(..MOST).unwrap_or(self.0);
        write!(f, "{}", shown.escape_ascii())?;
        if shown.len() < self.0.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// What is logged of one refusal besides its peer, listener and kind.
#[derive(Clone, Copy)]
pub struct Detail<'a> {
    /// What was wrong, in words, with its place when there is one; never message content.
    pub why: &'a dyn fmt::Display,
    /// The refused HL7v2 message's control id (MSH-10).
    pub control_id: Option<&'a [u8]>,
    /// The refused ITK message's tracking id.
    pub tracking_id: Option<&'a [u8]>,
    /// The rule that rejected the message.
    pub rule: Option<&'a str>,
    /// The byte offset in the message where it went wrong.
    pub position: Option<usize>,
    /// The refused message, logged only with `--log-bodies`.
    pub body: Option<&'a [u8]>,
}

impl<'a> Detail<'a> {
    /// A refusal that is not about one message (a connection, bytes outside a frame).
    pub fn why(why: &'a dyn fmt::Display) -> Detail<'a> {
        Detail {
            why,
            control_id: None,
            tracking_id: None,
            rule: None,
            position: None,
            body: None,
        }
    }

    /// A refused ITK message: its tracking id and bytes.
    pub fn itk(tracking_id: &'a [u8], body: &'a [u8], why: &'a dyn fmt::Display) -> Detail<'a> {
        Detail {
            tracking_id: Some(tracking_id),
            body: Some(body),
            ..Detail::why(why)
        }
    }

    /// A refused HL7v2 message: its control id and bytes.
    pub fn message(control_id: &'a [u8], body: &'a [u8], why: &'a dyn fmt::Display) -> Detail<'a> {
        Detail {
            control_id: Some(control_id),
            body: Some(body),
            ..Detail::why(why)
        }
    }

    pub fn rule(self, rule: Option<&'a str>) -> Detail<'a> {
        Detail { rule, ..self }
    }

    pub fn at(self, position: usize) -> Detail<'a> {
        Detail {
            position: Some(position),
            ..self
        }
    }
}

/// What [`Refusals::note_at`] did with a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    Logged,
    /// Counted for the peer's next summary.
    Counted,
}

/// Refusals not logged one by one, reported when their window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub listener: Arc<str>,
    /// `None`: peers beyond [`MAX_PEERS`], counted together.
    pub peer: Option<IpAddr>,
    pub kind: Refusal,
    pub count: u64,
    pub over: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.over.as_secs_f64().round();
        match self.peer {
            Some(peer) => write!(
                f,
                "{}: peer {peer}: {} more refusals like this ({}) in the last {secs} s",
                self.listener,
                Thousands(self.count),
                self.kind
            ),
            None => write!(
                f,
                "{}: {} more refusals of other peers (more than {MAX_PEERS} refused at once) \
                 in the last {secs} s",
                self.listener,
                Thousands(self.count)
            ),
        }
    }
}

impl Summary {
    /// The summary as an event: the count in the message (as the one-by-one lines read),
    /// and as `suppressed` for machines.
    fn log(&self) {
        let secs = self.over.as_secs_f64().round();
        let count = Thousands(self.count);
        match self.peer {
            Some(peer) => tracing::warn!(
                listener = &*self.listener,
                peer = %peer,
                reason = self.kind.as_str(),
                suppressed = self.count,
                "{count} more refusals like this ({}) in the last {secs} s",
                self.kind
            ),
            None => tracing::warn!(
                listener = &*self.listener,
                reason = self.kind.as_str(),
                suppressed = self.count,
                "{count} more refusals of other peers (more than {MAX_PEERS} refused at once) \
                 in the last {secs} s"
            ),
        }
    }
}

/// `2950` as `2,950`.
struct Thousands(u64);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// One peer's refusals for one reason in the current window.
struct Tally {
    since: Instant,
    logged: u32,
    counted: u64,
    listener: Arc<str>,
}

impl Tally {
    fn new(now: Instant, listener: &Arc<str>) -> Tally {
        Tally {
            since: now,
            logged: 0,
            counted: 0,
            listener: Arc::clone(listener),
        }
    }

    fn admit(&mut self) -> Noted {
        if self.logged < BURST {
            self.logged += 1;
            Noted::Logged
        } else {
            self.counted += 1;
            Noted::Counted
        }
    }

    /// At the end of its window: the summary to write, if any, and whether to keep tracking
    /// (a peer that was still being refused starts its next window with summaries only).
    fn close(&mut self, now: Instant, peer: Option<IpAddr>, kind: Refusal) -> Option<Summary> {
        let summary = (self.counted > 0).then(|| Summary {
            listener: Arc::clone(&self.listener),
            peer,
            kind,
            count: self.counted,
            over: now.saturating_duration_since(self.since),
        });
        self.since = now;
        self.logged = BURST;
        self.counted = 0;
        summary
    }
}

/// A shard's refusal log.
#[derive(Default)]
pub struct Refusals {
    tallies: RefCell<HashMap<(IpAddr, Refusal), Tally>>,
    /// Refusals of peers that found no room in `tallies`, under the reason of the first.
    others: RefCell<Option<(Refusal, Tally)>>,
    ticking: Cell<bool>,
    /// Which shard's counts [`Refusals::note`] adds to.
    shard: usize,
}

impl Refusals {
    pub fn new() -> Refusals {
        Refusals::default()
    }

    /// The refusals of shard `shard`.
    pub fn on_shard(shard: usize) -> Refusals {
        Refusals {
            shard,
            ..Refusals::default()
        }
    }

    /// Counts a refusal of `peer` on `listener` (for `/metrics`, by reason) and logs it
    /// (subject to the per-peer limit).
    pub fn note(
        self: &Rc<Self>,
        peer: SocketAddr,
        listener: &ListenerStats,
        kind: Refusal,
        detail: Detail<'_>,
    ) {
        listener.shard(self.shard).refused(kind);
        self.note_at(Instant::now(), peer, &listener.name, kind, detail);
        if !self.ticking.get() {
            self.ticking.set(true);
            monoio::spawn(Rc::clone(self).tick());
        }
    }

    /// [`Refusals::note`] at a given time, without the timer.
    pub fn note_at(
        &self,
        now: Instant,
        peer: SocketAddr,
        listener: &Arc<str>,
        kind: Refusal,
        detail: Detail<'_>,
    ) -> Noted {
        let mut tallies = self.tallies.borrow_mut();
        let key = (peer.ip(), kind);
        let room = tallies.len() < MAX_PEERS;
        let noted = match tallies.entry(key) {
            Entry::Occupied(mut tally) => tally.get_mut().admit(),
            Entry::Vacant(slot) if room => slot.insert(Tally::new(now, listener)).admit(),
            Entry::Vacant(_) => {
                let mut others = self.others.borrow_mut();
                let (_, tally) = others.get_or_insert_with(|| {
                    let mut tally = Tally::new(now, listener);
                    tally.logged = BURST;
                    (kind, tally)
                });
                tally.admit()
            }
        };
        if noted == Noted::Logged {
            tracing::warn!(
                listener = &**listener,
                peer = %peer,
                reason = kind.as_str(),
                control_id = detail.control_id.map(|c| ControlId(c).to_string()),
                tracking_id = detail.tracking_id.map(|c| ControlId(c).to_string()),
                rule = detail.rule,
                position = detail.position,
                detail = detail.why.to_string(),
                body = detail.body.and_then(crate::logging::body),
                "refused: {kind}"
            );
        }
        noted
    }

    /// Ends the windows that are over by `now`: logs (and returns) their summaries, and
    /// forgets peers that were not refused in their last window.
    pub fn flush_at(&self, now: Instant) -> Vec<Summary> {
        let mut summaries = Vec::new();
        let due = |tally: &Tally| now.saturating_duration_since(tally.since) >= WINDOW;
        self.tallies.borrow_mut().retain(|&(peer, kind), tally| {
            if !due(tally) {
                return true;
            }
            // Kept only while still being refused: a quiet window forgets the peer.
            let summary = tally.close(now, Some(peer), kind);
            let keep = summary.is_some();
            summaries.extend(summary);
            keep
        });
        let mut others = self.others.borrow_mut();
        if let Some((kind, tally)) = others.as_mut().filter(|(_, t)| due(t)) {
            summaries.extend(tally.close(now, None, *kind));
            *others = None;
        }
        for summary in &summaries {
            summary.log();
        }
        summaries
    }

    /// Whether any peer is being tracked.
    pub fn is_idle(&self) -> bool {
        self.tallies.borrow().is_empty() && self.others.borrow().is_none()
    }

    /// Writes summaries as windows end, until no peer is tracked.
    async fn tick(self: Rc<Self>) {
        while !self.is_idle() {
            monoio::time::sleep(TICK).await;
            self.flush_at(Instant::now());
        }
        self.ticking.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: Detail<'static> = Detail {
        why: &"x",
        control_id: None,
        tracking_id: None,
        rule: None,
        position: None,
        body: None,
    };

    fn peer(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    #[test]
    fn a_flood_gets_a_few_lines_then_one_summary_per_window() {
        let refusals = Refusals::new();
        let listener: Arc<str> = Arc::from("in");
        let t0 = Instant::now();
        let noted: Vec<Noted> = (0..3000u64)
            .map(|i| {
                let at = t0 + Duration::from_millis(i);
                // Many ports of one host are one peer.
                refusals.note_at(at, peer(7, i as u16), &listener, Refusal::NoRoute, X)
            })
            .collect();
        let logged = noted.iter().filter(|&&n| n == Noted::Logged).count();
        assert_eq!(logged, BURST as usize);
        // Another reason, and another peer, have limits of their own.
        let other = refusals.note_at(t0, peer(7, 1), &listener, Refusal::TooLarge, X);
        assert_eq!(other, Noted::Logged);
        assert_eq!(
            refusals.note_at(t0, peer(8, 1), &listener, Refusal::NoRoute, X),
            Noted::Logged
        );
        assert!(refusals.flush_at(t0 + WINDOW / 2).is_empty());
        let summaries = refusals.flush_at(t0 + WINDOW);
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert_eq!(summaries[0].count, 3000 - u64::from(BURST));
        assert_eq!(
            summaries[0].to_string(),
            "in: peer 10.0.0.7: 2,995 more refusals like this (no route) in the last 10 s"
        );
        // Still flooding: the next window is summaries only.
        let t1 = t0 + WINDOW;
        for i in 0..10 {
            let at = t1 + Duration::from_millis(i);
            assert_eq!(
                refusals.note_at(at, peer(7, 9), &listener, Refusal::NoRoute, X),
                Noted::Counted
            );
        }
        let summaries = refusals.flush_at(t1 + WINDOW);
        assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 10);
        // A quiet window forgets the peer; the next refusal is logged again.
        assert!(refusals.flush_at(t1 + WINDOW * 2).is_empty());
        assert!(refusals.is_idle());
        let later = t1 + WINDOW * 3;
        assert_eq!(
            refusals.note_at(later, peer(7, 9), &listener, Refusal::NoRoute, X),
            Noted::Logged
        );
    }

    #[test]
    fn peers_beyond_the_limit_are_counted_together() {
        let refusals = Refusals::new();
        let listener: Arc<str> = Arc::from("in");
        let t0 = Instant::now();
        for i in 0..MAX_PEERS + 100 {
            let ip = std::net::Ipv6Addr::from(i as u128);
            let peer = SocketAddr::from((ip, 1));
            refusals.note_at(t0, peer, &listener, Refusal::ConnectionLimit, X);
        }
        assert_eq!(refusals.tallies.borrow().len(), MAX_PEERS);
        let summaries = refusals.flush_at(t0 + WINDOW);
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert_eq!((summaries[0].peer, summaries[0].count), (None, 100));
        assert!(refusals.flush_at(t0 + WINDOW * 2).is_empty());
        assert!(refusals.is_idle());
    }

    #[test]
    fn control_ids_cannot_write_into_the_log() {
        assert_eq!(ControlId(b"C1").to_string(), "C1");
        assert_eq!(ControlId(b"").to_string(), "-");
        assert_eq!(ControlId(b"a\nb\x1b[31m").to_string(), "a\\nb\\x1b[31m");
        let long = [b'x'; 100];
        assert_eq!(ControlId(&long).to_string(), format!("{}…", "x".repeat(64)));
    }

    #[test]
    fn thousands() {
        for (n, s) in [(0, "0"), (999, "999"), (1000, "1,000"), (2950, "2,950")] {
            assert_eq!(Thousands(n).to_string(), s);
        }
        assert_eq!(Thousands(1_234_567).to_string(), "1,234,567");
    }
}
