//! The rule index: which rules a message can possibly match, without walking every rule.
//!
//! Each rule that has a plain condition made of exact values or prefix globs
//! (`message_type = "ADT"`, `receiving_facility = ["RX8", "RX9"]`, `sending_application =
//! "LAB*"`) is filed under ONE such condition, its anchor: each exact value in a hash map from
//! value to a sorted list of rule ids, each glob under its literal prefix in a second map.
//! Rules without one (only negations, suffix globs, or no conditions) go on a short sorted scan
//! list. A message's candidates are the lists found under its own values (the value itself, and
//! its prefixes of each length some glob has) plus the scan list. Every rule that can match is
//! on one of those lists, because a rule holds only if its anchor does, and an anchor accepts a
//! value only if the value equals one of its exact values or starts with one of its prefixes.
//! The matcher merges the lists in rule order, so file order (first match wins) is kept while
//! 10,000 rules cost a handful of hash probes.
//!
//! The anchor is the condition whose values are shared by the fewest rules, so that the lists
//! stay short even when many rules test the same message type.
use rustc_hash::FxHashMap;

use super::keys::MessageKind;
use super::table::{KeyId, Rule};

/// One key's index: value → rule ids, prefix → rule ids (both ascending).
#[derive(Debug)]
pub(crate) struct KeyIndex {
    pub key: KeyId,
    pub by_value: FxHashMap<Box<[u8]>, Box<[u32]>>,
    pub by_prefix: FxHashMap<Box<[u8]>, Box<[u32]>>,
    /// The distinct lengths of the prefixes in `by_prefix`, ascending.
    pub prefix_lens: Box<[usize]>,
}

impl KeyIndex {
    /// Calls `found` with each candidate list for one value of the key.
    #[inline]
    pub fn probe<'s>(&'s self, value: &[u8], mut found: impl FnMut(&'s [u32])) {
        if let Some(l) = self.by_value.get(value) {
            found(l);
        }
        for &len in self.prefix_lens.iter() {
            let Some(p) = value.get(..len) else { break };
            if let Some(l) = self.by_prefix.get(p) {
                found(l);
            }
        }
    }
}

/// The index for one message kind.
#[derive(Debug, Default)]
pub(crate) struct KindIndex {
    pub keys: Vec<KeyIndex>,
    /// Rules with no anchor, ascending.
    pub scan: Box<[u32]>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub hl7: KindIndex,
    pub itk: KindIndex,
}

type Lists = FxHashMap<Box<[u8]>, Vec<u32>>;

#[derive(Default)]
struct Builder {
    /// Per key: (exact values, prefixes).
    keys: FxHashMap<KeyId, (Lists, Lists)>,
    scan: Vec<u32>,
}

impl Index {
    pub fn for_kind(&self, kind: MessageKind) -> &KindIndex {
        match kind {
            MessageKind::Hl7v2 => &self.hl7,
            MessageKind::Itk => &self.itk,
        }
    }

    pub fn build(rules: &[Rule]) -> Index {
        // How many rules test each (key, kind of anchor, bytes), to pick the most selective.
        let mut shared: FxHashMap<(KeyId, bool, &[u8]), u32> = FxHashMap::default();
        for r in rules {
            for c in r.conds.iter() {
                for (prefix, v) in c.pattern.anchors().into_iter().flatten() {
                    *shared.entry((c.key, prefix, v)).or_default() += 1;
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
                    let anchors = c.pattern.anchors()?;
                    // Prefixes cost a little more to probe: prefer exact values on a tie.
                    let cost = anchors
                        .map(|(p, v)| {
                            2 * shared.get(&(c.key, p, v)).copied().unwrap_or(0) + u32::from(p)
                        })
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
                let Some(c) = anchor else {
                    b.scan.push(id);
                    continue;
                };
                let (values, prefixes) = b.keys.entry(c.key).or_default();
                for (prefix, v) in c.pattern.anchors().into_iter().flatten() {
                    let map = if prefix { &mut *prefixes } else { &mut *values };
                    let list = map.entry(v.into()).or_default();
                    // Alternatives may repeat a value; keep each rule once.
                    if list.last() != Some(&id) {
                        list.push(id);
                    }
                }
            }
        }
        Index {
            hl7: hl7.finish(),
            itk: itk.finish(),
        }
    }
}

impl Builder {
    fn finish(self) -> KindIndex {
        let boxed = |m: Lists| -> FxHashMap<Box<[u8]>, Box<[u32]>> {
            m.into_iter()
                .map(|(v, l)| (v, l.into_boxed_slice()))
                .collect()
        };
        let mut keys: Vec<KeyIndex> = self
            .keys
            .into_iter()
            .map(|(key, (values, prefixes))| {
                let mut lens: Vec<usize> = prefixes.keys().map(|p| p.len()).collect();
                lens.sort_unstable();
                lens.dedup();
                KeyIndex {
                    key,
                    by_value: boxed(values),
                    by_prefix: boxed(prefixes),
                    prefix_lens: lens.into_boxed_slice(),
                }
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
