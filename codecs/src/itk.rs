//! NHS ITK 2.x messages: SOAP 1.1 with WS-Addressing around the ITK Distribution Envelope,
//! read without copying, and the responses an endpoint sends.
//!
//! Parts:
//! - [`parse`] reads a request (a SOAP envelope, or a bare Distribution Envelope) into an
//!   [`ItkMessage`]: the [`SoapHeader`] and the [`DistributionEnvelope`] with its service,
//!   tracking id, addresses, audit identities, sender, handling specifications, manifest and
//!   payloads (as byte ranges of the input). [`parse_response`] reads what comes back: a
//!   `SimpleMessageResponse`, a SOAP Fault, or a Distribution Envelope.
//! - [`ItkMessage::check_strict`] and friends (`check.rs`) apply the shape rules parsing lets
//!   through (upper-case tracking id, profile ids, SOAP header completeness).
//! - `build.rs`: [`write_simple_response`], [`write_fault`], [`write_infrastructure_ack`] and
//!   [`write_soap_request`] append to a caller's `Vec<u8>`.
//! - `cursor.rs` and below: the tokens. A small tokenizer reads well-formed input in one pass;
//!   whenever a reading fails, the message is read again with quick-xml's `Reader`, which is
//!   the reference for every error (see `cursor::read`).
//!
//! Invariants:
//! - Every value is a [`Text`]: a slice of the input. Entity and character references are
//!   checked while reading and resolved only when a caller asks ([`Text::decoded`]).
//! - Elements are matched by namespace URI and local name, never by prefix.
//! - `<!DOCTYPE` is refused, so no entity is ever declared or expanded; references other than
//!   the five predefined entities and character references are errors.
//! - Errors ([`ItkError`]) carry a byte offset, an element path and, for faults in the
//!   envelope structure, the ITK DE error code (DE0001–DE0012) for an infrastructure NACK;
//!   [`ItkError::fault_code`] gives the SOAP fault code otherwise.
//! - No panics on any input; no I/O, clock or randomness (ids and times are passed in).

mod build;
mod check;
mod cursor;
mod envelope;
mod envelope_reader;
mod error;
mod response;
mod soap;
mod text;
mod xml_out;

pub use build::{
    write_fault, write_infrastructure_ack, write_simple_response, write_soap_request, ErrorInfo,
    FaultCode, FaultReply, InfAck, RequestHeader, SimpleResponse, SoapTimestamp,
};
pub use check::{is_absolute_uri, is_itk_uuid, is_ncname};
pub use envelope::{Address, DistributionEnvelope, HandlingSpec, ManifestItem, Payload};
pub use error::{DeCode, ItkError, ItkErrorKind};
pub use response::{
    Fault, InfResult, InfrastructureResponse, ResponseBody, SoapResponse, ToolkitError,
};
pub use soap::{Addressing, Security, SoapHeader};
pub use text::Text;

use cursor::Cursor;
use soap::Body;

/// SOAP 1.1 envelope namespace.
pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 envelope namespace, for reference: an `Envelope` in any namespace but SOAP 1.1
/// is refused with [`ItkErrorKind::SoapVersionMismatch`].
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing 1.0 namespace.
pub const NS_WSA_2005: &str = "http://www.w3.org/2005/08/addressing";
/// WS-Addressing 2004/08 namespace (Spine).
pub const NS_WSA_2004: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// ITK namespace (Distribution Envelope, responses, errors).
pub const NS_ITK: &str = "urn:nhs-itk:ns:201005";
/// WS-Security secext namespace.
pub const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security utility namespace.
pub const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

/// Handling-spec key naming the interaction.
pub const KEY_INTERACTION: &str = "urn:nhs-itk:ns:201005:interaction";
/// Handling-spec key asking for a business ACK.
pub const KEY_ACK_REQUESTED: &str = "urn:nhs-itk:ns:201005:ackrequested";
/// Handling-spec key asking for an infrastructure ACK.
pub const KEY_INF_ACK_REQUESTED: &str = "urn:nhs-itk:ns:201005:infackrequested";
/// Handling-spec key asking for a business response.
pub const KEY_BUS_RESPONSE_REQUESTED: &str = "urn:nhs-itk:ns:201005:busresponserequested";

