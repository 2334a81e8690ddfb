//! Reader tests on hand-written messages: every field, namespace prefixes, references, DTD
//! refusal, and one failing case per DE error code.

use super::*;
use std::borrow::Cow;

const HEADER: &str = r#"<itk:header service="urn:nhs-itk:services:201005:SendCDADocument-v2-0" trackingid="217D1168-7F0B-4F31-A0A9-5B030E545FAE">
<itk:addresslist>
<itk:address uri="urn:nhs-uk:addressing:ods:BBB:X0912"/>
<itk:address type="2.16.840.1.113883.2.1.3.2.4.18.22" uri="urn:nhs-uk:addressing:ods:X0913"></itk:address>
</itk:addresslist>
<itk:auditIdentity><itk:id uri="urn:nhs-uk:identity:ods:XZ901"/></itk:auditIdentity>
<itk:manifest count="2">
<itk:manifestitem id="uuid_A" mimetype="text/xml" profileid="urn:nhs-en:profile:nonCodedCDADocument-v2-0"/>
<itk:manifestitem id="uuid_B" mimetype="text/plain" base64="true" compressed="1" encrypted="false"/>
</itk:manifest>
<itk:senderAddress uri="urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987"/>
<itk:handlingSpecification>
<itk:spec value="false" key="urn:nhs-itk:ns:201005:ackrequested"/>
<itk:spec key="urn:nhs-itk:ns:201005:interaction" value="urn:nhs-itk:interaction:primaryRecipientAmbulanceServicePatientReport-v1-0"/>
<itk:spec key="urn:nhs-itk:ns:201005:infackrequested" value="true"/>
</itk:handlingSpecification>
</itk:header>"#;

const PAYLOADS: &str = r#"<itk:payloads count="2">
<itk:payload id="uuid_A"><doc xmlns="urn:hl7-org:v3"><x a="1">t &amp; u</x></doc></itk:payload>
<itk:payload id="uuid_B" filename="note.txt">SGVsbG8=</itk:payload>
</itk:payloads>"#;

fn de(header: &str, payloads: &str) -> String {
    format!(
        r#"<itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005">{header}{payloads}</itk:DistributionEnvelope>"#
    )
}

fn soap(prefix: &str, wsa_ns: &str, headers: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<{prefix}:Envelope xmlns:{prefix}="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="{wsa_ns}">
<{prefix}:Header>{headers}</{prefix}:Header>
<{prefix}:Body>{body}</{prefix}:Body>
</{prefix}:Envelope>"#
    )
}

const WSA_HEADERS: &str = r#"<wsa:MessageID>D174645D-AD0E-4363-89EE-910A4BEF7201</wsa:MessageID>
<wsa:Action>urn:nhs-itk:services:201005:SendCDADocument-v2-0</wsa:Action>
<wsa:To>http://127.0.0.1:4848/syncsoap</wsa:To>
<wsa:From><wsa:Address>http://127.0.0.1:4000/syncsoap</wsa:Address></wsa:From>
<wsa:ReplyTo><wsa:Address> http://127.0.0.1:4000/async </wsa:Address></wsa:ReplyTo>
<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">
<wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="x">
<wsu:Created>2017-09-28T14:16:18Z</wsu:Created><wsu:Expires>2017-09-28T14:16:28Z</wsu:Expires>
</wsu:Timestamp>
<wsse:UsernameToken><wsse:Username>TKS Server test</wsse:Username></wsse:UsernameToken>
</wsse:Security>"#;

fn s(t: Option<Text<'_>>) -> Option<&str> {
    t.and_then(|t| t.as_plain_str())
}

/// Every Text must be exactly the input bytes at its offset.
fn assert_in_place(input: &[u8], t: &Text<'_>) {
    let end = t.offset() + t.raw().len();
    assert_eq!(&input[t.offset()..end], t.raw(), "{t:?}");
}

