//! Builders for what an ITK endpoint sends, appended to a caller's `Vec<u8>`: the synchronous
//! `SimpleMessageResponse`, a SOAP 1.1 Fault with `itk:ToolkitErrorInfo`, an infrastructure
//! ACK/NACK Distribution Envelope, and a SOAP request envelope around any body.
//!
//! Shapes follow the TKW response templates (`response_wrapper_*.txt`, `fault/*.xml`,
//! `infrastructure_{ack,nack}_template.xml.txt`) but compact, without indentation. Identifiers
//! and timestamps are passed in: the codecs read no clock and draw no random numbers. Every
//! string is XML-escaped, so the output is well-formed whatever the caller passes.

use super::response::InfResult;
use super::xml_out::{attribute, element, text};
use super::{
    INTERACTION_INF_ACK, KEY_INTERACTION, NS_ITK, NS_SOAP11, NS_WSA_2005, NS_WSSE, NS_WSU,
    SERVICE_INF_ACK, TOOLKIT_ERROR_CODE_SYSTEM, WSA_FAULT_ACTION, WSA_MUST_UNDERSTAND_ACTION,
};

const XML_DECL: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// A `wsu:Timestamp` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoapTimestamp<'s> {
    /// `wsu:Created`, e.g. `2017-09-28T14:16:18Z`.
    pub created: &'s str,
    /// `wsu:Expires`.
    pub expires: &'s str,
}

/// The synchronous response to an accepted ITK request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleResponse<'s> {
    /// Our `wsa:MessageID` (an upper-case UUID, possibly `uuid:`-prefixed).
    pub message_id: &'s str,
    /// The request's `wsa:Action`; the response action is this plus `Response`, as TKW
    /// captures show (`…SendCDADocument-v2-0Response`).
    pub request_action: &'s str,
    /// The request's `wsa:MessageID`, written as `wsa:RelatesTo`.
    pub relates_to: &'s str,
    /// The `itk:SimpleMessageResponse` text, usually `OK`.
    pub text: &'s str,
    /// Optional `wsse:Security/wsu:Timestamp`.
    pub timestamp: Option<SoapTimestamp<'s>>,
}

/// SOAP 1.1 fault codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong (bad envelope, unknown service, ...).
    Client,
    /// We failed (store unavailable, timeout downstream, ...).
    Server,
    /// A mustUnderstand header block was not understood.
    MustUnderstand,
    /// The envelope was not SOAP 1.1.
    VersionMismatch,
}

impl FaultCode {
    /// The QName written in `faultcode`.
    pub const fn qname(self) -> &'static str {
        match self {
            Self::Client => "soap:Client",
            Self::Server => "soap:Server",
            Self::MustUnderstand => "soap:MustUnderstand",
            Self::VersionMismatch => "soap:VersionMismatch",
        }
    }

    /// The `faultstring` TKW's templates use for this code.
    pub const fn default_string(self) -> &'static str {
        match self {
            Self::Client => {
                "A client related error has occurred, see detail element for further information"
            }
            Self::Server => {
                "A Server related error has occurred, see detail element for further information"
            }
            Self::MustUnderstand => "SOAP MustUnderstand error thrown.",
            Self::VersionMismatch => "SOAP VersionMismatch error thrown.",
        }
    }

    /// The `wsa:Action` of a fault with this code.
    pub const fn action(self) -> &'static str {
        match self {
            Self::MustUnderstand => WSA_MUST_UNDERSTAND_ACTION,
            _ => WSA_FAULT_ACTION,
        }
    }
}

/// A ToolkitErrorInfoStruct to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo<'s> {
    /// `ErrorID`: a fresh UUID.
    pub id: &'s str,
    /// `ErrorCode`, e.g. `1000`, or a DE code such as `DE0006`.
    pub code: &'s str,
    /// `ErrorCode/@codeSystem`: [`TOOLKIT_ERROR_CODE_SYSTEM`] for toolkit codes,
    /// [`super::DE_ERROR_CODE_SYSTEM`] for DE codes.
    pub code_system: &'s str,
    /// `ErrorText`.
    pub text: &'s str,
    /// `ErrorDiagnosticText`.
    pub diagnostic: Option<&'s str>,
}

impl<'s> ErrorInfo<'s> {
    /// A toolkit error (code system 2.16.840.1.113883.2.1.3.2.4.17.268) without diagnostics.
    pub const fn toolkit(id: &'s str, code: &'s str, text: &'s str) -> Self {
        Self {
            id,
            code,
            code_system: TOOLKIT_ERROR_CODE_SYSTEM,
            text,
            diagnostic: None,
        }
    }
}

/// A SOAP fault response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultReply<'s> {
    /// Our `wsa:MessageID`.
    pub message_id: &'s str,
    /// The request's `wsa:MessageID`, when it could be read.
    pub relates_to: Option<&'s str>,
    /// `faultcode`.
    pub code: FaultCode,
    /// `faultstring` (see [`FaultCode::default_string`]).
    pub fault_string: &'s str,
    /// `detail/itk:ToolkitErrorInfo`.
    pub error: ErrorInfo<'s>,
}

