//! Conformance of `codecs::itk` (and `codecs::http1` for HTTP captures) over the shared sample
//! corpus (`../shared/corpus`, or the folder named by `GANGLION_CORPUS`), read in place.
//!
//! - Every ITK document with a Distribution Envelope under `itk/` (raw XML, SOAP, HTTP captures
//!   read with `http1`, MIME multipart bodies) parses, and its service, tracking id and addresses
//!   equal what a naive, independent text scan of the same bytes finds; the few that are broken
//!   on purpose are listed in `EXPECTED_ERRORS` with the error their file name announces.
//! - For a dozen samples, the values asserted were read from the files by hand (`grep`, `sed`,
//!   `diff` against the primary message), not printed by this parser.
//! - Every negative sample gets a positioned error or a correct parse, and the separate strict
//!   checks flag what the file name says is wrong.
//! - Templates (`__PLACEHOLDER__` tokens), schemas and everything else never make the parsers
//!   panic.

mod common;

use std::path::Path;

use common::{corpus_or_skip, files, read};

use codecs::http1::{self, BodyFraming, Limits, EMPTY_HEADER};
use codecs::itk::{self, Addressing, InfResult, ItkErrorKind, ItkMessage, ResponseBody, Text};

const TKW: &str = "itk/nhsdigitalmait+TKW-x/src/test/resources/";
const T111: &str = "itk/UECIT+cdss-tkw/TKW/contrib/ITK_2_01_Test_Messages/111/";
const NEG111: &str =
    "itk/UECIT+cdss-tkw/TKW/contrib/ITK_2_01_Test_Messages/111/Negative_111_Templates/";
const ACKS: &str = "itk/UECIT+cdss-tkw/TKW/contrib/ITK_2_01_Test_Messages/Acknowledgements/";
const CIAO: &str = "itk/nagyist+ciao-transport-itk/ciao-transport-itk/src/test/resources/uk/nhs/ciao/transport/itk/";
const CORR: &str = "itk/nhsdigitalmait+ITK_Correspondence/";
const SPINE: &str = "itk/nagyist+ciao-transport-itk/ciao-transport-spine/src/test/resources/uk/nhs/ciao/transport/spine/";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_from(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    find(&hay[from.min(hay.len())..], needle).map(|i| i + from)
}

fn s<'a>(t: Text<'a>) -> &'a str {
    std::str::from_utf8(t.raw()).unwrap()
}

fn opt<'a>(t: Option<Text<'a>>) -> Option<&'a str> {
    t.map(s)
}

/// The parts of a MIME multipart body, given its delimiter line (`--` + boundary): each part's
/// body, after the part headers.
fn mime_parts<'a>(body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = find_from(body, at, delimiter) {
        let after = start + delimiter.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let next = find_from(body, after, delimiter).unwrap_or(body.len());
        let part = &body[after..next];
        if let Some(blank) = find(part, b"\r\n\r\n") {
            out.push(&part[blank + 4..]);
        }
        at = next;
    }
    out
}

/// One HTTP message found in a capture: its head's values we check, and its body.
struct Captured<'a> {
    start_line: String,
    soap_action: Option<Vec<u8>>,
    framing: BodyFraming,
    keep_alive: bool,
    body: &'a [u8],
}

/// Every HTTP message in a capture. Captures hold several messages with log lines between them,
/// so heads are looked for at line starts.
fn http_messages(bytes: &[u8]) -> Vec<Captured<'_>> {
    let mut out = Vec::new();
    for at in 0..bytes.len() {
        let line_start = at == 0 || bytes[at - 1] == b'\n';
        let rest = &bytes[at..];
        if !line_start || !(rest.starts_with(b"POST ") || rest.starts_with(b"HTTP/1.")) {
            continue;
        }
        let mut hs = [EMPTY_HEADER; 32];
        let limits = Limits::default();
        let (head_len, framing, keep_alive, soap_action, content_type, start_line) =
            if rest.starts_with(b"POST ") {
                let h = http1::parse_request(rest, &mut hs, &limits)
                    .unwrap()
                    .unwrap();
                let ct = h.header("Content-Type").map(<[u8]>::to_vec);
                let line = format!("{} {}", h.method, h.target);
                let action = h.soap_action().map(<[u8]>::to_vec);
                (h.head_len, h.framing, h.keep_alive, action, ct, line)
            } else {
                let h = http1::parse_response(rest, &mut hs, &limits)
                    .unwrap()
                    .unwrap();
                let ct = h.header("Content-Type").map(<[u8]>::to_vec);
                (
                    h.head_len,
                    h.framing,
                    h.keep_alive,
                    None,
                    ct,
                    h.status.to_string(),
                )
            };
        let after_head = &rest[head_len..];
        let body = match framing {
            BodyFraming::Length(n) => &after_head[..(n as usize).min(after_head.len())],
            _ => &after_head[..0],
        };
        let multipart = content_type
            .as_deref()
            .and_then(|ct| find(ct, b"boundary=\"").map(|i| &ct[i + 10..]))
            .and_then(|b| b.split(|&c| c == b'"').next())
            .map(|b| [&b"--"[..], b].concat());
        let body = match multipart {
            // ITK_Trunk.message declares a Content-Length shorter than the body it stored (its
            // line ends were rewritten): read multipart bodies up to their closing delimiter.
            Some(delim) => {
                let close = [&delim[..], b"--"].concat();
                let end = find(after_head, &close).map_or(after_head.len(), |i| i + close.len());
                &after_head[..end]
            }
            // TKW ends each logged message with a line of asterisks; one capture declares a
            // Content-Length 13 bytes short of the body it stored, so read up to that line.
            None => match find(after_head, b"\r\n****") {
                Some(end) => &after_head[..end],
                None => body,
            },
        };
        out.push(Captured {
            start_line,
            soap_action,
            framing,
            keep_alive,
            body,
        });
    }
    out
}

