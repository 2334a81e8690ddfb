//! The rule index: which rules a message can possibly match, without walking every rule.
//!
//! Each rule that has a plain exact condition (`message_type = "ADT"`, `receiving_facility =
//! ["RX8", "RX9"]`) is filed under ONE of them, its anchor: in a hash map from that key's value
//! to a sorted list of rule ids. Rules without one (only globs, negations, or no conditions)
//! go on a short sorted scan list. A message's candidates are then the lists found under its
//! own values plus the scan list; every rule that can match is on exactly one of those lists,
//! because a rule holds only if its anchor does. The matcher merges the lists in rule order, so
//! file order (first match wins) is kept while 10,000 rules cost a handful of hash probes.
//!
//! The anchor is the condition whose values are shared by the fewest rules, so that the lists
//! stay short even when many rules test the same message type.
use rustc_hash::FxHashMap;

use super::keys::MessageKind;
use super::table::{KeyId, Rule};

/// One key's index: value → rule ids (ascending).
#[derive(Debug)]
pub(crate) struct KeyIndex {
    pub key: KeyId,
    pub by_value: FxHashMap<Box<[u8]>, Box<[u32]>>,
}

/// The index for one message kind.
#[derive(Debug, Default)]
pub(crate) struct KindIndex {
    pub keys: Vec<KeyIndex>,
    /// Rules with no exact anchor, ascending.
    pub scan: Box<[u32]>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub hl7: KindIndex,
    pub itk: KindIndex,
}

impl Index {
    pub fn for_kind(&self, kind: MessageKind) -> &KindIndex {
        match kind {
            MessageKind::Hl7v2 => &self.hl7,
            MessageKind::Itk => &self.itk,
        }
    }

    pub fn build(rules: &[Rule]) -> Index {
        // How many rules test each (key, value), to pick the most selective anchor.
        let mut shared: FxHashMap<(KeyId, &[u8]), u32> = FxHashMap::default();
        for r in rules {
            for c in r.conds.iter() {
                for v in c.pattern.exact_values().into_iter().flatten() {
                    *shared.entry((c.key, v)).or_default() += 1;
                }
            }
        }
        let mut hl7 = Builder::default();
        let mut itk = Builder::default();
        for (i, r) in rules.iter().enumerate() {
            // Rule counts are bounded by the file, far below u32::MAX.
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            let anchor = r
                .conds
                .iter()
                .filter_map(|c| {
                    let values = c.pattern.exact_values()?;
                    let cost = values
                        .map(|v| shared.get(&(c.key, v)).copied().unwrap_or(0))
                        .max()?;
                    Some((cost, c))
                })
                .min_by_key(|(cost, _)| *cost)
                .map(|(_, c)| c);
            let kinds: &mut [&mut Builder] = match r.kind {
                Some(MessageKind::Hl7v2) => &mut [&mut hl7],
                Some(MessageKind::Itk) => &mut [&mut itk],
                None => &mut [&mut hl7, &mut itk],
            };
            for b in kinds.iter_mut() {
                match anchor {
                    Some(c) => {
                        let per_value = b.keys.entry(c.key).or_default();
                        for v in c.pattern.exact_values().into_iter().flatten() {
                            let list = per_value.entry(v.into()).or_default();
                            // Alternatives may repeat a value; keep each rule once.
                            if list.last() != Some(&id) {
                                list.push(id);
                            }
                        }
                    }
                    None => b.scan.push(id),
                }
            }
        }
        Index {
            hl7: hl7.finish(),
            itk: itk.finish(),
        }
    }
}

#[derive(Default)]
struct Builder {
    keys: FxHashMap<KeyId, FxHashMap<Box<[u8]>, Vec<u32>>>,
    scan: Vec<u32>,
}

impl Builder {
    fn finish(self) -> KindIndex {
        let mut keys: Vec<KeyIndex> = self
            .keys
            .into_iter()
            .map(|(key, m)| KeyIndex {
                key,
                by_value: m
                    .into_iter()
                    .map(|(v, l)| (v, l.into_boxed_slice()))
                    .collect(),
            })
            .collect();
        // A stable probe order makes matching cost repeatable from one build to the next.
        keys.sort_by_key(|k| k.key.0);
        KindIndex {
            keys,
            scan: self.scan.into_boxed_slice(),
        }
    }
}
