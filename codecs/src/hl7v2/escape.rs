//! Escape sequences: decoding ([`unescape`]) only when a caller asks for a value's text, and
//! encoding ([`escape`]) for values written into messages.
//!
//! A sequence is the escape character, a code, optional data and the escape character again.
//! Decoding: `\F\ \S\ \T\ \R\ \E\` (and `\P\`, v2.7, when a truncation character is defined) give
//! the delimiter itself; `\Xhh…\` gives the bytes; `\.br\` gives LF, `\.sp<n>\` n LFs, `\.sk<n>\`
//! n spaces and `\.ce\` an LF; `\H\ \N\ \.fi\ \.nf\ \.in<n>\ \.ti<n>\` (highlight and layout)
//! and the character-set switches `\Cxxyy\ \Mxxyy[zz]\` are dropped (the bytes that follow are
//! passed on as they are: no transcoding here). Locally defined `\Z…\`, unknown or malformed
//! sequences and a lone escape character are kept byte for byte.
//!
//! Invariant: `unescape(escape(v)) == v` for every byte string `v` and every valid
//! [`Separators`]: `escape` encodes every delimiter and every control byte except TAB, and only
//! produces sequences that `unescape` decodes exactly.

use std::borrow::Cow;

use memchr::memchr;

use super::separators::Separators;

/// Most line feeds or spaces one `\.sp<n>\` or `\.sk<n>\` may produce, so a few input bytes can
/// never turn into megabytes.
const MAX_LAYOUT_REPEAT: usize = 64;

/// Decodes the escape sequences of a raw value. Borrows when the value holds no escape
/// character (the common case: one `memchr`, no allocation).
pub fn unescape<'a>(raw: &'a [u8], seps: &Separators) -> Cow<'a, [u8]> {
    decode(raw, seps, false).unwrap_or(Cow::Borrowed(raw))
}

/// As [`unescape`], for values whose meaning matters (routing keys): a sequence that
/// [`unescape`] would keep byte for byte because it is not one HL7 defines (no closing escape
/// character, `\X` data that is not pairs of hex digits, an unknown code) is an error,
/// `Err(i)` with `i` the index in `raw` of its opening escape character. Locally defined
/// `\Z…\` sequences are kept, as [`unescape`] keeps them.
pub fn unescape_strict<'a>(raw: &'a [u8], seps: &Separators) -> Result<Cow<'a, [u8]>, usize> {
    decode(raw, seps, true)
}

fn decode<'a>(raw: &'a [u8], seps: &Separators, strict: bool) -> Result<Cow<'a, [u8]>, usize> {
    let esc = seps.escape;
    let Some(first) = memchr(esc, raw) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = Vec::with_capacity(raw.len());
    let (plain, mut rest) = raw.split_at(first);
    out.extend_from_slice(plain);
    // Loop invariant: `rest` is empty or starts with the escape character.
    while let Some(after_open) = rest.get(1..) {
        let at = raw.len() - rest.len();
        let Some(len) = memchr(esc, after_open) else {
            if strict {
                return Err(at);
            }
            out.extend_from_slice(rest);
            break;
        };
        let (body, after_body) = after_open.split_at(len);
        let after_close = after_body.get(1..).unwrap_or_default();
        if !decode_sequence(body, seps, &mut out) {
            if strict && body.first() != Some(&b'Z') {
                return Err(at);
            }
            // Unknown: keep the whole sequence, both escape characters included.
            out.push(esc);
            out.extend_from_slice(body);
            out.push(esc);
        }
        let next = memchr(esc, after_close).unwrap_or(after_close.len());
        let (plain, tail) = after_close.split_at(next);
        out.extend_from_slice(plain);
        rest = tail;
    }
    Ok(Cow::Owned(out))
}

/// Decodes one sequence body (between the escape characters) into `out`; `false` when it is not
/// a sequence this module knows, in which case `out` is untouched.
fn decode_sequence(body: &[u8], seps: &Separators, out: &mut Vec<u8>) -> bool {
    match body {
        b"F" => out.push(seps.field),
        b"S" => out.push(seps.component),
        b"T" => out.push(seps.subcomponent),
        b"R" => out.push(seps.repetition),
        b"E" => out.push(seps.escape),
        b"P" => match seps.truncation {
            Some(t) => out.push(t),
            None => return false,
        },
        b"H" | b"N" => {}
        [b'X', hex @ ..] => {
            if hex.is_empty() || hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            out.extend(hex.chunks_exact(2).map(|pair| match pair {
                [hi, lo] => (hex_value(*hi) << 4) | hex_value(*lo),
                _ => 0, // chunks_exact(2) yields pairs only
            }));
        }
        [b'C', hex @ ..] if hex.len() == 4 && hex.iter().all(u8::is_ascii_hexdigit) => {}
        [b'M', hex @ ..]
            if (hex.len() == 4 || hex.len() == 6) && hex.iter().all(u8::is_ascii_hexdigit) => {}
        [b'.', command @ ..] => return decode_layout(command, out),
        _ => return false,
    }
    true
}

