//! Which endpoints flap and when: a share of the fleet, chosen from the seed, each going down
//! and coming back over and over for the whole load, with its own random down and up times.
//! Each endpoint starts at a random point of its first cycle, so the fleet is in its steady
//! state from the first second (at any time about `down / (down + up)` of the flapping
//! endpoints are down), not all going down together.
//!
//! The plan is fixed before the run; [`Flapper`] plays it, telling the fleet processes over
//! their control streams (`down <index>`, `up <index>`, see `fleet::report::Command`).
use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::fleet::report::Command;
use crate::rng::Rng;

/// A range of durations, each drawn uniformly from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub min: Duration,
    pub max: Duration,
}

impl Span {
    fn draw(&self, rng: &mut Rng) -> Duration {
        let (lo, hi) = (self.min.as_nanos() as u64, self.max.as_nanos() as u64);
        Duration::from_nanos(lo + rng.below(hi.saturating_sub(lo) + 1))
    }

    fn mean_s(&self) -> f64 {
        (self.min.as_secs_f64() + self.max.as_secs_f64()) / 2.0
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{} s", self.min.as_secs_f64(), self.max.as_secs_f64())
    }
}

/// What flaps: the share of the fleet, and how long an endpoint stays down and up.
#[derive(Clone, Copy, Debug)]
pub struct FlapConfig {
    /// Fraction of the endpoints that flap (0.05: 5 %).
    pub share: f64,
    pub down: Span,
    pub up: Span,
}

impl FlapConfig {
    /// The fraction of the flapping endpoints expected to be down at any time.
    pub fn down_fraction(&self) -> f64 {
        let (d, u) = (self.down.mean_s(), self.up.mean_s());
        if d + u > 0.0 {
            d / (d + u)
        } else {
            0.0
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// From the start of the load.
    pub at: Duration,
    pub endpoint: usize,
    pub down: bool,
}

/// The flapping endpoints and their events in time order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub endpoints: Vec<usize>,
    pub events: Vec<Event>,
}

/// The plan for `total` endpoints over `until`, from `seed` alone.
pub fn plan(total: usize, config: &FlapConfig, until: Duration, seed: u64) -> Plan {
    let mut rng = Rng::derive(seed, 0xF1A9);
    let count = ((total as f64 * config.share.clamp(0.0, 1.0)).round() as usize).min(total);
    // A partial Fisher-Yates shuffle: the first `count` of a random permutation.
    let mut all: Vec<usize> = (0..total).collect();
    for i in 0..count {
        let j = i + rng.below((total - i) as u64) as usize;
        all.swap(i, j);
    }
    let mut endpoints: Vec<usize> = all.into_iter().take(count).collect();
    endpoints.sort_unstable();
    let mut events = Vec::new();
    for &endpoint in &endpoints {
        // Start at a random point of a first cycle: down for the rest of its down time, or up
        // for the rest of its up time.
        let (down, up) = (config.down.draw(&mut rng), config.up.draw(&mut rng));
        let cycle = (down + up).as_nanos() as u64;
        let phase = Duration::from_nanos(rng.below(cycle.max(1)));
        let mut t = if phase < down {
            events.push(Event {
                at: Duration::ZERO,
                endpoint,
                down: true,
            });
            let back = down - phase;
            if back >= until {
                continue;
            }
            events.push(Event {
                at: back,
                endpoint,
                down: false,
            });
            back + up
        } else {
            down + up - phase
        };
        while t < until {
            events.push(Event {
                at: t,
                endpoint,
                down: true,
            });
            let back = t + config.down.draw(&mut rng);
            if back >= until {
                break;
            }
            events.push(Event {
                at: back,
                endpoint,
                down: false,
            });
            t = back + config.up.draw(&mut rng);
        }
    }
    events.sort_by_key(|e| (e.at, e.endpoint, e.down));
    Plan { endpoints, events }
}

/// Plays a plan: sends each event to every fleet process (each ignores the endpoints it does
/// not serve) and keeps track of what is down. Writes never block the caller: what a control
/// stream cannot take now stays queued for the next [`Flapper::flush`].
pub struct Flapper {
    plan: Plan,
    next: usize,
    streams: Vec<(TcpStream, Vec<u8>)>,
    down: BTreeSet<usize>,
    /// Start of each down event sent (for the per-minute table).
    pub downs_at: Vec<Duration>,
    /// The most endpoints down at once.
    pub most_down: usize,
}

impl Flapper {
    /// `streams` are the fleet processes' control streams (clones of the driver's).
    pub fn new(plan: Plan, streams: Vec<TcpStream>) -> Flapper {
        Flapper {
            plan,
            next: 0,
            streams: streams.into_iter().map(|s| (s, Vec::new())).collect(),
            down: BTreeSet::new(),
            downs_at: Vec::new(),
            most_down: 0,
        }
    }

