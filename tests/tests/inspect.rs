//! `ganglion inspect` run as a real process on real files: corpus samples (expected values
//! read from the files by hand) and inputs made here in every shape the command accepts.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use codecs::mllp::encode;
use serde_json::{json, Value};
use tests::scratch::Scratch;

fn inspect(args: &[&Path]) -> (Vec<Value>, Output) {
    let output = Command::new(env!("CARGO_BIN_EXE_ganglion-it"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run ganglion");
    (lines(&output), output)
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

const ADT: &[u8] = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125093015||ADT^A01^ADT_A01|C1|P|2.4\rEVN|A01\rPID|1||9449305552^^^NHS\r";
const ORU: &[u8] =
    b"MSH|^~\\&|LAB|RX8|EPR|RX8|20261125093015||ORU^R01|C2|P|2.3\rPID|1\rOBR|1\rOBX|1|TX|||ok\r";

#[test]
fn corpus_hl7v2_single_message() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let file =
        corpus.join("hl7v2/GIG-Cymru-NHS-Wales+hl7-v2-examples/examples/hl7-v2.3-adt-a01-1.hl7");
    let (out, status) = inspect(&[&file]);
    assert!(status.status.success(), "{status:?}");
    assert_eq!(out.len(), 1);
    let m = &out[0];
    assert_eq!(m["file"], json!(file.display().to_string()));
    assert_eq!(m["index"], json!(0));
    assert_eq!(m["kind"], json!("hl7v2"));
    assert_eq!(m["sending_application"], json!("MegaReg"));
    assert_eq!(m["sending_facility"], json!("XYZHospC"));
    assert_eq!(m["receiving_application"], json!("SuperOE"));
    assert_eq!(m["receiving_facility"], json!("XYZImgCtr"));
    assert_eq!(m["message_type"], json!("ADT"));
    assert_eq!(m["trigger_event"], json!("A01"));
    assert_eq!(m["message_structure"], json!("ADT_A01"));
    assert_eq!(m["control_id"], json!("01052901"));
    assert_eq!(m["processing_id"], json!("P"));
    assert_eq!(m["version"], json!("2.5"));
    assert_eq!(m["charset"], Value::Null);
    assert_eq!(m["segments"], json!(8));
    assert_eq!(
        m["segment_ids"],
        json!(["MSH", "EVN", "PID", "PV1", "OBX", "OBX", "AL1", "DG1"])
    );
}

#[test]
fn corpus_batch_yields_each_message() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let file = corpus.join("hl7v2/microsoft+FHIR-Converter/src/Microsoft.Health.Fhir.Liquid.Converter.UnitTests/TestData/Expected/BundleToHl7v2.hl7");
    let (out, status) = inspect(&[&file]);
    assert!(status.status.success(), "{status:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    for (i, m) in out.iter().enumerate() {
        assert_eq!(m["index"], json!(i));
        assert_eq!(m["sending_application"], json!("TestSystem"));
        assert_eq!(m["sending_facility"], Value::Null);
        assert_eq!(m["receiving_application"], json!("TransformationAgent"));
        assert_eq!(m["message_type"], json!("ORU"));
        assert_eq!(m["trigger_event"], json!("R01"));
        assert_eq!(m["message_structure"], Value::Null);
        assert_eq!(m["control_id"], json!("1"));
        assert_eq!(m["processing_id"], json!("T"));
        assert_eq!(m["version"], json!("2.5"));
        assert_eq!(m["segment_ids"], json!(["MSH", "PID", "OBR", "OBX"]));
    }
}

#[test]
fn corpus_unusual_separators() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    // `MSH^~|\&`: ^ separates fields and ~ components, so MSH-9 is ADT~A24.
    let file = corpus.join("hl7v2/hapifhir+hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2/util/segmentfinder_a24.hl7");
    let (out, _) = inspect(&[&file]);
    assert_eq!(out.len(), 1);
    let m = &out[0];
    assert_eq!(m["sending_application"], json!("SENDING"));
    assert_eq!(m["sending_facility"], json!("200M"));
    assert_eq!(m["receiving_application"], json!("RECEIVING"));
    assert_eq!(m["message_type"], json!("ADT"));
    assert_eq!(m["trigger_event"], json!("A24"));
    assert_eq!(m["control_id"], json!("2003582144"));
    assert_eq!(m["version"], json!("2.4"));
    assert_eq!(m["segment_ids"], json!(["MSH", "EVN", "PID", "PID"]));
}

