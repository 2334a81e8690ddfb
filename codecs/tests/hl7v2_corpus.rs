//! Conformance of `codecs::hl7v2` over the shared sample corpus (`../shared/corpus`, or the
//! folder named by `GANGLION_CORPUS`), read in place.
//!
//! - every file under `hl7v2/` splits into at least one message, and every message parses and
//!   validates, except for the problems listed in `KNOWN_BROKEN` (each checked by reading the
//!   file: they really are broken);
//! - for a sample of files across all five source folders, the MSH values and counts asserted
//!   below were read from the files by hand (`cat -A`, `head`), not printed by this parser;
//! - every file under `malformed/` gets a positioned error or a parse, never a panic, and every
//!   accessor is exercised on whatever parses.

mod common;

use common::{corpus_or_skip, files, read};

use codecs::hl7v2::{
    split_messages, unescape, AckMode, Batch, ErrorKind, FieldPath, Message, ParseError,
};

/// Runs every accessor over a parsed message; returns the validation result.
fn exercise(m: &Message<'_>) -> Result<(), ParseError> {
    let seps = *m.separators();
    let msh = m.msh();
    let _ = (
        msh.sending_application(),
        msh.sending_facility(),
        msh.receiving_application(),
        msh.receiving_facility(),
        msh.timestamp(),
        msh.message_type(),
        msh.trigger_event(),
        msh.message_structure(),
        msh.control_id(),
        msh.processing_id(),
        msh.version(),
        msh.accept_ack_type(),
        msh.application_ack_type(),
        msh.charset(),
        msh.ack_mode(),
        msh.is_ack(),
    );
    for n in 0..30 {
        assert_eq!(msh.field(n), msh.segment().field(n), "MSH-{n}");
    }
    for seg in m.segments() {
        assert!(!seg.raw().is_empty());
        assert_eq!(m.offset_of(seg.raw()), Some(seg.offset()));
        let count = seg.field_count();
        assert_eq!(seg.fields().count(), count);
        for (i, field) in seg.fields().enumerate() {
            assert_eq!(seg.field(i + 1), Some(field));
            let _ = field.decoded(&seps);
            let _ = unescape(field.raw(), &seps);
            for rep in field.repetitions() {
                for (c, component) in rep.components().enumerate() {
                    assert_eq!(
                        rep.component(c + 1),
                        (!component.is_empty()).then_some(component)
                    );
                    let _ = rep.subcomponent(c + 1, 1);
                    let _ = rep.subcomponent(c + 1, 2);
                }
            }
        }
        assert!(seg.field(count + 1).is_none());
    }
    for path in [
        "MSH-9.1",
        "MSH-10",
        "PID-3",
        "PID-3[2].1",
        "PID-5.1.1",
        "OBX-5",
    ] {
        let _ = m.get(&FieldPath::parse(path).unwrap());
    }
    m.validate()
}

/// Files that really are broken, and what is wrong with them (read by hand).
const KNOWN_BROKEN: &[(&str, &str)] = &[
    // Comment lines (`/*`, `// *** Original message ver 2.1`) around the messages, and one
    // message whose MSH-2 is `^~}` (3 encoding characters).
    (
        "hl7v2/hapifhir+hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2/util/messages.txt",
        "comments and a 3-character MSH-2",
    ),
    // A CR inside RXA leaves a line starting `999|||00^New immunization record…`.
    (
        "hl7v2/GIG-Cymru-NHS-Wales+hl7-v2-examples/examples/hl7-v2.5.1-rsp-k11-1.hl7",
        "a segment broken in two by a CR",
    ),
];

