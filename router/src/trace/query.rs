//! A lookup's answer from the index alone: the messages found, each with its "received" entry
//! (when the index has it) and its outcomes in time order. What the index cannot know — an
//! endpoint's queue now, whether a dead letter is still there — the admin answer adds.
use std::collections::BTreeMap;
use std::io;

use super::entry::{Entry, MessageRef, Outcome, Received};
use super::hash::{self, PatientKey};
use super::index::Index;

/// What is asked for. Times are Unix nanoseconds, inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// An HL7 control id (MSH-10) or an ITK tracking id.
    Id { id: String, from: u64, to: u64 },
    /// A patient id as in PID-3 (CX.1 of any repetition).
    Patient { id: String, from: u64, to: u64 },
    /// Every message received in the range.
    Range { from: u64, to: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTrace {
    pub message: MessageRef,
    pub received: Option<Received>,
    pub outcomes: Vec<Outcome>,
}

impl MessageTrace {
    pub fn control_id(&self) -> &str {
        match (&self.received, self.outcomes.first()) {
            (Some(r), _) => &r.control_id,
            (None, Some(o)) => &o.control_id,
            (None, None) => "",
        }
    }

    fn time(&self) -> u64 {
        match (&self.received, self.outcomes.first()) {
            (Some(r), _) => r.time_unix_nanos,
            (None, Some(o)) => o.time_unix_nanos,
            (None, None) => 0,
        }
    }
}

/// The messages `query` finds, oldest first, at most `limit` (the newest are kept); `more`
/// says whether some were left out.
pub fn run(
    index: &Index,
    key: &PatientKey,
    query: &Query,
    limit: usize,
) -> io::Result<(Vec<MessageTrace>, bool)> {
    let mut messages: BTreeMap<MessageRef, MessageTrace> = BTreeMap::new();
    let add = |messages: &mut BTreeMap<MessageRef, MessageTrace>, entry: Entry| {
        let m = messages
            .entry(entry.message())
            .or_insert_with(|| MessageTrace {
                message: entry.message(),
                received: None,
                outcomes: Vec::new(),
            });
        match entry {
            Entry::Received(r) => m.received = Some(r),
            Entry::Outcome(o) => m.outcomes.push(o),
        }
    };
    match query {
        Query::Id { id, from, to } => {
            // Outcomes carry the id too: one probe finds the message and everything after it.
            for entry in index.find(hash::control_id(id.as_bytes()), *from, u64::MAX)? {
                let same = match &entry {
                    Entry::Received(r) => r.control_id == *id && r.time_unix_nanos <= *to,
                    Entry::Outcome(o) => o.control_id == *id,
                };
                if same {
                    add(&mut messages, entry);
                }
            }
        }
        Query::Patient { id, from, to } => {
            let wanted = key.patient(id.as_bytes());
            for entry in index.find(wanted, *from, *to)? {
                if let Entry::Received(r) = &entry {
                    if r.patient_hashes.contains(&wanted) {
                        add(&mut messages, entry);
                    }
                }
            }
        }
        Query::Range { from, to } => {
            let mut seen = 0usize;
            index.scan(*from, *to, |entry| {
                if let Entry::Received(_) = entry {
                    add(&mut messages, entry);
                    seen += 1;
                }
                // Past a bound, further messages would be left out anyway.
                seen < limit.saturating_mul(16).max(10_000)
            })?;
        }
    }
    let mut found: Vec<MessageTrace> = messages.into_values().collect();
    found.sort_by_key(MessageTrace::time);
    let more = found.len() > limit;
    if more {
        found.drain(..found.len() - limit);
    }
    // Patient and range lookups found arrivals; their outcomes are found by the message's key.
    if !matches!(query, Query::Id { .. }) {
        for m in &mut found {
            let since = m.received.as_ref().map_or(0, |r| r.time_unix_nanos);
            for entry in index.find(hash::message_key(m.message), since, u64::MAX)? {
                if let Entry::Outcome(o) = entry {
                    if o.message == m.message {
                        m.outcomes.push(o);
                    }
                }
            }
        }
    }
    for m in &mut found {
        m.outcomes.sort_by_key(|o| o.time_unix_nanos);
    }
    Ok((found, more))
}
