//! What comes back from an ITK endpoint: the synchronous `itk:SimpleMessageResponse`, a SOAP
//! 1.1 Fault with `itk:ToolkitErrorInfo`, and the `itk:InfrastructureResponse` carried as the
//! payload of an infrastructure ACK (schema `GenericInfrastructureResponse-v1-0.xsd`).
//!
//! These readers are lenient about optional parts (ciao-generated ACKs omit `ErrorID`, TKW's
//! examples leave them empty) and strict only about what correlation needs.

use super::cursor::{Cursor, Elem, Ns};
use super::envelope::{Address, DistributionEnvelope};
use super::envelope_reader::read_address;
use super::error::{DeCode, ItkError, ItkErrorKind as K};
use super::soap::SoapHeader;
use super::text::Text;

/// A parsed SOAP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapResponse<'a> {
    /// WS-Addressing and security headers (all `None` when the envelope has no Header).
    pub header: SoapHeader<'a>,
    /// What the Body carries.
    pub body: ResponseBody<'a>,
}

/// The Body of a SOAP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody<'a> {
    /// `itk:SimpleMessageResponse` text (TKW answers `OK` or `TEST_HARNESS_ID:<trackingid>`).
    SimpleMessage(Text<'a>),
    /// A SOAP Fault.
    Fault(Fault<'a>),
    /// A Distribution Envelope (synchronous query services answer with one).
    Envelope(DistributionEnvelope<'a>),
    /// Some other element, at this offset.
    Other {
        /// Offset of the element.
        offset: usize,
    },
    /// An empty Body.
    Empty,
}

/// A SOAP 1.1 Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault<'a> {
    /// `faultcode`, a QName such as `soap:Client`.
    pub code: Text<'a>,
    /// `faultstring`.
    pub string: Text<'a>,
    /// `faultactor`.
    pub actor: Option<Text<'a>>,
    /// `detail/itk:ToolkitErrorInfo`.
    pub error: Option<ToolkitError<'a>>,
}

impl<'a> Fault<'a> {
    /// The fault code without its prefix: `Client`, `Server`, `MustUnderstand`,
    /// `VersionMismatch`.
    pub fn code_local(&self) -> &'a [u8] {
        let raw = self.code.raw();
        raw.iter()
            .rposition(|&b| b == b':')
            .and_then(|i| raw.get(i + 1..))
            .unwrap_or(raw)
    }
}

/// An `itk:ToolkitErrorInfo` / `itk:errorInfo` (ToolkitErrorInfoStruct).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolkitError<'a> {
    /// `ErrorID` (a UUID, or a TKW trigger such as `Client1000`).
    pub id: Option<Text<'a>>,
    /// `ErrorCode` (e.g. `1000`, `2100`, `2200`, `3000`, or a DE code).
    pub code: Option<Text<'a>>,
    /// `ErrorCode/@codeSystem`.
    pub code_system: Option<Text<'a>>,
    /// `ErrorText`.
    pub text: Option<Text<'a>>,
    /// `ErrorDiagnosticText`.
    pub diagnostic: Option<Text<'a>>,
}

/// The `result` of an infrastructure response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfResult {
    /// `OK`: the envelope was accepted.
    Ok,
    /// `Failure`: it was refused; `errors` says why.
    Failure,
    /// `Warning`.
    Warning,
}

impl InfResult {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Failure => "Failure",
            Self::Warning => "Warning",
        }
    }
}

/// An `itk:InfrastructureResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfrastructureResponse<'a> {
    /// `@result` as written (see [`Self::outcome`]).
    pub result: Text<'a>,
    /// `@timestamp`.
    pub timestamp: Option<Text<'a>>,
    /// `@trackingIdRef`: the tracking id of the envelope being acknowledged.
    pub tracking_id_ref: Text<'a>,
    /// `@serviceRef`: the service of the envelope being acknowledged.
    pub service_ref: Text<'a>,
    /// `reportingIdentity/id`.
    pub reporting_identities: Vec<Address<'a>>,
    /// `errors/errorInfo`.
    pub errors: Vec<ToolkitError<'a>>,
}

impl InfrastructureResponse<'_> {
    /// `@result` when it is one of the schema's values.
    pub fn outcome(&self) -> Option<InfResult> {
        match self.result.raw() {
            b"OK" => Some(InfResult::Ok),
            b"Failure" => Some(InfResult::Failure),
            b"Warning" => Some(InfResult::Warning),
            _ => None,
        }
    }
}

