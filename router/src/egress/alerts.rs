//! An endpoint's alerts: thresholds from `routes.toml` (`alert_queue_depth`,
//! `alert_circuit_open`, `alert_dead_letters_per_hour`, and `stuck_after` for the oldest queued
//! message), watched by its worker. A pure state machine given what the worker sees and the
//! time: each alert is raised once when its threshold is crossed and cleared once when it is
//! back under, so the log gets one warning and one notice, never a flood.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::routes::delivery::DeliverySettings;

/// One kind of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    /// More messages queued than `alert_queue_depth`.
    QueueDepth,
    /// The oldest queued message has waited longer than `stuck_after`.
    Stuck,
    /// The circuit has been open longer than `alert_circuit_open`.
    CircuitOpen,
    /// More dead letters in the last hour than `alert_dead_letters_per_hour`.
    DeadLetters,
}

impl Alert {
    pub const ALL: [Alert; 4] = [
        Alert::QueueDepth,
        Alert::Stuck,
        Alert::CircuitOpen,
        Alert::DeadLetters,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Alert::QueueDepth => "queue_depth",
            Alert::Stuck => "stuck",
            Alert::CircuitOpen => "circuit_open",
            Alert::DeadLetters => "dead_letters",
        }
    }

    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Raised(Alert),
    Cleared(Alert),
}

/// What the worker sees now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// Messages accepted for the endpoint and not yet done.
    pub queued: u32,
    /// How long the oldest queued message has waited (`None`: the queue is empty).
    pub oldest: Option<Duration>,
    /// When the circuit opened (`None`: it is closed).
    pub circuit_open_since: Option<Instant>,
}

const HOUR: Duration = Duration::from_secs(3600);

/// The alerts in force and the recent dead letters (see the module's comment).
#[derive(Debug, Default)]
pub struct AlertWatch {
    active: u8,
    /// When the last dead letters were written, oldest first; at most the threshold plus one
    /// are kept, all within the last hour.
    dead_letters: VecDeque<Instant>,
}

impl AlertWatch {
    /// The alerts in force, one bit each ([`Alert::bit`]).
    pub fn active(&self) -> u8 {
        self.active
    }

    /// A message was dead-lettered at `now`.
    pub fn dead_lettered(&mut self, now: Instant, settings: &DeliverySettings) {
        if let Some(limit) = settings.alert_dead_letters_per_hour {
            self.dead_letters.push_back(now);
            while self.dead_letters.len() > limit as usize + 1 {
                self.dead_letters.pop_front();
            }
        }
    }

