//! Builders for what an ITK endpoint sends, appended to a caller's `Vec<u8>`: the synchronous
//! `SimpleMessageResponse`, a SOAP 1.1 Fault with `itk:ToolkitErrorInfo`, an infrastructure
//! ACK/NACK Distribution Envelope, and a SOAP request envelope around any body.
//!
//! Shapes follow the TKW response templates (`response_wrapper_*.txt`, `fault/*.xml`,
//! `infrastructure_{ack,nack}_template.xml.txt`) but compact, without indentation. Identifiers
//! and timestamps are passed in: the codecs read no clock and draw no random numbers. Every
//! string is XML-escaped, so the output is well-formed whatever the caller passes.

use super::error::{ItkError, ItkErrorKind};
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

impl ItkError {
    /// The SOAP fault code a receiver answers a refused request with: VersionMismatch for a
    /// non-SOAP-1.1 envelope, MustUnderstand for an unprocessed mustUnderstand header, and
    /// Client for everything else the sender got wrong (DE faults may instead be reported in an
    /// infrastructure NACK, see [`ItkError::de_code`]).
    pub fn fault_code(&self) -> FaultCode {
        match self.kind {
            ItkErrorKind::SoapVersionMismatch => FaultCode::VersionMismatch,
            ItkErrorKind::NotUnderstood => FaultCode::MustUnderstand,
            _ => FaultCode::Client,
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
mod tests;