#[test]
fn corpus_bare_distribution_envelope() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let file = corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_DE.xml");
    let (out, status) = inspect(&[&file]);
    assert!(status.status.success(), "{status:?}");
    assert_eq!(out.len(), 1);
    let m = &out[0];
    assert_eq!(m["kind"], json!("itk"));
    assert_eq!(
        m["service"],
        json!("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
    );
    assert_eq!(
        m["tracking_id"],
        json!("217D1168-7F0B-4F31-A0A9-5B030E545FAE")
    );
    assert_eq!(
        m["addresses"],
        json!([
            "urn:nhs-uk:addressing:ods:BBB:X0912",
            "urn:nhs-uk:addressing:ods:X0913",
            "urn:nhs-uk:addressing:ods:X0914"
        ])
    );
    assert_eq!(
        m["sender"],
        json!("urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987")
    );
    assert_eq!(
        m["audit_identities"],
        json!(["urn:nhs-uk:identity:ods:XZ901"])
    );
    assert_eq!(
        m["interaction"],
        json!("urn:nhs-itk:interaction:primaryRecipientAmbulanceServicePatientReport-v1-0")
    );
    assert_eq!(m["ack_requested"], json!(false));
    assert_eq!(m["inf_ack_requested"], json!(true));
    assert_eq!(
        m["payload_ids"],
        json!(["uuid_57B3E02B-BF35-42DB-BD14-7B2E462D06D5"])
    );
    assert_eq!(m["message_id"], Value::Null);
    assert_eq!(m["action"], Value::Null);
}

#[test]
fn corpus_http_capture() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let file = corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/urn_nhs-itk_services_201005_SendCDADocument-v2-0_20171005151927_31C71492-A9D8-11E7-B542-E3BA913BABA9.msg");
    let (out, status) = inspect(&[&file]);
    let m = &out[0];
    assert_eq!(m["kind"], json!("itk"), "{out:?}");
    assert_eq!(
        m["message_id"],
        json!("31C71492-A9D8-11E7-B542-E3BA913BABA9")
    );
    assert_eq!(
        m["action"],
        json!("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
    );
    assert_eq!(
        m["service"],
        json!("urn:nhs-itk:services:201005:SendCDADocument-v2-0")
    );
    assert_eq!(
        m["tracking_id"],
        json!("7D6F23E0-AE1A-11DB-8707-B18E1E0994EF")
    );
    assert_eq!(m["addresses"], json!(["urn:nhs-uk:addressing:ods:X0912"]));
    assert_eq!(m["ack_requested"], json!(true));
    assert_eq!(m["inf_ack_requested"], Value::Null);
    assert_eq!(
        m["payload_ids"],
        json!(["uuid_D4059820-1ACB-400A-B61D-A0A900A3D11F"])
    );
    // The capture goes on with the test tool's log text and its response: that tail is not an
    // HTTP message, and inspect says so rather than skipping it.
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[1]["error"].is_string());
    assert_eq!(status.status.code(), Some(2));
}

#[test]
fn several_messages_and_mllp_frames() {
    let scratch = Scratch::new("mllp");
    let mut concatenated = ADT.to_vec();
    concatenated.extend_from_slice(b"\n");
    concatenated.extend_from_slice(
        &ORU.iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect::<Vec<u8>>(),
    );
    let plain = scratch.file("two.hl7", &concatenated);
    let mut framed = Vec::new();
    encode(ADT, &mut framed);
    framed.extend_from_slice(b"\r\n");
    encode(ORU, &mut framed);
    let mllp = scratch.file("two.mllp", &framed);

    for path in [&plain, &mllp] {
        let (out, status) = inspect(&[path]);
        assert!(status.status.success(), "{}: {status:?}", path.display());
        assert_eq!(out.len(), 2, "{}: {out:?}", path.display());
        assert_eq!(out[0]["control_id"], json!("C1"));
        assert_eq!(out[0]["segment_ids"], json!(["MSH", "EVN", "PID"]));
        assert_eq!(out[1]["control_id"], json!("C2"));
        assert_eq!(out[1]["message_type"], json!("ORU"));
        assert_eq!(out[1]["segments"], json!(4));
    }
}