/// SOAP 1.1 puts the Fault's children in no namespace; some toolkits qualify them anyway.
fn is_fault_child(e: &Elem<'_>, local: &str) -> bool {
    matches!(e.ns, Ns::None | Ns::Soap11) && e.local() == local.as_bytes()
}

pub(crate) fn read_fault<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Fault<'a>, ItkError> {
    c.enter("Fault", None);
    let (mut code, mut string, mut actor, mut error) = (None, None, None, None);
    let close = c.children(e, |c, child| {
        if is_fault_child(&child, "faultcode") {
            code = Some(c.leaf(&child, "faultcode")?);
        } else if is_fault_child(&child, "faultstring") {
            string = Some(c.leaf(&child, "faultstring")?);
        } else if is_fault_child(&child, "faultactor") {
            actor = Some(c.leaf(&child, "faultactor")?);
        } else if is_fault_child(&child, "detail") {
            c.enter("detail", None);
            c.children(&child, |c, d| {
                if error.is_none() && d.is(Ns::Itk, "ToolkitErrorInfo") {
                    error = Some(read_toolkit_error(c, &d, "ToolkitErrorInfo")?);
                } else {
                    c.skip(&d)?;
                }
                Ok(())
            })?;
            c.leave();
        } else {
            c.skip(&child)?;
        }
        Ok(())
    })?;
    let code = code.ok_or_else(|| c.fail(close.offset, K::MissingElement("faultcode")))?;
    let string = string.ok_or_else(|| c.fail(close.offset, K::MissingElement("faultstring")))?;
    c.leave();
    Ok(Fault {
        code,
        string,
        actor,
        error,
    })
}

fn read_toolkit_error<'a>(
    c: &mut Cursor<'a>,
    e: &Elem<'a>,
    name: &'static str,
) -> Result<ToolkitError<'a>, ItkError> {
    c.enter(name, None);
    let mut out = ToolkitError::default();
    c.children(e, |c, child| {
        if child.ns != Ns::Itk {
            c.skip(&child)?;
            return Ok(());
        }
        match child.local() {
            b"ErrorID" => out.id = Some(c.leaf(&child, "ErrorID")?),
            b"ErrorCode" => {
                c.enter("ErrorCode", None);
                let [system] = c.attrs(&child, ["codeSystem"])?;
                out.code_system = system;
                out.code = Some(c.text(&child)?);
                c.leave();
            }
            b"ErrorText" => out.text = Some(c.leaf(&child, "ErrorText")?),
            b"ErrorDiagnosticText" => {
                out.diagnostic = Some(c.leaf(&child, "ErrorDiagnosticText")?);
            }
            _ => {
                c.skip(&child)?;
            }
        }
        Ok(())
    })?;
    c.leave();
    Ok(out)
}

/// Reads an `itk:InfrastructureResponse` found as the first element of a payload.
pub(crate) fn read_infrastructure_response<'a>(
    c: &mut Cursor<'a>,
    e: &Elem<'a>,
) -> Result<InfrastructureResponse<'a>, ItkError> {
    c.enter("InfrastructureResponse", Some(DeCode::Payload));
    let [result, timestamp, tracking_id_ref, service_ref] =
        c.attrs(e, ["result", "timestamp", "trackingIdRef", "serviceRef"])?;
    let need = |v: Option<Text<'a>>, name: &'static str| {
        v.ok_or_else(|| c.fail_attr(e.offset, name, K::MissingAttribute(name)))
    };
    let result = need(result, "result")?;
    let tracking_id_ref = need(tracking_id_ref, "trackingIdRef")?;
    let service_ref = need(service_ref, "serviceRef")?;
    let mut reporting_identities = Vec::new();
    let mut errors = Vec::new();
    c.children(e, |c, child| {
        if child.is(Ns::Itk, "reportingIdentity") {
            c.enter("reportingIdentity", None);
            c.children(&child, |c, id| {
                if id.is(Ns::Itk, "id") {
                    reporting_identities.push(read_address(c, &id, "id", DeCode::Payload)?);
                } else {
                    c.skip(&id)?;
                }
                Ok(())
            })?;
            c.leave();
        } else if child.is(Ns::Itk, "errors") {
            c.enter("errors", None);
            c.children(&child, |c, info| {
                if info.is(Ns::Itk, "errorInfo") {
                    errors.push(read_toolkit_error(c, &info, "errorInfo")?);
                } else {
                    c.skip(&info)?;
                }
                Ok(())
            })?;
            c.leave();
        } else {
            c.skip(&child)?;
        }
        Ok(())
    })?;
    c.leave();
    Ok(InfrastructureResponse {
        result,
        timestamp,
        tracking_id_ref,
        service_ref,
        reporting_identities,
        errors,
    })
}
