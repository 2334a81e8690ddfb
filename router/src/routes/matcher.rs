//! Routing one message: [`RouteTable::route`] (the hot path) and [`RouteTable::explain`].
//!
//! `route` gathers the candidate lists of the [`super::index`] for the message's values, merges
//! them in rule order and evaluates each candidate fully; the first rule that holds and does not
//! say `continue` decides. Endpoints are collected in a [`Decision`] the caller owns and reuses,
//! held in a `SmallVec`, so routing allocates nothing unless a message fans out to more than
//! four endpoints. Rules in one file are tried in order: `continue` rules add their endpoints and
//! go on; a `reject` rule refuses the whole message (endpoints gathered so far are dropped); a
//! `drop` rule stops the search, and the message goes to what earlier rules gathered, if any.
//! A rule with a directory lookup holds only if EVERY looked-up value finds an endpoint, so a
//! message is never half-delivered to the addressees the directory happens to know.
//!
//! [`super::explain`] reaches the same decisions by a plain walk, with reasons.
use std::borrow::Cow;

use smallvec::SmallVec;

use super::endpoint::EndpointId;
use super::keys::{Key, MessageView};
use super::pattern::Pattern;
use super::table::{Action, KeyId, Lookup, RouteTable, Rule, RuleId, Target, Unrouted};

/// The endpoints a message goes to; inline up to four.
pub type Endpoints = SmallVec<[EndpointId; 4]>;

/// What the table decided for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Deliver to [`Decision::endpoints`] (never empty).
    Deliver,
    /// Refuse; the rule holds the reason ([`RouteTable::reject_reason`]).
    Reject(RuleId),
    /// Accept and forward nowhere.
    Drop(RuleId),
    /// No rule matched; the file's `unrouted` policy applies.
    Unrouted(Unrouted),
}

/// Routing result, reused from message to message by the caller ([`Decision::clear`] is done
/// by `route`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Where to deliver, in the order rules named them, without duplicates.
    pub endpoints: Endpoints,
    /// Every rule that matched, in order (several with `continue`).
    pub matched: SmallVec<[RuleId; 4]>,
}

impl Default for Decision {
    fn default() -> Self {
        Decision {
            outcome: Outcome::Unrouted(Unrouted::Reject),
            endpoints: SmallVec::new(),
            matched: SmallVec::new(),
        }
    }
}

impl Decision {
    pub fn clear(&mut self) {
        self.outcome = Outcome::Unrouted(Unrouted::Reject);
        self.endpoints.clear();
        self.matched.clear();
    }
}

pub(super) enum Step {
    NoMatch,
    Continue,
    Done,
}

fn push_unique(out: &mut Endpoints, id: EndpointId) {
    if !out.contains(&id) {
        out.push(id);
    }
}

/// Whether `pattern` holds for `key` in `msg` (see [`Pattern::holds`] for absent and multi keys).
pub(super) fn holds(key: &Key, pattern: &Pattern, msg: &impl MessageView) -> bool {
    let mut nth = 0;
    let mut accepted = false;
    while let Some(v) = msg.value(key, nth) {
        if pattern.accepts(&v) {
            accepted = true;
            break;
        }
        nth += 1;
        if !key.is_multi() {
            break;
        }
    }
    if nth == 0 && !accepted {
        accepted = pattern.accepts(b"");
    }
    accepted != pattern.is_negated()
}

/// How many keys (by [`KeyId`], the first interned) get their value cached per message.
const CACHED_KEYS: usize = 16;

enum Slot<'m> {
    Unread,
    Read(Option<Cow<'m, [u8]>>),
}

/// The values of single-valued keys already read from one message. Scan-list rules often test
/// the same key (a glob on the sending application in every rule), and reading a value out of
/// the message costs several times more than testing it. A fixed array on the stack: no
/// allocation, and keys past the first sixteen are simply read each time.
pub(super) struct Cache<'m> {
    slots: [Slot<'m>; CACHED_KEYS],
}

impl<'m> Cache<'m> {
    pub(super) fn new() -> Self {
        Cache {
            slots: [const { Slot::Unread }; CACHED_KEYS],
        }
    }

    /// The value of a single-valued key (`None` when absent), read once.
    fn get<M: MessageView>(&mut self, msg: &'m M, kid: KeyId, key: &Key) -> Option<&[u8]> {
        match self.slots.get_mut(usize::from(kid.0)) {
            Some(slot) => {
                if let Slot::Unread = slot {
                    *slot = Slot::Read(msg.value(key, 0));
                }
                match slot {
                    Slot::Read(Some(v)) => Some(v),
                    _ => None,
                }
            }
            None => None,
        }
    }

    fn holds<M: MessageView>(
        &mut self,
        msg: &'m M,
        kid: KeyId,
        key: &Key,
        pattern: &Pattern,
    ) -> bool {
        if key.is_multi() || usize::from(kid.0) >= CACHED_KEYS {
            return holds(key, pattern, msg);
        }
        let accepted = pattern.accepts(self.get(msg, kid, key).unwrap_or_default());
        accepted != pattern.is_negated()
    }
}