/// An infrastructure ACK (result OK) or NACK (Failure, with errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfAck<'s> {
    /// Tracking id of the ACK envelope itself (a fresh upper-case UUID).
    pub tracking_id: &'s str,
    /// UUID of the ACK payload; written as `uuid_<UUID>` so that it is a valid xs:ID.
    pub payload_uuid: &'s str,
    /// Where the ACK goes: the acknowledged envelope's sender address, if it had one.
    pub to: Option<&'s str>,
    /// Our identity, for `auditIdentity` and `reportingIdentity`.
    pub audit_identity: &'s str,
    /// Our address, for `senderAddress`.
    pub sender: Option<&'s str>,
    /// `@timestamp` of the response (xs:dateTime).
    pub timestamp: &'s str,
    /// The acknowledged envelope's tracking id.
    pub tracking_id_ref: &'s str,
    /// The acknowledged envelope's service.
    pub service_ref: &'s str,
    /// OK, Failure or Warning.
    pub result: InfResult,
    /// `errors/errorInfo` (empty for an ACK).
    pub errors: &'s [ErrorInfo<'s>],
}

/// The SOAP header of a request we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader<'s> {
    /// `wsa:MessageID`.
    pub message_id: &'s str,
    /// `wsa:Action` (the DE service).
    pub action: &'s str,
    /// `wsa:To` (the endpoint URL).
    pub to: &'s str,
    /// `wsa:From/wsa:Address`.
    pub from: Option<&'s str>,
    /// `wsse:Security/wsu:Timestamp`.
    pub timestamp: Option<SoapTimestamp<'s>>,
    /// `wsse:Security/wsse:UsernameToken/wsse:Username`.
    pub username: Option<&'s str>,
}

fn envelope_open(out: &mut Vec<u8>) {
    out.extend_from_slice(XML_DECL);
    out.extend_from_slice(b"<soap:Envelope");
    attribute(out, "xmlns:soap", NS_SOAP11);
    attribute(out, "xmlns:wsa", NS_WSA_2005);
    out.extend_from_slice(b"><soap:Header>");
}

fn body_open(out: &mut Vec<u8>) {
    out.extend_from_slice(b"</soap:Header><soap:Body>");
}

fn envelope_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b"</soap:Body></soap:Envelope>");
}

fn security(out: &mut Vec<u8>, timestamp: Option<SoapTimestamp<'_>>, username: Option<&str>) {
    if timestamp.is_none() && username.is_none() {
        return;
    }
    out.extend_from_slice(b"<wsse:Security");
    attribute(out, "xmlns:wsse", NS_WSSE);
    out.push(b'>');
    if let Some(ts) = timestamp {
        out.extend_from_slice(b"<wsu:Timestamp");
        attribute(out, "xmlns:wsu", NS_WSU);
        out.push(b'>');
        element(out, "wsu:Created", ts.created);
        element(out, "wsu:Expires", ts.expires);
        out.extend_from_slice(b"</wsu:Timestamp>");
    }
    if let Some(user) = username {
        out.extend_from_slice(b"<wsse:UsernameToken>");
        element(out, "wsse:Username", user);
        out.extend_from_slice(b"</wsse:UsernameToken>");
    }
    out.extend_from_slice(b"</wsse:Security>");
}

fn error_info(out: &mut Vec<u8>, tag: &str, e: &ErrorInfo<'_>) {
    out.push(b'<');
    out.extend_from_slice(tag.as_bytes());
    out.push(b'>');
    error_info_fields(out, e);
    out.extend_from_slice(b"</");
    out.extend_from_slice(tag.as_bytes());
    out.push(b'>');
}

fn error_info_fields(out: &mut Vec<u8>, e: &ErrorInfo<'_>) {
    element(out, "itk:ErrorID", e.id);
    out.extend_from_slice(b"<itk:ErrorCode");
    attribute(out, "codeSystem", e.code_system);
    out.push(b'>');
    text(out, e.code);
    out.extend_from_slice(b"</itk:ErrorCode>");
    element(out, "itk:ErrorText", e.text);
    if let Some(d) = e.diagnostic {
        element(out, "itk:ErrorDiagnosticText", d);
    }
}

/// Appends the SOAP response carrying `itk:SimpleMessageResponse`.
pub fn write_simple_response(out: &mut Vec<u8>, r: &SimpleResponse<'_>) {
    envelope_open(out);
    element(out, "wsa:MessageID", r.message_id);
    out.extend_from_slice(b"<wsa:Action>");
    text(out, r.request_action);
    out.extend_from_slice(b"Response</wsa:Action>");
    element(out, "wsa:RelatesTo", r.relates_to);
    security(out, r.timestamp, None);
    body_open(out);
    out.extend_from_slice(b"<itk:SimpleMessageResponse");
    attribute(out, "xmlns:itk", NS_ITK);
    out.push(b'>');
    text(out, r.text);
    out.extend_from_slice(b"</itk:SimpleMessageResponse>");
    envelope_close(out);
}

