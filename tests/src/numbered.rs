//! Numbered HL7v2 messages for the tests that check what arrived after a crash or a failover:
//! sender `s`'s message `i` has control id `S<s>-<i>` and goes to the facility `(s + i) mod n`
//! of the test's list, so any arrival says who sent it, in which place, and where it belongs.
use std::collections::{HashMap, HashSet};

use codecs::hl7v2::Message;

use crate::endpoint::Endpoint;

/// Sender `sender`'s message `i`, to one of `facilities` (an ADT^A08 with a PID).
pub fn message(facilities: &[&str], sender: usize, i: usize) -> Vec<u8> {
    let facility = facilities[(sender + i) % facilities.len()];
    format!(
        "MSH|^~\\&|PAS|RX8|EPR|{facility}|20261125093015||ADT^A08^ADT_A01|S{sender}-{i}|P|2.4\r\
         EVN|A08|20261125093000\rPID|1||{i}^^^NHS^NH||TEST^PATIENT\r"
    )
    .into_bytes()
}

/// MSH-10 of a message an endpoint received.
pub fn control_id(message: &[u8]) -> String {
    let parsed = Message::parse(message).expect("endpoint received HL7");
    String::from_utf8_lossy(parsed.msh().control_id().unwrap_or_default()).into_owned()
}

/// Every control id that reached any of `endpoints`.
pub fn arrived(endpoints: &[Endpoint]) -> HashSet<String> {
    endpoints
        .iter()
        .flat_map(|e| e.inbox.messages())
        .map(|m| control_id(&m))
        .collect()
}

/// Checks that the first arrival of each message at `endpoints[k]` (the endpoint of
/// `facilities[k]`) went where its number says, in the order its sender sent them; returns
/// the arrivals beyond the first (allowed: delivery is at-least-once). `context` starts each
/// failure's message (a seed, a test's name).
pub fn check_order(facilities: &[&str], endpoints: &[Endpoint], context: &str) -> usize {
    let mut duplicates = 0;
    for (facility, endpoint) in facilities.iter().zip(endpoints) {
        let mut seen = HashSet::new();
        let mut last: HashMap<usize, usize> = HashMap::new();
        for message in endpoint.inbox.messages() {
            let id = control_id(&message);
            if !seen.insert(id.clone()) {
                duplicates += 1;
                continue;
            }
            let (sender, i) = id[1..]
                .split_once('-')
                .expect("an S<sender>-<i> control id");
            let (sender, i): (usize, usize) = (
                sender.parse().expect("a sender number"),
                i.parse().expect("a message number"),
            );
            assert_eq!(
                facilities[(sender + i) % facilities.len()],
                *facility,
                "{context}: {id} misrouted"
            );
            if let Some(&before) = last.get(&sender) {
                assert!(
                    i > before,
                    "{context}: {facility} got {id} after S{sender}-{before}"
                );
            }
            last.insert(sender, i);
        }
    }
    duplicates
}