#[test]
fn escapes_and_character_sets_are_decoded() {
    let scratch = Scratch::new("charset");
    let latin1 = scratch.file(
        "latin1.hl7",
        b"MSH|^~\\&|Caf\xe9|A\\T\\E|R\\F\\X|F|20261125||ADT^A08|C\\S\\9|P|2.5||||||8859/1\rPID|1\r",
    );
    let utf8 = scratch.file(
        "utf8.hl7",
        "MSH|^~\\&|Café|Fac|App|F|20261125||ADT^A08|C9|P|2.5\rPID|1\r".as_bytes(),
    );
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "MSH|^~\\&|Zoë|Fac|App|F|20261125||ADT^A08|C10|P|2.5\rPID|1\r".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let utf16 = scratch.file("utf16.hl7", &utf16);
    let (out, status) = inspect(&[&latin1, &utf8, &utf16]);
    assert!(status.status.success(), "{status:?} {out:?}");
    assert_eq!(out[0]["sending_application"], json!("Café"));
    assert_eq!(out[0]["sending_facility"], json!("A&E"));
    assert_eq!(out[0]["receiving_application"], json!("R|X"));
    assert_eq!(out[0]["control_id"], json!("C^9"));
    assert_eq!(out[0]["charset"], json!("8859/1"));
    assert_eq!(out[1]["sending_application"], json!("Café"));
    assert_eq!(out[2]["sending_application"], json!("Zoë"));
    assert_eq!(out[2]["control_id"], json!("C10"));
}

#[test]
fn http_requests_plain_and_chunked() {
    let scratch = Scratch::new("http");
    let xml = r#"<itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005"><itk:header service="urn:nhs-itk:services:201005:SendDocument-v1-0" trackingid="AB54A9A4-9C24-4B38-9E0C-7F4B2E3C1D00"><itk:addresslist><itk:address uri="urn:nhs-uk:addressing:ods:RX8"/></itk:addresslist><itk:manifest count="1"><itk:manifestitem id="uuid_1" mimetype="text/plain"/></itk:manifest></itk:header><itk:payloads count="1"><itk:payload id="uuid_1">Fish &amp; chips</itk:payload></itk:payloads></itk:DistributionEnvelope>"#;
    let mut both = format!(
        "POST /itk HTTP/1.1\r\nHost: hub\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
        xml.len()
    )
    .into_bytes();
    let (a, b) = xml.split_at(100);
    both.extend_from_slice(
        format!(
            "POST /itk HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .as_bytes(),
    );
    let file = scratch.file("two.http", &both);
    let (out, status) = inspect(&[&file]);
    assert!(status.status.success(), "{status:?} {out:?}");
    assert_eq!(out.len(), 2);
    for m in &out {
        assert_eq!(m["kind"], json!("itk"));
        assert_eq!(
            m["tracking_id"],
            json!("AB54A9A4-9C24-4B38-9E0C-7F4B2E3C1D00")
        );
        assert_eq!(m["addresses"], json!(["urn:nhs-uk:addressing:ods:RX8"]));
        assert_eq!(m["payload_ids"], json!(["uuid_1"]));
        assert_eq!(m["ack_requested"], Value::Null);
    }
}

#[test]
fn standard_input_is_read_when_no_file_is_named() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganglion-it"))
        .arg("inspect")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ganglion");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ADT)
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let out = lines(&output);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["file"], json!("-"));
    assert_eq!(out[0]["control_id"], json!("C1"));
}

#[test]
fn unreadable_input_is_reported_with_its_offset_and_status_2() {
    let scratch = Scratch::new("bad");
    let good = scratch.file("good.hl7", ADT);
    // A good message, then one whose MSH stops before its encoding characters.
    let mut bad = ADT.to_vec();
    bad.extend_from_slice(b"MSH|");
    let bad = scratch.file("bad.hl7", &bad);
    let missing = scratch.join("missing.hl7");
    let (out, status) = inspect(&[&bad, &missing, &good]);
    assert_eq!(status.status.code(), Some(2));
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0]["control_id"], json!("C1"));
    assert_eq!(out[1]["index"], json!(1));
    // The offset is where the reading failed: just past `MSH|`, where MSH-2 should start.
    assert_eq!(out[1]["offset"], json!(ADT.len() + 4));
    assert!(out[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(out[2]["error"]
        .as_str()
        .is_some_and(|e| e.contains("cannot read")));
    // Every file is still read after a failure.
    assert_eq!(out[3]["control_id"], json!("C1"));
}

#[test]
fn half_an_mllp_frame_is_an_error() {
    let scratch = Scratch::new("half");
    let mut framed = Vec::new();
    encode(ADT, &mut framed);
    framed.extend_from_slice(b"\x0bMSH|^~\\&|half");
    let file = scratch.file("half.mllp", &framed);
    let (out, status) = inspect(&[&file]);
    assert_eq!(status.status.code(), Some(2));
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["offset"], json!(ADT.len() + 3));
    assert!(out[1]["error"].as_str().is_some_and(|e| e.contains("MLLP")));
}