/// Appends a SOAP 1.1 Fault response with `detail/itk:ToolkitErrorInfo`.
pub fn write_fault(out: &mut Vec<u8>, f: &FaultReply<'_>) {
    envelope_open(out);
    element(out, "wsa:MessageID", f.message_id);
    element(out, "wsa:Action", f.code.action());
    if let Some(r) = f.relates_to {
        element(out, "wsa:RelatesTo", r);
    }
    body_open(out);
    out.extend_from_slice(b"<soap:Fault>");
    element(out, "faultcode", f.code.qname());
    element(out, "faultstring", f.fault_string);
    out.extend_from_slice(b"<detail><itk:ToolkitErrorInfo");
    attribute(out, "xmlns:itk", NS_ITK);
    out.push(b'>');
    error_info_fields(out, &f.error);
    out.extend_from_slice(b"</itk:ToolkitErrorInfo></detail></soap:Fault>");
    envelope_close(out);
}

/// Appends an infrastructure ACK Distribution Envelope (service
/// `SendInfrastructureAck-v1-0`, interaction `ITKInfrastructureAcknowledgement-v1-0`, payload
/// `itk:InfrastructureResponse`). Wrap it with [`write_soap_request`] to send it over ITK Web
/// Services.
pub fn write_infrastructure_ack(out: &mut Vec<u8>, a: &InfAck<'_>) {
    out.extend_from_slice(b"<itk:DistributionEnvelope");
    attribute(out, "xmlns:itk", NS_ITK);
    out.extend_from_slice(b"><itk:header");
    attribute(out, "service", SERVICE_INF_ACK);
    attribute(out, "trackingid", a.tracking_id);
    out.push(b'>');
    if let Some(to) = a.to {
        out.extend_from_slice(b"<itk:addresslist><itk:address");
        attribute(out, "uri", to);
        out.extend_from_slice(b"/></itk:addresslist>");
    }
    out.extend_from_slice(b"<itk:auditIdentity><itk:id");
    attribute(out, "uri", a.audit_identity);
    out.extend_from_slice(b"/></itk:auditIdentity>");
    out.extend_from_slice(b"<itk:manifest count=\"1\"><itk:manifestitem id=\"uuid_");
    super::xml_out::attr(out, a.payload_uuid);
    out.extend_from_slice(b"\" mimetype=\"text/xml\"/></itk:manifest>");
    if let Some(sender) = a.sender {
        out.extend_from_slice(b"<itk:senderAddress");
        attribute(out, "uri", sender);
        out.extend_from_slice(b"/>");
    }
    out.extend_from_slice(b"<itk:handlingSpecification><itk:spec");
    attribute(out, "key", KEY_INTERACTION);
    attribute(out, "value", INTERACTION_INF_ACK);
    out.extend_from_slice(b"/></itk:handlingSpecification></itk:header>");
    out.extend_from_slice(b"<itk:payloads count=\"1\"><itk:payload id=\"uuid_");
    super::xml_out::attr(out, a.payload_uuid);
    out.extend_from_slice(b"\"><itk:InfrastructureResponse");
    attribute(out, "xmlns:itk", NS_ITK);
    attribute(out, "result", a.result.as_str());
    attribute(out, "timestamp", a.timestamp);
    attribute(out, "trackingIdRef", a.tracking_id_ref);
    attribute(out, "serviceRef", a.service_ref);
    out.extend_from_slice(b"><itk:reportingIdentity><itk:id");
    attribute(out, "uri", a.audit_identity);
    out.extend_from_slice(b"/></itk:reportingIdentity>");
    if a.errors.is_empty() {
        out.extend_from_slice(b"<itk:errors/>");
    } else {
        out.extend_from_slice(b"<itk:errors>");
        for e in a.errors {
            error_info(out, "itk:errorInfo", e);
        }
        out.extend_from_slice(b"</itk:errors>");
    }
    out.extend_from_slice(
        b"</itk:InfrastructureResponse></itk:payload></itk:payloads></itk:DistributionEnvelope>",
    );
}

/// Appends a SOAP request envelope with WS-Addressing (and optional security) headers, and
/// lets `body` write the Body content (e.g. [`write_infrastructure_ack`], or a Distribution
/// Envelope being forwarded).
pub fn write_soap_request(
    out: &mut Vec<u8>,
    h: &RequestHeader<'_>,
    body: impl FnOnce(&mut Vec<u8>),
) {
    envelope_open(out);
    element(out, "wsa:MessageID", h.message_id);
    element(out, "wsa:Action", h.action);
    element(out, "wsa:To", h.to);
    if let Some(from) = h.from {
        out.extend_from_slice(b"<wsa:From>");
        element(out, "wsa:Address", from);
        out.extend_from_slice(b"</wsa:From>");
    }
    security(out, h.timestamp, h.username);
    body_open(out);
    body(out);
    envelope_close(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itk::{
        is_itk_uuid, parse, parse_response, ResponseBody, DE_ERROR_CODE_SYSTEM, IDENTITY_TYPE_OID,
    };

    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    const ENV_OPEN: &str =
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
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
}
