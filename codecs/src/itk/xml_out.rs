//! Escaping for the builders. Every caller-supplied string goes through [`text`] or [`attr`],
//! so nothing a caller passes can change the document's structure. Characters XML 1.0 cannot
//! carry at all (most C0 controls, lone surrogates cannot occur in `&str`, U+FFFE/U+FFFF) are
//! written as U+FFFD, so the output is always well-formed.

use super::text::is_xml_char;

/// Appends `s` as element content: `&`, `<`, `>` escaped; CR as `&#13;` so it survives
/// line-end normalisation.
pub(crate) fn text(out: &mut Vec<u8>, s: &str) {
    escape(out, s, false);
}

/// Appends `s` as a double-quoted attribute value's content: additionally `"`, `'`, and TAB,
/// LF, CR as character references so attribute normalisation does not turn them into spaces.
pub(crate) fn attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, true);
}

/// `<name>escaped text</name>`.
pub(crate) fn element(out: &mut Vec<u8>, name: &str, content: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    text(out, content);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

/// ` name="escaped value"`.
pub(crate) fn attribute(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    attr(out, value);
    out.push(b'"');
}

fn escape(out: &mut Vec<u8>, s: &str, in_attr: bool) {
    let mut run = 0usize;
    for (i, ch) in s.char_indices() {
        let replacement: &[u8] = match ch {
            '&' => b"&amp;",
            '<' => b"&lt;",
            '>' => b"&gt;",
            '\r' => b"&#13;",
            '"' if in_attr => b"&quot;",
            '\'' if in_attr => b"&apos;",
            '\t' if in_attr => b"&#9;",
            '\n' if in_attr => b"&#10;",
            c if !is_xml_char(c) => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        out.extend_from_slice(s.get(run..i).unwrap_or_default().as_bytes());
        out.extend_from_slice(replacement);
        run = i + ch.len_utf8();
    }
    out.extend_from_slice(s.get(run..).unwrap_or_default().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, in_attr: bool) -> String {
        let mut out = Vec::new();
        escape(&mut out, s, in_attr);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_escaping() {
        assert_eq!(
            esc("a&b<c>d\"e'f\tg\nh\ri", false),
            "a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i"
        );
        assert_eq!(esc("plain", false), "plain");
        assert_eq!(esc("", false), "");
    }

    #[test]
    fn attribute_escaping() {
        assert_eq!(
            esc("a&b<c>d\"e'f\tg\nh\ri", true),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h&#13;i"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_become_replacement_characters() {
        assert_eq!(
            esc("a\u{1}b\u{FFFE}c\u{1F600}", false),
            "a\u{FFFD}b\u{FFFD}c\u{1F600}"
        );
    }

    #[test]
    fn element_and_attribute_helpers() {
        let mut out = Vec::new();
        element(&mut out, "itk:ErrorText", "x < y");
        attribute(&mut out, "uri", "urn:a\"b");
        assert_eq!(
            out,
            b"<itk:ErrorText>x &lt; y</itk:ErrorText> uri=\"urn:a&quot;b\""
        );
    }
}