#[test]
fn bare_envelope_yields_every_field() {
    let xml = de(HEADER, PAYLOADS);
    let m = parse(xml.as_bytes()).unwrap();
    assert!(m.soap.is_none());
    let e = &m.envelope;
    assert_eq!(
        e.service.raw(),
        b"urn:nhs-itk:services:201005:SendCDADocument-v2-0"
    );
    assert_eq!(e.tracking_id.raw(), b"217D1168-7F0B-4F31-A0A9-5B030E545FAE");
    let uris: Vec<&[u8]> = e.addresses.iter().map(|a| a.uri.raw()).collect();
    assert_eq!(
        uris,
        [
            &b"urn:nhs-uk:addressing:ods:BBB:X0912"[..],
            b"urn:nhs-uk:addressing:ods:X0913"
        ]
    );
    assert_eq!(e.addresses[0].type_oid, None);
    assert_eq!(s(e.addresses[1].type_oid), Some(ADDRESS_TYPE_OID));
    assert_eq!(e.audit_identities.len(), 1);
    assert_eq!(
        e.audit_identities[0].uri.raw(),
        b"urn:nhs-uk:identity:ods:XZ901"
    );
    assert_eq!(
        e.sender_address.unwrap().uri.raw(),
        b"urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987"
    );
    assert_eq!(e.handling.len(), 3);
    assert_eq!(
        s(e.interaction()),
        Some("urn:nhs-itk:interaction:primaryRecipientAmbulanceServicePatientReport-v1-0")
    );
    assert_eq!(e.ack_requested(), Some(false));
    assert_eq!(e.inf_ack_requested(), Some(true));
    assert_eq!(e.bus_response_requested(), None);

    let [a, b] = [&e.manifest[0], &e.manifest[1]];
    assert_eq!(
        (a.id.raw(), a.mime_type.raw()),
        (&b"uuid_A"[..], &b"text/xml"[..])
    );
    assert_eq!(
        s(a.profile_id),
        Some("urn:nhs-en:profile:nonCodedCDADocument-v2-0")
    );
    assert_eq!(
        (a.base64, a.compressed, a.encrypted, a.metadata),
        (false, false, false, false)
    );
    assert_eq!(b.profile_id, None);
    assert_eq!((b.base64, b.compressed, b.encrypted), (true, true, false));
    let profiles: Vec<&[u8]> = e.profile_ids().map(|t| t.raw()).collect();
    assert_eq!(
        profiles,
        [&b"urn:nhs-en:profile:nonCodedCDADocument-v2-0"[..]]
    );

    let p0 = &e.payloads[0];
    assert_eq!(
        p0.content,
        br#"<doc xmlns="urn:hl7-org:v3"><x a="1">t &amp; u</x></doc>"#
    );
    assert_eq!(&xml.as_bytes()[p0.range.clone()], p0.content);
    assert_eq!(p0.filename, None);
    let p1 = e.payload(b"uuid_B").unwrap();
    assert_eq!(p1.content, b"SGVsbG8=");
    assert_eq!(s(p1.filename), Some("note.txt"));
    assert_eq!(e.manifest_item(p1).unwrap().mime_type.raw(), b"text/plain");
    assert!(e
        .payloads
        .iter()
        .all(|p| p.infrastructure_response.is_none()));
    assert_eq!(e.span, 0..xml.len());

    for t in [e.service, e.tracking_id, a.id, b.mime_type, p1.id]
        .iter()
        .chain(e.addresses.iter().map(|a| &a.uri))
        .chain(e.handling.iter().map(|h| &h.value))
    {
        assert_in_place(xml.as_bytes(), t);
    }
    assert_eq!(e.check_strict(), Ok(()));
    let missing = e.check_profile_ids().unwrap_err();
    assert_eq!(missing.de_code(), Some("DE0007"));
    assert_eq!(
        missing.path,
        "/DistributionEnvelope/header/manifest/manifestitem/@profileid"
    );
    assert_eq!(
        missing.offset,
        b.id.offset(),
        "points at the item without a profile id"
    );
}

#[test]
fn prefixes_do_not_matter_only_namespaces() {
    let plain = de(HEADER, PAYLOADS);
    let reference = parse(plain.as_bytes()).unwrap().envelope;
    // Default namespace instead of a prefix, and a different prefix.
    let rename = |to: &str, decl: &str| {
        plain
            .replace("<itk:", &format!("<{to}"))
            .replace("</itk:", &format!("</{to}"))
            .replace("xmlns:itk=", decl)
    };
    let default_ns = rename("", "xmlns=");
    let other = rename("x:", "xmlns:x=");
    for xml in [default_ns, other] {
        let e = parse(xml.as_bytes()).unwrap().envelope;
        assert_eq!(e.service.raw(), reference.service.raw());
        assert_eq!(e.addresses.len(), 2);
        assert_eq!(e.payloads.len(), 2);
        assert_eq!(e.payloads[1].content, b"SGVsbG8=");
    }
    // The right prefix bound to the wrong namespace is not the ITK envelope.
    let wrong = plain.replace("urn:nhs-itk:ns:201005", "urn:other");
    assert_eq!(
        parse(wrong.as_bytes()).unwrap_err().kind,
        ItkErrorKind::UnexpectedRoot
    );
}

