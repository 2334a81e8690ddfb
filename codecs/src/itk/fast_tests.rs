//! The fast reading against quick-xml's, message for message: unless the fast tokenizer gives
//! up, the fast reading gives exactly what quick-xml's reading gives, success or error (so
//! [`super::parse`] may trust it), and on the real samples of the corpus it does not give up
//! where quick-xml's reading succeeds (so it is the one that runs). The tests in `tests.rs`
//! and `tests/itk_*.rs` pin the errors themselves down.

use super::cursor::read_both;
use super::{read_request, read_response};
use proptest::prelude::*;

/// Both readings of `input` as a request and as a response: unless the fast tokenizer gave
/// up, they must be equal. Returns whether it never gave up where quick-xml's reading
/// succeeded.
fn agree(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let (fast, gave_up, exact) = read_both(input, read_request);
    let request = !(gave_up && exact.is_ok());
    if !gave_up {
        assert_eq!(fast, exact, "{text:?}");
    }
    let (fast, gave_up, exact) = read_both(input, read_response);
    let response = !(gave_up && exact.is_ok());
    if !gave_up {
        assert_eq!(fast, exact, "{text:?}");
    }
    request && response
}

#[test]
fn corpus_samples_read_the_same_and_fast() {
    let Some(dir) = corpus::find_sub("itk") else {
        return;
    };
    let all = corpus::files(&dir);
    assert!(!all.is_empty());
    let mut slow = Vec::new();
    for path in &all {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // quick-xml alone reads input that starts with a byte order mark.
        if !agree(&bytes) && !bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            slow.push(path.display().to_string());
        }
    }
    assert!(
        slow.is_empty(),
        "fast reading failed where quick-xml's did not: {slow:?}"
    );
}

const SOAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing">
<soap:Header><wsa:MessageID>uuid:1</wsa:MessageID><wsa:Action>urn:a</wsa:Action>
<x:Block xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header>
<soap:Body><itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005">
<itk:header service="urn:a" trackingid="5C1E7E2A-96B1-4F0C-8E3D-7A2B9C4D1E6F">
<itk:addresslist><itk:address uri="urn:nhs-uk:addressing:ods:X"/><itk:address type='t' uri = 'urn:b&amp;c' /></itk:addresslist>
<itk:manifest count="1"><itk:manifestitem id="uuid_A" mimetype="text/xml" base64="false"/></itk:manifest>
<itk:handlingSpecification><itk:spec key="urn:nhs-itk:ns:201005:infackrequested" value="true"/></itk:handlingSpecification>
</itk:header>
<itk:payloads count="1"><itk:payload id="uuid_A"><itk:InfrastructureResponse result="OK" timestamp="t" trackingIdRef="r" serviceRef="s"><itk:reportingIdentity><itk:id uri="urn:r"/></itk:reportingIdentity></itk:InfrastructureResponse><!-- c --><x a="1">t &lt; <![CDATA[<&>]]></x></itk:payload></itk:payloads>
</itk:DistributionEnvelope></soap:Body></soap:Envelope>
"#;

#[test]
fn hand_written_messages_read_the_same_and_fast() {
    assert!(agree(SOAP.as_bytes()));
    let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>x</faultstring></s:Fault></s:Body></s:Envelope>"#;
    assert!(agree(fault.as_bytes()));
}

/// Edits of [`SOAP`]: replaced bytes, inserted markup, cuts.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let snippets = prop::sample::select(vec![
        "<",
        ">",
        "&",
        "&amp;",
        "&#0;",
        "&nbsp;",
        "\"",
        "'",
        "/>",
        "</",
        "=",
        " ",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "--",
        "<?pi?>",
        "<!DOCTYPE x>",
        " xmlns:itk=\"urn:other\"",
        " xmlns=\"urn:nhs-itk:ns:201005\"",
        " xmlns:itk=\"\"",
        " a=\"1\"",
        " a='1'",
        "\u{0}",
        "\u{FEFF}",
        "\u{e9}",
    ]);
    let edit = (any::<prop::sample::Index>(), 0u8..3, any::<u8>(), snippets);
    prop::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut v = SOAP.as_bytes().to_vec();
        for (at, op, byte, snippet) in edits {
            let i = at.index(v.len() + 1);
            match op {
                0 if i < v.len() => v[i] = byte,
                1 => v.splice(i..i, snippet.bytes()).for_each(drop),
                _ => v.truncate(i),
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mutated_messages_read_the_same(input in mutated()) {
        agree(&input);
    }

    #[test]
    fn random_markup_reads_the_same(input in "(<[a-z:]{0,8}( [a-z:]{1,6} ?= ?[\"'][^\"]{0,6}[\"'])*/?>|</[a-z:]{0,8} ?>|[^<]{0,8}|&[a-z#0-9]{0,5};?){0,40}") {
        agree(input.as_bytes());
    }
}
