//! `GET /trace?id=…`, `?patient=…`, `?from=…&to=…` (with `limit`): where messages are. The
//! index ([`crate::trace`]) says what happened; for each endpoint a message still waits for,
//! the endpoint's state now (queue, connection, circuit, last error) is added from its status,
//! and for each dead letter whether the store still holds it.
//!
//! Times are RFC 3339 in UTC (`2026-12-04T19:00:00Z`, fractions allowed), Unix seconds, or
//! relative to now (`-90m`, `-2h`, `-1d`).
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::endpoints;
use crate::deadletter::{DeadLetterId, DeadLetterStore, State};
use crate::ingress::accept::unix_nanos;
use crate::shard::Routing;
use crate::trace::entry::{Outcome, What};
use crate::trace::query::{MessageTrace, Query};
use crate::wire_time::rfc3339_nanos;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// A request's query, read from its parameters.
pub fn parse(text: &str, now: SystemTime) -> Result<(Query, usize), String> {
    let (mut id, mut patient, mut from, mut to) = (None, None, 0, u64::MAX);
    let mut limit = DEFAULT_LIMIT;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(raw).ok_or_else(|| format!("`{key}`: bad percent-encoding"))?;
        match key {
            "id" => id = Some(value),
            "patient" => patient = Some(value),
            "from" => from = time(&value, now).ok_or_else(|| bad_time("from", &value))?,
            "to" => to = time(&value, now).ok_or_else(|| bad_time("to", &value))?,
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit `{value}`: a number from 1 to {MAX_LIMIT}"))?
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: id, patient, from, to and limit are the ones \
                     there are"
                ))
            }
        }
    }
    let query = match (id, patient) {
        (Some(_), Some(_)) => return Err("give `id` or `patient`, not both".to_string()),
        (Some(id), None) if !id.is_empty() => Query::Id { id, from, to },
        (None, Some(id)) if !id.is_empty() => Query::Patient { id, from, to },
        (None, None) if from > 0 || to < u64::MAX => Query::Range { from, to },
        _ => return Err("give `id`, `patient`, or a time range (`from`, `to`)".to_string()),
    };
    Ok((query, limit))
}