#[test]
fn soap_header_fields_and_security() {
    for (prefix, wsa_ns, version) in [
        ("soap", NS_WSA_2005, Addressing::V2005),
        ("SOAP-ENV", NS_WSA_2004, Addressing::V2004),
    ] {
        let xml = soap(prefix, wsa_ns, WSA_HEADERS, &de(HEADER, PAYLOADS));
        let m = parse(xml.as_bytes()).unwrap();
        let h = m.soap.unwrap();
        assert_eq!(
            s(h.message_id),
            Some("D174645D-AD0E-4363-89EE-910A4BEF7201")
        );
        assert_eq!(
            s(h.action),
            Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
        );
        assert_eq!(s(h.to), Some("http://127.0.0.1:4848/syncsoap"));
        assert_eq!(s(h.from), Some("http://127.0.0.1:4000/syncsoap"));
        assert_eq!(
            s(h.reply_to),
            Some("http://127.0.0.1:4000/async"),
            "trimmed"
        );
        assert_eq!(h.relates_to, None);
        assert_eq!(h.addressing, Some(version));
        assert_eq!(h.not_understood, None);
        let sec = h.security.unwrap();
        assert_eq!(s(sec.username), Some("TKS Server test"));
        assert_eq!(s(sec.created), Some("2017-09-28T14:16:18Z"));
        assert_eq!(s(sec.expires), Some("2017-09-28T14:16:28Z"));
        assert_eq!(m.envelope.addresses.len(), 2);
        assert!(m.envelope.in_soap);
        assert_in_place(xml.as_bytes(), &h.message_id.unwrap());
    }
}

#[test]
fn strict_checks_are_separate_from_parsing() {
    let lower = HEADER.replace(
        "217D1168-7F0B-4F31-A0A9-5B030E545FAE",
        "217d1168-7f0b-4f31-a0a9-5b030e545fae",
    );
    let xml = soap("soap", NS_WSA_2005, WSA_HEADERS, &de(&lower, PAYLOADS));
    let m = parse(xml.as_bytes()).expect("lower-case tracking ids parse");
    let e = m.envelope.check_tracking_id().unwrap_err();
    assert_eq!(e.de_code(), Some("DE0002"));
    assert_eq!(
        e.path,
        "/Envelope/Body/DistributionEnvelope/header/@trackingid"
    );
    assert_eq!(&xml.as_bytes()[e.offset..e.offset + 8], b"217d1168");

    let ok = soap("soap", NS_WSA_2005, WSA_HEADERS, &de(HEADER, PAYLOADS));
    let m = parse(ok.as_bytes()).unwrap();
    assert_eq!(m.check_strict(), Ok(()));
    // uuid_B has no profile id: a policy check, not part of check_strict.
    let e = m.envelope.check_profile_ids().unwrap_err();
    assert_eq!(e.de_code(), Some("DE0007"));
    assert_eq!(e.kind, ItkErrorKind::MissingAttribute("profileid"));

    let mismatch = WSA_HEADERS.replace("SendCDADocument-v2-0</wsa:Action>", "Other</wsa:Action>");
    let xml = soap("soap", NS_WSA_2005, &mismatch, &de(HEADER, PAYLOADS));
    let e = parse(xml.as_bytes()).unwrap().check_strict().unwrap_err();
    assert_eq!((e.de_code(), e.kind), (None, ItkErrorKind::ActionMismatch));

    let no_to = WSA_HEADERS.replace("<wsa:To>http://127.0.0.1:4848/syncsoap</wsa:To>", "");
    let xml = soap("soap", NS_WSA_2005, &no_to, &de(HEADER, PAYLOADS));
    let e = parse(xml.as_bytes()).unwrap().check_strict().unwrap_err();
    assert_eq!(e.kind, ItkErrorKind::MissingElement("To"));
}