    /// When the next event is due.
    pub fn next_at(&self) -> Option<Duration> {
        self.plan.events.get(self.next).map(|e| e.at)
    }

    /// Sends every event due by `elapsed`.
    pub fn play(&mut self, elapsed: Duration) {
        while let Some(e) = self.plan.events.get(self.next).copied() {
            if e.at > elapsed {
                break;
            }
            self.next += 1;
            if e.down {
                if self.down.insert(e.endpoint) {
                    self.downs_at.push(e.at);
                    self.send(Command::Down(e.endpoint));
                }
            } else if self.down.remove(&e.endpoint) {
                self.send(Command::Up(e.endpoint));
            }
        }
        self.most_down = self.most_down.max(self.down.len());
        self.flush();
    }

    /// Ends the flapping: every endpoint that is down comes back, and no event follows.
    pub fn end(&mut self) {
        self.next = self.plan.events.len();
        for endpoint in std::mem::take(&mut self.down) {
            self.send(Command::Up(endpoint));
        }
        self.flush();
    }

    pub fn down_now(&self) -> usize {
        self.down.len()
    }

    /// Whether every command has been written.
    pub fn flushed(&self) -> bool {
        self.streams.iter().all(|(_, out)| out.is_empty())
    }

    fn send(&mut self, command: Command) {
        let line = command.line();
        for (_, out) in &mut self.streams {
            out.extend_from_slice(line.as_bytes());
        }
    }

    /// Writes what each control stream takes now (they are non-blocking: the driver reads the
    /// same sockets); the rest waits for the next call.
    pub fn flush(&mut self) {
        for (tcp, out) in &mut self.streams {
            while !out.is_empty() {
                match tcp.write(out) {
                    Ok(0) => break,
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FlapConfig {
        FlapConfig {
            share: 0.05,
            down: Span {
                min: Duration::from_secs(5),
                max: Duration::from_secs(20),
            },
            up: Span {
                min: Duration::from_secs(20),
                max: Duration::from_secs(60),
            },
        }
    }

    #[test]
    fn a_seeded_share_of_the_fleet_alternates_down_and_up_within_the_spans() {
        let until = Duration::from_secs(600);
        let p = plan(28_000, &config(), until, 1);
        assert_eq!(p.endpoints.len(), 1_400);
        assert!(p.endpoints.windows(2).all(|w| w[0] < w[1]));
        assert!(p.endpoints.iter().all(|&e| e < 28_000));
        assert_eq!(p.events, plan(28_000, &config(), until, 1).events);
        assert_ne!(p.endpoints, plan(28_000, &config(), until, 2).endpoints);
        assert!(p.events.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(p.events.iter().all(|e| e.at < until));
        for &endpoint in p.endpoints.iter().take(50) {
            let mine: Vec<&Event> = p.events.iter().filter(|e| e.endpoint == endpoint).collect();
            assert!(mine.first().is_some_and(|e| e.down), "{mine:?}");
            for pair in mine.windows(2) {
                assert_ne!(pair[0].down, pair[1].down, "{mine:?}");
                let gap = pair[1].at - pair[0].at;
                if pair[0].down && pair[0].at > Duration::ZERO {
                    assert!((5..=20).contains(&gap.as_secs()), "down {gap:?}");
                }
                if !pair[0].down {
                    assert!((20..=61).contains(&gap.as_secs()), "up {gap:?}");
                }
            }
        }
    }

    #[test]
    fn the_fleet_is_staggered_from_the_start() {
        let p = plan(28_000, &config(), Duration::from_secs(600), 7);
        // Count what is down at a few instants; about 12.5 / 52.5 of 1,400 (333) each time.
        for at in [1, 30, 120, 300, 590] {
            let at = Duration::from_secs(at);
            let mut down = BTreeSet::new();
            for e in p.events.iter().take_while(|e| e.at <= at) {
                if e.down {
                    down.insert(e.endpoint);
                } else {
                    down.remove(&e.endpoint);
                }
            }
            assert!(
                (230..=440).contains(&down.len()),
                "{} at {at:?}",
                down.len()
            );
        }
        let expected = 1_400.0 * config().down_fraction();
        assert!((expected - 333.0).abs() < 1.0, "{expected}");
    }

    #[test]
    fn nothing_flaps_at_share_zero() {
        let p = plan(
            500,
            &FlapConfig {
                share: 0.0,
                ..config()
            },
            Duration::from_secs(60),
            1,
        );
        assert!(p.endpoints.is_empty() && p.events.is_empty());
    }
}
