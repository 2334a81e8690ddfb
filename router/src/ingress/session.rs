//! One connection's way from parsed messages to answers, the same for both protocols.
//!
//! An adapter ([`super::mllp`], [`super::itk`]) reads, frames and parses; for each message of a
//! read (a batch of one for ITK) it counts the arrival ([`Session::received`]), routes it
//! ([`Session::plan`], which waits while an endpoint's queue is full) and keeps the plan in the
//! batch ([`Session::keep`]). [`Session::commit`] then makes the batch durable with one log
//! write and one group commit, and says for each message what its sender is told
//! ([`Committed::verdict`], an [`Answer`]). Once the adapter has encoded an answer, it reports
//! it ([`Session::told`]), which counts it by its kind and code and logs a refusal once.
//!
//! No socket or protocol is known here: the one I/O boundary is the shard, reached through
//! [`accept`] (routing table, endpoint queues, the log), and the verdict itself is pure
//! ([`verdict`]).
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

use super::accept::{self, ConnectionOrigin, Incoming, Plan};
use super::answer::{Answer, Malformation};
use super::refusals::{ControlId, Detail};
use crate::metrics::listener::Code;
use crate::metrics::Metrics;
use crate::pipeline::MessageKind;
use crate::routes::{Decision, MessageView};
use crate::shard::durable::NotDurable;
use crate::shard::Shard;

/// A connection's routing scratch and the plans of the batch being read.
pub struct Session<'c> {
    shard: &'c Shard,
    origin: &'c ConnectionOrigin,
    decision: Decision,
    plans: Vec<Plan>,
}

/// A message kept in the current batch: what [`Committed::verdict`] is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept(usize);

/// The message an answer is about, for the line that logs its refusal.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    pub kind: MessageKind,
    /// MSH-10 or the ITK tracking id, when it could be read.
    pub id: Option<&'a [u8]>,
    pub bytes: &'a [u8],
}

impl<'c> Session<'c> {
    pub fn new(shard: &'c Shard, origin: &'c ConnectionOrigin) -> Session<'c> {
        Session {
            shard,
            origin,
            decision: Decision::default(),
            plans: Vec::new(),
        }
    }

    pub fn shard(&self) -> &'c Shard {
        self.shard
    }

    pub fn origin(&self) -> &'c ConnectionOrigin {
        self.origin
    }

    /// Counts a message (of `bytes` bytes) that arrived, whatever becomes of it.
    pub fn received(&self, bytes: usize) {
        Metrics::bump(&self.shard.counters().received);
        self.origin
            .stats
            .shard(self.shard.info.index)
            .received(bytes);
    }

    /// Routes a message; waits while any chosen endpoint's queue is full, which stops the
    /// adapter reading from its sender.
    pub async fn plan(&mut self, view: &impl MessageView, incoming: Incoming<'_>) -> Plan {
        accept::plan(self.shard, view, incoming, self.origin, &mut self.decision).await
    }

    /// Adds a planned message (`control_id` its MSH-10 or tracking id) to the batch.
    pub fn keep(&mut self, plan: Plan, control_id: &[u8]) -> Kept {
        if let Plan::Dropped { rule } = &plan {
            tracing::info!(
                listener = &*self.origin.listener,
                peer = %self.origin.peer,
                control_id = %ControlId(control_id),
                rule = &**rule,
                "message dropped by a rule"
            );
        }
        self.also(plan)
    }

    /// Adds a message the router made that must be stored with the batch (an ITK InfAck: both
    /// or neither survive a crash). Its sender is the router, so nobody is answered for it.
    pub fn also(&mut self, plan: Plan) -> Kept {
        self.plans.push(plan);
        Kept(self.plans.len() - 1)
    }

    /// Whether a kept message will be accepted if the batch is committed.
    pub fn accepts(&self, kept: Kept) -> bool {
        self.plans.get(kept.0).is_some_and(Plan::accepts)
    }

    /// Stores the batch durably with one write and hands it to the endpoints' owners. The
    /// batch ends when the result is dropped.
    pub async fn commit(&mut self) -> Committed<'_, 'c> {
        let result = accept::commit(self.shard, &self.plans).await;
        Committed {
            session: self,
            result,
        }
    }

    /// Counts the answer a sender was told (by its kind, and as `code`) and logs it once if
    /// it is a refusal. A [`Answer::NoRoom`] is not reported here: the cut-off that caused it
    /// was counted and logged where the input stopped.
    pub fn told<M: Malformation>(&self, answer: &Answer<'_, M>, about: About<'_>, code: Code) {
        let counters = self.shard.counters();
        let counts = self.origin.stats.shard(self.shard.info.index);
        match answer {
            Answer::Accepted => Metrics::bump(&counters.accepted),
            Answer::Malformed(_) => {
                Metrics::bump(&counters.unreadable);
                counts.unreadable.fetch_add(1, Ordering::Relaxed);
            }
            Answer::TooLarge { .. } | Answer::Rejected { .. } | Answer::Unroutable => {
                Metrics::bump(&counters.rejected);
            }
            Answer::NotDurable(_) | Answer::NoRoom(_) => {}
        }
        if let Some(kind) = answer.refusal() {
            let reason = answer.reason();
            let reason = reason.as_deref().unwrap_or_default();
            match answer {
                Answer::Malformed(error) => {
                    let logged = error.logged();
                    let detail = detail(about, &logged).at(error.offset());
                    self.note(kind, detail);
                }
                Answer::Rejected { rule, .. } => {
                    self.note(kind, detail(about, &reason).rule(Some(rule)));
                }
                _ => self.note(kind, detail(about, &reason)),
            }
        }
        counts.answered(code);
    }

    fn note(&self, kind: super::refusals::Refusal, detail: Detail<'_>) {
        self.shard
            .refusals
            .note(self.origin.peer, &self.origin.stats, kind, detail);
    }
}

