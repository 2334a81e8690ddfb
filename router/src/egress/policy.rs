//! When to send, wait, give up, or leave an endpoint alone: the retry policy as a pure state
//! machine.
//!
//! The worker does the I/O and tells the machine what happened and when (`now`); the machine
//! answers with a [`Step`]: send now, wait until a time, open the circuit until a time, and
//! whether to give up on the message in flight (dead-letter it). It never sleeps, reads no
//! clock and does no I/O, so every rule below is tested with made-up times.
//!
//! - Backoff: exponential with full jitter ([`Backoff`]), over the endpoint's consecutive
//!   failures, whatever message they were for.
//! - Circuit breaker: after [`Policy::breaker_after`] failures in a row the endpoint is left
//!   alone for a jittered cool-down (half to all of it) between probes, until something works.
//! - Retry budget ([`Budget`]): a message may fail so many times, or for so long after its first
//!   failure, before it is dead-lettered so that the queue behind it moves on. Only failures
//!   that involved the message spend it ([`Failure::charges_message`]); an endpoint that cannot
//!   be reached holds its queue, in order, however long that lasts.
//! - A refusal (AR/CR, a client fault) dead-letters the message at once.
use std::time::{Duration, Instant};

use super::backoff::{Backoff, BackoffPolicy};
use super::verdict::Failure;

/// Why a message is given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The endpoint refused it (AR/CR, a SOAP client fault, a 4xx), or it cannot be sent.
    Refused,
    /// It kept failing in ways that might have passed, past its retry budget.
    RetriesExhausted,
    /// Nothing routes it (the `unrouted = "dead-letter"` policy), or its endpoint is gone.
    Unroutable,
}

/// How the endpoint is treated when it fails, shared by every endpoint of the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub backoff: BackoffPolicy,
    /// Consecutive failures after which the circuit opens.
    pub breaker_after: u32,
    /// How long an open circuit leaves the endpoint alone between probes (jittered down to
    /// half of it).
    pub breaker_cooldown: Duration,
}

/// How long and how often one message may fail before it is dead-lettered; per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Time from the message's first failure after which the next failure gives up.
    pub retry_for: Duration,
    /// Failed attempts after which it gives up; `None`: only time counts.
    pub max_attempts: Option<u32>,
}

/// What to do next with the endpoint's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send (the next message, or this one again) now.
    SendNow,
    /// Wait until then, then send.
    WaitUntil(Instant),
    /// The endpoint failed too often in a row: the circuit opened just now; send nothing until
    /// then.
    OpenCircuit { until: Instant },
}

/// The machine's answer to one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Give up on the message in flight: dead-letter it (with the endpoint's last reply), and
    /// take the next one when `next` says.
    pub give_up: Option<GiveUp>,
    pub next: Next,
    /// The circuit was open and this outcome closed it.
    pub circuit_closed: bool,
    /// Failed attempts of the message in flight that spent its budget, this one included.
    pub attempts: u32,
    /// Time since the message's first such failure.
    pub failing_for: Duration,
}

impl Step {
    fn now(give_up: Option<GiveUp>, circuit_closed: bool) -> Step {
        Step {
            give_up,
            next: Next::SendNow,
            circuit_closed,
            attempts: 0,
            failing_for: Duration::ZERO,
        }
    }
}

/// One endpoint's retry state.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The endpoint's consecutive failures and its jitter generator.
    backoff: Backoff,
    circuit_open: bool,
    /// What the message in flight has spent of its budget.
    charges: Charges,
}

/// What one message has spent of its retry budget: failed attempts that involved it, and when
/// the first of them was. An endpoint with several messages in flight keeps one per message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charges {
    attempts: u32,
    first_failure: Option<Instant>,
}

