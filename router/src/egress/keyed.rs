//! One connection's queue when several messages may be in flight: a FIFO per order key, and the
//! keys whose first message may be sent now.
//!
//! A key has at most one message in flight, and its first message leaves only when it is done
//! (delivered or dead-lettered), so messages with the same key reach the endpoint in the order
//! they were queued however many are in flight, across retries (a message waiting to be tried
//! again holds its key) and restarts (replay queues in log order). Messages of different keys
//! overtake each other freely. Pure: no I/O and no clock; the caller says the time.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::policy::Charges;

/// An order key: a hash of what two messages must share to keep their order. Two keys that
/// collide only keep order between messages that need not keep it.
pub type Key = u64;

/// The messages of one key, first to last.
#[derive(Debug)]
struct Line<T> {
    items: VecDeque<T>,
    /// What the first message has spent of its retry budget.
    charges: Charges,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the ready list.
    Ready,
    /// Its first message is on the connection.
    InFlight,
    /// Its first message failed and is tried again from then on.
    Resting(Instant),
}

/// The per-key FIFOs of one connection.
#[derive(Debug)]
pub struct Keyed<T> {
    lines: FxHashMap<Key, Line<T>>,
    /// Keys whose first message may be sent now, the earliest ready first.
    ready: VecDeque<Key>,
    /// Keys resting until a time; few (one per failed message), so a list.
    resting: Vec<Key>,
    len: usize,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed {
            lines: FxHashMap::default(),
            ready: VecDeque::new(),
            resting: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Keyed<T> {
    /// Messages held, those in flight included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `item` behind every earlier message of its key.
    pub fn push(&mut self, key: Key, item: T) {
        self.len += 1;
        let line = self.lines.entry(key).or_insert_with(|| Line {
            items: VecDeque::new(),
            charges: Charges::default(),
            state: State::Ready,
        });
        if line.items.is_empty() {
            self.ready.push_back(key);
        }
        line.items.push_back(item);
    }

    /// The next key whose first message may be sent, now marked in flight, and that message.
    pub fn take_ready(&mut self) -> Option<(Key, &T)> {
        let key = self.ready.pop_front()?;
        let line = self.lines.get_mut(&key)?;
        line.state = State::InFlight;
        Some((key, line.items.front()?))
    }

    /// Puts back a key just taken, unsent, at the front of the ready list.
    pub fn untake(&mut self, key: Key) {
        if let Some(line) = self.lines.get_mut(&key) {
            // A key already ready or resting is in its list once; being there twice would let
            // two of its messages out at once.
            if line.state == State::InFlight {
                line.state = State::Ready;
                self.ready.push_front(key);
            }
        }
    }

    /// The first message of `key`, in flight, is done: it leaves, and the key's next message
    /// (if any) may be sent.
    pub fn done(&mut self, key: Key) -> Option<T> {
        let line = self.lines.get_mut(&key)?;
        let item = line.items.pop_front()?;
        self.len -= 1;
        if line.items.is_empty() {
            self.lines.remove(&key);
        } else {
            line.charges = Charges::default();
            line.state = State::Ready;
            self.ready.push_back(key);
        }
        Some(item)
    }

    /// The first message of `key`, in flight, was not taken: it is tried again at `until`,
    /// and nothing behind it goes first.
    pub fn rest(&mut self, key: Key, until: Instant) {
        if let Some(line) = self.lines.get_mut(&key) {
            line.state = State::Resting(until);
            self.resting.push(key);
        }
    }

    /// What the first message of `key` has spent of its retry budget.
    pub fn charges(&mut self, key: Key) -> Option<&mut Charges> {
        self.lines.get_mut(&key).map(|line| &mut line.charges)
    }

    /// The first message of each key.
    pub fn heads(&self) -> impl Iterator<Item = &T> {
        self.lines.values().filter_map(|line| line.items.front())
    }

    /// Every message held, key by key (each key's first to last), whatever its state: for
    /// spreading them over other connections.
    pub fn into_lines(self) -> impl Iterator<Item = VecDeque<T>> {
        self.lines.into_values().map(|line| line.items)
    }

    /// Makes ready the keys whose rest is over at `now`; says when the next one's will be.
    pub fn wake(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let lines = &mut self.lines;
        let ready = &mut self.ready;
        self.resting.retain(|key| {
            let Some(line) = lines.get_mut(key) else {
                return false;
            };
            match line.state {
                State::Resting(until) if until <= now => {
                    line.state = State::Ready;
                    ready.push_back(*key);
                    false
                }
                State::Resting(until) => {
                    next = Some(next.map_or(until, |n| n.min(until)));
                    true
                }
                State::Ready | State::InFlight => false,
            }
        });
        next
    }
}

/// `lines` as one sequence that keeps each line's order, taking at each step the line whose
/// next item comes first by `by` (the merge of a merge sort: lines need not be sorted by `by`,
/// only their order is kept).
pub fn merge_lines<T, O: Ord>(
    lines: impl IntoIterator<Item = VecDeque<T>>,
    by: impl Fn(&T) -> O,
) -> Vec<T> {
    let mut lines: Vec<VecDeque<T>> = lines.into_iter().collect();
    let mut heads: BinaryHeap<Reverse<(O, usize)>> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| Some(Reverse((by(line.front()?), i))))
        .collect();
    let mut merged = Vec::with_capacity(lines.iter().map(VecDeque::len).sum());
    while let Some(Reverse((_, i))) = heads.pop() {
        let Some(line) = lines.get_mut(i) else {
            continue;
        };
        merged.extend(line.pop_front());
        if let Some(next) = line.front() {
            heads.push(Reverse((by(next), i)));
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Sends everything ready, in the order the queue offers it.
    fn send_all<T: Copy>(q: &mut Keyed<T>) -> Vec<(Key, T)> {
        std::iter::from_fn(|| q.take_ready().map(|(k, m)| (k, *m))).collect()
    }

    #[test]
    fn one_message_per_key_in_flight_and_each_key_in_order() {
        let mut q = Keyed::default();
        for (key, m) in [(1, "a1"), (2, "b1"), (1, "a2"), (3, "c1"), (1, "a3")] {
            q.push(key, m);
        }
        assert_eq!(send_all(&mut q), [(1, "a1"), (2, "b1"), (3, "c1")]);
        assert_eq!(q.done(2), Some("b1"));
        assert_eq!(send_all(&mut q), []);
        assert_eq!(q.done(1), Some("a1"));
        assert_eq!(send_all(&mut q), [(1, "a2")]);
        assert_eq!(q.done(1), Some("a2"));
        assert_eq!(q.done(3), Some("c1"));
        assert_eq!(send_all(&mut q), [(1, "a3")]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.done(1), Some("a3"));
        assert!(q.is_empty());
    }

    #[test]
    fn a_resting_message_holds_its_key_and_not_the_others() {
        let t0 = Instant::now();
        let mut q = Keyed::default();
        for (key, m) in [(1, "a1"), (1, "a2"), (2, "b1")] {
            q.push(key, m);
        }
        assert_eq!(send_all(&mut q), [(1, "a1"), (2, "b1")]);
        q.rest(1, t0 + Duration::from_secs(1));
        assert_eq!(q.done(2), Some("b1"));
        assert_eq!(q.wake(t0), Some(t0 + Duration::from_secs(1)));
        q.push(2, "b2");
        assert_eq!(send_all(&mut q), [(2, "b2")], "a2 waits behind a1");
        assert_eq!(q.wake(t0 + Duration::from_secs(1)), None);
        assert_eq!(send_all(&mut q), [(1, "a1")], "a1 again, not a2");
    }

    #[test]
    fn what_is_left_keeps_each_key_s_order_whatever_its_state() {
        let t0 = Instant::now();
        let mut q = Keyed::default();
        for (key, m) in [
            (1, (3, "a1")),
            (2, (1, "b1")),
            (1, (2, "a2")),
            (2, (4, "b2")),
        ] {
            q.push(key, m);
        }
        let _ = send_all(&mut q);
        q.rest(1, t0 + Duration::from_secs(5));
        let merged = merge_lines(q.into_lines(), |&(at, _)| at);
        let names: Vec<&str> = merged.iter().map(|&(_, m)| m).collect();
        // a2 "arrived" before a1 but stays behind it; b1 comes first as the earliest head.
        assert_eq!(names, ["b1", "a1", "a2", "b2"]);
    }

    #[test]
    fn an_untaken_key_goes_first_again() {
        let mut q = Keyed::default();
        q.push(1, "a1");
        q.push(2, "b1");
        let (key, _) = q.take_ready().expect("ready");
        q.untake(key);
        assert_eq!(send_all(&mut q), [(1, "a1"), (2, "b1")]);
    }

    #[test]
    fn charges_are_per_message_and_reset_when_it_is_done() {
        let mut q = Keyed::default();
        q.push(1, "a1");
        q.push(1, "a2");
        let fresh = *q.charges(1).expect("line");
        assert_eq!(send_all(&mut q), [(1, "a1")]);
        let policy = crate::egress::settings::EgressSettings::default().policy();
        let mut machine = crate::egress::policy::Machine::new(&policy, 1);
        let budget = crate::egress::policy::Budget {
            retry_for: Duration::from_secs(60),
            max_attempts: None,
        };
        let failure = crate::egress::verdict::Failure::Declined("AE".into());
        let charges = q.charges(1).expect("line");
        machine.failed_charging(charges, Instant::now(), &failure, &policy, &budget);
        assert_ne!(*q.charges(1).expect("line"), fresh);
        q.done(1);
        assert_eq!(*q.charges(1).expect("line"), fresh);
    }
}