/// What is logged of a refused message besides why: its identifier in the field its
/// protocol names, and its bytes (shown only with `--log-bodies`).
fn detail<'a>(about: About<'a>, why: &'a dyn std::fmt::Display) -> Detail<'a> {
    match (about.kind, about.id) {
        (MessageKind::Hl7v2, id) => Detail::message(id.unwrap_or_default(), about.bytes, why),
        (MessageKind::Itk, Some(id)) => Detail::itk(id, about.bytes, why),
        (MessageKind::Itk, None) => Detail {
            body: Some(about.bytes),
            ..Detail::why(why)
        },
    }
}

/// A batch once committed: what each of its senders is told.
pub struct Committed<'s, 'c> {
    session: &'s mut Session<'c>,
    result: Result<(), NotDurable>,
}

impl<'c> Committed<'_, 'c> {
    /// The answer to a kept message of the batch.
    pub fn verdict<M>(&self, kept: Kept) -> Answer<'_, M> {
        match self.session.plans.get(kept.0) {
            Some(plan) => verdict(plan, self.result),
            // Not of this batch: nothing was stored for it.
            None => Answer::NotDurable(NotDurable::StoreFailed),
        }
    }
}

impl<'c> Deref for Committed<'_, 'c> {
    type Target = Session<'c>;

    fn deref(&self) -> &Session<'c> {
        self.session
    }
}

impl<'c> DerefMut for Committed<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Session<'c> {
        self.session
    }
}

impl Drop for Committed<'_, '_> {
    fn drop(&mut self) {
        self.session.plans.clear();
    }
}

/// What a sender is told of a message routed as `plan`, once its batch's commit returned
/// `committed`: a refusal by the rules stands whatever the log did; anything else is accepted
/// only if the batch is durable.
pub fn verdict<M>(plan: &Plan, committed: Result<(), NotDurable>) -> Answer<'_, M> {
    match (plan, committed) {
        (Plan::Rejected { reason, rule }, _) => match rule {
            Some(rule) => Answer::Rejected { rule, reason },
            None => Answer::Unroutable,
        },
        (_, Err(why)) => Answer::NotDurable(why),
        (_, Ok(())) => Answer::Accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer<'a> = super::Answer<'a, &'a codecs::hl7v2::ParseError>;

    fn rejected(rule: Option<&str>) -> Plan {
        Plan::Rejected {
            reason: "not here".to_string(),
            rule: rule.map(str::to_string),
        }
    }

    #[test]
    fn a_refusal_by_the_rules_stands_whatever_the_log_did() {
        for committed in [Ok(()), Err(NotDurable::StoreFull)] {
            let by_rule = rejected(Some("no-tests"));
            assert_eq!(
                verdict(&by_rule, committed),
                Answer::Rejected {
                    rule: "no-tests",
                    reason: "not here"
                }
            );
            assert_eq!(verdict(&rejected(None), committed), Answer::Unroutable);
        }
    }

    #[test]
    fn anything_else_is_accepted_only_once_durable() {
        let dropped = Plan::Dropped {
            rule: "quiet".to_string(),
        };
        assert_eq!(verdict(&dropped, Ok(())), Answer::Accepted);
        assert_eq!(
            verdict(&dropped, Err(NotDurable::DiskFull)),
            Answer::NotDurable(NotDurable::DiskFull)
        );
    }

    #[test]
    fn a_refusal_is_logged_with_the_id_its_protocol_names() {
        let why = "no route";
        let hl7 = detail(
            About {
                kind: MessageKind::Hl7v2,
                id: None,
                bytes: b"MSH|",
            },
            &why,
        );
        assert_eq!(hl7.control_id, Some(&b""[..]));
        assert_eq!(hl7.tracking_id, None);
        let itk = About {
            kind: MessageKind::Itk,
            id: Some(b"T1"),
            bytes: b"<x/>",
        };
        let tracked = detail(itk, &why);
        assert_eq!(
            (tracked.tracking_id, tracked.control_id),
            (Some(&b"T1"[..]), None)
        );
        let unread = detail(About { id: None, ..itk }, &why);
        assert_eq!(
            (unread.tracking_id, unread.body),
            (None, Some(&b"<x/>"[..]))
        );
    }
}
