//! What a sender is told, decided in one place for every way a message can end at ingress.
//!
//! [`Answer`] is the router's side of the story, the same for both protocols: accepted, or
//! refused with a typed reason (malformed at a place, too large, rejected by a rule, unroutable,
//! not durable now, no room for the rest of it). The session decides it ([`super::session`]);
//! [`hl7v2`] turns it into AA/AE/AR or CA/CE/CR, [`itk`] into a `SimpleMessageResponse` or a
//! SOAP fault. What is counted and logged of an answer follows from its kind too
//! ([`Answer::refusal`]), so the adapters only frame and encode.
use std::borrow::Cow;
use std::fmt;

use super::cutoff::Cutoff;
use super::refusals::Refusal;
use crate::shard::durable::NotDurable;

pub mod hl7v2;
pub mod itk;

/// The router's verdict on one incoming message. `M` is how the protocol's parser says where a
/// message is malformed (an HL7v2 `ParseError`, an `ItkError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a, M> {
    /// Taken for delivery (or dropped by a rule, which is also an acceptance).
    Accepted,
    /// It could not be read; the error says what and where.
    Malformed(M),
    /// Longer than the listener's limit of `limit` bytes.
    TooLarge { limit: usize },
    /// A routing rule refused it, saying why.
    Rejected { rule: &'a str, reason: &'a str },
    /// No route takes it and the policy refuses such messages.
    Unroutable,
    /// It could not be stored now; the sender should try again later.
    NotDurable(NotDurable),
    /// There is no room for the rest of it (the input budgets); the sender should try again
    /// later. Counted and logged where the input was cut off, not as a refusal of a message.
    NoRoom(Cutoff),
}

/// What a sender is told when no route takes its message.
pub const NO_ROUTE: &str = "no route for this message";

/// A parser's account of a malformed message, as far as the router's log may show it.
pub trait Malformation {
    /// The byte offset in the message where it went wrong.
    fn offset(&self) -> usize;
    /// What went wrong, for the log: never the message's content.
    fn logged(&self) -> impl fmt::Display + '_;
}

impl<M> Answer<'_, M> {
    /// Whether the sender is told its message was taken.
    pub fn accepted(&self) -> bool {
        matches!(self, Answer::Accepted)
    }

    /// The kind of refusal this is, as it is logged and counted; `None` when the message was
    /// accepted, or when the cut-off already counted it.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Answer::Accepted | Answer::NoRoom(_) => None,
            Answer::Malformed(_) => Some(Refusal::Unreadable),
            Answer::TooLarge { .. } => Some(Refusal::TooLarge),
            Answer::Rejected { .. } => Some(Refusal::Rejected),
            Answer::Unroutable => Some(Refusal::NoRoute),
            Answer::NotDurable(_) => Some(Refusal::NotStored),
        }
    }

    /// Whether the fault is the sender's (its message, or the rules about it) rather than the
    /// router's being unable to take it now.
    pub fn senders_fault(&self) -> bool {
        matches!(
            self,
            Answer::Malformed(_)
                | Answer::TooLarge { .. }
                | Answer::Rejected { .. }
                | Answer::Unroutable
        )
    }

    /// Why a message was refused, in the words its sender is told; `None` for an accepted or
    /// malformed one (a malformed message is described by its protocol's error).
    pub fn reason(&self) -> Option<Cow<'_, str>> {
        match self {
            Answer::Accepted | Answer::Malformed(_) => None,
            Answer::TooLarge { limit } => Some(Cow::Owned(format!(
                "message longer than this listener's limit of {limit} bytes"
            ))),
            Answer::Rejected { reason, .. } => Some(Cow::Borrowed(reason)),
            Answer::Unroutable => Some(Cow::Borrowed(NO_ROUTE)),
            Answer::NotDurable(why) => Some(Cow::Borrowed(why.text())),
            Answer::NoRoom(cutoff) => Some(Cow::Borrowed(cutoff.reason())),
        }
    }
}