#[test]
fn every_hl7v2_file_yields_its_messages() {
    let root = corpus_or_skip!();
    let mut checked = 0;
    let mut unexpected = Vec::new();
    let mut broken_seen = Vec::new();
    for path in files(&root.join("hl7v2")) {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let mut messages = 0;
        let mut problems = Vec::new();
        for item in split_messages(&bytes) {
            match item {
                Ok((offset, slice)) => {
                    messages += 1;
                    assert!(slice.starts_with(b"MSH"), "{rel}@{offset}");
                    assert_eq!(&bytes[offset..offset + slice.len()], slice);
                    match Message::parse(slice) {
                        Ok(m) => {
                            if let Err(e) = exercise(&m) {
                                problems.push(format!("message at {offset}: {e}"));
                            }
                        }
                        Err(e) => problems.push(format!("message at {offset}: {e}")),
                    }
                }
                Err(e) => {
                    assert!(e.offset < bytes.len(), "{rel}: {e}");
                    problems.push(e.to_string());
                }
            }
        }
        assert!(messages >= 1, "{rel}: no message found");
        checked += 1;
        if KNOWN_BROKEN.iter().any(|(f, _)| *f == rel) {
            assert!(
                !problems.is_empty(),
                "{rel} is listed as broken but reads cleanly"
            );
            broken_seen.push(rel);
        } else if !problems.is_empty() {
            unexpected.push(format!("{rel}: {problems:?}"));
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected problems:\n{}",
        unexpected.join("\n")
    );
    assert_eq!(broken_seen.len(), KNOWN_BROKEN.len());
    assert!(checked >= 170, "only {checked} files");
}

/// MSH values of one message of a corpus file, read by hand from the file.
struct Expect {
    file: &'static str,
    /// Messages in the file.
    messages: usize,
    /// Which message (0-based) the values below describe.
    index: usize,
    segments: usize,
    /// MSH-3.1, MSH-4.1
    sending: [Option<&'static str>; 2],
    /// MSH-5.1, MSH-6.1
    receiving: [Option<&'static str>; 2],
    /// MSH-9.1, MSH-9.2, MSH-9.3
    kind: [Option<&'static str>; 3],
    control_id: Option<&'static str>,
    processing_id: Option<&'static str>,
    version: Option<&'static str>,
    charset: Option<&'static str>,
    ack_mode: AckMode,
}

const GIG: &str = "hl7v2/GIG-Cymru-NHS-Wales+hl7-v2-examples/examples/";
const ITK: &str = "hl7v2/KevinMayfield+ITKHL7v2-FHIR/src/main/resources/HL7v2/";
const HAPI: &str = "hl7v2/hapifhir+hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2/";
const MS: &str = "hl7v2/microsoft+FHIR-Converter/data/SampleData/Hl7v2/";
const MS_BATCH: &str = "hl7v2/microsoft+FHIR-Converter/src/Microsoft.Health.Fhir.Liquid.Converter.UnitTests/TestData/Expected/BundleToHl7v2.hl7";
const NHAPI: &str = "hl7v2/nHapiNET+nHapi/tests/NHapi.NUnit/TestData/Parser/OML_O21_messages.txt";

fn sample() -> Vec<(String, Expect)> {
    use AckMode::{Enhanced, Original};
    let e = |dir: &str, file: &'static str, x: Expect| (format!("{dir}{file}"), x);
    vec![
        e(
            GIG,
            "hl7-v2.3-adt-a01-1.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 8,
                sending: [Some("MegaReg"), Some("XYZHospC")],
                receiving: [Some("SuperOE"), Some("XYZImgCtr")],
                kind: [Some("ADT"), Some("A01"), Some("ADT_A01")],
                control_id: Some("01052901"),
                processing_id: Some("P"),
                version: Some("2.5"),
                charset: None,
                ack_mode: Original,
            },
        ),
        // MSH-3 is `^^`: no namespace id. MSH-9 is `ACK^`.
        e(
            GIG,
            "hl7-v2.3.1-ack-1.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 3,
                sending: [None, Some("DOE")],
                receiving: [Some("DCC"), Some("DOE")],
                kind: [Some("ACK"), None, None],
                control_id: Some("1125342816253.100000055"),
                processing_id: Some("P"),
                version: Some("2.3.1"),
                charset: None,
                ack_mode: Original,
            },
        ),
        // Named 2.8, says 2.4; a CR inside OBR leaves a line starting `LAB|`.
        e(
            GIG,
            "hl7-v2.8-oru-r01-1.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 5,
                sending: [Some("GHH LAB"), Some("ELAB-3")],
                receiving: [Some("GHH OE"), Some("BLDG4")],
                kind: [Some("ORU"), Some("R01"), None],
                control_id: Some("CNTRL-3456"),
                processing_id: Some("P"),
                version: Some("2.4"),
                charset: None,
                ack_mode: Original,
            },
        ),
        // MSH-12 is `2.3.1^AUS&&ISO^AS4700.2&&L`.
        e(
            GIG,
            "hl7-v2.3.1-oru-r01-1.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 2,
                sending: [Some("MERIDIAN"), Some("Demo Server")],
                receiving: [None, None],
                kind: [Some("ORU"), Some("R01"), None],
                control_id: Some("XX02021630854-1539"),
                processing_id: Some("P"),
                version: Some("2.3.1"),
                charset: None,
                ack_mode: Original,
            },
        ),
        e(
            GIG,
            "hl7-v2.5.1-vxu-v04-1.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 7,
                sending: [Some("EPIC"), Some("SIISCLIENT818")],
                receiving: [None, None],
                kind: [Some("VXU"), Some("V04"), Some("VXU_V04")],
                control_id: Some("225"),
                processing_id: Some("P"),
                version: Some("2.5.1"),
                charset: None,
                ack_mode: Enhanced,
            },
        ),
        // NHS ITK HL7v2 profile: MSH-17 GBR, MSH-18 UNICODE, MSH-19 EN, MSH-21 iTKv1.0.
        e(
            ITK,
            "A01_example.txt",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 14,
                sending: [Some("PAS"), Some("RCB")],
                receiving: [Some("ROUTE"), Some("ROUTE")],
                kind: [Some("ADT"), Some("A01"), Some("ADT_A01")],
                control_id: Some("1391320453338055"),
                processing_id: Some("P"),
                version: Some("2.4"),
                charset: Some("UNICODE"),
                ack_mode: Original,
            },
        ),
        e(
            ITK,
            "A28_Example.txt",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 7,
                sending: [Some("PAS"), Some("RCB")],
                receiving: [Some("ROUTE"), Some("ROUTE")],
                kind: [Some("ADT"), Some("A28"), Some("ADT_A05")],
                control_id: Some("13403891320453338075"),
                processing_id: Some("P"),
                version: Some("2.4"),
                charset: Some("UNICODE"),
                ack_mode: Original,
            },
        ),
        // `MSH^~|\&`: `^` separates fields, `~` components, `|` repetitions; CRLF endings.
        e(
            HAPI,
            "util/segmentfinder_a24.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 4,
                sending: [Some("SENDING"), Some("200M")],
                receiving: [Some("RECEIVING"), Some("200")],
                kind: [Some("ADT"), Some("A24"), None],
                control_id: Some("2003582144"),
                processing_id: Some("T"),
                version: Some("2.4"),
                charset: None,
                ack_mode: Enhanced,
            },
        ),
        // MSH-3 `^OLIS^X500` and MSH-5 have an empty first component; MSH-18 `8859/1`.
        e(
            HAPI,
            "parser/cv.04_001_chem.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 7,
                sending: [None, None],
                receiving: [None, None],
                kind: [Some("ERP"), Some("Z99"), Some("ERP_R09")],
                control_id: Some("bf3dd577-2108-47ad-abd2-4f06284f3b55"),
                processing_id: Some("T"),
                version: Some("2.3.1"),
                charset: Some("8859/1"),
                ack_mode: Original,
            },
        ),
        // The third message: an ACK with `\}` as escape and sub-component characters, followed
        // by a blank line and a comment line that the split keeps inside it.
        e(
            HAPI,
            "util/messages.txt",
            Expect {
                file: "",
                messages: 18,
                index: 2,
                segments: 3,
                sending: [Some("RADIOLOGY"), Some("MIR1")],
                receiving: [Some("ADMISSION"), Some("ADT1")],
                kind: [Some("ACK"), None, None],
                control_id: Some("589888ADT30502184808"),
                processing_id: Some("P"),
                version: Some("2.1"),
                charset: None,
                ack_mode: Original,
            },
        ),
        e(
            HAPI,
            "parser/example_oml_o21.hl7",
            Expect {
                file: "",
                messages: 13,
                index: 10,
                segments: 14,
                sending: [Some("HIS"), Some("ASE")],
                receiving: [Some("LIS"), Some("Rapela")],
                kind: [Some("OML"), Some("O21"), None],
                control_id: None,
                processing_id: Some("T"),
                version: Some("2.5"),
                charset: None,
                ack_mode: Original,
            },
        ),
        e(
            HAPI,
            "parser/adt_a03.txt",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 5,
                sending: [Some("IRIS"), Some("SANTER")],
                receiving: [Some("AMB_R"), Some("SANTER")],
                kind: [Some("ADT"), Some("A03"), None],
                control_id: Some("263206"),
                processing_id: Some("P"),
                version: Some("2.5"),
                charset: None,
                ack_mode: Original,
            },
        ),
        e(
            HAPI,
            "parser/omd_o03_rep.txt",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 9,
                sending: [Some("DIETOOLS"), Some("1")],
                receiving: [Some("JARA"), None],
                kind: [Some("OMD"), Some("O03"), Some("OMD_O03")],
                control_id: Some("20101027181706"),
                processing_id: Some("P"),
                version: Some("2.5"),
                charset: None,
                ack_mode: Enhanced,
            },
        ),
        // v2.8, 25 MSH fields.
        e(
            MS,
            "ADT-A01-01.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 24,
                sending: [Some("ADTApp"), Some("GHHSFacility")],
                receiving: [Some("EHRApp"), Some("GHHRFacility")],
                kind: [Some("ADT"), Some("A01"), Some("ADT_A01")],
                control_id: Some("MSG00001"),
                processing_id: Some("P"),
                version: Some("2.8"),
                charset: None,
                ack_mode: Original,
            },
        ),
        // UTF-8 BOM before MSH.
        e(
            MS,
            "OML-O21-01.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 23,
                sending: [Some("ORDApp"), Some("GHHSFacility")],
                receiving: [Some("EHRApp"), Some("GHHRFacility")],
                kind: [Some("OML"), Some("O21"), Some("OML_O21")],
                control_id: Some("MSG00019"),
                processing_id: Some("P"),
                version: Some("2.6"),
                charset: None,
                ack_mode: Original,
            },
        ),
        e(
            MS,
            "VXU.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 14,
                sending: [Some("NISTEHRAPP"), Some("NISTEHRFAC")],
                receiving: [Some("NISTIISAPP"), Some("NISTIISFAC")],
                kind: [Some("VXU"), Some("V04"), Some("VXU_V04")],
                control_id: Some("NIST-IZ-AD-2.1_Send_V04_Z22"),
                processing_id: Some("P"),
                version: Some("2.5.1"),
                charset: None,
                ack_mode: Enhanced,
            },
        ),
        // BOM; MSH ends `|2.3||| ` so MSH-15 is a single space: not a value.
        e(
            MS,
            "ADT01-23.hl7",
            Expect {
                file: "",
                messages: 1,
                index: 0,
                segments: 12,
                sending: [Some("AccMgr"), Some("1")],
                receiving: [None, None],
                kind: [Some("ADT"), Some("A01"), None],
                control_id: Some("599102"),
                processing_id: Some("P"),
                version: Some("2.3"),
                charset: None,
                ack_mode: Original,
            },
        ),
        // FHS/BHS/2 x MSH/BTS/FTS.
        e(
            "",
            MS_BATCH,
            Expect {
                file: "",
                messages: 2,
                index: 1,
                segments: 4,
                sending: [Some("TestSystem"), None],
                receiving: [Some("TransformationAgent"), None],
                kind: [Some("ORU"), Some("R01"), None],
                control_id: Some("1"),
                processing_id: Some("T"),
                version: Some("2.5"),
                charset: None,
                ack_mode: Original,
            },
        ),
        e(
            "",
            NHAPI,
            Expect {
                file: "",
                messages: 7,
                index: 0,
                segments: 10,
                sending: [Some("OP"), Some("Entero-gastric")],
                receiving: [Some("OF"), Some("Chemistry")],
                kind: [Some("OML"), Some("O21"), Some("OML_O21")],
                control_id: Some("msgOP123"),
                processing_id: Some("T"),
                version: Some("2.5.1"),
                charset: None,
                ack_mode: Original,
            },
        ),
    ]
}

