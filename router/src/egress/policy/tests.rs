//! The retry policy with made-up times: tables of outcomes with the exact steps they must give,
//! and properties that hold for any sequence of outcomes.
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(2);
const COOLDOWN: Duration = Duration::from_secs(10);

fn policy() -> Policy {
    Policy {
        backoff: BackoffPolicy {
            base: BASE,
            cap: CAP,
        },
        breaker_after: 5,
        breaker_cooldown: COOLDOWN,
    }
}

fn budget(retry_for: Duration, max_attempts: Option<u32>) -> Budget {
    Budget {
        retry_for,
        max_attempts,
    }
}

fn ae() -> Failure {
    Failure::Declined("AE: busy".into())
}

fn ar() -> Failure {
    Failure::Refused("AR: no".into())
}

fn down() -> Failure {
    Failure::Unreachable("connection refused".into())
}

/// What a step said, without its jittered times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Send,
    Wait,
    Open,
    DeadLetterThenWait(GiveUp),
    DeadLetterThenOpen(GiveUp),
    DeadLetterThenSend(GiveUp),
}

fn kind(step: &Step) -> Kind {
    match (step.give_up, step.next) {
        (None, Next::SendNow) => Kind::Send,
        (None, Next::WaitUntil(_)) => Kind::Wait,
        (None, Next::OpenCircuit { .. }) => Kind::Open,
        (Some(why), Next::WaitUntil(_)) => Kind::DeadLetterThenWait(why),
        (Some(why), Next::OpenCircuit { .. }) => Kind::DeadLetterThenOpen(why),
        (Some(why), Next::SendNow) => Kind::DeadLetterThenSend(why),
    }
}

/// An outcome at a time (milliseconds from the start).
#[derive(Debug, Clone)]
enum Event {
    Delivered,
    Failed(Failure),
}

/// Runs `events` (each at its millisecond) through a fresh machine; the kinds of step.
fn run(events: &[(u64, Event)], budget: Budget) -> Vec<Kind> {
    let start = Instant::now();
    let policy = policy();
    let mut machine = Machine::new(&policy, 7);
    events
        .iter()
        .map(|(ms, event)| {
            let now = start + Duration::from_millis(*ms);
            let step = match event {
                Event::Delivered => machine.delivered(),
                Event::Failed(f) => machine.failed(now, f, &policy, &budget),
            };
            kind(&step)
        })
        .collect()
}