/// Service of infrastructure ACKs.
pub const SERVICE_INF_ACK: &str = "urn:nhs-itk:services:201005:SendInfrastructureAck-v1-0";
/// Interaction of infrastructure ACKs.
pub const INTERACTION_INF_ACK: &str =
    "urn:nhs-itk:interaction:ITKInfrastructureAcknowledgement-v1-0";
/// Service of business ACKs.
pub const SERVICE_BUS_ACK: &str = "urn:nhs-itk:services:201005:SendBusinessAck-v1-0";

/// Default `type` of an address (`addresslist/address`, `senderAddress`).
pub const ADDRESS_TYPE_OID: &str = "2.16.840.1.113883.2.1.3.2.4.18.22";
/// Default `type` of an identity (`auditIdentity/id`).
pub const IDENTITY_TYPE_OID: &str = "2.16.840.1.113883.2.1.3.2.4.18.27";
/// Code system of toolkit error codes (1000, 2100, 2200, 3000).
pub const TOOLKIT_ERROR_CODE_SYSTEM: &str = "2.16.840.1.113883.2.1.3.2.4.17.268";
/// Code system of the DE error codes (DE0001–DE0012).
pub const DE_ERROR_CODE_SYSTEM: &str = "2.16.840.1.113883.2.1.3.2.4.17.516";
/// `wsa:Action` of a SOAP fault.
pub const WSA_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";
/// `wsa:Action` of a MustUnderstand fault.
pub const WSA_MUST_UNDERSTAND_ACTION: &str = "http://www.w3.org/2005/08/addressing/fault";

/// An ITK request: the SOAP header (absent for a bare Distribution Envelope) and the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItkMessage<'a> {
    /// The SOAP header; `None` when the input was a bare Distribution Envelope.
    pub soap: Option<SoapHeader<'a>>,
    /// The Distribution Envelope.
    pub envelope: DistributionEnvelope<'a>,
}

/// Reads an ITK request: a SOAP 1.1 envelope whose Body carries one Distribution Envelope, or
/// a bare Distribution Envelope. The input must be one XML document in UTF-8; every value
/// returned has been checked to be UTF-8 with resolvable references.
pub fn parse(xml: &[u8]) -> Result<ItkMessage<'_>, ItkError> {
    cursor::read(xml, read_request)
}

pub(crate) fn read_request<'a>(c: &mut Cursor<'a>) -> Result<ItkMessage<'a>, ItkError> {
    let doc = soap::read_document(c)?;
    let offset = match doc.body {
        Body::Envelope(envelope) => {
            return Ok(ItkMessage {
                soap: doc.soap,
                envelope,
            })
        }
        Body::Simple(t) => t.offset(),
        Body::Fault(f) => f.code.offset(),
        Body::Other(at) | Body::Empty(at) => at,
    };
    Err(ItkError {
        offset,
        path: "/Envelope/Body".into(),
        kind: ItkErrorKind::NoDistributionEnvelope,
        de: None,
    })
}

/// Reads a SOAP response from an ITK endpoint.
pub fn parse_response(xml: &[u8]) -> Result<SoapResponse<'_>, ItkError> {
    cursor::read(xml, read_response)
}

pub(crate) fn read_response<'a>(c: &mut Cursor<'a>) -> Result<SoapResponse<'a>, ItkError> {
    let doc = soap::read_document(c)?;
    let Some(header) = doc.soap else {
        return Err(ItkError {
            offset: 0,
            path: "/DistributionEnvelope".into(),
            kind: ItkErrorKind::UnexpectedRoot,
            de: None,
        });
    };
    let body = match doc.body {
        Body::Envelope(e) => ResponseBody::Envelope(e),
        Body::Simple(t) => ResponseBody::SimpleMessage(t),
        Body::Fault(f) => ResponseBody::Fault(f),
        Body::Other(offset) => ResponseBody::Other { offset },
        Body::Empty(_) => ResponseBody::Empty,
    };
    Ok(SoapResponse { header, body })
}

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod tests;
