//! Property tests for `codecs::itk`: random and mutated bytes never panic the readers and
//! every value they return is the input at its offset; generated envelopes read back the
//! addresses and payloads they were built from, whatever the namespace prefix; what the
//! builders write parses back to what they were given.

use codecs::itk::{
    self, parse, parse_response, write_fault, write_infrastructure_ack, write_simple_response,
    write_soap_request, ErrorInfo, FaultCode, FaultReply, InfAck, InfResult, ItkMessage,
    RequestHeader, ResponseBody, SimpleResponse, SoapTimestamp, Text,
};
use proptest::prelude::*;

const SEED_SOAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing">
<soap:Header><wsa:MessageID>D174645D-AD0E-4363-89EE-910A4BEF7201</wsa:MessageID>
<wsa:Action>urn:nhs-itk:services:201005:SendCDADocument-v2-0</wsa:Action><wsa:To>http://h/x</wsa:To>
<wsa:From><wsa:Address>http://a/b</wsa:Address></wsa:From>
<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken><wsse:Username>u</wsse:Username></wsse:UsernameToken></wsse:Security>
<l:X xmlns:l="urn:l" soap:mustUnderstand="1">y</l:X></soap:Header>
<soap:Body><itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005">
<itk:header service="urn:nhs-itk:services:201005:SendCDADocument-v2-0" trackingid="217D1168-7F0B-4F31-A0A9-5B030E545FAE">
<itk:addresslist><itk:address uri="urn:nhs-uk:addressing:ods:BBB:X0912"/><itk:address uri="urn:a:b&amp;c"/></itk:addresslist>
<itk:auditIdentity><itk:id uri="urn:nhs-uk:identity:ods:XZ901"/></itk:auditIdentity>
<itk:manifest count="2"><itk:manifestitem id="uuid_A" mimetype="text/xml" profileid="urn:p"/><itk:manifestitem id="uuid_B" mimetype="text/plain" base64="true"/></itk:manifest>
<itk:senderAddress uri="urn:nhs-uk:addressing:ods:AAA"/>
<itk:handlingSpecification><itk:spec key="urn:nhs-itk:ns:201005:infackrequested" value="true"/></itk:handlingSpecification>
</itk:header><itk:payloads count="2"><itk:payload id="uuid_A"><d xmlns="urn:hl7-org:v3"><![CDATA[<x>]]>&#65;<!-- c --></d></itk:payload>
<itk:payload id="uuid_B">SGVsbG8=</itk:payload></itk:payloads></itk:DistributionEnvelope></soap:Body></soap:Envelope>"#;

fn seeds() -> Vec<Vec<u8>> {
    let mut infack = Vec::new();
    let header = RequestHeader {
        message_id: "M",
        action: itk::SERVICE_INF_ACK,
        to: "http://x/y",
        from: None,
        timestamp: Some(SoapTimestamp {
            created: "2017-10-05T14:19:27Z",
            expires: "2017-10-05T14:29:27Z",
        }),
        username: None,
    };
    let errors = [ErrorInfo::toolkit("E", "1000", "t")];
    write_soap_request(&mut infack, &header, |out| {
        write_infrastructure_ack(out, &ack("urn:a:b", &errors))
    });
    let mut fault = Vec::new();
    write_fault(
        &mut fault,
        &FaultReply {
            message_id: "M",
            relates_to: Some("R"),
            code: FaultCode::Server,
            fault_string: "f",
            error: ErrorInfo::toolkit("E", "2200", "t"),
        },
    );
    vec![SEED_SOAP.as_bytes().to_vec(), infack, fault]
}

fn ack<'s>(uri: &'s str, errors: &'s [ErrorInfo<'s>]) -> InfAck<'s> {
    InfAck {
        tracking_id: "C9C65E70-C359-484F-98A6-1A7A0D23471D",
        payload_uuid: "E808A967-49B2-498B-AD75-1D7A0F1262D7",
        to: Some(uri),
        audit_identity: uri,
        sender: Some(uri),
        timestamp: "2017-10-05T14:19:27Z",
        tracking_id_ref: "217D1168-7F0B-4F31-A0A9-5B030E545FAE",
        service_ref: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
        result: InfResult::Failure,
        errors,
    }
}

fn in_place(input: &[u8], t: Text<'_>) {
    assert_eq!(
        &input[t.offset()..t.offset() + t.raw().len()],
        t.raw(),
        "{t:?}"
    );
    let _ = t.decoded();
}

/// Runs both readers and every accessor; checks what must hold for any input.
fn exercise(input: &[u8]) {
    match parse(input) {
        Ok(m) => check_message(input, &m),
        Err(e) => assert!(e.offset <= input.len(), "{e}"),
    }
    match parse_response(input) {
        Ok(r) => {
            if let ResponseBody::Fault(f) = r.body {
                in_place(input, f.code);
                in_place(input, f.string);
                let _ = f.code_local();
            }
        }
        Err(e) => assert!(e.offset <= input.len(), "{e}"),
    }
}