/// The XML documents in a corpus file: the file itself, the bodies of the HTTP messages in a
/// capture, or the parts of a MIME body.
fn documents(bytes: &[u8]) -> Vec<&[u8]> {
    fn parts_of(body: &[u8]) -> Option<Vec<&[u8]>> {
        let first_line = body.split(|&c| c == b'\r' || c == b'\n').next()?;
        first_line
            .starts_with(b"--")
            .then(|| mime_parts(body, first_line))
    }
    if bytes.starts_with(b"POST ") || bytes.starts_with(b"HTTP/1.") {
        let mut docs = Vec::new();
        for m in http_messages(bytes) {
            match parts_of(m.body) {
                Some(parts) => docs.extend(parts),
                None => docs.push(m.body),
            }
        }
        docs
    } else {
        parts_of(bytes).unwrap_or_else(|| vec![bytes])
    }
}

/// What a naive scan of the text finds: service, tracking id and address URIs of the first
/// `header` element after the first `DistributionEnvelope`, comments removed first. Written
/// without any XML library so that it is independent of the parser under test.
fn naive_header(doc: &[u8]) -> (String, String, Vec<String>) {
    let mut text = String::from_utf8_lossy(doc).into_owned();
    while let Some(start) = text.find("<!--") {
        let end = text[start..]
            .find("-->")
            .map_or(text.len(), |e| start + e + 3);
        text.replace_range(start..end, "");
    }
    let de = text.find("DistributionEnvelope").unwrap();
    let header_at = ["<itk:header", "<header"]
        .iter()
        .filter_map(|t| text[de..].find(t).map(|i| de + i))
        .min()
        .unwrap();
    let header_end = text[header_at..].find("header>").unwrap() + header_at;
    let header = &text[header_at..header_end];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let i = tag.find(&key)? + key.len();
        Some(tag[i..i + tag[i..].find('"')?].to_string())
    };
    let start_tag = &header[..header.find('>').unwrap()];
    let mut addresses = Vec::new();
    let mut rest = header;
    while let Some(i) = rest.find(":address ").or_else(|| rest.find("<address ")) {
        let tag = &rest[i..i + rest[i..].find('>').unwrap()];
        addresses.push(attr(tag, "uri").unwrap());
        rest = &rest[i + 1..];
    }
    (
        attr(start_tag, "service").unwrap(),
        attr(start_tag, "trackingid").unwrap(),
        addresses,
    )
}

/// Every value is the input bytes at its offset; payloads are the input bytes in their range.
fn assert_in_place(doc: &[u8], m: &ItkMessage<'_>) {
    let e = &m.envelope;
    let mut texts = vec![e.service, e.tracking_id];
    texts.extend(e.addresses.iter().chain(&e.audit_identities).map(|a| a.uri));
    texts.extend(e.sender_address.map(|a| a.uri));
    texts.extend(e.handling.iter().flat_map(|h| [h.key, h.value]));
    texts.extend(e.manifest.iter().flat_map(|i| [i.id, i.mime_type]));
    texts.extend(e.payloads.iter().map(|p| p.id));
    if let Some(h) = &m.soap {
        texts.extend([h.message_id, h.action, h.to, h.from].into_iter().flatten());
    }
    for t in texts {
        assert_eq!(&doc[t.offset()..t.offset() + t.raw().len()], t.raw());
        t.decoded().unwrap();
    }
    for p in &e.payloads {
        assert_eq!(&doc[p.range.clone()], p.content);
    }
    assert!(e.span.end <= doc.len());
}

/// Documents broken on purpose, by file name, with the DE code (or `None` for XML and SOAP
/// faults) the name announces: INVMPC/INVMCT a wrong manifest count, INVMPI a manifest id that
/// names no payload, INVPCT a wrong payload count, INVXML malformed XML, VMSIRJ a SOAP version
/// mismatch.
const EXPECTED_ERRORS: &[(&str, Option<&str>)] = &[
    ("111/Negative_111_Templates/DE_INVMPC_", Some("DE0006")),
    ("111/Negative_111_Templates/ER_INVXML_", None),
    (
        "Negative_Acknowledgement_Templates/DE_INVMPC_",
        Some("DE0006"),
    ),
    (
        "Negative_Acknowledgement_Templates/DE_INVMCT_",
        Some("DE0006"),
    ),
    (
        "Negative_Acknowledgement_Templates/DE_INVMPI_",
        Some("DE0007"),
    ),
    (
        "Negative_Acknowledgement_Templates/DE_INVPCT_",
        Some("DE0011"),
    ),
    ("Negative_Acknowledgement_Templates/ER_INVXML_", None),
    ("Negative_Acknowledgement_Templates/SO_VMSIRJ_", None),
];

