//! `*` globs over bytes: `ADT*`, `*:RX8:*`, `urn:nhs-itk:services:201005:Send*-v2-0`.
//!
//! `*` matches any run of bytes, including none; every other byte matches itself. A glob is split
//! at its stars once, when the table is built, so matching is a prefix check, a suffix check and
//! a left-to-right search for each middle part: greedy leftmost matching of the middles is
//! correct because `*` can absorb whatever lies between them. No allocation, no backtracking.

/// A compiled glob. Invariant: built from a pattern holding at least one `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Glob {
    text: Box<str>,
    prefix: Box<[u8]>,
    middles: Box<[Box<[u8]>]>,
    suffix: Box<[u8]>,
}

impl Glob {
    /// `None` when `pattern` has no `*` (it is an exact value, matched through the hash index).
    pub fn new(pattern: &str) -> Option<Glob> {
        let mut parts: Vec<&[u8]> = pattern.as_bytes().split(|&b| b == b'*').collect();
        if parts.len() < 2 {
            return None;
        }
        // At least two parts because the pattern holds a star.
        let suffix = parts.pop().unwrap_or_default();
        let prefix = parts.first().copied().unwrap_or_default();
        let middles = parts
            .iter()
            .skip(1)
            .filter(|m| !m.is_empty())
            .map(|m| Box::<[u8]>::from(*m))
            .collect();
        Some(Glob {
            text: pattern.into(),
            prefix: prefix.into(),
            middles,
            suffix: suffix.into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The literal bytes before the first `*`: every value the glob matches starts with them.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// True when the glob is `*`, `**`, …: it matches every value.
    pub fn is_universal(&self) -> bool {
        self.prefix.is_empty() && self.suffix.is_empty() && self.middles.is_empty()
    }

    pub fn matches(&self, value: &[u8]) -> bool {
        if value.len() < self.prefix.len() + self.suffix.len() {
            return false;
        }
        let Some(rest) = value.strip_prefix(&*self.prefix) else {
            return false;
        };
        let Some(mut rest) = rest.strip_suffix(&*self.suffix) else {
            return false;
        };
        for m in self.middles.iter() {
            match find(rest, m) {
                Some(at) => rest = rest.get(at + m.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        true
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::new(p).unwrap_or_else(|| panic!("{p} has a star"))
    }

    #[test]
    fn no_star_is_not_a_glob() {
        assert_eq!(Glob::new("ADT"), None);
    }

    #[test]
    fn matches_like_a_shell_glob() {
        assert!(g("*").matches(b""));
        assert!(g("*").is_universal());
        assert!(g("ADT*").matches(b"ADT"));
        assert!(g("ADT*").matches(b"ADT_A01"));
        assert!(!g("ADT*").matches(b"AD"));
        assert!(g("*A01").matches(b"ADT_A01"));
        assert!(g("a*b*c").matches(b"abc"));
        assert!(g("a*b*c").matches(b"axxbyyc"));
        assert!(!g("a*b*c").matches(b"axxcyyb"));
        // The suffix may not overlap the prefix.
        assert!(!g("ab*ba").matches(b"aba"));
        assert!(g("*:RX8:*").matches(b"urn:nhs-uk:addressing:ods:RX8:DrA"));
        assert!(!g("*:RX8:*").matches(b"urn:nhs-uk:addressing:ods:RX8"));
    }

    /// A reference matcher by recursion, to check the greedy one against.
    fn naive(p: &[u8], v: &[u8]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some((b'*', rest)) => (0..=v.len()).any(|i| naive(rest, &v[i..])),
            Some((c, rest)) => v.first() == Some(c) && naive(rest, &v[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_naive(p in "[ab*]{1,8}", v in "[ab]{0,10}") {
            if let Some(glob) = Glob::new(&p) {
                proptest::prop_assert_eq!(glob.matches(v.as_bytes()), naive(p.as_bytes(), v.as_bytes()));
            }
        }
    }
}