fn text(v: Option<&[u8]>) -> Option<&str> {
    v.map(|v| std::str::from_utf8(v).unwrap())
}

/// The messages of a file (split errors dropped).
fn messages(bytes: &[u8]) -> Vec<&[u8]> {
    split_messages(bytes)
        .filter_map(Result::ok)
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn sample_msh_values_match_the_files() {
    let root = corpus_or_skip!();
    let sample = sample();
    assert!(sample.len() >= 15);
    for folder in [
        "GIG-Cymru",
        "KevinMayfield",
        "hapifhir",
        "microsoft",
        "nHapiNET",
    ] {
        assert!(sample.iter().any(|(f, _)| f.contains(folder)), "{folder}");
    }
    for (file, x) in &sample {
        let _ = x.file;
        let bytes = read(&root, file);
        let all = messages(&bytes);
        assert_eq!(all.len(), x.messages, "{file}: messages");
        let m = Message::parse(all[x.index]).unwrap_or_else(|e| panic!("{file}: {e}"));
        let msh = m.msh();
        let got = (
            [
                text(msh.sending_application()),
                text(msh.sending_facility()),
            ],
            [
                text(msh.receiving_application()),
                text(msh.receiving_facility()),
            ],
            [
                text(msh.message_type()),
                text(msh.trigger_event()),
                text(msh.message_structure()),
            ],
        );
        assert_eq!(got, (x.sending, x.receiving, x.kind), "{file}");
        assert_eq!(text(msh.control_id()), x.control_id, "{file}: MSH-10");
        assert_eq!(text(msh.processing_id()), x.processing_id, "{file}: MSH-11");
        assert_eq!(text(msh.version()), x.version, "{file}: MSH-12");
        assert_eq!(text(msh.charset()), x.charset, "{file}: MSH-18");
        assert_eq!(msh.ack_mode(), x.ack_mode, "{file}: ack mode");
        assert_eq!(msh.is_ack(), x.kind[0] == Some("ACK"), "{file}");
        assert_eq!(m.segments().count(), x.segments, "{file}: segments");
    }
}

fn get<'a>(m: &Message<'a>, path: &str) -> Option<&'a str> {
    text(m.get(&FieldPath::parse(path).unwrap()))
}