impl Machine {
    /// A machine whose jitter is drawn from `seed` (per endpoint, so endpoints that fail
    /// together spread out, and a replay with the same seed draws the same delays).
    pub fn new(policy: &Policy, seed: u64) -> Machine {
        Machine {
            backoff: Backoff::new(policy.backoff, seed),
            circuit_open: false,
            charges: Charges::default(),
        }
    }

    pub fn circuit_open(&self) -> bool {
        self.circuit_open
    }

    /// Consecutive failures of the endpoint.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// The message in flight was delivered: the endpoint is well, take the next one now.
    pub fn delivered(&mut self) -> Step {
        self.end_message();
        let closed = self.endpoint_well();
        Step::now(None, closed)
    }

    /// An attempt at the message in flight failed at `now`.
    pub fn failed(
        &mut self,
        now: Instant,
        failure: &Failure,
        policy: &Policy,
        budget: &Budget,
    ) -> Step {
        let mut charges = self.charges;
        let step = self.failed_charging(&mut charges, now, failure, policy, budget);
        self.charges = charges;
        step
    }

    /// An attempt at one of several messages in flight failed at `now`: as [`Machine::failed`],
    /// with that message's own `charges`.
    pub fn failed_charging(
        &mut self,
        charges: &mut Charges,
        now: Instant,
        failure: &Failure,
        policy: &Policy,
        budget: &Budget,
    ) -> Step {
        if !failure.retry_can_help() {
            *charges = Charges::default();
            // The endpoint's own word is a sign of health; a request we could not even write
            // says nothing about it.
            let closed = failure.endpoint_answered() && self.endpoint_well();
            return Step::now(Some(GiveUp::Refused), closed);
        }
        let next = self.endpoint_failed(now, policy);
        let (mut attempts, mut failing_for) = (charges.attempts, Duration::ZERO);
        let mut give_up = None;
        if failure.charges_message() {
            charges.attempts = charges.attempts.saturating_add(1);
            let first = *charges.first_failure.get_or_insert(now);
            attempts = charges.attempts;
            failing_for = now.saturating_duration_since(first);
            let too_many = budget.max_attempts.is_some_and(|max| attempts >= max);
            if too_many || failing_for >= budget.retry_for {
                give_up = Some(GiveUp::RetriesExhausted);
                *charges = Charges::default();
            }
        }
        Step {
            give_up,
            next,
            circuit_closed: false,
            attempts,
            failing_for,
        }
    }

    /// The connection failed with no message in flight (a pre-warmed connection could not be
    /// opened, or the endpoint closed an idle one): when to try again.
    pub fn connection_failed(&mut self, now: Instant, policy: &Policy) -> Next {
        self.endpoint_failed(now, policy)
    }

    /// The endpoint closed an idle connection that is kept open on purpose (pre-warmed): when
    /// to reconnect. It backs off like a failure, so an endpoint that closes at once is not
    /// reconnected in a tight loop, but never opens the circuit: closing idle connections is
    /// what many servers do.
    pub fn idle_closed(&mut self, now: Instant) -> Instant {
        now + self.backoff.fail()
    }

    fn end_message(&mut self) {
        self.charges = Charges::default();
    }

    /// Resets the failure streak; true if that closed the circuit.
    fn endpoint_well(&mut self) -> bool {
        self.backoff.succeed();
        std::mem::replace(&mut self.circuit_open, false)
    }

    /// Counts one more failure of the endpoint and says when to try again.
    fn endpoint_failed(&mut self, now: Instant, policy: &Policy) -> Next {
        let wait = self.backoff.fail();
        if self.backoff.failures() < policy.breaker_after.max(1) {
            return Next::WaitUntil(now + wait);
        }
        // A jittered cool-down (half to the whole of it), so endpoints that failed together
        // are not probed together.
        let half = policy.breaker_cooldown / 2;
        let until = now + half + wait.min(half);
        if std::mem::replace(&mut self.circuit_open, true) {
            Next::WaitUntil(until)
        } else {
            Next::OpenCircuit { until }
        }
    }
}

#[cfg(test)]
mod tests;