#[test]
fn must_understand_headers_are_remembered() {
    let extra = |attr: &str| {
        let h = format!(
            r#"{WSA_HEADERS}<l:Local xmlns:l="urn:local" {attr}>x</l:Local><l:Other xmlns:l="urn:local" soap:mustUnderstand="1"/>"#
        );
        let xml = soap("soap", NS_WSA_2005, &h, &de(HEADER, PAYLOADS));
        let m = parse(xml.as_bytes()).unwrap();
        m.soap.unwrap().not_understood.map(|t| t.raw().to_vec())
    };
    assert_eq!(
        extra(r#"soap:mustUnderstand="1""#),
        Some(b"l:Local".to_vec())
    );
    assert_eq!(extra(r#"mustUnderstand="true""#), Some(b"l:Local".to_vec()));
    assert_eq!(extra(r#"mustUnderstand="0""#), Some(b"l:Other".to_vec()));
    // Security is understood even when marked.
    let marked = WSA_HEADERS.replace(
        "<wsse:Security ",
        r#"<wsse:Security soap:mustUnderstand="1" "#,
    );
    let xml = soap("soap", NS_WSA_2005, &marked, &de(HEADER, PAYLOADS));
    assert_eq!(
        parse(xml.as_bytes()).unwrap().soap.unwrap().not_understood,
        None
    );
}

#[test]
fn references_are_checked_at_read_and_resolved_on_request() {
    let h = HEADER.replace(
        "urn:nhs-uk:addressing:ods:BBB:X0912",
        "urn:nhs-uk:addressing:ods:BBB:X&amp;1&#x41;",
    );
    let xml = de(&h, PAYLOADS);
    let m = parse(xml.as_bytes()).unwrap();
    let uri = m.envelope.addresses[0].uri;
    assert_eq!(uri.raw(), b"urn:nhs-uk:addressing:ods:BBB:X&amp;1&#x41;");
    assert_eq!(uri.decoded().unwrap(), "urn:nhs-uk:addressing:ods:BBB:X&1A");
    assert!(matches!(
        m.envelope.service.decoded().unwrap(),
        Cow::Borrowed(_)
    ));

    let undefined = HEADER.replace("ods:BBB:X0912", "ods:&nbsp;");
    let e = parse(de(&undefined, PAYLOADS).as_bytes()).unwrap_err();
    assert_eq!(e.kind, ItkErrorKind::UndefinedEntity("nbsp".into()));
    assert_eq!(e.de_code(), None);
    assert_eq!(
        e.path,
        "/DistributionEnvelope/header/addresslist/address/@uri"
    );

    let in_payload = PAYLOADS.replace("t &amp; u", "t &bogus; u");
    let xml = de(HEADER, &in_payload);
    let e = parse(xml.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ItkErrorKind::UndefinedEntity("bogus".into()));
    assert_eq!(&xml.as_bytes()[e.offset..e.offset + 7], b"&bogus;");

    let bad_char = PAYLOADS.replace("t &amp; u", "&#0;");
    assert_eq!(
        parse(de(HEADER, &bad_char).as_bytes()).unwrap_err().kind,
        ItkErrorKind::BadCharRef
    );
}

#[test]
fn dtds_are_refused_before_any_expansion() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005">&lol2;</itk:DistributionEnvelope>"#;
    let e = parse(laughs.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ItkErrorKind::DtdRefused);
    assert_eq!(e.offset, laughs.find("<!DOCTYPE").unwrap());
    let in_payload = PAYLOADS.replace("SGVsbG8=", "<!DOCTYPE x>");
    let e = parse(de(HEADER, &in_payload).as_bytes()).unwrap_err();
    assert!(matches!(
        e.kind,
        ItkErrorKind::DtdRefused | ItkErrorKind::Xml(_)
    ));
}

/// Parses `xml` and returns (DE code, path) of the error.
fn fails(xml: &str) -> (Option<&'static str>, String, ItkErrorKind) {
    let e = parse(xml.as_bytes()).expect_err("must fail");
    assert!(e.offset <= xml.len());
    (e.de_code(), e.path, e.kind)
}

#[test]
fn every_de_code_has_a_failing_case() {
    let hdr = |from: &str, to: &str| de(&HEADER.replace(from, to), PAYLOADS);
    let cases: Vec<(String, &str, &str)> = vec![
        (de(HEADER, "") , "DE0011", "/DistributionEnvelope"),
        (de("", PAYLOADS), "DE0002", "/DistributionEnvelope"),
        (de(&format!("{HEADER}{HEADER}"), PAYLOADS), "DE0002", "/DistributionEnvelope"),
        (hdr(r#"service="urn:nhs-itk:services:201005:SendCDADocument-v2-0" "#, ""), "DE0002", "/DistributionEnvelope/header/@service"),
        (hdr("trackingid=", "tracking="), "DE0002", "/DistributionEnvelope/header/@trackingid"),
        (hdr(r#"trackingid="217D1168-7F0B-4F31-A0A9-5B030E545FAE""#, r#"trackingid=" ""#), "DE0002", "/DistributionEnvelope/header/@trackingid"),
        (hdr("<itk:addresslist>", "<itk:bogus/><itk:addresslist>"), "DE0002", "/DistributionEnvelope/header"),
        (hdr("<itk:addresslist>", "text<itk:addresslist>"), "DE0002", "/DistributionEnvelope/header"),
        (hdr(r#"uri="urn:nhs-uk:addressing:ods:BBB:X0912""#, r#"uri="not a uri""#), "DE0003", "/DistributionEnvelope/header/addresslist/address/@uri"),
        (hdr(r#"<itk:address uri="urn:nhs-uk:addressing:ods:BBB:X0912"/>"#, r#"<itk:address/>"#), "DE0003", "/DistributionEnvelope/header/addresslist/address/@uri"),
        (de(&HEADER.replace("<itk:address ", "<itk:nope ").replace("</itk:address>", "</itk:nope>"), PAYLOADS), "DE0003", "/DistributionEnvelope/header/addresslist"),
        (hdr("<itk:auditIdentity><itk:id uri=\"urn:nhs-uk:identity:ods:XZ901\"/></itk:auditIdentity>", "<itk:auditIdentity></itk:auditIdentity>"), "DE0004", "/DistributionEnvelope/header/auditIdentity"),
        (hdr("<itk:id uri=\"urn:nhs-uk:identity:ods:XZ901\"/>", &"<itk:id uri=\"urn:a:b\"/>".repeat(5)), "DE0004", "/DistributionEnvelope/header/auditIdentity"),
        (hdr("urn:nhs-uk:identity:ods:XZ901", ""), "DE0005", "/DistributionEnvelope/header/auditIdentity/id/@uri"),
        (hdr(r#"count="2""#, r#"count="3""#), "DE0006", "/DistributionEnvelope/header/manifest/@count"),
        (hdr(r#"count="2""#, r#"count="two""#), "DE0006", "/DistributionEnvelope/header/manifest/@count"),
        (hdr(r#"<itk:manifest count="2">"#, r#"<itk:manifest>"#), "DE0006", "/DistributionEnvelope/header/manifest/@count"),
        (hdr("<itk:auditIdentity>", "<itk:manifest count=\"0\"/><itk:auditIdentity>"), "DE0006", "/DistributionEnvelope/header/manifest"),
        (hdr(r#"id="uuid_A" "#, ""), "DE0007", "/DistributionEnvelope/header/manifest/manifestitem/@id"),
        (hdr(r#" mimetype="text/xml""#, ""), "DE0007", "/DistributionEnvelope/header/manifest/manifestitem/@mimetype"),
        (hdr(r#"base64="true""#, r#"base64="yes""#), "DE0007", "/DistributionEnvelope/header/manifest/manifestitem/@base64"),
        (hdr(r#"id="uuid_B""#, r#"id="uuid_C""#), "DE0007", "/DistributionEnvelope/header/manifest/manifestitem/@id"),
        (hdr(r#"uri="urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987""#, r#"uri="AAA""#), "DE0008", "/DistributionEnvelope/header/senderAddress/@uri"),
        (hdr(r#"XY7650987"/>"#, r#"XY7650987"><x/></itk:senderAddress>"#), "DE0008", "/DistributionEnvelope/header/senderAddress"),
        (de(&HEADER.replace(&HEADER[HEADER.find("<itk:spec value=\"false\"").unwrap()..HEADER.find("</itk:handlingSpecification>").unwrap()], ""), PAYLOADS), "DE0009", "/DistributionEnvelope/header/handlingSpecification"),
        (hdr(r#" key="urn:nhs-itk:ns:201005:ackrequested""#, ""), "DE0010", "/DistributionEnvelope/header/handlingSpecification/spec/@key"),
        (hdr(r#"value="false""#, r#"value="maybe""#), "DE0010", "/DistributionEnvelope/header/handlingSpecification/spec/@value"),
        (hdr(r#"value="false" "#, ""), "DE0010", "/DistributionEnvelope/header/handlingSpecification/spec/@value"),
        (de(HEADER, &PAYLOADS.replace(r#"count="2""#, r#"count="1""#)), "DE0011", "/DistributionEnvelope/payloads/@count"),
        (de(HEADER, &PAYLOADS.replace("<itk:payload id=\"uuid_A\">", "<itk:other>").replace("</doc></itk:payload>", "</doc></itk:other>")), "DE0011", "/DistributionEnvelope/payloads"),
        (de(HEADER, &PAYLOADS.replace(r#" id="uuid_B""#, "")), "DE0012", "/DistributionEnvelope/payloads/payload/@id"),
        (de(HEADER, &PAYLOADS.replace(r#"id="uuid_B""#, r#"id="""#)), "DE0012", "/DistributionEnvelope/payloads/payload/@id"),
        (de(&HEADER.replace(r#"id="uuid_B""#, r#"id="uuid_A""#), &PAYLOADS.replace(r#"id="uuid_B""#, r#"id="uuid_A""#)), "DE0012", "/DistributionEnvelope/payloads/payload/@id"),
    ];
    for (xml, code, path) in cases {
        let (got_code, got_path, kind) = fails(&xml);
        assert_eq!(
            (got_code, got_path.as_str()),
            (Some(code), path),
            "{kind:?} in {xml}"
        );
    }
}

#[test]
fn header_order_is_enforced() {
    let swapped = HEADER
        .replace(
            r#"<itk:senderAddress uri="urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987"/>"#,
            "",
        )
        .replace(
            "<itk:addresslist>",
            r#"<itk:senderAddress uri="urn:a:b"/><itk:addresslist>"#,
        );
    let (code, path, kind) = fails(&de(&swapped, PAYLOADS));
    assert_eq!(kind, ItkErrorKind::OutOfOrder("addresslist"));
    assert_eq!(
        (code, path.as_str()),
        (Some("DE0003"), "/DistributionEnvelope/header")
    );
}

#[test]
fn xml_level_errors_carry_no_de_code() {
    let full = de(HEADER, PAYLOADS);
    type Check = fn(&ItkErrorKind) -> bool;
    let cases: Vec<(String, Check)> = vec![
        (String::new(), |k| *k == ItkErrorKind::NoRoot),
        (full[..full.len() / 2].to_string(), |k| {
            matches!(k, ItkErrorKind::Truncated | ItkErrorKind::Xml(_))
        }),
        (format!("{full}<x/>"), |k| {
            *k == ItkErrorKind::ContentOutsideRoot
        }),
        (format!("{full}junk"), |k| {
            *k == ItkErrorKind::ContentOutsideRoot
        }),
        (full.replace("</itk:payloads>", "</itk:payload>"), |k| {
            matches!(k, ItkErrorKind::Xml(_))
        }),
        (full.replace("<itk:header ", "<foo:header "), |k| {
            matches!(k, ItkErrorKind::Xml(_))
        }),
        (
            format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{full}\u{e9}"),
            |k| matches!(k, ItkErrorKind::UnsupportedEncoding(_)),
        ),
        ("<x/>".to_string(), |k| *k == ItkErrorKind::UnexpectedRoot),
    ];
    for (xml, ok) in cases {
        let e = parse(xml.as_bytes()).expect_err(&xml);
        assert!(ok(&e.kind), "{:?} for {xml}", e.kind);
        assert_eq!(e.de_code(), None, "{e}");
        assert!(e.offset <= xml.len());
    }
    let utf16 = [0xFF, 0xFE, b'<', 0];
    assert!(matches!(
        parse(&utf16).unwrap_err().kind,
        ItkErrorKind::UnsupportedEncoding(_)
    ));
    // A legacy label on a pure-ASCII document is harmless.
    let ascii = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{full}");
    assert!(parse(ascii.as_bytes()).is_ok());
    // A UTF-8 byte order mark is fine.
    let bom = format!("\u{feff}<?xml version=\"1.0\"?>{full}");
    assert!(parse(bom.as_bytes()).is_ok());
}

#[test]
fn soap_body_must_carry_an_envelope() {
    let v12 = soap("soap", NS_WSA_2005, "", &de(HEADER, PAYLOADS)).replace(NS_SOAP11, NS_SOAP12);
    assert_eq!(
        parse(v12.as_bytes()).unwrap_err().kind,
        ItkErrorKind::SoapVersionMismatch
    );
    let other = soap("soap", NS_WSA_2005, "", "<x:Other xmlns:x=\"urn:x\"/>");
    let e = parse(other.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ItkErrorKind::NoDistributionEnvelope);
    assert_eq!(e.path, "/Envelope/Body");
    assert_eq!(&other.as_bytes()[e.offset..e.offset + 8], b"<x:Other");
    let two = soap("soap", NS_WSA_2005, "", &de(HEADER, PAYLOADS).repeat(2));
    assert_eq!(
        parse(two.as_bytes()).unwrap_err().kind,
        ItkErrorKind::UnexpectedElement
    );
    let no_body = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"/>";
    assert_eq!(
        parse(no_body.as_bytes()).unwrap_err().kind,
        ItkErrorKind::MissingElement("Body")
    );
    let dup = soap(
        "soap",
        NS_WSA_2005,
        &format!("{WSA_HEADERS}<wsa:To>urn:x</wsa:To>"),
        &de(HEADER, PAYLOADS),
    );
    assert_eq!(
        parse(dup.as_bytes()).unwrap_err().kind,
        ItkErrorKind::DuplicateElement("To")
    );
}

#[test]
fn infrastructure_response_payloads_are_read_in_context() {
    // The itk prefix is declared on the SOAP envelope, and the response uses a default
    // namespace, as the TKW InfrastructureAck example does.
    let payload = r#"<InfrastructureResponse xmlns="urn:nhs-itk:ns:201005" serviceRef="urn:nhs-itk:services:201005:SendCDADocument-v2-0" result="Failure" timestamp="2005-03-29T13:24:36Z" trackingIdRef="2D37D9CA-5223-41C7-A159-F33D5A914EB5">
<reportingIdentity><id uri="urn:nhs-uk:identity:cfh:nic:lab:itk-demonstrator"/></reportingIdentity>
<errors><errorInfo><ErrorID>E1</ErrorID><ErrorCode codeSystem="2.16.840.1.113883.2.1.3.2.4.17.516">DE0006</ErrorCode><ErrorText>bad &lt;manifest&gt;</ErrorText></errorInfo></errors>
</InfrastructureResponse>"#;
    let header = r#"<itk:header service="urn:nhs-itk:services:201005:SendInfrastructureAck-v1-0" trackingid="C9C65E70-C359-484F-98A6-1A7A0D23471D"><itk:manifest count="1"><itk:manifestitem id="uuid_P" mimetype="text/xml"/></itk:manifest></itk:header>"#;
    let body = format!(
        r#"<itk:DistributionEnvelope>{header}<itk:payloads count="1"><itk:payload id="uuid_P">{payload}</itk:payload></itk:payloads></itk:DistributionEnvelope>"#
    );
    let xml = soap("soap", NS_WSA_2005, "", &body).replace(
        "xmlns:wsa=",
        "xmlns:itk=\"urn:nhs-itk:ns:201005\" xmlns:wsa=",
    );
    let m = parse(xml.as_bytes()).unwrap();
    let r = m.envelope.payloads[0]
        .infrastructure_response
        .as_ref()
        .unwrap();
    assert_eq!(r.outcome(), Some(InfResult::Failure));
    assert_eq!(
        r.tracking_id_ref.raw(),
        b"2D37D9CA-5223-41C7-A159-F33D5A914EB5"
    );
    assert_eq!(
        r.service_ref.raw(),
        b"urn:nhs-itk:services:201005:SendCDADocument-v2-0"
    );
    assert_eq!(s(r.timestamp), Some("2005-03-29T13:24:36Z"));
    assert_eq!(
        r.reporting_identities[0].uri.raw(),
        b"urn:nhs-uk:identity:cfh:nic:lab:itk-demonstrator"
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(s(r.errors[0].code), Some("DE0006"));
    assert_eq!(s(r.errors[0].code_system), Some(DE_ERROR_CODE_SYSTEM));
    assert_eq!(
        r.errors[0].text.unwrap().decoded().unwrap(),
        "bad <manifest>"
    );
    assert_eq!(m.envelope.payloads[0].content, payload.as_bytes());
}

#[test]
fn responses_are_read() {
    let simple = soap(
        "soap",
        NS_WSA_2005,
        "<wsa:MessageID>M</wsa:MessageID><wsa:RelatesTo>R</wsa:RelatesTo>",
        r#"<itk:SimpleMessageResponse xmlns:itk="urn:nhs-itk:ns:201005">OK</itk:SimpleMessageResponse>"#,
    );
    let r = parse_response(simple.as_bytes()).unwrap();
    assert_eq!(s(r.header.relates_to), Some("R"));
    match r.body {
        ResponseBody::SimpleMessage(t) => assert_eq!(t.raw(), b"OK"),
        other => panic!("{other:?}"),
    }
    let fault = soap(
        "SOAP-ENV",
        NS_WSA_2005,
        "",
        r#"<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>x</faultstring><detail><t:ToolkitErrorInfo xmlns:t="urn:nhs-itk:ns:201005"><t:ErrorID>ID</t:ErrorID><t:ErrorCode codeSystem="2.16.840.1.113883.2.1.3.2.4.17.268">2200</t:ErrorCode><t:ErrorText>T</t:ErrorText></t:ToolkitErrorInfo></detail></SOAP-ENV:Fault>"#,
    );
    match parse_response(fault.as_bytes()).unwrap().body {
        ResponseBody::Fault(f) => {
            assert_eq!(f.code_local(), b"Server");
            let e = f.error.unwrap();
            assert_eq!(
                (s(e.id), s(e.code), s(e.text)),
                (Some("ID"), Some("2200"), Some("T"))
            );
            assert_eq!(e.diagnostic, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_response(de(HEADER, PAYLOADS).as_bytes())
            .unwrap_err()
            .kind,
        ItkErrorKind::UnexpectedRoot
    );
}

#[test]
fn payload_content_is_opaque_but_balanced() {
    let prefixed = PAYLOADS.replace("SGVsbG8=", "<p:x q:a=\"1\"><y/></p:x>");
    let xml = de(HEADER, &prefixed);
    let m = parse(xml.as_bytes()).expect("undeclared prefixes inside a payload are not ours");
    assert_eq!(m.envelope.payloads[1].content, b"<p:x q:a=\"1\"><y/></p:x>");
    let unbalanced = PAYLOADS.replace("SGVsbG8=", "<x></y>");
    let xml = de(HEADER, &unbalanced);
    let e = parse(xml.as_bytes()).unwrap_err();
    assert!(matches!(e.kind, ItkErrorKind::Xml(_)), "{e}");
    assert_eq!(e.path, "/DistributionEnvelope/payloads/payload");
    assert_eq!(&xml.as_bytes()[e.offset..e.offset + 4], b"</y>");
}

#[test]
fn offsets_count_a_byte_order_mark() {
    // Offsets are into the input as given, BOM included: an error after a BOM points at the
    // same bytes as without it, and so do payload ranges.
    let other = soap("soap", NS_WSA_2005, "", "<x:Other xmlns:x=\"urn:x\"/>");
    let unclosed = format!("{}<", de(HEADER, PAYLOADS));
    let bad_count = de(HEADER, PAYLOADS).replace("count=\"2\"", "count=\"x\"");
    for body in [&other, &unclosed, &bad_count] {
        let plain = parse(body.as_bytes()).unwrap_err();
        let with_bom = format!("\u{feff}{body}");
        let e = parse(with_bom.as_bytes()).unwrap_err();
        assert_eq!(e.offset, plain.offset + 3, "{e}");
        assert_eq!(
            &with_bom.as_bytes()[e.offset..],
            &body.as_bytes()[plain.offset..],
            "{e}"
        );
    }
    let good = de(HEADER, PAYLOADS);
    let with_bom = format!("\u{feff}{good}");
    let plain = parse(good.as_bytes()).unwrap();
    let bommed = parse(with_bom.as_bytes()).unwrap();
    for (a, b) in plain
        .envelope
        .payloads
        .iter()
        .zip(&bommed.envelope.payloads)
    {
        assert_eq!(a.content, b.content);
        assert_eq!(&with_bom.as_bytes()[b.range.clone()], b.content);
    }
}
