//! Builder tests: exact bytes against the TKW-shaped templates, and every output parsed back.
use super::*;
use crate::itk::{
    is_itk_uuid, parse, parse_response, ResponseBody, DE_ERROR_CODE_SYSTEM, IDENTITY_TYPE_OID,
};

const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const ENV_OPEN: &str = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"><soap:Header>";

fn simple() -> SimpleResponse<'static> {
    SimpleResponse {
        message_id: "3285347C-A9D8-11E7-AC8A-A9AA8186D285",
        request_action: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
        relates_to: "31C71492-A9D8-11E7-B542-E3BA913BABA9",
        text: "OK",
        timestamp: None,
    }
}

#[test]
fn simple_response_bytes() {
    let mut out = b"keep".to_vec();
    write_simple_response(&mut out, &simple());
    let expected = format!(
        "keep{DECL}{ENV_OPEN}<wsa:MessageID>3285347C-A9D8-11E7-AC8A-A9AA8186D285</wsa:MessageID>\
<wsa:Action>urn:nhs-itk:services:201005:SendCDADocument-v2-0Response</wsa:Action>\
<wsa:RelatesTo>31C71492-A9D8-11E7-B542-E3BA913BABA9</wsa:RelatesTo></soap:Header><soap:Body>\
<itk:SimpleMessageResponse xmlns:itk=\"urn:nhs-itk:ns:201005\">OK</itk:SimpleMessageResponse>\
</soap:Body></soap:Envelope>"
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn simple_response_parses_back_with_escapes_and_timestamp() {
    let r = SimpleResponse {
        text: "TEST_HARNESS_ID:<a & \"b\">\r\nx",
        relates_to: "uuid:31C71492&'",
        timestamp: Some(SoapTimestamp {
            created: "2017-10-05T14:19:27Z",
            expires: "2017-10-05T14:29:27Z",
        }),
        ..simple()
    };
    let mut out = Vec::new();
    write_simple_response(&mut out, &r);
    let back = parse_response(&out).unwrap();
    let h = back.header;
    assert_eq!(h.message_id.unwrap().raw(), r.message_id.as_bytes());
    assert_eq!(
        h.action.unwrap().raw(),
        b"urn:nhs-itk:services:201005:SendCDADocument-v2-0Response"
    );
    assert_eq!(h.relates_to.unwrap().decoded().unwrap(), r.relates_to);
    let sec = h.security.unwrap();
    assert_eq!(sec.created.unwrap().raw(), b"2017-10-05T14:19:27Z");
    assert_eq!(sec.expires.unwrap().raw(), b"2017-10-05T14:29:27Z");
    assert_eq!(sec.username, None);
    match back.body {
        // CR is written as a character reference, so it survives line-end normalisation.
        ResponseBody::SimpleMessage(t) => assert_eq!(t.decoded().unwrap(), r.text),
        other => panic!("{other:?}"),
    }
}

fn fault() -> FaultReply<'static> {
    FaultReply {
        message_id: "6C0B4C8E-2D6F-4B7A-9A56-0E1F5C9D2B11",
        relates_to: Some("D174645D-AD0E-4363-89EE-910A4BEF7201"),
        code: FaultCode::Client,
        fault_string: FaultCode::Client.default_string(),
        error: ErrorInfo {
            diagnostic: Some("manifest count is 2 but 1 present"),
            ..ErrorInfo::toolkit(
                "9B5A3F0E-6E5C-4C1D-8C59-7E3D2A1B0C9F",
                "1000",
                "Invalid message",
            )
        },
    }
}

#[test]
fn fault_bytes() {
    let mut out = Vec::new();
    write_fault(&mut out, &fault());
    let expected = format!(
        "{DECL}{ENV_OPEN}<wsa:MessageID>6C0B4C8E-2D6F-4B7A-9A56-0E1F5C9D2B11</wsa:MessageID>\
<wsa:Action>http://www.w3.org/2005/08/addressing/soap/fault</wsa:Action>\
<wsa:RelatesTo>D174645D-AD0E-4363-89EE-910A4BEF7201</wsa:RelatesTo></soap:Header><soap:Body>\
<soap:Fault><faultcode>soap:Client</faultcode><faultstring>A client related error has occurred, \
see detail element for further information</faultstring><detail>\
<itk:ToolkitErrorInfo xmlns:itk=\"urn:nhs-itk:ns:201005\">\
<itk:ErrorID>9B5A3F0E-6E5C-4C1D-8C59-7E3D2A1B0C9F</itk:ErrorID>\
<itk:ErrorCode codeSystem=\"2.16.840.1.113883.2.1.3.2.4.17.268\">1000</itk:ErrorCode>\
<itk:ErrorText>Invalid message</itk:ErrorText>\
<itk:ErrorDiagnosticText>manifest count is 2 but 1 present</itk:ErrorDiagnosticText>\
</itk:ToolkitErrorInfo></detail></soap:Fault></soap:Body></soap:Envelope>"
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn faults_parse_back() {
    for code in [
        FaultCode::Client,
        FaultCode::Server,
        FaultCode::MustUnderstand,
        FaultCode::VersionMismatch,
    ] {
        let f = FaultReply {
            code,
            relates_to: None,
            fault_string: "bad <thing> & \"more\"",
            ..fault()
        };
        let mut out = Vec::new();
        write_fault(&mut out, &f);
        let back = parse_response(&out).unwrap();
        assert_eq!(back.header.action.unwrap().raw(), code.action().as_bytes());
        assert_eq!(back.header.relates_to, None);
        let ResponseBody::Fault(parsed) = back.body else {
            panic!("{:?}", back.body);
        };
        assert_eq!(parsed.code.raw(), code.qname().as_bytes());
        assert_eq!(parsed.string.decoded().unwrap(), f.fault_string);
        let e = parsed.error.unwrap();
        assert_eq!(e.id.unwrap().raw(), f.error.id.as_bytes());
        assert_eq!(e.code.unwrap().raw(), b"1000");
        assert_eq!(
            e.code_system.unwrap().raw(),
            TOOLKIT_ERROR_CODE_SYSTEM.as_bytes()
        );
        assert_eq!(e.text.unwrap().raw(), b"Invalid message");
        assert_eq!(
            e.diagnostic.unwrap().raw(),
            b"manifest count is 2 but 1 present"
        );
    }
    assert_eq!(fault().code.qname(), "soap:Client");
    assert_eq!(FaultCode::Server.qname(), "soap:Server");
}

fn ack<'s>(errors: &'s [ErrorInfo<'s>]) -> InfAck<'s> {
    InfAck {
        tracking_id: "C9C65E70-C359-484F-98A6-1A7A0D23471D",
        payload_uuid: "E808A967-49B2-498B-AD75-1D7A0F1262D7",
        to: Some("urn:nhs-uk:addressing:ods:XZ901:XY7650987"),
        audit_identity: "urn:nhs-uk:identity:ods:RX8",
        sender: Some("urn:nhs-uk:addressing:ods:RX8"),
        timestamp: "2017-10-05T14:19:27Z",
        tracking_id_ref: "217D1168-7F0B-4F31-A0A9-5B030E545FAE",
        service_ref: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
        result: if errors.is_empty() {
            InfResult::Ok
        } else {
            InfResult::Failure
        },
        errors,
    }
}

#[test]
fn infrastructure_ack_bytes() {
    let mut out = Vec::new();
    write_infrastructure_ack(&mut out, &ack(&[]));
    let expected = "<itk:DistributionEnvelope xmlns:itk=\"urn:nhs-itk:ns:201005\">\
<itk:header service=\"urn:nhs-itk:services:201005:SendInfrastructureAck-v1-0\" \
trackingid=\"C9C65E70-C359-484F-98A6-1A7A0D23471D\">\
<itk:addresslist><itk:address uri=\"urn:nhs-uk:addressing:ods:XZ901:XY7650987\"/></itk:addresslist>\
<itk:auditIdentity><itk:id uri=\"urn:nhs-uk:identity:ods:RX8\"/></itk:auditIdentity>\
<itk:manifest count=\"1\"><itk:manifestitem id=\"uuid_E808A967-49B2-498B-AD75-1D7A0F1262D7\" \
mimetype=\"text/xml\"/></itk:manifest>\
<itk:senderAddress uri=\"urn:nhs-uk:addressing:ods:RX8\"/>\
<itk:handlingSpecification><itk:spec key=\"urn:nhs-itk:ns:201005:interaction\" \
value=\"urn:nhs-itk:interaction:ITKInfrastructureAcknowledgement-v1-0\"/></itk:handlingSpecification>\
</itk:header><itk:payloads count=\"1\"><itk:payload id=\"uuid_E808A967-49B2-498B-AD75-1D7A0F1262D7\">\
<itk:InfrastructureResponse xmlns:itk=\"urn:nhs-itk:ns:201005\" result=\"OK\" \
timestamp=\"2017-10-05T14:19:27Z\" trackingIdRef=\"217D1168-7F0B-4F31-A0A9-5B030E545FAE\" \
serviceRef=\"urn:nhs-itk:services:201005:SendCDADocument-v2-0\">\
<itk:reportingIdentity><itk:id uri=\"urn:nhs-uk:identity:ods:RX8\"/></itk:reportingIdentity>\
<itk:errors/></itk:InfrastructureResponse></itk:payload></itk:payloads></itk:DistributionEnvelope>";
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn infrastructure_nack_in_soap_parses_back_and_passes_strict_checks() {
    let errors = [ErrorInfo {
        id: "0F1E2D3C-4B5A-4968-8776-655443322110",
        code: "DE0006",
        code_system: DE_ERROR_CODE_SYSTEM,
        text: "Distribution Envelope Manifest Processing Error",
        diagnostic: Some("count is 2 but 1 present at byte 1476 <&>"),
    }];
    let a = ack(&errors);
    let header = RequestHeader {
        message_id: "A1B2C3D4-0000-4000-8000-000000000001",
        action: SERVICE_INF_ACK,
        to: "https://endpoint.example.nhs.uk/itk",
        from: Some("https://router.example.nhs.uk/itk"),
        timestamp: Some(SoapTimestamp {
            created: "2017-10-05T14:19:27Z",
            expires: "2017-10-05T14:29:27Z",
        }),
        username: Some("ganglion"),
    };
    let mut out = Vec::new();
    write_soap_request(&mut out, &header, |out| write_infrastructure_ack(out, &a));
    let m = parse(&out).unwrap();
    assert_eq!(m.check_strict(), Ok(()));
    let h = m.soap.unwrap();
    assert_eq!(h.to.unwrap().raw(), header.to.as_bytes());
    assert_eq!(h.from.unwrap().raw(), b"https://router.example.nhs.uk/itk");
    assert_eq!(h.security.unwrap().username.unwrap().raw(), b"ganglion");
    let e = &m.envelope;
    assert_eq!(e.service.raw(), SERVICE_INF_ACK.as_bytes());
    assert!(is_itk_uuid(e.tracking_id.raw()));
    assert_eq!(
        e.interaction().unwrap().raw(),
        INTERACTION_INF_ACK.as_bytes()
    );
    assert_eq!(e.addresses[0].uri.raw(), a.to.unwrap().as_bytes());
    assert_eq!(
        e.sender_address.unwrap().uri.raw(),
        a.sender.unwrap().as_bytes()
    );
    assert_eq!(
        e.audit_identities[0].type_oid, None,
        "default {IDENTITY_TYPE_OID}"
    );
    assert_eq!(
        e.manifest[0].id.raw(),
        b"uuid_E808A967-49B2-498B-AD75-1D7A0F1262D7"
    );
    let r = e.payloads[0].infrastructure_response.as_ref().unwrap();
    assert_eq!(r.outcome(), Some(InfResult::Failure));
    assert_eq!(r.tracking_id_ref.raw(), a.tracking_id_ref.as_bytes());
    assert_eq!(r.service_ref.raw(), a.service_ref.as_bytes());
    assert_eq!(r.timestamp.unwrap().raw(), a.timestamp.as_bytes());
    assert_eq!(
        r.reporting_identities[0].uri.raw(),
        a.audit_identity.as_bytes()
    );
    let err = r.errors[0];
    assert_eq!(err.code.unwrap().raw(), b"DE0006");
    assert_eq!(
        err.code_system.unwrap().raw(),
        DE_ERROR_CODE_SYSTEM.as_bytes()
    );
    assert_eq!(
        err.diagnostic.unwrap().decoded().unwrap(),
        "count is 2 but 1 present at byte 1476 <&>"
    );
}

#[test]
fn ack_without_optional_addresses_still_parses() {
    let a = InfAck {
        to: None,
        sender: None,
        ..ack(&[])
    };
    let mut out = Vec::new();
    write_infrastructure_ack(&mut out, &a);
    let m = parse(&out).unwrap();
    assert!(m.envelope.addresses.is_empty());
    assert_eq!(m.envelope.sender_address, None);
    let r = m.envelope.payloads[0]
        .infrastructure_response
        .as_ref()
        .unwrap();
    assert_eq!(r.outcome(), Some(InfResult::Ok));
    assert!(r.errors.is_empty());
}

#[test]
fn errors_map_to_fault_codes() {
    let v12 = parse(b"<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"/>");
    assert_eq!(v12.unwrap_err().fault_code(), FaultCode::VersionMismatch);
    let junk = parse(b"<x/>").unwrap_err();
    assert_eq!(junk.fault_code(), FaultCode::Client);
    let header = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<soap:Header><l:X xmlns:l=\"urn:l\" soap:mustUnderstand=\"1\"/></soap:Header><soap:Body>\
<itk:DistributionEnvelope xmlns:itk=\"urn:nhs-itk:ns:201005\"><itk:header service=\"urn:s\" \
trackingid=\"T\"><itk:manifest count=\"1\"><itk:manifestitem id=\"a\" mimetype=\"m\"/>\
</itk:manifest></itk:header><itk:payloads count=\"1\"><itk:payload id=\"a\"/></itk:payloads>\
</itk:DistributionEnvelope></soap:Body></soap:Envelope>";
    let m = parse(header.as_bytes()).unwrap();
    let e = m.soap.unwrap().check_strict().unwrap_err();
    assert_eq!(e.fault_code(), FaultCode::MustUnderstand);
}