/// A named sequence of outcomes, the budget, and the steps it must give.
type Case = (&'static str, Vec<(u64, Event)>, Budget, Vec<Kind>);

use Event::{Delivered, Failed};
use GiveUp::{Refused, RetriesExhausted};
use Kind::*;

#[test]
fn table_of_outcomes_and_steps() {
    let day = Duration::from_secs(24 * 3600);
    let cases: Vec<Case> = vec![
        (
            "delivered: on to the next",
            vec![(0, Delivered)],
            budget(day, None),
            vec![Send],
        ),
        (
            "refused: dead letter at once, next now",
            vec![(0, Failed(ar()))],
            budget(day, None),
            vec![DeadLetterThenSend(Refused)],
        ),
        (
            "unsendable: dead letter at once",
            vec![(0, Failed(Failure::Unsendable("bad header".into())))],
            budget(day, None),
            vec![DeadLetterThenSend(Refused)],
        ),
        (
            "AE twice then AA",
            vec![(0, Failed(ae())), (100, Failed(ae())), (300, Delivered)],
            budget(day, None),
            vec![Wait, Wait, Send],
        ),
        (
            "three attempts allowed: the third failure gives up",
            vec![(0, Failed(ae())), (100, Failed(ae())), (200, Failed(ae()))],
            budget(day, Some(3)),
            vec![Wait, Wait, DeadLetterThenWait(RetriesExhausted)],
        ),
        (
            "one attempt allowed: no retry at all",
            vec![(0, Failed(ae()))],
            budget(day, Some(1)),
            vec![DeadLetterThenWait(RetriesExhausted)],
        ),
        (
            "the budget is per message: the next one starts afresh",
            vec![
                (0, Failed(ae())),
                (100, Failed(ae())),
                (200, Failed(ae())),
                (300, Delivered),
            ],
            budget(day, Some(2)),
            vec![Wait, DeadLetterThenWait(RetriesExhausted), Wait, Send],
        ),
        (
            "time budget: gives up at the first failure at or past it",
            vec![(0, Failed(ae())), (999, Failed(ae())), (1000, Failed(ae()))],
            budget(Duration::from_secs(1), None),
            vec![Wait, Wait, DeadLetterThenWait(RetriesExhausted)],
        ),
        (
            "an unreachable endpoint never spends a message's budget",
            vec![
                (0, Failed(down())),
                (10_000, Failed(down())),
                (20_000, Failed(down())),
            ],
            budget(Duration::from_secs(1), Some(1)),
            vec![Wait, Wait, Wait],
        ),
        (
            "the circuit opens on the fifth failure in a row, once",
            vec![
                (0, Failed(down())),
                (1, Failed(down())),
                (2, Failed(down())),
                (3, Failed(down())),
                (4, Failed(down())),
                (5, Failed(down())),
                (6, Delivered),
                (7, Failed(down())),
            ],
            budget(Duration::from_secs(1), None),
            vec![Wait, Wait, Wait, Wait, Open, Wait, Send, Wait],
        ),
        (
            "a refusal is the endpoint answering: it closes the circuit",
            vec![
                (0, Failed(down())),
                (1, Failed(down())),
                (2, Failed(down())),
                (3, Failed(down())),
                (4, Failed(down())),
                (5, Failed(ar())),
                (6, Failed(down())),
            ],
            budget(Duration::from_secs(1), None),
            vec![
                Wait,
                Wait,
                Wait,
                Wait,
                Open,
                DeadLetterThenSend(Refused),
                Wait,
            ],
        ),
        (
            "giving up on a message does not forgive the endpoint",
            vec![
                (0, Failed(ae())),
                (1, Failed(ae())),
                (2, Failed(ae())),
                (3, Failed(ae())),
                (4, Failed(ae())),
            ],
            budget(Duration::from_secs(60), Some(5)),
            vec![Wait, Wait, Wait, Wait, DeadLetterThenOpen(RetriesExhausted)],
        ),
        (
            "connection lost and timeouts spend the budget like AE",
            vec![
                (0, Failed(Failure::ConnectionLost("reset".into()))),
                (1, Failed(Failure::NoReply(Duration::from_secs(30)))),
                (2, Failed(Failure::BadReply("acknowledges C9".into()))),
            ],
            budget(Duration::from_secs(60), Some(3)),
            vec![Wait, Wait, DeadLetterThenWait(RetriesExhausted)],
        ),
        (
            "TLS failures are retried and spend nothing",
            vec![
                (0, Failed(Failure::Tls("unknown issuer".into()))),
                (5000, Failed(Failure::Tls("unknown issuer".into()))),
            ],
            budget(Duration::from_secs(1), Some(1)),
            vec![Wait, Wait],
        ),
    ];
    for (name, events, budget, expected) in cases {
        assert_eq!(run(&events, budget), expected, "{name}");
    }
}

#[test]
fn waits_grow_from_the_base_and_the_circuit_waits_half_to_all_of_the_cooldown() {
    let policy = policy();
    let budget = budget(Duration::from_secs(3600), None);
    let mut machine = Machine::new(&policy, 3);
    let now = Instant::now();
    for n in 1..=20u32 {
        let step = machine.failed(now, &ae(), &policy, &budget);
        let until = match step.next {
            Next::WaitUntil(t) | Next::OpenCircuit { until: t } => t,
            Next::SendNow => panic!("failure {n} sends at once"),
        };
        let wait = until - now;
        if n < 5 {
            let bound = BASE.saturating_mul(1 << (n - 1)).min(CAP);
            assert!(
                wait > Duration::ZERO && wait <= bound,
                "failure {n}: {wait:?}"
            );
            assert!(!machine.circuit_open());
        } else {
            assert!(
                wait >= COOLDOWN / 2 && wait <= COOLDOWN,
                "failure {n}: {wait:?}"
            );
            assert!(machine.circuit_open());
        }
        assert_eq!(step.attempts, n);
    }
    let step = machine.delivered();
    assert!(step.circuit_closed);
    assert_eq!(machine.failures(), 0);
    // Forgiven: the next failure waits no more than the base again.
    match machine.failed(now, &ae(), &policy, &budget).next {
        Next::WaitUntil(t) => assert!(t - now <= BASE),
        other => panic!("{other:?}"),
    }
}

#[test]
fn steps_report_the_attempts_and_time_spent() {
    let policy = policy();
    let budget = budget(Duration::from_secs(5), None);
    let mut machine = Machine::new(&policy, 1);
    let start = Instant::now();
    let first = machine.failed(start, &ae(), &policy, &budget);
    assert_eq!((first.attempts, first.failing_for), (1, Duration::ZERO));
    let later = start + Duration::from_secs(2);
    let unreachable = machine.failed(later, &down(), &policy, &budget);
    assert_eq!(
        (unreachable.attempts, unreachable.failing_for),
        (1, Duration::ZERO)
    );
    let last = machine.failed(start + Duration::from_secs(5), &ae(), &policy, &budget);
    assert_eq!(last.give_up, Some(RetriesExhausted));
    assert_eq!(
        (last.attempts, last.failing_for),
        (2, Duration::from_secs(5))
    );
}

#[test]
fn an_idle_connection_failing_backs_off_and_opens_the_circuit_too() {
    let policy = policy();
    let mut machine = Machine::new(&policy, 9);
    let now = Instant::now();
    let kinds: Vec<bool> = (0..6)
        .map(|_| {
            matches!(
                machine.connection_failed(now, &policy),
                Next::OpenCircuit { .. }
            )
        })
        .collect();
    assert_eq!(kinds, [false, false, false, false, true, false]);
}

#[test]
fn idle_closes_back_off_but_never_open_the_circuit() {
    let policy = policy();
    let mut machine = Machine::new(&policy, 11);
    let now = Instant::now();
    for n in 1..=10u32 {
        let wait = machine.idle_closed(now) - now;
        assert!(wait > Duration::ZERO && wait <= BASE.saturating_mul(1 << (n - 1)).min(CAP));
        assert!(!machine.circuit_open());
    }
    // A delivery forgives them.
    machine.delivered();
    assert_eq!(machine.failures(), 0);
}

fn failure() -> impl Strategy<Value = Failure> {
    prop_oneof![
        Just(ae()),
        Just(ar()),
        Just(down()),
        Just(Failure::BadReply("wrong id".into())),
        Just(Failure::NoReply(Duration::from_secs(30))),
        Just(Failure::ConnectionLost("reset".into())),
        Just(Failure::Tls("expired".into())),
        Just(Failure::Unsendable("control character".into())),
    ]
}

fn event() -> impl Strategy<Value = Option<Failure>> {
    prop_oneof![1 => Just(None), 4 => failure().prop_map(Some)]
}

proptest! {
    /// For any outcomes at any times: waits are in the future and bounded; a message gives up
    /// exactly when its budget is spent, never before and never later; refusals give up at
    /// once; nothing else gives up; the circuit is open exactly when the endpoint has failed
    /// `breaker_after` times or more in a row.
    #[test]
    fn any_sequence_keeps_the_rules(
        events in proptest::collection::vec((event(), 0u64..5_000), 1..200),
        max_attempts in proptest::option::of(1u32..8),
        retry_for_ms in 1u64..20_000,
        seed in any::<u64>(),
    ) {
        let policy = policy();
        let budget = budget(Duration::from_millis(retry_for_ms), max_attempts);
        let mut machine = Machine::new(&policy, seed);
        let mut now = Instant::now();
        // The model: the message's spending attempts and first spending failure, and the
        // endpoint's streak.
        let mut attempts = 0u32;
        let mut first: Option<Instant> = None;
        let mut streak = 0u32;
        for (outcome, gap_ms) in events {
            now += Duration::from_millis(gap_ms);
            let step = match &outcome {
                None => machine.delivered(),
                Some(f) => machine.failed(now, f, &policy, &budget),
            };
            match outcome {
                None => {
                    prop_assert_eq!(step.give_up, None);
                    prop_assert_eq!(step.next, Next::SendNow);
                    attempts = 0;
                    first = None;
                    streak = 0;
                }
                Some(f) if !f.retry_can_help() => {
                    prop_assert_eq!(step.give_up, Some(GiveUp::Refused));
                    prop_assert_eq!(step.next, Next::SendNow);
                    attempts = 0;
                    first = None;
                    if f.endpoint_answered() {
                        streak = 0;
                    }
                }
                Some(f) => {
                    streak += 1;
                    let spent = if f.charges_message() {
                        attempts += 1;
                        let since = *first.get_or_insert(now);
                        max_attempts.is_some_and(|m| attempts >= m)
                            || now - since >= budget.retry_for
                    } else {
                        false
                    };
                    prop_assert_eq!(step.give_up, spent.then_some(GiveUp::RetriesExhausted));
                    if spent {
                        attempts = 0;
                        first = None;
                    }
                    let until = match step.next {
                        Next::WaitUntil(t) => t,
                        Next::OpenCircuit { until } => {
                            prop_assert_eq!(streak, policy.breaker_after);
                            until
                        }
                        Next::SendNow => {
                            return Err(TestCaseError::fail("a retryable failure sent at once"));
                        }
                    };
                    prop_assert!(until > now);
                    prop_assert!(until - now <= CAP.max(COOLDOWN));
                }
            }
            prop_assert_eq!(machine.circuit_open(), streak >= policy.breaker_after);
            prop_assert_eq!(machine.failures(), streak);
        }
    }

    /// The same seed and outcomes give the same steps: replays and tests are deterministic.
    #[test]
    fn same_seed_same_steps(
        events in proptest::collection::vec(failure(), 1..50),
        seed in any::<u64>(),
    ) {
        let policy = policy();
        let budget = budget(Duration::from_secs(3600), None);
        let now = Instant::now();
        let mut a = Machine::new(&policy, seed);
        let mut b = Machine::new(&policy, seed);
        for f in &events {
            prop_assert_eq!(
                a.failed(now, f, &policy, &budget),
                b.failed(now, f, &policy, &budget)
            );
        }
    }
}