#[test]
fn fields_components_and_escapes_in_real_files() {
    let root = corpus_or_skip!();

    // `\T\` inside the second repetition of PID-11, next to UTF-8 (a right single quote).
    let bytes = read(&root, &format!("{GIG}hl7-v2.3-adt-a01-1.hl7"));
    let m = Message::parse(&bytes).unwrap();
    let pid11 = m.segment(b"PID").unwrap().field(11).unwrap();
    let street = pid11.repetition(2).unwrap().component(1).unwrap();
    assert_eq!(street, "NICKELL\u{2019}S PICKLES \\T\\ DILL".as_bytes());
    assert_eq!(
        unescape(street, m.separators()).as_ref(),
        "NICKELL\u{2019}S PICKLES & DILL".as_bytes()
    );
    assert_eq!(get(&m, "PID-3[2].4"), Some("UAReg"));
    assert_eq!(get(&m, "PID-5.2"), Some("BARRY"));

    // The `MSH^~|\&` message: components split on `~`, sub-components on `&`.
    let bytes = read(&root, &format!("{HAPI}util/segmentfinder_a24.hl7"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(get(&m, "MSH-1"), Some("^"));
    assert_eq!(get(&m, "MSH-2"), Some("~|\\&"));
    assert_eq!(get(&m, "MSH-16"), Some("AL"));
    assert_eq!(get(&m, "PID-3.1"), Some("11111"));
    assert_eq!(get(&m, "PID-3.4.3"), Some("0363"));
    assert_eq!(get(&m, "PID-3.6.1"), Some("FACILITY ID"));
    assert_eq!(get(&m, "PID-3.6.2"), Some("200M"));
    assert_eq!(get(&m, "PID-5.2"), Some("JOHN"));
    let second = m.segments().filter(|s| s.id() == b"PID").nth(1).unwrap();
    assert_eq!(second.field(1).unwrap().raw(), b"2");

    // Repetitions.
    let bytes = read(&root, &format!("{HAPI}parser/adt_a03.txt"));
    let m = Message::parse(&bytes).unwrap();
    let pid3 = m.segment(b"PID").unwrap().field(3).unwrap();
    assert_eq!(pid3.repetition_count(), 4);
    assert_eq!(get(&m, "PID-3[3].5"), Some("SSN"));
    assert_eq!(get(&m, "PID-3[4].1"), None);
    assert_eq!(get(&m, "PID-3[4].5"), Some("TEAM"));
    let bytes = read(&root, &format!("{HAPI}parser/omd_o03_rep.txt"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(get(&m, "PID-3[2]"), Some("CIPTWO"));
    assert_eq!(get(&m, "PID-3.9.3"), Some("ES-EX"));

    // MSH-21 of the ITK profile; MSH-12.2.1 of a `2.3.1^AUS&&ISO` version.
    let bytes = read(&root, &format!("{ITK}A01_example.txt"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(get(&m, "MSH-17"), Some("GBR"));
    assert_eq!(get(&m, "MSH-19"), Some("EN"));
    assert_eq!(get(&m, "MSH-21"), Some("iTKv1.0"));
    assert_eq!(get(&m, "ZU8-3"), Some("No"));
    let bytes = read(&root, &format!("{GIG}hl7-v2.3.1-oru-r01-1.hl7"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(get(&m, "MSH-12.2.1"), Some("AUS"));
    assert_eq!(get(&m, "MSH-12.3.1"), Some("AS4700.2"));

    // MSH-22..25 of a v2.8 message lie past the view's recorded slots.
    let bytes = read(&root, &format!("{MS}ADT-A01-01.hl7"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(get(&m, "MSH-19"), Some("en-US"));
    assert_eq!(get(&m, "MSH-22"), Some("22 GHH Inc."));
    assert_eq!(get(&m, "MSH-25.1"), Some("25GHH"));
    assert_eq!(get(&m, "MSH-25.3"), Some("ISO"));
    assert!(m.msh().field(26).is_none());

    // `\T\` in a URL (OBX-5 of the third OBX), in a file with a BOM.
    let bytes = read(&root, &format!("{MS}OML-O21-01.hl7"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.start(), 3);
    let obx = m
        .segments()
        .find(|s| s.is(b"OBX") && s.field(3).unwrap().component(1) == Some(b"3DHISTH_SLD"))
        .unwrap();
    let url = obx.field(5).unwrap().component(1).unwrap();
    assert_eq!(
        unescape(url, m.separators()).as_ref(),
        &b"http://172.16.237.4/CaseCenter/index.php?ContainerType=CaseView&ContainerID=0&SlideID=40bcbe96bcbf8cda8b07403263b92cb4"[..]
    );
    assert_eq!(get(&m, "VXU-1"), None);
    // `…|en-US|||22 GHH Inc.|`: MSH-20 and MSH-21 are empty.
    assert_eq!(get(&m, "MSH-21"), None);
    assert_eq!(get(&m, "MSH-22"), Some("22 GHH Inc."));
}

#[test]
fn batch_and_concatenated_files() {
    let root = corpus_or_skip!();

    let bytes = read(&root, MS_BATCH);
    let batch = Batch::scan(&bytes).unwrap();
    assert_eq!(batch.fhs().unwrap().field(3).unwrap().raw(), b"TestSystem");
    assert_eq!(batch.bhs().unwrap().field(3).unwrap().raw(), b"TestSystem");
    // BTS-1 says 1 but the batch holds 2 messages.
    assert_eq!(batch.declared_count(), Some(1));
    assert_eq!(batch.fts().unwrap().field(1).unwrap().raw(), b"1");
    let items: Vec<_> = batch.messages().collect();
    assert_eq!(items.len(), 2);
    let (first_at, first) = items[0].clone().unwrap();
    assert_eq!(&bytes[first_at..first_at + 4], b"MSH|");
    assert!(first.ends_with(b"OBX|||||6.3|mmol/l|3.1-6.2|H|\n"));
    let second = Message::parse(items[1].clone().unwrap().1).unwrap();
    assert_eq!(get(&second, "OBR-2"), Some("6324"));

    // Segment counts of every message, counted with awk over the file.
    let bytes = read(&root, &format!("{HAPI}parser/example_oml_o21.hl7"));
    let counts: Vec<usize> = messages(&bytes)
        .iter()
        .map(|m| Message::parse(m).unwrap().segments().count())
        .collect();
    assert_eq!(counts, [10, 9, 11, 13, 12, 15, 11, 17, 10, 9, 14, 11, 11]);
    let ids: Vec<&str> = messages(&bytes)
        .iter()
        .map(|m| text(Message::parse(m).unwrap().msh().control_id()).unwrap_or("-"))
        .collect();
    assert_eq!(ids[..3], ["msgOP123", "msgOF102", "msgOF103"]);
    let bytes = read(&root, NHAPI);
    let counts: Vec<usize> = messages(&bytes)
        .iter()
        .map(|m| Message::parse(m).unwrap().segments().count())
        .collect();
    assert_eq!(counts, [10, 9, 12, 11, 11, 11, 14]);

    // Comment lines before the first message are garbage at offset 0; the message with a
    // 3-character MSH-2 (`^~}`, line 26) is refused with its position; the others are found.
    let bytes = read(&root, &format!("{HAPI}util/messages.txt"));
    let items: Vec<_> = split_messages(&bytes).collect();
    let first = items[0].clone().unwrap_err();
    assert_eq!((first.offset, first.kind), (0, ErrorKind::Garbage));
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    let all = messages(&bytes);
    assert_eq!(all.len(), 18);
    let e = Message::parse(all[3]).unwrap_err();
    assert_eq!(
        (e.offset, e.kind),
        (7, ErrorKind::TooFewEncodingChars { found: 3 })
    );
    assert!(all[3].starts_with(b"MSH|^~}|ADMISSION"));
    let m = Message::parse(all[0]).unwrap();
    assert_eq!(text(m.msh().sending_application()), Some("RADIS1"));
    assert_eq!(text(m.msh().processing_id()), Some("D"));
    assert_eq!(m.msh().ack_mode(), AckMode::Enhanced);
    assert_eq!(get(&m, "MSA-2"), Some("msgCtrlId"));
    let last = Message::parse(all[17]).unwrap();
    assert_eq!(text(last.msh().control_id()), Some("994983RIQ40112233548"));
    assert_eq!(last.separators().subcomponent, b'}');
}

/// Per-file expectations for malformed inputs, read from the bytes (`python -c 'print(repr(…))'`).
const MALFORMED: &[(&str, usize, ErrorKind)] = &[
    ("LegacyPipeParser/EncodingNotSupportedException/aoor1", 0, ErrorKind::Empty),
    ("LegacyPipeParser/EncodingNotSupportedException/nullref1", 3, ErrorKind::BadSeparator { byte: b'H' }),
    ("LegacyPipeParser/HL7Exception/hang1", 5, ErrorKind::TooFewEncodingChars { found: 1 }),
    ("LegacyPipeParser/HL7Exception/ioor1", 4, ErrorKind::BadSeparator { byte: b'0' }),
    ("LegacyPipeParser/HL7Exception/sys2", 4, ErrorKind::BadSeparator { byte: b'0' }),
    ("LegacyPipeParser/NoException/regex1", 5, ErrorKind::BadSeparator { byte: 0x01 }),
    ("PipeParser/EncodingNotSupportedException/id_000014,sig_02,src_000480+000349,op_splice,rep_32", 0, ErrorKind::NotMsh),
    ("PipeParser/EncodingNotSupportedException/id_000213,sig_02,src_001353+000130,op_splice,rep_8", 0, ErrorKind::NotMsh),
    ("PipeParser/HL7Exception/id_000029,sig_02,src_000167+001027,op_splice,rep_8", 7, ErrorKind::TooFewEncodingChars { found: 3 }),
    ("PipeParser/HL7Exception/id_000064,sig_02,src_000051+000380,op_splice,rep_16", 4, ErrorKind::TooFewEncodingChars { found: 0 }),
    ("PipeParser/HL7Exception/id_000087,sig_02,src_000967+001832,op_splice,rep_2", 5, ErrorKind::BadSeparator { byte: 0xfd }),
    ("PipeParser/HL7Exception/id_000119,sig_02,src_001911,op_havoc,rep_64", 6, ErrorKind::BadSeparator { byte: b'y' }),
    ("PipeParser/HL7Exception/id_000123,sig_02,src_000372+002313,op_splice,rep_8", 5, ErrorKind::BadSeparator { byte: b' ' }),
    ("PipeParser/HL7Exception/id_000176,sig_02,src_002656+002699,op_splice,rep_32", 6, ErrorKind::BadSeparator { byte: b'0' }),
    ("PipeParser/HL7Exception/so4", 4, ErrorKind::BadSeparator { byte: b'0' }),
];

#[test]
fn malformed_inputs_get_a_positioned_error_or_a_parse() {
    let root = corpus_or_skip!();
    let dir = root.join("malformed");
    let mut seen = 0;
    for path in files(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        match Message::parse(&bytes) {
            Ok(m) => {
                if let Err(e) = exercise(&m) {
                    assert!(e.offset < bytes.len(), "{name}: {e}");
                }
            }
            Err(e) => {
                assert!(e.offset <= bytes.len(), "{name}: {e}");
                assert!(e.to_string().starts_with(&format!("byte {}", e.offset)));
            }
        }
        for item in split_messages(&bytes) {
            match item {
                Ok((offset, slice)) => {
                    assert_eq!(&bytes[offset..offset + slice.len()], slice);
                    if let Ok(m) = Message::parse(slice) {
                        let _ = exercise(&m);
                    }
                }
                Err(e) => assert!(e.offset < bytes.len(), "{name}: {e}"),
            }
        }
        let _ = unescape(&bytes, &Default::default());
        seen += 1;
    }
    assert!(seen >= 37, "only {seen} malformed files");

    let base = "malformed/nHapiNET+nHapi/tests/NHapi.NUnit/TestData/BadInputs/";
    for (file, offset, kind) in MALFORMED {
        let bytes = read(&root, &format!("{base}{file}"));
        let e = Message::parse(&bytes).unwrap_err();
        assert_eq!((e.offset, e.kind), (*offset, *kind), "{file}");
    }
    // `MSHH0` and the NUL-prefixed input hold no message line at all.
    for file in [
        "LegacyPipeParser/EncodingNotSupportedException/nullref1",
        "PipeParser/EncodingNotSupportedException/id_000014,sig_02,src_000480+000349,op_splice,rep_32",
    ] {
        let bytes = read(&root, &format!("{base}{file}"));
        let items: Vec<_> = split_messages(&bytes).collect();
        assert!(matches!(&items[..], [Err(e)] if e.offset == 0 && e.kind == ErrorKind::Garbage));
    }
    // `"` is an allowed sub-component separator; the message then breaks at a line `00||…`.
    let file = "PipeParser/HL7Exception/id_000092,sig_02,src_001582+001861,op_splice,rep_16";
    let bytes = read(&root, &format!("{base}{file}"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.separators().subcomponent, b'"');
    let e = m.validate().unwrap_err();
    let line = bytes.windows(5).position(|w| w == b"\r00||").unwrap() + 1;
    assert_eq!((e.offset, e.kind), (line, ErrorKind::BadSegmentId));
    // A well-formed MSH followed by a `000|` line.
    let file = "PipeParser/NoException/id_000109,sig_02,src_001098+002192,op_splice,rep_4";
    let bytes = read(&root, &format!("{base}{file}"));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(text(m.msh().message_type()), Some("ADT"));
    assert_eq!(text(m.msh().version()), Some("2.7"));
    let e = m.validate().unwrap_err();
    let line = bytes.windows(5).position(|w| w == b"\r000|").unwrap() + 1;
    assert_eq!((e.offset, e.kind), (line, ErrorKind::BadSegmentId));
}