fn check_message(input: &[u8], m: &ItkMessage<'_>) {
    let e = &m.envelope;
    in_place(input, e.service);
    in_place(input, e.tracking_id);
    for a in e
        .addresses
        .iter()
        .chain(&e.audit_identities)
        .chain(&e.sender_address)
    {
        in_place(input, a.uri);
    }
    for h in &e.handling {
        in_place(input, h.key);
        in_place(input, h.value);
    }
    for p in &e.payloads {
        in_place(input, p.id);
        assert_eq!(&input[p.range.clone()], p.content);
        if let Some(r) = &p.infrastructure_response {
            in_place(input, r.tracking_id_ref);
        }
    }
    if let Some(h) = &m.soap {
        for t in [h.message_id, h.action, h.to, h.from, h.not_understood]
            .into_iter()
            .flatten()
        {
            in_place(input, t);
        }
    }
    let _ = (e.interaction(), e.ack_requested(), e.inf_ack_requested());
    let _ = m.check_strict();
    let _ = e.check_profile_ids();
}

/// Random edits of a seed: byte replacements, insertions of XML-significant snippets, cuts.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let snippets = prop::sample::select(vec![
        "<",
        ">",
        "&",
        "&amp;",
        "&#0;",
        "&#x41;",
        "&nbsp;",
        "\"",
        "'",
        "/>",
        "</",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "<?pi?>",
        "<!DOCTYPE x>",
        "<?xml version=\"1.0\"?>",
        " xmlns:itk=\"urn:other\"",
        " xmlns=\"urn:nhs-itk:ns:201005\"",
        " count=\"7\"",
        "<itk:payload id=\"uuid_A\">x</itk:payload>",
        "\u{0}",
        "\u{FEFF}",
        "\u{e9}",
    ]);
    let edit = (any::<prop::sample::Index>(), 0u8..3, any::<u8>(), snippets);
    (0usize..3, prop::collection::vec(edit, 1..6)).prop_map(|(seed, edits)| {
        let mut v = seeds().swap_remove(seed);
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

/// What a reader gives back for a string a builder escaped: characters XML cannot carry
/// become U+FFFD, and (for element text) leading and trailing literal whitespace is trimmed;
/// CR, and in attributes TAB and LF, are written as character references and survive.
fn expect_text(s: &str) -> String {
    sanitise(s).trim_matches([' ', '\t', '\n']).to_string()
}

fn expect_attr(s: &str) -> String {
    sanitise(s).trim_matches(' ').to_string()
}

fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' => c,
            c if c >= '\u{10000}' => c,
            _ => '\u{FFFD}',
        })
        .collect()
}

fn decoded(t: Option<Text<'_>>) -> String {
    t.unwrap().decoded().unwrap().into_owned()
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
}