impl RouteTable {
    /// Routes `msg`, writing the result into `out` (cleared first).
    pub fn route<M: MessageView>(&self, msg: &M, out: &mut Decision) {
        out.clear();
        let mut cache = Cache::new();
        let ki = self.index.for_kind(msg.kind());
        let mut lists: SmallVec<[&[u32]; 8]> = SmallVec::new();
        if !ki.scan.is_empty() {
            lists.push(&ki.scan);
        }
        for k in &ki.keys {
            let Some(key) = self.key(k.key) else { continue };
            if !key.is_multi() && usize::from(k.key.0) < CACHED_KEYS {
                let v = cache.get(msg, k.key, key).unwrap_or_default();
                k.probe(v, |l| lists.push(l));
                continue;
            }
            let mut nth = 0;
            loop {
                match msg.value(key, nth) {
                    Some(v) => k.probe(&v, |l| lists.push(l)),
                    None => {
                        // An absent key is tested as the empty string.
                        if nth == 0 {
                            k.probe(b"", |l| lists.push(l));
                        }
                        break;
                    }
                }
                if !key.is_multi() {
                    break;
                }
                nth += 1;
            }
        }
        let mut pos: SmallVec<[usize; 8]> = SmallVec::from_elem(0, lists.len());
        loop {
            let mut best = u32::MAX;
            for (l, &p) in lists.iter().zip(pos.iter()) {
                if let Some(&r) = l.get(p) {
                    best = best.min(r);
                }
            }
            if best == u32::MAX {
                break;
            }
            for (l, p) in lists.iter().zip(pos.iter_mut()) {
                if l.get(*p) == Some(&best) {
                    *p += 1;
                }
            }
            let id = RuleId(best);
            let Some(rule) = self.rule(id) else { break };
            if let Step::Done = self.try_rule(rule, id, msg, &mut cache, out, &mut |_, _| {}) {
                return;
            }
        }
        self.finish(out);
    }

    /// The reason a `reject` rule gives the sender.
    pub fn reject_reason(&self, rule: RuleId) -> Option<&str> {
        match &self.rule(rule)?.action {
            Action::Reject(r) => Some(r),
            _ => None,
        }
    }

    pub(super) fn finish(&self, out: &mut Decision) {
        out.outcome = if out.endpoints.is_empty() {
            Outcome::Unrouted(self.unrouted)
        } else {
            Outcome::Deliver
        };
    }

    pub(super) fn try_rule<'m, M: MessageView>(
        &self,
        rule: &Rule,
        id: RuleId,
        msg: &'m M,
        cache: &mut Cache<'m>,
        out: &mut Decision,
        on_miss: &mut dyn FnMut(Lookup, Option<&[u8]>),
    ) -> Step {
        if rule.kind.is_some_and(|k| k != msg.kind()) {
            return Step::NoMatch;
        }
        for c in rule.conds.iter() {
            match self.key(c.key) {
                Some(key) if cache.holds(msg, c.key, key, &c.pattern) => {}
                _ => return Step::NoMatch,
            }
        }
        match &rule.action {
            Action::To(targets) => {
                let before = out.endpoints.len();
                if !self.resolve(targets, msg, &mut out.endpoints, on_miss) {
                    out.endpoints.truncate(before);
                    return Step::NoMatch;
                }
                out.matched.push(id);
                if rule.cont {
                    return Step::Continue;
                }
                out.outcome = Outcome::Deliver;
            }
            Action::Reject(_) => {
                out.matched.push(id);
                out.endpoints.clear();
                out.outcome = Outcome::Reject(id);
            }
            Action::Drop => {
                out.matched.push(id);
                out.outcome = if out.endpoints.is_empty() {
                    Outcome::Drop(id)
                } else {
                    Outcome::Deliver
                };
            }
        }
        Step::Done
    }

    /// Adds the endpoints of `targets`; `false` when a lookup finds nothing for some value.
    fn resolve(
        &self,
        targets: &[Target],
        msg: &impl MessageView,
        out: &mut Endpoints,
        on_miss: &mut dyn FnMut(Lookup, Option<&[u8]>),
    ) -> bool {
        for t in targets {
            match *t {
                Target::Endpoint(id) => push_unique(out, id),
                Target::Lookup(l) => {
                    let key = l.from.key();
                    let mut nth = 0;
                    while let Some(v) = msg.value(&key, nth) {
                        let found = l
                            .from
                            .extract(&v)
                            .and_then(|x| self.directory.get(l.column, x));
                        match found {
                            Some(id) => push_unique(out, id),
                            None => {
                                on_miss(l, Some(&v));
                                return false;
                            }
                        }
                        nth += 1;
                        if !key.is_multi() {
                            break;
                        }
                    }
                    if nth == 0 {
                        on_miss(l, None);
                        return false;
                    }
                }
            }
        }
        true
    }
}
