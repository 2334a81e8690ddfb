//! [`RouteTable::explain`]: the same decision as [`RouteTable::route`], with reasons.
//!
//! It walks every rule in file order without the index and, for each rule before the decision,
//! says the first thing that did not hold: the message kind, a condition (with the message's
//! value), or a lookup value the directory does not know. It allocates freely; it serves
//! `ganglion explain`, and the property tests check it decides exactly as `route` does.
use std::borrow::Cow;

use super::keys::{Key, MessageView};
use super::matcher::{holds, Cache, Decision, Step};
use super::pattern::Pattern;
use super::table::{Lookup, RouteTable, Rule, RuleId};

/// Why a rule did not take a message, for explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub rule: RuleId,
    pub reason: String,
}

/// A decision with the reasons the earlier rules were passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub decision: Decision,
    pub skipped: Vec<Skip>,
}

impl RouteTable {
    /// Routes `msg` by trying every rule in order, with the reason each one before the decision
    /// did not hold.
    pub fn explain<M: MessageView>(&self, msg: &M) -> Explanation {
        let mut out = Decision::default();
        let mut cache = Cache::new();
        let mut skipped = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let id = RuleId(u32::try_from(i).unwrap_or(u32::MAX));
            if let Some(reason) = self.mismatch(rule, msg) {
                skipped.push(Skip { rule: id, reason });
                continue;
            }
            let mut miss = None;
            let step = self.try_rule(rule, id, msg, &mut cache, &mut out, &mut |l, v| {
                miss = Some(lookup_miss(l, v));
            });
            match step {
                Step::Done => {
                    return Explanation {
                        decision: out,
                        skipped,
                    }
                }
                Step::Continue => {}
                Step::NoMatch => skipped.push(Skip {
                    rule: id,
                    reason: miss.unwrap_or_else(|| "did not match".to_owned()),
                }),
            }
        }
        self.finish(&mut out);
        Explanation {
            decision: out,
            skipped,
        }
    }

    /// The first reason `rule` does not hold for `msg`, or `None` if its conditions all hold.
    fn mismatch(&self, rule: &Rule, msg: &impl MessageView) -> Option<String> {
        if let Some(kind) = rule.kind.filter(|&k| k != msg.kind()) {
            return Some(format!(
                "it tests {kind} values and this is an {} message",
                msg.kind()
            ));
        }
        for c in rule.conds.iter() {
            let key = self.key(c.key)?;
            if !holds(key, &c.pattern, msg) {
                let values: Vec<Cow<'_, [u8]>> = (0..)
                    .map_while(|n| msg.value(key, n).filter(|_| n == 0 || key.is_multi()))
                    .collect();
                return Some(condition_failure(key, &c.pattern, &values));
            }
        }
        None
    }
}

fn show(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    format!("\"{out}\"")
}

fn show_pattern(p: &Pattern) -> String {
    let alts: Vec<String> = p
        .alts()
        .iter()
        .map(|a| format!("\"{}\"", a.text()))
        .collect();
    match alts.as_slice() {
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    }
}

fn condition_failure(key: &Key, p: &Pattern, values: &[Cow<'_, [u8]>]) -> String {
    let shown = if values.iter().all(|v| v.is_empty()) {
        "empty".to_owned()
    } else {
        values
            .iter()
            .map(|v| show(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if p.is_negated() {
        let hit = values
            .iter()
            .find(|v| p.accepts(v))
            .map_or_else(|| "empty".to_owned(), |v| show(v));
        format!(
            "{key} is {hit}, which the route excludes ({})",
            show_pattern(p)
        )
    } else if key.is_multi() && values.len() > 1 {
        format!(
            "{key} has no value matching {} (it has {shown})",
            show_pattern(p)
        )
    } else {
        format!("{key} is {shown}, not {}", show_pattern(p))
    }
}

fn lookup_miss(l: Lookup, v: Option<&[u8]>) -> String {
    let from = l.from.name();
    let column = l.column.name();
    match v {
        None => format!("the message has no {from} to look up"),
        Some(v) => match l.from.extract(v) {
            Some(x) => format!(
                "no endpoint in the directory has {column} = {} (from {from})",
                show(x)
            ),
            None => format!("{from} {} holds no ODS code to look up", show(v)),
        },
    }
}