fn bad_time(key: &str, value: &str) -> String {
    format!(
        "{key} `{value}`: a time as 2026-12-04T19:00:00Z, Unix seconds, or relative as -90m, -2h, -1d"
    )
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Unix nanoseconds of a time as the query gives it.
pub fn time(s: &str, now: SystemTime) -> Option<u64> {
    if let Some(ago) = s.strip_prefix('-') {
        let split = ago.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = ago.get(..split)?.parse().ok()?;
        let unit = match ago.get(split..)? {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        let back = Duration::from_secs(n.checked_mul(unit)?);
        return Some(unix_nanos(now.checked_sub(back)?));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok()?.checked_mul(1_000_000_000);
    }
    rfc3339(s)
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]Z`.
fn rfc3339(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'))?;
    let (date, clock) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10i64.pow(9 - fraction.len() as u32)
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs.checked_mul(1_000_000_000)?.checked_add(nanos)?).ok()
}

fn event(o: &Outcome) -> Value {
    json!({
        "at": rfc3339_nanos(o.time_unix_nanos),
        "endpoint": o.endpoint,
        "what": o.what.as_str(),
        "detail": o.detail,
        "dead_letter": o.dead_letter,
    })
}

/// Where one destination of a message stands.
fn destination(
    name: &str,
    outcomes: &[&Outcome],
    routing: &Routing,
    dead_letters: &DeadLetterStore,
    now: SystemTime,
) -> Value {
    let last_final = outcomes.iter().rev().find(|o| o.what != What::Retrying);
    let retries: Vec<&&Outcome> = outcomes
        .iter()
        .filter(|o| o.what == What::Retrying)
        .collect();
    match last_final {
        Some(o) if o.what == What::Delivered => json!({
            "endpoint": name,
            "state": "delivered",
            "at": rfc3339_nanos(o.time_unix_nanos),
            "ack": o.detail,
            "attempts_failed": retries.len(),
        }),
        Some(o) => {
            let held = o
                .dead_letter
                .as_deref()
                .and_then(|id| DeadLetterId::parse(id).ok())
                .map(|id| dead_letters.show(&id).map(|(_, state)| state));
            json!({
                "endpoint": name,
                "state": "dead-lettered",
                "at": rfc3339_nanos(o.time_unix_nanos),
                "reason": o.detail,
                "dead_letter": o.dead_letter,
                "dead_letter_state": match held {
                    Some(Ok(State::Ready)) => "held",
                    Some(Ok(State::Replaying)) => "replaying",
                    Some(Err(_)) => "gone (replayed or dropped)",
                    None => "unknown",
                },
            })
        }
        None => {
            let last = retries
                .last()
                .map(|o| json!({"at": rfc3339_nanos(o.time_unix_nanos), "error": o.detail}));
            let now_at = endpoints::one(routing, name, now).map(|e| {
                json!({
                    "queued": e["queued"],
                    "connection": e["connection"],
                    "circuit": e["circuit"],
                    "circuit_open_since": e["circuit_open_since"],
                    "last_error": e["last_error"],
                })
            });
            json!({
                "endpoint": name,
                "state": "waiting",
                "attempts_failed": retries.len(),
                "last_attempt": last,
                "endpoint_now": now_at,
            })
        }
    }
}

/// One message's JSON: its arrival, where each destination stands, and every event.
fn message(
    m: &MessageTrace,
    routing: &Routing,
    dead_letters: &DeadLetterStore,
    now: SystemTime,
) -> Value {
    let mut by_endpoint: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    let mut names: Vec<&str> = Vec::new();
    if let Some(r) = &m.received {
        names.extend(r.destinations.iter().map(String::as_str));
    }
    for o in &m.outcomes {
        if !names.contains(&o.endpoint.as_str()) {
            names.push(&o.endpoint);
        }
        by_endpoint.entry(&o.endpoint).or_default().push(o);
    }
    let destinations: Vec<Value> = names
        .iter()
        .map(|name| {
            let outcomes = by_endpoint.get(name).map_or(&[][..], |v| &v[..]);
            destination(name, outcomes, routing, dead_letters, now)
        })
        .collect();
    let received = m.received.as_ref().map(|r| {
        json!({
            "at": rfc3339_nanos(r.time_unix_nanos),
            "kind": r.kind.as_str(),
            "listener": r.listener,
            "peer": r.peer,
            "rules": r.rules,
            "destinations": r.destinations,
        })
    });
    json!({
        "control_id": m.control_id(),
        "log": m.message.log,
        "record": m.message.record,
        "received": received,
        "destinations": destinations,
        "events": m.outcomes.iter().map(event).collect::<Vec<_>>(),
    })
}

/// The answer to a lookup.
pub fn answer(
    found: &[MessageTrace],
    more: bool,
    routing: &Routing,
    dead_letters: &DeadLetterStore,
    now: SystemTime,
) -> Value {
    json!({
        "messages": found
            .iter()
            .map(|m| message(m, routing, dead_letters, now))
            .collect::<Vec<_>>(),
        "more": more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_times_are_read_and_bad_ones_say_why() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse("id=MSG%201", now).unwrap(),
            (
                Query::Id {
                    id: "MSG 1".into(),
                    from: 0,
                    to: u64::MAX
                },
                DEFAULT_LIMIT
            )
        );
        let (q, limit) = parse("patient=943&from=-1h&to=999000&limit=5", now).unwrap();
        assert_eq!(
            q,
            Query::Patient {
                id: "943".into(),
                from: (1_000_000 - 3600) * 1_000_000_000,
                to: 999_000 * 1_000_000_000
            }
        );
        assert_eq!(limit, 5);
        assert!(matches!(
            parse("from=2026-12-04T19:00:00Z", now).unwrap().0,
            Query::Range { .. }
        ));
        assert_eq!(
            rfc3339("2026-12-04T19:00:00.5Z"),
            Some(1_796_410_800 * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert!(parse("", now).is_err());
        assert!(parse("id=a&patient=b", now).is_err());
        assert!(parse("from=yesterday", now)
            .unwrap_err()
            .contains("yesterday"));
        assert!(parse("colour=red", now).unwrap_err().contains("colour"));
        assert!(parse("id=%zz", now).is_err());
    }
}