#[test]
fn every_distribution_envelope_yields_service_tracking_id_and_addresses() {
    let root = corpus_or_skip!();
    let mut checked = 0;
    let mut refused = 0;
    for path in files(&root.join("itk")) {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.to_string_lossy().replace('\\', "/");
        for doc in documents(&bytes) {
            if find(doc, b"DistributionEnvelope").is_none() {
                continue;
            }
            let expected = EXPECTED_ERRORS.iter().find(|(n, _)| name.contains(n));
            match (itk::parse(doc), expected) {
                (Ok(m), None) => {
                    let (service, tracking, addresses) = naive_header(doc);
                    assert_eq!(s(m.envelope.service), service, "{name}");
                    assert_eq!(s(m.envelope.tracking_id), tracking, "{name}");
                    let got: Vec<&str> = m.envelope.addresses.iter().map(|a| s(a.uri)).collect();
                    assert_eq!(got, addresses, "{name}");
                    assert!(!m.envelope.payloads.is_empty(), "{name}");
                    assert_in_place(doc, &m);
                    checked += 1;
                }
                (Err(e), Some((_, code))) => {
                    assert_eq!(e.de_code(), *code, "{name}: {e}");
                    assert!(e.offset < doc.len(), "{name}: {e}");
                    refused += 1;
                }
                (Ok(_), Some(_)) => panic!("{name} should have been refused"),
                (Err(e), None) => panic!("{name}: {e}"),
            }
        }
    }
    // `grep -rl DistributionEnvelope itk` lists 91 files: 8 are the expected errors, and
    // ITK_Trunk.message carries two envelopes.
    assert_eq!(checked, 91 - EXPECTED_ERRORS.len() + 1);
    assert_eq!(
        refused,
        EXPECTED_ERRORS.len(),
        "every expected failure was met"
    );
}

fn parse_file(root: &Path, rel: &str) -> (Vec<u8>, String) {
    (read(root, rel), rel.to_string())
}

#[test]
fn bare_envelope_with_three_addressees() {
    let root = corpus_or_skip!();
    let (bytes, _) = parse_file(&root, &format!("{TKW}ITK_DE.xml"));
    let m = itk::parse(&bytes).unwrap();
    assert!(m.soap.is_none());
    let e = &m.envelope;
    assert_eq!(
        s(e.service),
        "urn:nhs-itk:services:201005:SendCDADocument-v2-0"
    );
    assert_eq!(s(e.tracking_id), "217D1168-7F0B-4F31-A0A9-5B030E545FAE");
    let addresses: Vec<&str> = e.addresses.iter().map(|a| s(a.uri)).collect();
    assert_eq!(
        addresses,
        [
            "urn:nhs-uk:addressing:ods:BBB:X0912",
            "urn:nhs-uk:addressing:ods:X0913",
            "urn:nhs-uk:addressing:ods:X0914"
        ]
    );
    assert!(e.addresses.iter().all(|a| a.type_oid.is_none()));
    assert_eq!(
        s(e.audit_identities[0].uri),
        "urn:nhs-uk:identity:ods:XZ901"
    );
    assert_eq!(
        s(e.sender_address.unwrap().uri),
        "urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987"
    );
    assert_eq!(e.manifest.len(), 1);
    let item = e.manifest[0];
    assert_eq!(s(item.id), "uuid_57B3E02B-BF35-42DB-BD14-7B2E462D06D5");
    assert_eq!(s(item.mime_type), "text/xml");
    assert_eq!(
        opt(item.profile_id),
        Some("urn:nhs-en:profile:ambulanceServiceSummaryPatientReport-v1-1")
    );
    assert!(!item.base64 && !item.compressed && !item.encrypted);
    assert_eq!(e.ack_requested(), Some(false));
    assert_eq!(e.inf_ack_requested(), Some(true));
    assert_eq!(
        opt(e.interaction()),
        Some("urn:nhs-itk:interaction:primaryRecipientAmbulanceServicePatientReport-v1-0")
    );
    let p = &e.payloads[0];
    assert_eq!(s(p.id), "uuid_57B3E02B-BF35-42DB-BD14-7B2E462D06D5");
    let content = String::from_utf8_lossy(p.content);
    assert!(content
        .trim()
        .starts_with("<ClinicalDocument xmlns=\"urn:hl7-org:v3\""));
    assert!(content.trim().ends_with("</ClinicalDocument>"));
    assert_eq!(m.check_strict(), Ok(()));
    assert_eq!(e.check_profile_ids(), Ok(()));
}

