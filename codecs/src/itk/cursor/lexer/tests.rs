//! The fast tokenizer against quick-xml, token for token: wherever the fast one produces a
//! token, quick-xml produces the same one at the same position, and the fast one reads every
//! well-formed document to the end without giving up.

use super::*;
use crate::itk::cursor::source::{Failure, Source};
use proptest::prelude::*;

#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    /// A token and the position after it.
    Tok(Tok<'a>, usize),
    /// The fast tokenizer gave up, or quick-xml failed.
    Stop,
}

fn steps(input: &[u8], exact: bool) -> Vec<Step<'_>> {
    let mut source = Source::new(input, exact);
    let mut out = Vec::new();
    loop {
        match source.token(input) {
            Ok(Tok::Eof) => {
                out.push(Step::Tok(Tok::Eof, source.pos()));
                return out;
            }
            Ok(tok) => out.push(Step::Tok(tok, source.pos())),
            Err(Failure::Bail | Failure::Xml(..)) => {
                out.push(Step::Stop);
                return out;
            }
        }
    }
}

/// Every token the fast tokenizer gives is quick-xml's; it stops no later than quick-xml.
fn agrees(input: &[u8]) -> Vec<Step<'_>> {
    let fast = steps(input, false);
    let exact = steps(input, true);
    let given = fast.iter().take_while(|s| **s != Step::Stop).count();
    assert_eq!(
        fast.get(..given),
        exact.get(..given),
        "{:?}",
        String::from_utf8_lossy(input)
    );
    if exact.last() == Some(&Step::Stop) {
        assert_eq!(
            fast.last(),
            Some(&Step::Stop),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    fast
}

/// As [`agrees`], and the fast tokenizer reads it all.
fn reads_all(input: &str) {
    let fast = agrees(input.as_bytes());
    assert!(
        matches!(fast.last(), Some(Step::Tok(Tok::Eof, _))),
        "gave up on {input:?}: {fast:?}"
    );
}

#[test]
fn well_formed_documents_are_read_to_the_end() {
    for doc in [
        "",
        "  \n",
        "<a/>",
        "<a></a>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x='1' y=\"2\">t</a>\n",
        "<?xml version='1.0'?><a/>",
        "<?xml?><a/>",
        "<?pi stuff?><a/><?xmlfoo?>",
        "<a><!-- c --><!----><b>x &amp; y&#65;&#x42;</b></a>",
        "<a><![CDATA[<b>&]]]></a>",
        "<a><![CDATA[]]></a>",
        "<p:a xmlns:p='u'><p:b/></p:a >",
        "<a b='>' c=\"'>\">x</a\t\n>",
        "<a>text<b/>more</a>tail",
        "<a>&lt;</a>",
        "<a><b><c><d><e><f><g><h><i><j></j></i></h></g></f></e></d></c></b></a>",
        "<a/b>",
        "<>",
    ] {
        reads_all(doc);
    }
    let deep = format!("{}{}", "<x>".repeat(100), "</x>".repeat(100));
    reads_all(&deep);
}

#[test]
fn gives_up_where_quick_xml_fails_and_on_bom_and_doctype() {
    for doc in [
        "<a>",
        "<a></b>",
        "</a>",
        "<a",
        "<",
        "<a b='>",
        "<a>&amp</a>",
        "<a>& b</a>",
        "<a>&a&b;</a>",
        "<a>&x<b/></a>",
        "<!-- a -- b -->",
        "<!-- a --->",
        "<!-x-->",
        "<![CDATA[x]>",
        "<![CDAT[x]]>",
        "<!x>",
        "<?>",
        "<?xml",
        "<a></a >x</a>",
    ] {
        let fast = agrees(doc.as_bytes());
        assert!(
            !matches!(fast.last(), Some(Step::Tok(Tok::Eof, _))) || doc == "<a>",
            "{doc:?}: {fast:?}"
        );
    }
    for doc in ["\u{FEFF}<a/>", "<!DOCTYPE a><a/>", "<!doctype a><a/>"] {
        assert_eq!(
            steps(doc.as_bytes(), false).last(),
            Some(&Step::Stop),
            "{doc}"
        );
        assert!(matches!(
            steps(doc.as_bytes(), true).last(),
            Some(Step::Tok(Tok::Eof, _))
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_markup_tokenizes_as_quick_xml_does(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("<a>"), Just("</a>"), Just("<a/>"), Just("<b x='1'>"), Just("</b>"),
                Just("</b >"), Just("<p:c xmlns:p=\"u\">"), Just("</p:c>"), Just("text"),
                Just(" "), Just("\n"), Just("&amp;"), Just("&"), Just(";"), Just("#x41"),
                Just("<!-- c -->"), Just("<!--"), Just("-->"), Just("--"), Just("-"),
                Just("<![CDATA[x"), Just("]]>"), Just("]"), Just("<?pi x?>"),
                Just("<?xml version=\"1.0\"?>"), Just("<?"), Just("?>"), Just(">"),
                Just("<"), Just("\""), Just("'"), Just("/"), Just("="), Just("!"),
                Just("é"), Just("<!DOCTYPE a>"), Just("\u{FEFF}"),
            ],
            0..40,
        )
    ) {
        agrees(parts.concat().as_bytes());
    }

    #[test]
    fn random_bytes_tokenize_as_quick_xml_does(bytes in proptest::collection::vec(
        prop_oneof![Just(b'<'), Just(b'>'), Just(b'/'), Just(b'a'), Just(b' '), Just(b'"'),
            Just(b'\''), Just(b'&'), Just(b';'), Just(b'!'), Just(b'-'), Just(b'?'),
            Just(b'['), Just(b']'), any::<u8>()],
        0..64,
    )) {
        agrees(&bytes);
    }
}
