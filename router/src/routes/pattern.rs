//! What a route's condition accepts: exact values, `*` globs, lists of alternatives, negation.
//!
//! A [`Pattern`] is a list of alternatives (each an exact value or a glob), possibly negated. An
//! absent value is treated as the empty string, so `""` matches a field that is missing or empty
//! and `{ not = "" }` asks for a field to be present. Keys that can hold several values (ITK
//! addresses, manifest profile ids) hold when ANY value is accepted; negated, they hold when NO
//! value is accepted, so a negated condition is exactly the complement of the plain one.
//! [`Pattern::implies`] is the conservative subset test behind the "can never match" warning.
use super::glob::Glob;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Alt {
    Exact(Box<[u8]>),
    Glob(Glob),
}

impl Alt {
    pub fn new(text: &str) -> Alt {
        Glob::new(text).map_or_else(|| Alt::Exact(text.as_bytes().into()), Alt::Glob)
    }

    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            Alt::Exact(e) => **e == *value,
            Alt::Glob(g) => g.matches(value),
        }
    }

    /// The text as written in `routes.toml` (exact values come from TOML strings, so UTF-8).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Alt::Exact(e) => String::from_utf8_lossy(e),
            Alt::Glob(g) => g.as_str().into(),
        }
    }
}

/// Invariant: `alts` is not empty (the parser refuses `[]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    negated: bool,
    alts: Box<[Alt]>,
}

impl Pattern {
    /// `None` when `alts` is empty.
    pub fn new(negated: bool, alts: Vec<Alt>) -> Option<Pattern> {
        if alts.is_empty() {
            return None;
        }
        Some(Pattern {
            negated,
            alts: alts.into(),
        })
    }

    pub fn is_negated(&self) -> bool {
        self.negated
    }

    pub fn alts(&self) -> &[Alt] {
        &self.alts
    }

    /// Whether one value is among the alternatives, ignoring negation.
    pub fn accepts(&self, value: &[u8]) -> bool {
        self.alts.iter().any(|a| a.matches(value))
    }

    /// Whether the condition holds for a key with `values` (none means absent: checked as `""`).
    pub fn holds<'v>(&self, values: impl IntoIterator<Item = &'v [u8]>) -> bool {
        let mut seen = false;
        let mut any = false;
        for v in values {
            seen = true;
            if self.accepts(v) {
                any = true;
                break;
            }
        }
        if !seen {
            any = self.accepts(b"");
        }
        any != self.negated
    }

    /// The exact values to index the rule under, when the pattern is plain exact values only.
    pub fn exact_values(&self) -> Option<impl Iterator<Item = &[u8]> + '_> {
        if self.negated || self.alts.iter().any(|a| matches!(a, Alt::Glob(_))) {
            return None;
        }
        Some(self.alts.iter().filter_map(|a| match a {
            Alt::Exact(e) => Some(&**e),
            Alt::Glob(_) => None,
        }))
    }

    /// What the rule index may file the rule under: for a plain (not negated) pattern whose
    /// alternatives are all exact values or globs with a literal prefix, each alternative as
    /// `(is_prefix, bytes)`. A value the pattern accepts equals one exact value or starts with
    /// one prefix.
    pub fn anchors(&self) -> Option<impl Iterator<Item = (bool, &[u8])> + '_> {
        let ok = !self.negated
            && self.alts.iter().all(|a| match a {
                Alt::Exact(_) => true,
                Alt::Glob(g) => !g.prefix().is_empty(),
            });
        ok.then(|| {
            self.alts.iter().map(|a| match a {
                Alt::Exact(e) => (false, &**e),
                Alt::Glob(g) => (true, g.prefix()),
            })
        })
    }

    /// True when the pattern accepts every value (`"*"` among plain alternatives).
    pub fn is_universal(&self) -> bool {
        !self.negated
            && self
                .alts
                .iter()
                .any(|a| matches!(a, Alt::Glob(g) if g.is_universal()))
    }

    /// True when the pattern accepts no value at all (a negated `"*"`).
    pub fn is_empty_set(&self) -> bool {
        self.negated
            && self
                .alts
                .iter()
                .any(|a| matches!(a, Alt::Glob(g) if g.is_universal()))
    }

    /// Conservative implication: `true` only if every message for which `self` holds also makes
    /// `wider` hold. `multi` says whether the key can hold several values in one message.
    pub fn implies(&self, wider: &Pattern, multi: bool) -> bool {
        if wider.is_universal() || self.is_empty_set() {
            return true;
        }
        let same_glob =
            |p: &Pattern, g: &Glob| p.alts.iter().any(|a| matches!(a, Alt::Glob(h) if h == g));
        match (self.negated, wider.negated) {
            (false, false) => self.alts.iter().all(|a| match a {
                Alt::Exact(e) => wider.accepts(e),
                Alt::Glob(g) => same_glob(wider, g),
            }),
            // With several values, one accepted by `self` says nothing about the others.
            (false, true) => {
                !multi
                    && self.alts.iter().all(|a| match a {
                        Alt::Exact(e) => !wider.accepts(e),
                        Alt::Glob(_) => false,
                    })
            }
            // "none in A" implies "none in B" when B ⊆ A.
            (true, true) => wider.alts.iter().all(|a| match a {
                Alt::Exact(e) => self.accepts(e),
                Alt::Glob(g) => same_glob(self, g),
            }),
            (true, false) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(neg: bool, alts: &[&str]) -> Pattern {
        Pattern::new(neg, alts.iter().map(|a| Alt::new(a)).collect())
            .unwrap_or_else(|| panic!("non-empty"))
    }

    #[test]
    fn absent_is_empty() {
        let none: [&[u8]; 0] = [];
        assert!(p(false, &[""]).holds(none));
        assert!(!p(true, &[""]).holds(none));
        assert!(p(false, &["*"]).holds(none));
        assert!(!p(false, &["ADT"]).holds(none));
    }

    #[test]
    fn any_value_for_multi_keys() {
        let addrs: [&[u8]; 2] = [b"urn:a", b"urn:b"];
        assert!(p(false, &["urn:b"]).holds(addrs));
        assert!(!p(true, &["urn:b"]).holds(addrs));
        assert!(p(true, &["urn:c"]).holds(addrs));
    }

    #[test]
    fn implication() {
        assert!(p(false, &["A01"]).implies(&p(false, &["A01", "A04"]), false));
        assert!(!p(false, &["A01", "A08"]).implies(&p(false, &["A01", "A04"]), false));
        assert!(p(false, &["ADT"]).implies(&p(false, &["A*"]), false));
        assert!(p(false, &["A*"]).implies(&p(false, &["*"]), false));
        assert!(!p(false, &["A*"]).implies(&p(false, &["AD*"]), false));
        assert!(p(false, &["X"]).implies(&p(true, &["Y"]), false));
        assert!(!p(false, &["X"]).implies(&p(true, &["Y"]), true));
        assert!(p(true, &["X", "Y"]).implies(&p(true, &["X"]), true));
        assert!(!p(true, &["X"]).implies(&p(true, &["X", "Y"]), true));
        assert!(!p(true, &["X"]).implies(&p(false, &["Y"]), false));
    }
}