/// Formatted-text commands (`\.br\` and friends), rendered as plain text.
fn decode_layout(command: &[u8], out: &mut Vec<u8>) -> bool {
    let (name, arg) = command.split_at(command.len().min(2));
    match name {
        b"br" | b"ce" | b"fi" | b"nf" if !arg.is_empty() => false,
        b"br" | b"ce" => {
            out.push(b'\n');
            true
        }
        b"fi" | b"nf" => true,
        b"sp" | b"sk" => {
            let Some(n) = layout_count(arg) else {
                return false;
            };
            let fill = if name == b"sp" { b'\n' } else { b' ' };
            out.extend(std::iter::repeat_n(fill, n));
            true
        }
        b"in" | b"ti" => {
            let digits = arg.strip_prefix(b"+").or_else(|| arg.strip_prefix(b"-"));
            let digits = digits.unwrap_or(arg);
            digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// `<n>` of `.sp<n>`/`.sk<n>`: absent means 1; capped at [`MAX_LAYOUT_REPEAT`].
fn layout_count(arg: &[u8]) -> Option<usize> {
    let arg = arg.strip_prefix(b"+").unwrap_or(arg);
    if arg.is_empty() {
        return Some(1);
    }
    if !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = arg.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    });
    Some(n.min(MAX_LAYOUT_REPEAT))
}

#[inline]
fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    }
}

/// `b` as two upper-case hex digits, as `\X..\` writes it.
fn hex(b: u8) -> [u8; 2] {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'A' + n - 10 };
    [digit(b >> 4), digit(b & 0x0f)]
}

/// Appends `value` to `out` with every delimiter replaced by its escape sequence and every
/// control byte but TAB (CR and LF above all, which would end the segment) written as `\Xhh\`
/// (one sequence per run). Bytes ≥ 0x80 pass through untouched.
pub fn escape(value: &[u8], seps: &Separators, out: &mut Vec<u8>) {
    let needs = |b: u8| seps.is_delimiter(b) || is_escaped_control(b);
    let mut rest = value;
    while let Some(at) = rest.iter().position(|&b| needs(b)) {
        let (plain, tail) = rest.split_at(at);
        out.extend_from_slice(plain);
        let controls = tail
            .iter()
            .take_while(|&&b| is_escaped_control(b) && !seps.is_delimiter(b))
            .count();
        if controls > 0 {
            out.push(seps.escape);
            out.push(b'X');
            for &b in tail.iter().take(controls) {
                out.extend_from_slice(&hex(b));
            }
            out.push(seps.escape);
            rest = tail.get(controls..).unwrap_or_default();
            continue;
        }
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        let code = if b == seps.field {
            b'F'
        } else if b == seps.component {
            b'S'
        } else if b == seps.subcomponent {
            b'T'
        } else if b == seps.repetition {
            b'R'
        } else if b == seps.escape {
            b'E'
        } else {
            b'P' // the truncation character, the only delimiter left
        };
        out.extend_from_slice(&[seps.escape, code, seps.escape]);
        rest = tail;
    }
    out.extend_from_slice(rest);
}