#[test]
fn soap_request_with_security_header() {
    let root = corpus_or_skip!();
    let (bytes, _) = parse_file(&root, &format!("{TKW}ITK_SOAP.xml"));
    let m = itk::parse(&bytes).unwrap();
    let h = m.soap.unwrap();
    assert_eq!(
        opt(h.message_id),
        Some("D174645D-AD0E-4363-89EE-910A4BEF7201")
    );
    assert_eq!(
        opt(h.action),
        Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
    );
    assert_eq!(opt(h.to), Some("http://127.0.0.1:4848/syncsoap"));
    assert_eq!(opt(h.from), Some("http://127.0.0.1:4000/syncsoap"));
    assert_eq!(h.addressing, Some(Addressing::V2005));
    let sec = h.security.unwrap();
    assert_eq!(opt(sec.username), Some("TKS Server test"));
    assert_eq!(opt(sec.created), Some("2017-09-28T14:16:18Z"));
    assert_eq!(opt(sec.expires), Some("2017-09-28T14:16:28Z"));
    assert_eq!(
        s(m.envelope.tracking_id),
        "217D1168-7F0B-4F31-A0A9-5B030E545FAE"
    );
    assert_eq!(m.envelope.addresses.len(), 3);
    assert_eq!(m.check_strict(), Ok(()));
}

