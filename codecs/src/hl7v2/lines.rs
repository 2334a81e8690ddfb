//! Segment boundaries. The standard ends segments with CR; real senders and git checkouts also
//! use LF and CRLF, sometimes mixed in one file, so all three end a line here. The input is never
//! rewritten: callers get offsets into the original bytes.

use memchr::memchr2;

/// One line: `start..end` is its content (no terminator); `next` is where the following line
/// starts (after CR, LF or CRLF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    pub start: usize,
    pub end: usize,
    pub next: usize,
}

/// Iterator over every line of `bytes` from `pos`, blank lines included.
#[derive(Debug, Clone)]
pub(crate) struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    pub fn new(bytes: &'a [u8], pos: usize) -> Self {
        Lines { bytes, pos }
    }
}

impl Iterator for Lines<'_> {
    type Item = Line;

    #[inline]
    fn next(&mut self) -> Option<Line> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        let line = match memchr2(b'\r', b'\n', rest) {
            Some(i) => {
                let end = start + i;
                let crlf = rest.get(i) == Some(&b'\r') && rest.get(i + 1) == Some(&b'\n');
                Line {
                    start,
                    end,
                    next: end + if crlf { 2 } else { 1 },
                }
            }
            None => Line {
                start,
                end: self.bytes.len(),
                next: self.bytes.len(),
            },
        };
        self.pos = line.next;
        Some(line)
    }
}

/// Skips a UTF-8 byte-order mark at the very start and any CR/LF after it.
pub(crate) fn skip_preamble(bytes: &[u8]) -> usize {
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let rest = bytes.get(bom..).unwrap_or_default();
    bom + rest
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(bytes: &[u8]) -> Vec<&[u8]> {
        Lines::new(bytes, 0)
            .map(|l| &bytes[l.start..l.end])
            .collect()
    }

    #[test]
    fn cr_lf_crlf_and_mixed() {
        assert_eq!(contents(b"A\rB\rC"), [&b"A"[..], b"B", b"C"]);
        assert_eq!(contents(b"A\nB\n"), [&b"A"[..], b"B"]);
        assert_eq!(contents(b"A\r\nB\r\n"), [&b"A"[..], b"B"]);
        assert_eq!(contents(b"A\r\nB\nC\rD"), [&b"A"[..], b"B", b"C", b"D"]);
        // LF CR is two terminators: an empty line between.
        assert_eq!(contents(b"A\n\rB"), [&b"A"[..], b"", b"B"]);
        assert!(contents(b"").is_empty());
    }

    #[test]
    fn preamble() {
        assert_eq!(skip_preamble(b"\xEF\xBB\xBF\r\n\nMSH"), 6);
        assert_eq!(skip_preamble(b"MSH"), 0);
        assert_eq!(skip_preamble(b"\n\n"), 2);
    }
}