#[inline]
fn is_escaped_control(b: u8) -> bool {
    b < 0x20 && b != b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(raw: &[u8]) -> Vec<u8> {
        unescape(raw, &Separators::default()).into_owned()
    }

    #[test]
    fn strict_decoding_names_the_first_sequence_it_cannot_read() {
        let seps = Separators::default();
        let strict = |raw: &[u8]| unescape_strict(raw, &seps).map(Cow::into_owned);
        assert_eq!(strict(b"ADT"), Ok(b"ADT".to_vec()));
        assert_eq!(strict(b"N\\X48\\S\\F\\"), Ok(b"NHS|".to_vec()));
        assert_eq!(strict(b"a\\Zlocal\\b"), Ok(b"a\\Zlocal\\b".to_vec()));
        for (raw, at) in [
            (&b"ADT\\X4G\\"[..], 3),
            (b"ADT\\X0\\", 3),
            (b"ok\\F\\then\\", 9),
            (b"\\Q\\", 0),
            (b"a\\\\b", 1),
            (b"x\\.zz\\", 1),
        ] {
            assert_eq!(strict(raw), Err(at), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn borrowed_without_escape_character() {
        assert!(matches!(
            unescape(b"SMITH^JOHN", &Separators::default()),
            Cow::Borrowed(b"SMITH^JOHN")
        ));
        assert!(matches!(
            unescape(b"a\\F\\b", &Separators::default()),
            Cow::Owned(_)
        ));
    }

    #[test]
    fn delimiter_sequences() {
        assert_eq!(dec(b"A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F"), b"A|B^C&D~E\\F");
        assert_eq!(dec(b"5\\P\\"), b"5\\P\\", "no truncation character defined");
        let seps = Separators {
            truncation: Some(b'#'),
            ..Separators::default()
        };
        assert_eq!(unescape(b"5\\P\\", &seps).as_ref(), b"5#");
    }

    #[test]
    fn delimiter_sequences_follow_the_message_separators() {
        let seps = Separators {
            field: b'^',
            component: b'~',
            repetition: b'|',
            escape: b'!',
            subcomponent: b'&',
            truncation: None,
        };
        assert_eq!(unescape(b"a!F!b!S!c!R!d!E!", &seps).as_ref(), b"a^b~c|d!");
    }

    #[test]
    fn hex_data() {
        assert_eq!(dec(b"line1\\X0D0A\\line2"), b"line1\r\nline2");
        assert_eq!(dec(b"\\Xc3a9\\"), "é".as_bytes());
        // Odd digit count or non-hex: kept as written.
        assert_eq!(dec(b"\\X0D0\\"), b"\\X0D0\\");
        assert_eq!(dec(b"\\XZZ\\"), b"\\XZZ\\");
        assert_eq!(dec(b"\\X\\"), b"\\X\\");
    }

    #[test]
    fn formatting_commands() {
        assert_eq!(dec(b"a\\.br\\b"), b"a\nb");
        assert_eq!(dec(b"a\\.sp3\\b"), b"a\n\n\nb");
        assert_eq!(dec(b"a\\.sp\\b"), b"a\nb");
        assert_eq!(dec(b"a\\.sk2\\b"), b"a  b");
        assert_eq!(dec(b"\\.ce\\T"), b"\nT");
        assert_eq!(dec(b"\\.fi\\a\\.nf\\b\\.in+4\\c\\.ti-2\\d"), b"abcd");
        assert_eq!(dec(b"\\H\\bold\\N\\"), b"bold");
        assert_eq!(
            dec(b"a\\.sp99999999999999999999999\\b").len(),
            2 + MAX_LAYOUT_REPEAT
        );
        assert_eq!(dec(b"\\.xx\\"), b"\\.xx\\");
        assert_eq!(dec(b"\\.brx\\"), b"\\.brx\\");
    }

    #[test]
    fn character_set_and_local_sequences() {
        assert_eq!(dec(b"\\C2842\\abc\\C2D41\\"), b"abc");
        assert_eq!(dec(b"\\M2442\\x\\M242841\\"), b"x");
        assert_eq!(dec(b"\\M24\\"), b"\\M24\\");
        assert_eq!(dec(b"\\Zlocal\\"), b"\\Zlocal\\");
    }

    #[test]
    fn malformed_sequences_are_kept() {
        assert_eq!(dec(b"C:\\temp"), b"C:\\temp");
        assert_eq!(dec(b"\\"), b"\\");
        assert_eq!(dec(b"\\\\"), b"\\\\");
        assert_eq!(dec(b"a\\Q\\b\\F\\"), b"a\\Q\\b|");
        assert_eq!(dec(b"\\F\\\\"), b"|\\");
    }

    #[test]
    fn escape_encodes_delimiters_and_controls() {
        let seps = Separators {
            truncation: Some(b'#'),
            ..Separators::default()
        };
        let mut out = Vec::new();
        escape(b"a|b^c~d\\e&f#g\r\nh\ti\x00", &seps, &mut out);
        assert_eq!(
            out,
            b"a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\P\\g\\X0D0A\\h\ti\\X00\\".to_vec()
        );
        assert_eq!(
            unescape(&out, &seps).as_ref(),
            b"a|b^c~d\\e&f#g\r\nh\ti\x00"
        );
    }

    #[test]
    fn escape_appends() {
        let mut out = b"keep:".to_vec();
        escape(b"plain", &Separators::default(), &mut out);
        assert_eq!(out, b"keep:plain");
    }
}
