//! Byte scans over names, eight bytes at a time: element names and attribute keys are a dozen
//! bytes or so, too short for `memchr` or `memcmp` calls to pay off and long enough that a
//! loop with a branch per byte (and a mispredicted exit) shows in every message.
//!
//! Words are read little-endian, so the lowest flagged byte of a mask is the first in the input.
//! The "less than" trick below flags a byte exactly when no lower byte of the word is flagged;
//! bytes above a flagged one may be flagged wrongly, which is harmless as only the lowest
//! flagged byte is used.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `s` from `i`, when there are eight.
#[inline(always)]
fn word(s: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = s.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// High bit set in each byte of `x` below `n` (`n` at most 0x80), exact up to the first.
#[inline(always)]
const fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGH
}

/// High bit set in each byte of `x` equal to `c`, exact up to the first.
#[inline(always)]
const fn equal(x: u64, c: u8) -> u64 {
    below(x ^ (ONES * c as u64), 1)
}

/// Bytes that end a name or key, or make a tag irregular: whitespace, quotes, `/`, `=`, `>`.
#[allow(clippy::indexing_slicing)] // evaluated at compile time: a slip fails the build
pub(crate) const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(
            b as u8,
            b'"' | b'\'' | b'>' | b'/' | b'=' | b' ' | b'\t' | b'\r' | b'\n'
        );
        b += 1;
    }
    t
};

/// Whether `b` is one of the [`SPECIAL`] bytes.
#[inline]
pub(crate) fn special(b: u8) -> bool {
    SPECIAL.get(usize::from(b)).copied().unwrap_or(false)
}

/// Index of the first [`SPECIAL`] byte of `s` from `i` on, or `s.len()`.
#[inline]
pub(crate) fn name_end(s: &[u8], mut i: usize) -> usize {
    // Every special byte is below `0`, or is `=` or `>`; so are `-` and `.`, which names may
    // hold, so a flagged byte is checked before it counts.
    while let Some(x) = word(s, i) {
        let m = below(x, b'0') | equal(x, b'=') | equal(x, b'>');
        if m == 0 {
            i += 8;
            continue;
        }
        // Bit 8k+7 flags byte k.
        let at = i + (m.trailing_zeros() / 8) as usize;
        if s.get(at).is_some_and(|&b| special(b)) {
            return at;
        }
        i = at + 1;
    }
    let rest = s.get(i..).unwrap_or_default();
    i + rest.iter().position(|&b| special(b)).unwrap_or(rest.len())
}

/// Byte equality, a word at a time.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while let (Some(x), Some(y)) = (word(a, i), word(b, i)) {
        if x != y {
            return false;
        }
        i += 8;
    }
    let (a, b) = (
        a.get(i..).unwrap_or_default(),
        b.get(i..).unwrap_or_default(),
    );
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_end_finds_the_first_special_byte() {
        for s in [
            "",
            "a",
            "soap:Envelope",
            "itk:DistributionEnvelope xmlns:itk",
            "a-b.c_d:e-f.g-h.i-j.k-l.m>",
            "abcdefgh",
            "abcdefghi=",
            "abcdefg\"",
            "é:ü-name\t",
            "x/>",
            "0123456789'",
            "abc\rdef",
        ] {
            let want = s.bytes().position(special);
            for from in 0..=s.len() {
                let expect = s
                    .bytes()
                    .skip(from)
                    .position(special)
                    .map_or(s.len(), |p| p + from);
                assert_eq!(name_end(s.as_bytes(), from), expect, "{s:?} from {from}");
            }
            assert_eq!(name_end(s.as_bytes(), 0), want.unwrap_or(s.len()));
        }
        for b in 0..=255u8 {
            let mut s = vec![b'a'; 19];
            s[11] = b;
            let special = special(b);
            assert_eq!(name_end(&s, 0), if special { 11 } else { 19 }, "{b:#04x}");
        }
    }

    #[test]
    fn same_compares_every_byte() {
        let names: [&[u8]; 6] = [
            b"",
            b"a",
            b"wsa:Action",
            b"itk:DistributionEnvelope",
            b"itk:DistributionEnvelopf",
            b"jtk:DistributionEnvelope",
        ];
        for a in names {
            for b in names {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