    /// Compares what is seen at `now` with the thresholds; the alerts that changed.
    pub fn observe(
        &mut self,
        now: Instant,
        seen: Seen,
        settings: &DeliverySettings,
    ) -> impl Iterator<Item = Change> {
        while self
            .dead_letters
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= HOUR)
        {
            self.dead_letters.pop_front();
        }
        let over = |alert: Alert| match alert {
            Alert::QueueDepth => settings
                .alert_queue_depth
                .is_some_and(|limit| seen.queued > limit),
            Alert::Stuck => seen.oldest.is_some_and(|age| age >= settings.stuck_after),
            Alert::CircuitOpen => match (settings.alert_circuit_open, seen.circuit_open_since) {
                (Some(limit), Some(since)) => now.saturating_duration_since(since) >= limit,
                _ => false,
            },
            Alert::DeadLetters => settings
                .alert_dead_letters_per_hour
                .is_some_and(|limit| self.dead_letters.len() > limit as usize),
        };
        let mut changes = Vec::new();
        for alert in Alert::ALL {
            let was = self.active & alert.bit() != 0;
            match (was, over(alert)) {
                (false, true) => changes.push(Change::Raised(alert)),
                (true, false) => changes.push(Change::Cleared(alert)),
                _ => {}
            }
        }
        for change in &changes {
            match change {
                Change::Raised(alert) => self.active |= alert.bit(),
                Change::Cleared(alert) => self.active &= !alert.bit(),
            }
        }
        changes.into_iter()
    }

    /// When a threshold that depends only on time will be crossed if nothing else changes,
    /// so that a waiting worker wakes to say it on time.
    pub fn next_due(
        &self,
        now: Instant,
        seen: Seen,
        settings: &DeliverySettings,
    ) -> Option<Instant> {
        let stuck = seen
            .oldest
            .filter(|_| self.active & Alert::Stuck.bit() == 0)
            .map(|age| now + settings.stuck_after.saturating_sub(age));
        let circuit = match (settings.alert_circuit_open, seen.circuit_open_since) {
            (Some(limit), Some(since)) if self.active & Alert::CircuitOpen.bit() == 0 => {
                Some(since + limit)
            }
            _ => None,
        };
        // A dead-letter alert clears when the oldest of them turns an hour old.
        let dead = self
            .dead_letters
            .front()
            .filter(|_| self.active & Alert::DeadLetters.bit() != 0)
            .map(|&t| t + HOUR);
        [stuck, circuit, dead].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            alert_queue_depth: Some(10),
            alert_circuit_open: Some(Duration::from_secs(60)),
            alert_dead_letters_per_hour: Some(2),
            stuck_after: Duration::from_secs(300),
            ..DeliverySettings::default()
        }
    }

    fn changes(w: &mut AlertWatch, now: Instant, seen: Seen) -> Vec<Change> {
        w.observe(now, seen, &settings()).collect()
    }

    #[test]
    fn each_alert_is_raised_once_and_cleared_once() {
        let t0 = Instant::now();
        let mut w = AlertWatch::default();
        let deep = Seen {
            queued: 11,
            ..Seen::default()
        };
        assert_eq!(
            changes(&mut w, t0, deep),
            [Change::Raised(Alert::QueueDepth)]
        );
        assert!(changes(&mut w, t0, deep).is_empty(), "said once");
        assert_eq!(
            changes(&mut w, t0, Seen { queued: 10, ..deep }),
            [Change::Cleared(Alert::QueueDepth)]
        );

        let old = Seen {
            queued: 1,
            oldest: Some(Duration::from_secs(299)),
            ..Seen::default()
        };
        assert!(changes(&mut w, t0, old).is_empty());
        assert_eq!(
            w.next_due(t0, old, &settings()),
            Some(t0 + Duration::from_secs(1))
        );
        let older = Seen {
            oldest: Some(Duration::from_secs(300)),
            ..old
        };
        assert_eq!(changes(&mut w, t0, older), [Change::Raised(Alert::Stuck)]);
        assert_eq!(
            changes(&mut w, t0, Seen::default()),
            [Change::Cleared(Alert::Stuck)]
        );
    }

    /// Told once when it passes the threshold and once when it is back under, not once per
    /// retry.
    #[test]
    fn a_stuck_queue_is_reported_once_and_cleared_once() {
        let settings = DeliverySettings {
            stuck_after: Duration::from_secs(60),
            ..DeliverySettings::default()
        };
        let mut watch = AlertWatch::default();
        let now = Instant::now();
        let ages = [1, 59, 60, 61, 3600, 80, 5, 70]
            .map(Some)
            .into_iter()
            .chain([None, None]);
        let said: Vec<Option<Change>> = ages
            .map(|age| {
                let seen = Seen {
                    queued: 1,
                    oldest: age.map(Duration::from_secs),
                    circuit_open_since: None,
                };
                let mut changes = watch.observe(now, seen, &settings);
                let first = changes.next();
                assert!(changes.next().is_none());
                first
            })
            .collect();
        use Change::{Cleared, Raised};
        let (r, c) = (Some(Raised(Alert::Stuck)), Some(Cleared(Alert::Stuck)));
        assert_eq!(said, [None, None, r, None, None, None, c, r, c, None]);
    }

    #[test]
    fn a_circuit_open_too_long_is_raised_on_time_and_cleared_when_it_closes() {
        let t0 = Instant::now();
        let mut w = AlertWatch::default();
        let open = Seen {
            circuit_open_since: Some(t0),
            ..Seen::default()
        };
        assert!(changes(&mut w, t0 + Duration::from_secs(59), open).is_empty());
        assert_eq!(
            w.next_due(t0, open, &settings()),
            Some(t0 + Duration::from_secs(60))
        );
        assert_eq!(
            changes(&mut w, t0 + Duration::from_secs(60), open),
            [Change::Raised(Alert::CircuitOpen)]
        );
        assert_eq!(
            changes(&mut w, t0 + Duration::from_secs(61), Seen::default()),
            [Change::Cleared(Alert::CircuitOpen)]
        );
    }

    #[test]
    fn dead_letters_count_over_the_last_hour() {
        let t0 = Instant::now();
        let mut w = AlertWatch::default();
        for i in 0..3 {
            w.dead_lettered(t0 + Duration::from_secs(i), &settings());
        }
        let now = t0 + Duration::from_secs(10);
        assert_eq!(
            changes(&mut w, now, Seen::default()),
            [Change::Raised(Alert::DeadLetters)]
        );
        // Clears when the first of the three is an hour old.
        assert_eq!(
            w.next_due(now, Seen::default(), &settings()),
            Some(t0 + HOUR)
        );
        assert!(changes(&mut w, t0 + HOUR - Duration::from_secs(1), Seen::default()).is_empty());
        assert_eq!(
            changes(&mut w, t0 + HOUR, Seen::default()),
            [Change::Cleared(Alert::DeadLetters)]
        );
        // Without the setting, nothing is kept.
        let mut quiet = AlertWatch::default();
        quiet.dead_lettered(t0, &DeliverySettings::default());
        assert!(quiet.dead_letters.is_empty());
    }
}