fn uri() -> impl Strategy<Value = String> {
    "urn:[a-z]{1,8}:[A-Za-z0-9:._&'-]{1,30}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&input);
    }

    #[test]
    fn random_markup_never_panics(input in "(<[a-z:]{0,8}( [a-z:]{1,6}=\"[^\"]{0,6}\")?/?>|</[a-z:]{0,8}>|[^<]{0,8}|&[a-z#0-9]{0,5};?){0,40}") {
        exercise(input.as_bytes());
    }

    #[test]
    fn mutated_messages_never_panic(input in mutated()) {
        exercise(&input);
    }

    #[test]
    fn generated_envelopes_read_back_whatever_the_prefix(
        addresses in prop::collection::vec(uri(), 0..5),
        payloads in prop::collection::vec("[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}]{0,40}", 1..4),
        prefix in prop::sample::select(vec!["itk:", "x:", "SOAP-ENV:", ""]),
        in_soap in any::<bool>(),
    ) {
        let p = prefix;
        let decl = if p.is_empty() {
            " xmlns=\"urn:nhs-itk:ns:201005\"".to_string()
        } else {
            format!(" xmlns:{}=\"urn:nhs-itk:ns:201005\"", &p[..p.len() - 1])
        };
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut xml = format!("<{p}DistributionEnvelope{decl}><{p}header service=\"urn:s\" trackingid=\"T\">");
        if !addresses.is_empty() {
            xml += &format!("<{p}addresslist>");
            for a in &addresses {
                xml += &format!("<{p}address uri=\"{}\"/>", esc(a).replace('\'', "&apos;"));
            }
            xml += &format!("</{p}addresslist>");
        }
        xml += &format!("<{p}manifest count=\"{}\">", payloads.len());
        for i in 0..payloads.len() {
            xml += &format!("<{p}manifestitem id=\"uuid_{i}\" mimetype=\"text/plain\"/>");
        }
        xml += &format!("</{p}manifest></{p}header><{p}payloads count=\"{}\">", payloads.len());
        for (i, body) in payloads.iter().enumerate() {
            xml += &format!("<{p}payload id=\"uuid_{i}\">{}</{p}payload>", esc(body));
        }
        xml += &format!("</{p}payloads></{p}DistributionEnvelope>");
        if in_soap {
            xml = format!(
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{xml}</s:Body></s:Envelope>"
            );
        }
        let m = parse(xml.as_bytes()).unwrap();
        prop_assert_eq!(m.soap.is_some(), in_soap);
        let got: Vec<String> =
            m.envelope.addresses.iter().map(|a| a.uri.decoded().unwrap().into_owned()).collect();
        prop_assert_eq!(&got, &addresses);
        prop_assert_eq!(m.envelope.payloads.len(), payloads.len());
        for (p, body) in m.envelope.payloads.iter().zip(&payloads) {
            let expected = esc(body);
            prop_assert_eq!(p.content, expected.as_bytes());
        }
        check_message(xml.as_bytes(), &m);
    }

    #[test]
    fn simple_responses_parse_back(
        message_id in any::<String>(),
        action in any::<String>(),
        relates_to in any::<String>(),
        text in any::<String>(),
    ) {
        let r = SimpleResponse {
            message_id: &message_id,
            request_action: &action,
            relates_to: &relates_to,
            text: &text,
            timestamp: None,
        };
        let mut out = Vec::new();
        write_simple_response(&mut out, &r);
        let back = parse_response(&out).unwrap();
        prop_assert_eq!(decoded(back.header.message_id), expect_text(&message_id));
        prop_assert_eq!(
            decoded(back.header.action),
            expect_text(&format!("{action}Response"))
        );
        prop_assert_eq!(decoded(back.header.relates_to), expect_text(&relates_to));
        match back.body {
            ResponseBody::SimpleMessage(t) => {
                prop_assert_eq!(t.decoded().unwrap().into_owned(), expect_text(&text));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn faults_parse_back(
        fault_string in any::<String>(),
        id in any::<String>(),
        code in any::<String>(),
        code_system in any::<String>(),
        text in any::<String>(),
        diagnostic in proptest::option::of(any::<String>()),
    ) {
        let f = FaultReply {
            message_id: "M",
            relates_to: None,
            code: FaultCode::Client,
            fault_string: &fault_string,
            error: ErrorInfo {
                id: &id,
                code: &code,
                code_system: &code_system,
                text: &text,
                diagnostic: diagnostic.as_deref(),
            },
        };
        let mut out = Vec::new();
        write_fault(&mut out, &f);
        let ResponseBody::Fault(back) = parse_response(&out).unwrap().body else {
            panic!("not a fault");
        };
        prop_assert_eq!(back.code_local(), b"Client");
        prop_assert_eq!(decoded(Some(back.string)), expect_text(&fault_string));
        let e = back.error.unwrap();
        prop_assert_eq!(decoded(e.id), expect_text(&id));
        prop_assert_eq!(decoded(e.code), expect_text(&code));
        prop_assert_eq!(decoded(e.code_system), expect_attr(&code_system));
        prop_assert_eq!(decoded(e.text), expect_text(&text));
        prop_assert_eq!(e.diagnostic.map(|d| d.decoded().unwrap().into_owned()), diagnostic.as_deref().map(expect_text));
    }

    #[test]
    fn infrastructure_acks_parse_back_and_pass_strict_checks(
        tracking_id in uuid(),
        payload in uuid(),
        to in uri(),
        audit in uri(),
        timestamp in any::<String>(),
        service_ref in any::<String>(),
        texts in prop::collection::vec(any::<String>(), 0..3),
    ) {
        let errors: Vec<ErrorInfo<'_>> =
            texts.iter().map(|t| ErrorInfo::toolkit(t, "1000", t)).collect();
        let a = InfAck {
            tracking_id: &tracking_id,
            payload_uuid: &payload,
            to: Some(&to),
            audit_identity: &audit,
            timestamp: &timestamp,
            service_ref: &service_ref,
            ..ack(&to, &errors)
        };
        let mut out = Vec::new();
        write_infrastructure_ack(&mut out, &a);
        let m = parse(&out).unwrap();
        prop_assert_eq!(m.check_strict(), Ok(()));
        let e = &m.envelope;
        prop_assert_eq!(e.tracking_id.raw(), tracking_id.as_bytes());
        prop_assert_eq!(e.addresses[0].uri.decoded().unwrap().into_owned(), to);
        prop_assert_eq!(e.audit_identities[0].uri.decoded().unwrap().into_owned(), audit);
        let r = e.payloads[0].infrastructure_response.as_ref().unwrap();
        prop_assert_eq!(r.outcome(), Some(InfResult::Failure));
        prop_assert_eq!(decoded(r.timestamp), expect_attr(&timestamp));
        prop_assert_eq!(decoded(Some(r.service_ref)), expect_attr(&service_ref));
        prop_assert_eq!(r.errors.len(), texts.len());
        for (got, t) in r.errors.iter().zip(&texts) {
            prop_assert_eq!(decoded(got.text), expect_text(t));
        }
        check_message(&out, &m);
    }
}