#[test]
fn http_capture_of_a_cda_document_and_its_response() {
    let root = corpus_or_skip!();
    let rel = format!(
        "{TKW}urn_nhs-itk_services_201005_SendCDADocument-v2-0_20171005151927_\
31C71492-A9D8-11E7-B542-E3BA913BABA9.msg"
    );
    let bytes = read(&root, &rel);
    let msgs = http_messages(&bytes);
    let req = &msgs[0];
    assert_eq!(req.start_line, "POST /syncsoap");
    assert_eq!(req.framing, BodyFraming::Length(37610));
    assert_eq!(req.body.len(), 37610);
    assert!(!req.keep_alive, "Connection: close");
    assert_eq!(
        req.soap_action.as_deref(),
        Some(&b"urn:nhs-itk:services:201005:SendCDADocument-v2-0"[..])
    );
    let m = itk::parse(req.body).unwrap();
    let h = m.soap.unwrap();
    assert_eq!(
        opt(h.message_id),
        Some("31C71492-A9D8-11E7-B542-E3BA913BABA9")
    );
    assert_eq!(h.action.unwrap().raw(), req.soap_action.as_deref().unwrap());
    assert_eq!(opt(h.from), Some("http://localhost:4000"));
    let e = &m.envelope;
    assert_eq!(
        s(e.service),
        "urn:nhs-itk:services:201005:SendCDADocument-v2-0"
    );
    assert_eq!(s(e.tracking_id), "7D6F23E0-AE1A-11DB-8707-B18E1E0994EF");
    assert_eq!(s(e.addresses[0].uri), "urn:nhs-uk:addressing:ods:X0912");
    assert_eq!(e.addresses.len(), 1);
    assert_eq!(
        s(e.audit_identities[0].uri),
        "urn:nhs-uk:identity:ods:XZ901"
    );
    assert_eq!(e.ack_requested(), Some(true));
    assert_eq!(
        s(e.manifest[0].id),
        "uuid_D4059820-1ACB-400A-B61D-A0A900A3D11F"
    );
    assert_eq!(m.check_strict(), Ok(()));

    // The synchronous response was logged after the request, as bare XML.
    let at = find(
        &bytes,
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope",
    )
    .unwrap();
    let r = itk::parse_response(&bytes[at..]).unwrap();
    assert_eq!(
        opt(r.header.message_id),
        Some("3285347C-A9D8-11E7-AC8A-A9AA8186D285")
    );
    assert_eq!(
        opt(r.header.action),
        Some("urn:nhs-itk:services:201005:SendCDADocument-v2-0Response")
    );
    match r.body {
        ResponseBody::SimpleMessage(t) => assert_eq!(s(t), "OK"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn http_capture_of_a_business_ack_and_its_response() {
    let root = corpus_or_skip!();
    let rel = format!(
        "{TKW}127.0.0.1_sent_4132EE35-F76F-4BEB-9F4E-250AA42AE2C3_at_20171005083844.688.msg"
    );
    let bytes = read(&root, &rel);
    let msgs = http_messages(&bytes);
    assert_eq!(msgs.len(), 2, "request and response");
    let (req, resp) = (&msgs[0], &msgs[1]);
    assert_eq!(req.framing, BodyFraming::Length(4512));
    // The stored body is 4525 bytes: cut at the declared length the envelope is truncated,
    // which must be a positioned error.
    assert_eq!(req.body.len(), 4525);
    let e = itk::parse(&req.body[..4512]).unwrap_err();
    assert_eq!((e.de_code(), e.offset <= 4512), (None, true), "{e}");
    assert_eq!(
        req.soap_action.as_deref(),
        Some(&b"urn:nhs-itk:services:201005:SendBusinessAck-v1-0"[..])
    );
    let m = itk::parse(req.body).unwrap();
    let e = &m.envelope;
    assert_eq!(
        s(e.service),
        "urn:nhs-itk:services:201005:SendBusinessAck-v1-0"
    );
    assert_eq!(s(e.tracking_id), "821F2F2C-512E-4641-BC04-A0EDA53F65F5");
    assert_eq!(
        s(e.addresses[0].uri),
        "urn:nhs-uk:addressing:ods:XZ901:XY7650987"
    );
    assert_eq!(opt(e.addresses[0].type_oid), Some(itk::ADDRESS_TYPE_OID));
    assert_eq!(
        opt(e.audit_identities[0].type_oid),
        Some(itk::IDENTITY_TYPE_OID)
    );
    assert_eq!(
        s(e.audit_identities[0].uri),
        "urn:nhs-uk:identity:ods:test:cdaresponder"
    );
    assert_eq!(
        opt(e.manifest[0].profile_id),
        Some("urn:nhs-en:profile:ITKBusinessAcknowledgement-v2-0")
    );
    assert_eq!(
        s(e.payloads[0].id),
        "uuid_BC8B2892-27DF-4C02-ABF8-029E50B662E7"
    );
    assert!(e.payloads[0]
        .content
        .starts_with(b"<hl7:BusinessResponseMessage"));
    let h = m.soap.unwrap();
    assert_eq!(opt(h.to), Some("http://127.0.0.1:4000/syncsoap"));
    assert_eq!(opt(h.security.unwrap().username), Some("Responder User"));

    assert_eq!(resp.start_line, "200");
    assert_eq!(resp.framing, BodyFraming::Length(719));
    assert!(!resp.keep_alive);
    let r = itk::parse_response(resp.body).unwrap();
    assert_eq!(
        opt(r.header.message_id),
        Some("37795756-A9A0-11E7-AD96-997BE3F57227")
    );
    match r.body {
        ResponseBody::SimpleMessage(t) => {
            assert_eq!(s(t), "TEST_HARNESS_ID:821F2F2C-512E-4641-BC04-A0EDA53F65F5");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spine_trunk_capture_carries_an_envelope_and_its_infrastructure_ack() {
    let root = corpus_or_skip!();
    let bytes = read(&root, &format!("{TKW}ITK_Trunk.message"));
    let msgs = http_messages(&bytes);
    let first = &msgs[0];
    assert_eq!(first.start_line, "POST /reliablemessaging/intermediary");
    // The head says 37298 bytes; the stored multipart body is longer (see http_messages).
    assert_eq!(first.framing, BodyFraming::Length(37298));
    assert!(first.body.len() > 37298);
    let envelopes: Vec<ItkMessage<'_>> = documents(&bytes)
        .into_iter()
        .filter(|d| find(d, b"DistributionEnvelope").is_some())
        .map(|d| itk::parse(d).unwrap())
        .collect();
    assert_eq!(envelopes.len(), 2);
    let (cda, ack) = (&envelopes[0].envelope, &envelopes[1].envelope);
    assert_eq!(s(cda.tracking_id), "23F1E260-BDBC-4DA7-8960-A2087AE87E8E");
    let types: Vec<Option<&str>> = cda.addresses.iter().map(|a| opt(a.type_oid)).collect();
    assert_eq!(types, [Some(itk::ADDRESS_TYPE_OID); 3]);
    assert_eq!(s(cda.addresses[2].uri), "urn:nhs-uk:addressing:ods:X0914");
    assert_eq!(
        opt(cda.manifest[0].profile_id),
        Some("urn:nhs-en:profile:nonCodedCDADocument-v2-0")
    );
    assert_eq!(
        (cda.ack_requested(), cda.inf_ack_requested()),
        (Some(true), Some(true))
    );

    assert_eq!(s(ack.service), itk::SERVICE_INF_ACK);
    assert_eq!(s(ack.tracking_id), "C9C65E70-C359-484F-98A6-1A7A0D23471D");
    assert_eq!(
        s(ack.addresses[0].uri),
        "urn:nhs-uk:addressing:ods:AAA:XZ901"
    );
    assert!(ack.handling.is_empty());
    let r = ack.payloads[0].infrastructure_response.as_ref().unwrap();
    assert_eq!(r.outcome(), Some(InfResult::Ok));
    assert_eq!(opt(r.timestamp), Some("2016-08-11T16:55:58Z"));
    assert_eq!(r.service_ref.raw(), cda.service.raw());
    assert_eq!(
        r.tracking_id_ref.raw(),
        cda.tracking_id.raw(),
        "the ACK correlates"
    );
    assert_eq!(
        s(r.reporting_identities[0].uri),
        "urn:nhs-uk:identity:BBB:test:cdaresponder"
    );
    assert!(r.errors.is_empty());

    // The same trunk message as a bare MIME body.
    let bytes = read(&root, &format!("{SPINE}multipart/test-trunk.multipart"));
    let docs: Vec<&[u8]> = documents(&bytes)
        .into_iter()
        .filter(|d| find(d, b"DistributionEnvelope").is_some())
        .collect();
    let m = itk::parse(docs[0]).unwrap();
    assert_eq!(
        s(m.envelope.tracking_id),
        "7D6F23E0-AE1A-11DB-8707-B18E1E0994EF"
    );
    assert_eq!(
        s(m.envelope.addresses[0].uri),
        "urn:nhs-uk:addressing:ods:X0912"
    );
    assert_eq!(
        opt(m.envelope.interaction()),
        Some("urn:nhs-itk:interaction:copyRecipientAmbulanceServicePatientReport-v1-0")
    );
}

#[test]
fn more_hand_checked_samples() {
    let root = corpus_or_skip!();

    // ciao: a bare envelope on one line, CRLF inside the payload.
    let bytes = read(&root, &format!("{CIAO}envelope/test-xmlpayload.xml"));
    let e = itk::parse(&bytes).unwrap().envelope;
    assert_eq!(
        s(e.service),
        "urn:nhs-itk:services:201005:SendBusinessAck-v1-0"
    );
    assert_eq!(s(e.tracking_id), "BAFCEFBB-D189-4238-92C4-C2E3116A4EF3");
    assert_eq!(
        s(e.addresses[0].uri),
        "urn:nhs-uk:addressing:AAA:XZ901:XY7650987"
    );
    assert_eq!(
        s(e.sender_address.unwrap().uri),
        "urn:nhs-uk:addressing:BBB:test:cdaresponder"
    );
    assert_eq!(
        opt(e.interaction()),
        Some("urn:nhs-itk:interaction:ITKBusinessAcknowledgement-v1-0")
    );
    assert!(!e.manifest[0].base64);

    // TKW InfrastructureAck example: the itk prefix is declared on soap:Envelope, and the
    // payload uses a default namespace.
    let bytes = read(
        &root,
        &format!("{ACKS}ACK_Examples_with_SOAP_wrapper_use_with_simulator/InfrastructureAck.xml"),
    );
    let m = itk::parse(&bytes).unwrap();
    let e = &m.envelope;
    assert_eq!(s(e.service), itk::SERVICE_INF_ACK);
    assert_eq!(s(e.tracking_id), "2D37D9CA-5223-41C7-A159-F33D5A914EB5");
    assert_eq!(s(e.addresses[0].uri), "urn:nhs-uk:addressing:ods:RX8");
    assert_eq!(
        s(e.audit_identities[0].uri),
        "urn:nhs-uk:identity:cfh:nic:lab:itk-demonstrator"
    );
    assert_eq!(
        s(e.sender_address.unwrap().uri),
        "urn:nhs-uk:addressing:ods:RX8:DrA"
    );
    assert_eq!(opt(e.interaction()), Some(itk::INTERACTION_INF_ACK));
    let r = e.payloads[0].infrastructure_response.as_ref().unwrap();
    assert_eq!(s(r.result), "OK");
    assert_eq!(s(r.tracking_id_ref), "2D37D9CA-5223-41C7-A159-F33D5A914EB5");
    assert_eq!(
        s(r.service_ref),
        "urn:nhs-itk:services:201005:SendCDADocument-v2-0"
    );
    assert_eq!(opt(r.timestamp), Some("2005-03-29T13:24:36Z"));
    assert_eq!(r.errors.len(), 1);
    assert_eq!(
        opt(r.errors[0].id),
        Some(""),
        "present but empty in the example"
    );
    assert_eq!(opt(m.soap.unwrap().to), Some("__SENDTO__"));

    // BusinessAck example: two specs, the ack request second.
    let bytes = read(
        &root,
        &format!("{ACKS}ACK_Examples_with_SOAP_wrapper_use_with_simulator/BusinessAck.xml"),
    );
    let e = itk::parse(&bytes).unwrap().envelope;
    assert_eq!(e.handling.len(), 2);
    assert_eq!(e.ack_requested(), Some(true));
    assert_eq!(
        opt(e.manifest[0].profile_id),
        Some("urn:nhs-en:profile:ITKBusinessAcknowledgement-v2-0")
    );

    // NHS 111 primary report: the address list is commented out.
    let bytes = read(
        &root,
        &format!("{T111}GeneralPractitionerRecipient_Prim.xml"),
    );
    let m = itk::parse(&bytes).unwrap();
    let e = &m.envelope;
    assert_eq!(
        s(e.service),
        "urn:nhs-itk:services:201005:SendNHS111Report-v2-0"
    );
    assert_eq!(s(e.tracking_id), "7D6F23E0-AE1A-11DB-9808-B18E1E0994CD");
    assert!(e.addresses.is_empty());
    assert_eq!(
        s(e.audit_identities[0].uri),
        "urn:nhs-uk:identity:ods:5L399"
    );
    assert_eq!(
        s(e.sender_address.unwrap().uri),
        "urn:nhs-uk:addressing:ods:5L399:445510770"
    );
    assert_eq!(
        opt(e.interaction()),
        Some("urn:nhs-itk:interaction:primaryGeneralPractitionerRecipientNHS111CDADocument-v2-0")
    );
    assert_eq!(e.ack_requested(), None);
    assert_eq!(
        opt(e.manifest[0].profile_id),
        Some("urn:nhs-en:profile:nhs111CDADocument-v2-0")
    );
    let h = m.soap.unwrap();
    assert_eq!(opt(h.message_id), Some("__MESSAGEID__"));
    assert_eq!(opt(h.from), Some("http://localhost:4000"));

    // NHS 111 repeat-caller document set: two payloads.
    let bytes = read(
        &root,
        &format!("{T111}Repeat_Caller_Doc_Set_POCD_EX200001GB02_03_ITK.xml"),
    );
    let e = itk::parse(&bytes).unwrap().envelope;
    assert_eq!(s(e.tracking_id), "8D6F23E0-AE1A-11DB-9808-B18E1E0994CD");
    let ids: Vec<&str> = e.payloads.iter().map(|p| s(p.id)).collect();
    assert_eq!(
        ids,
        [
            "uuid_7D6F23E0-AE1A-11DB-9808-B18E1E0994EE",
            "uuid_7D6F23E0-AE1A-11DB-9808-B18E1E0994EF"
        ]
    );
    assert_eq!(e.manifest.len(), 2);

    // Correspondence: a discharge report to two team addresses.
    let bytes = read(
        &root,
        &format!(
            "{CORR}messages_for_validation/POCD_MT150001UK06_SOAPandDIST_146230_xml_Primary.xml"
        ),
    );
    let e = itk::parse(&bytes).unwrap().envelope;
    let addresses: Vec<&str> = e.addresses.iter().map(|a| s(a.uri)).collect();
    assert_eq!(
        addresses,
        [
            "urn:nhs-uk:addressing:ods:rhm:team1:A",
            "urn:nhs-uk:addressing:ods:rhm:team1:B"
        ]
    );
    assert_eq!(
        opt(e.manifest[0].profile_id),
        Some("urn:nhs-en:profile:dischargeReport-v6-1")
    );
    assert_eq!(
        opt(e.interaction()),
        Some("urn:nhs-itk:interaction:primaryRecipientDischargeReport-v1-0")
    );

    // Correspondence transmitter sample: a framework-prefixed MessageID.
    let bytes = read(&root, &format!("{CORR}transmitter_source/test.xml"));
    let m = itk::parse(&bytes).unwrap();
    assert_eq!(
        opt(m.soap.unwrap().message_id),
        Some("urn:uuid:6771EEC6-2BEE-11E7-895C-D7BF05DA2E81")
    );
    assert_eq!(
        s(m.envelope.addresses[0].uri),
        "urn:nhs-uk:addressing:ods:X0912"
    );
}

/// Every file of the folder, by name.
fn negatives(root: &Path) -> std::collections::HashMap<String, Vec<u8>> {
    files(&root.join(NEG111))
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            let name = name.trim_end_matches("_GeneralPractitionerRecipient_Primary.xml");
            (name.to_string(), std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn negative_111_templates() {
    let root = corpus_or_skip!();
    let all = negatives(&root);
    let neg = |name: &str| -> &[u8] { &all[name] };
    let ok = |name: &str| itk::parse(neg(name)).unwrap_or_else(|e| panic!("{name}: {e}"));

    // DE_INVMPC: manifest count="2" with one item.
    let bytes = neg("DE_INVMPC");
    let e = itk::parse(bytes).unwrap_err();
    assert_eq!(e.de_code(), Some("DE0006"));
    assert_eq!(
        e.path,
        "/Envelope/Body/DistributionEnvelope/header/manifest/@count"
    );
    assert_eq!(bytes[e.offset], b'2');

    // ER_INVXML: the header start tag lost its `>`.
    let bytes = neg("ER_INVXML");
    let e = itk::parse(bytes).unwrap_err();
    assert!(matches!(e.kind, ItkErrorKind::Xml(_)), "{e}");
    assert_eq!(e.de_code(), None);
    let header = find(bytes, b"<itk:header").unwrap();
    let next_tag = find(bytes, b"<itk:addresslist>").unwrap();
    assert!((header..=next_tag).contains(&e.offset), "{e}");

    // DE_MISPID: the manifest item has no profileid; DE_EMPPID: an empty one.
    let m = ok("DE_MISPID");
    assert_eq!(m.envelope.manifest[0].profile_id, None);
    let e = m.envelope.check_profile_ids().unwrap_err();
    assert_eq!(e.de_code(), Some("DE0007"));
    let m = ok("DE_EMPPID");
    assert_eq!(opt(m.envelope.manifest[0].profile_id), Some(""));
    let e = m.envelope.check_profile_ids().unwrap_err();
    assert_eq!(e.de_code(), Some("DE0007"));
    assert_eq!(
        &neg("DE_EMPPID")[e.offset - 11..=e.offset],
        b"profileid=\"\""
    );

    // DE_INVPID: a profile id of the wrong version is well-formed; only a profile registry
    // can refuse it.
    let m = ok("DE_INVPID");
    assert_eq!(
        opt(m.envelope.manifest[0].profile_id),
        Some("urn:nhs-en:profile:nhs111CDADocument-v1-0")
    );

    // DE_INVSER: the service is not a URI, and not the wsa:Action.
    let m = ok("DE_INVSER");
    assert_eq!(s(m.envelope.service), "SendNHS111Report-v2-0");
    let e = m.envelope.check_strict().unwrap_err();
    assert_eq!(e.de_code(), Some("DE0002"));
    assert_eq!(
        e.path,
        "/Envelope/Body/DistributionEnvelope/header/@service"
    );

    // DE_INAUTH: an identity that is well-formed but unknown.
    let m = ok("DE_INAUTH");
    assert_eq!(
        s(m.envelope.audit_identities[0].uri),
        "urn:nhs-uk:identity:ods:false"
    );

    // ER_INVSCH: the schema error is inside the CDA payload, which is opaque here.
    ok("ER_INVSCH");

    // SOAP-layer negatives: parse, then the strict check names the fault.
    let soap = |name: &str| ok(name).soap.unwrap();
    let strict = |name: &str| soap(name).check_strict().unwrap_err().kind;
    assert_eq!(soap("SO_NOACTN").action, None);
    assert_eq!(strict("SO_NOACTN"), ItkErrorKind::MissingElement("Action"));
    assert_eq!(soap("SO_NOTOEL").to, None);
    assert_eq!(strict("SO_NOTOEL"), ItkErrorKind::MissingElement("To"));
    assert_eq!(
        opt(soap("SO_INVATO").to),
        Some("http//:this.is.invalid/address")
    );
    assert_eq!(strict("SO_INVATO"), ItkErrorKind::InvalidValue("To"));
    assert_eq!(
        opt(soap("SO_EXHDRJ").not_understood),
        Some("local:LocalHeaderElement")
    );
    assert_eq!(strict("SO_EXHDRJ"), ItkErrorKind::NotUnderstood);
    assert_eq!(
        soap("SO_EXHDMU").not_understood,
        None,
        "mustUnderstand=\"0\""
    );
    assert_eq!(soap("SO_EXHEAD").not_understood, None);
    let no_time = soap("SO_NOTIME").security.unwrap();
    assert_eq!((no_time.created, no_time.expires), (None, None));
    let swapped = soap("SO_INVTIM").security.unwrap();
    assert_eq!(opt(swapped.created), Some("__EXPIRES__"));
    assert_eq!(opt(swapped.expires), Some("__TIMESTAMP__"));
    assert_eq!(
        opt(soap("SO_INVUSR").security.unwrap().username),
        Some("Unknown")
    );
    assert_eq!(
        opt(soap("SO_RPLYTO").reply_to),
        Some("http://129.0.0.1:24001/syncsoap")
    );
    assert_eq!(soap("SO_NOUSER.xml").security.unwrap().username, None);
    assert_eq!(
        ok("GeneralPractitionerRecipient_Prim_ackreq_fail.xml")
            .envelope
            .ack_requested(),
        Some(true)
    );

    // Every file in the folder: a positioned error or a parse, and the checks run.
    for (name, bytes) in &all {
        match itk::parse(bytes) {
            Ok(m) => {
                let _ = m.check_strict();
                let _ = m.envelope.check_profile_ids();
                assert_in_place(bytes, &m);
            }
            Err(e) => assert!(e.offset <= bytes.len(), "{name}: {e}"),
        }
    }
}

#[test]
fn negative_acknowledgement_templates() {
    let root = corpus_or_skip!();
    let dir = format!("{ACKS}Negative_Acknowledgement_Templates/");
    let err = |name: &str| {
        let bytes = read(
            &root,
            &format!("{dir}{name}_BusinessAck_SOAPandDIST_Primary.xml"),
        );
        let e = itk::parse(&bytes).unwrap_err();
        (e.de_code(), e.path, e.kind, bytes, e.offset)
    };
    let (code, path, _, bytes, at) = err("DE_INVMCT");
    assert_eq!(
        (code, path.as_str()),
        (
            Some("DE0006"),
            "/Envelope/Body/DistributionEnvelope/header/manifest/@count"
        )
    );
    assert_eq!(bytes[at], b'2');
    let (code, path, kind, bytes, at) = err("DE_INVMPI");
    assert_eq!(kind, ItkErrorKind::UnknownPayloadRef);
    assert_eq!(
        (code, path.as_str()),
        (
            Some("DE0007"),
            "/Envelope/Body/DistributionEnvelope/header/manifest/manifestitem/@id"
        )
    );
    assert_eq!(
        &bytes[at..at + 41],
        b"uuid_E808A967-49B2-498B-AD75-1D7A0F1262D7"
    );
    let (code, path, _, _, _) = err("DE_INVPCT");
    assert_eq!(
        (code, path.as_str()),
        (
            Some("DE0011"),
            "/Envelope/Body/DistributionEnvelope/payloads/@count"
        )
    );
    let (_, _, kind, _, _) = err("SO_VMSIRJ");
    assert_eq!(kind, ItkErrorKind::SoapVersionMismatch);
}

#[test]
fn templates_schemas_and_everything_else_never_panic() {
    let root = corpus_or_skip!();
    let mut seen = 0;
    for folder in ["itk", "itk-templates", "itk-schema"] {
        for path in files(&root.join(folder)) {
            let bytes = std::fs::read(&path).unwrap();
            for doc in documents(&bytes) {
                seen += 1;
                match itk::parse(doc) {
                    Ok(m) => {
                        let _ = m.check_strict();
                        let _ = m.envelope.check_tracking_id();
                        let _ = m.envelope.check_profile_ids();
                        assert_in_place(doc, &m);
                    }
                    Err(e) => assert!(e.offset <= doc.len(), "{}: {e}", path.display()),
                }
                if let Ok(r) = itk::parse_response(doc) {
                    if let ResponseBody::Fault(f) = r.body {
                        let _ = f.code_local();
                        let _ = f.string.decoded();
                    }
                }
            }
        }
    }
    assert!(seen > 150, "walked {seen} documents");
}
