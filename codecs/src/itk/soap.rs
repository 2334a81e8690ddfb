//! The SOAP 1.1 layer of ITK Web Services: the document root, `soap:Header` with WS-Addressing
//! (2005/08, or 2004/08 as Spine uses) and `wsse:Security`, and `soap:Body` dispatch.
//!
//! Unknown header blocks are skipped, but the first one marked `mustUnderstand` is remembered
//! so the router can answer with a MustUnderstand fault. `wsse:Security` is not verified (ITK
//! uses it for a timestamp and a user name, without signatures); its parts are exposed.

use super::cursor::{Cursor, Elem, Ev, Ns};
use super::envelope::DistributionEnvelope;
use super::envelope_reader;
use super::error::{ItkError, ItkErrorKind as K};
use super::response::{read_fault, Fault};
use super::text::Text;

/// Which WS-Addressing namespace the header used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `http://www.w3.org/2005/08/addressing` (WS-Addressing 1.0, ITK Web Services).
    V2005,
    /// `http://schemas.xmlsoap.org/ws/2004/08/addressing` (Spine).
    V2004,
}

/// The SOAP header of an ITK message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoapHeader<'a> {
    /// `wsa:MessageID`.
    pub message_id: Option<Text<'a>>,
    /// `wsa:Action` (ITK: equals the DE service and the HTTP SOAPAction).
    pub action: Option<Text<'a>>,
    /// `wsa:To`.
    pub to: Option<Text<'a>>,
    /// `wsa:From/wsa:Address`.
    pub from: Option<Text<'a>>,
    /// `wsa:ReplyTo/wsa:Address` (the asynchronous pattern).
    pub reply_to: Option<Text<'a>>,
    /// `wsa:FaultTo/wsa:Address`.
    pub fault_to: Option<Text<'a>>,
    /// `wsa:RelatesTo` (responses: the request's MessageID).
    pub relates_to: Option<Text<'a>>,
    /// The WS-Addressing namespace of the first addressing header seen.
    pub addressing: Option<Addressing>,
    /// `wsse:Security`, when present.
    pub security: Option<Security<'a>>,
    /// Qualified name of the first header block marked `mustUnderstand` that is not one of the
    /// above; a receiver must fault with `soap:MustUnderstand`.
    pub not_understood: Option<Text<'a>>,
    /// Offset of `soap:Header` (or of `soap:Envelope` when there is no Header).
    pub offset: usize,
}

/// The parts of `wsse:Security` ITK uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Security<'a> {
    /// `wsse:UsernameToken/wsse:Username`.
    pub username: Option<Text<'a>>,
    /// `wsu:Timestamp/wsu:Created`.
    pub created: Option<Text<'a>>,
    /// `wsu:Timestamp/wsu:Expires`.
    pub expires: Option<Text<'a>>,
    /// Offset of `wsse:Security`.
    pub offset: usize,
}

/// What a SOAP Body held.
pub(crate) enum Body<'a> {
    Envelope(DistributionEnvelope<'a>),
    Simple(Text<'a>),
    Fault(Fault<'a>),
    Other(usize),
    Empty(usize),
}

/// The document: a SOAP envelope (`soap` is `Some`), or a bare Distribution Envelope (`soap`
/// is `None` and `body` is [`Body::Envelope`]).
pub(crate) struct Document<'a> {
    pub soap: Option<SoapHeader<'a>>,
    pub body: Body<'a>,
}

/// Reads the whole document: exactly one root element, and nothing but whitespace, comments
/// and processing instructions around it.
pub(crate) fn read_document<'a>(c: &mut Cursor<'a>) -> Result<Document<'a>, ItkError> {
    let mut root = None;
    loop {
        match c.next()? {
            Ev::Open(e) => {
                if root.is_some() {
                    return Err(c.fail(e.offset, K::ContentOutsideRoot));
                }
                root = Some(if e.is(Ns::Soap11, "Envelope") {
                    read_envelope(c, &e)?
                } else if e.is(Ns::Itk, "DistributionEnvelope") {
                    Document {
                        soap: None,
                        body: Body::Envelope(envelope_reader::read(c, &e, false)?),
                    }
                } else if e.local() == b"Envelope" {
                    // SOAP 1.1 §4.4.1: an Envelope in any other namespace (SOAP 1.2, or a
                    // mistyped URI) gets a VersionMismatch fault.
                    return Err(c.fail(e.offset, K::SoapVersionMismatch));
                } else {
                    return Err(c.fail(e.offset, K::UnexpectedRoot));
                });
            }
            Ev::Text(at) => return Err(c.fail(at, K::ContentOutsideRoot)),
            Ev::Close(close) => {
                let kind = K::Xml("end tag without start tag".into());
                return Err(c.fail(close.offset, kind));
            }
            Ev::Eof => break,
        }
    }
    root.ok_or_else(|| c.fail(c.pos(), K::NoRoot))
}

fn read_envelope<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Document<'a>, ItkError> {
    c.enter("Envelope", None);
    let mut header = None;
    let mut body = None;
    let close = c.children(e, |c, child| {
        if child.is(Ns::Soap11, "Header") {
            if header.is_some() {
                return Err(c.fail(child.offset, K::DuplicateElement("Header")));
            }
            if body.is_some() {
                return Err(c.fail(child.offset, K::OutOfOrder("Header")));
            }
            header = Some(read_header(c, &child)?);
        } else if child.is(Ns::Soap11, "Body") {
            if body.is_some() {
                return Err(c.fail(child.offset, K::DuplicateElement("Body")));
            }
            body = Some(read_body(c, &child)?);
        } else if body.is_some() {
            // SOAP 1.1 §4.3 allows further qualified elements after the Body.
            c.skip(&child)?;
        } else {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        Ok(())
    })?;
    let body = body.ok_or_else(|| c.fail(close.offset, K::MissingElement("Body")))?;
    let header = header.unwrap_or(SoapHeader {
        offset: e.offset,
        ..SoapHeader::default()
    });
    c.leave();
    Ok(Document {
        soap: Some(header),
        body,
    })
}

/// Stores a header value that may occur once.
fn once<'a>(
    c: &Cursor<'a>,
    at: usize,
    slot: &mut Option<Text<'a>>,
    name: &'static str,
    value: Text<'a>,
) -> Result<(), ItkError> {
    if slot.is_some() {
        return Err(c.fail(at, K::DuplicateElement(name)));
    }
    *slot = Some(value);
    Ok(())
}

fn read_header<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<SoapHeader<'a>, ItkError> {
    c.enter("Header", None);
    let mut h = SoapHeader {
        offset: e.offset,
        ..SoapHeader::default()
    };
    c.children(e, |c, child| {
        let wsa = child.ns.is_wsa();
        if wsa && h.addressing.is_none() {
            h.addressing = Some(if child.ns == Ns::Wsa2005 {
                Addressing::V2005
            } else {
                Addressing::V2004
            });
        }
        let at = child.offset;
        match child.local() {
            b"MessageID" if wsa => {
                let t = c.leaf(&child, "MessageID")?;
                once(c, at, &mut h.message_id, "MessageID", t)
            }
            b"Action" if wsa => {
                let t = c.leaf(&child, "Action")?;
                once(c, at, &mut h.action, "Action", t)
            }
            b"To" if wsa => {
                let t = c.leaf(&child, "To")?;
                once(c, at, &mut h.to, "To", t)
            }
            b"RelatesTo" if wsa => {
                let t = c.leaf(&child, "RelatesTo")?;
                once(c, at, &mut h.relates_to, "RelatesTo", t)
            }
            b"From" if wsa => {
                let t = read_endpoint(c, &child, "From")?;
                once(c, at, &mut h.from, "From", t)
            }
            b"ReplyTo" if wsa => {
                let t = read_endpoint(c, &child, "ReplyTo")?;
                once(c, at, &mut h.reply_to, "ReplyTo", t)
            }
            b"FaultTo" if wsa => {
                let t = read_endpoint(c, &child, "FaultTo")?;
                once(c, at, &mut h.fault_to, "FaultTo", t)
            }
            b"Security" if child.ns == Ns::Wsse => {
                if h.security.is_some() {
                    return Err(c.fail(at, K::DuplicateElement("Security")));
                }
                h.security = Some(read_security(c, &child)?);
                Ok(())
            }
            _ => {
                if h.not_understood.is_none() && c.must_understand(&child)? {
                    h.not_understood = Some(c.name_text(&child));
                }
                c.skip(&child).map(drop)
            }
        }
    })?;
    c.leave();
    Ok(h)
}

/// An endpoint reference: its `wsa:Address`; reference parameters and metadata are skipped.
fn read_endpoint<'a>(
    c: &mut Cursor<'a>,
    e: &Elem<'a>,
    name: &'static str,
) -> Result<Text<'a>, ItkError> {
    c.enter(name, None);
    let mut address = None;
    let close = c.children(e, |c, child| {
        if child.ns.is_wsa() && child.local() == b"Address" {
            let t = c.leaf(&child, "Address")?;
            once(c, child.offset, &mut address, "Address", t)
        } else {
            c.skip(&child).map(drop)
        }
    })?;
    let address = address.ok_or_else(|| c.fail(close.offset, K::MissingElement("Address")))?;
    c.leave();
    Ok(address)
}

fn read_security<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Security<'a>, ItkError> {
    c.enter("Security", None);
    let mut s = Security {
        offset: e.offset,
        ..Security::default()
    };
    c.children(e, |c, child| {
        if child.is(Ns::Wsu, "Timestamp") {
            c.enter("Timestamp", None);
            c.children(&child, |c, t| {
                if t.is(Ns::Wsu, "Created") {
                    let v = c.leaf(&t, "Created")?;
                    once(c, t.offset, &mut s.created, "Created", v)
                } else if t.is(Ns::Wsu, "Expires") {
                    let v = c.leaf(&t, "Expires")?;
                    once(c, t.offset, &mut s.expires, "Expires", v)
                } else {
                    c.skip(&t).map(drop)
                }
            })?;
            c.leave();
        } else if child.is(Ns::Wsse, "UsernameToken") {
            c.enter("UsernameToken", None);
            c.children(&child, |c, t| {
                if t.is(Ns::Wsse, "Username") {
                    let v = c.leaf(&t, "Username")?;
                    once(c, t.offset, &mut s.username, "Username", v)
                } else {
                    c.skip(&t).map(drop)
                }
            })?;
            c.leave();
        } else {
            c.skip(&child)?;
        }
        Ok(())
    })?;
    c.leave();
    Ok(s)
}

fn read_body<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Body<'a>, ItkError> {
    c.enter("Body", None);
    let mut body = None;
    c.children(e, |c, child| {
        if body.is_some() {
            // ITK: the Body carries exactly one element.
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        body = Some(if child.is(Ns::Itk, "DistributionEnvelope") {
            Body::Envelope(envelope_reader::read(c, &child, true)?)
        } else if child.is(Ns::Itk, "SimpleMessageResponse") {
            Body::Simple(c.leaf(&child, "SimpleMessageResponse")?)
        } else if child.is(Ns::Soap11, "Fault") {
            Body::Fault(read_fault(c, &child)?)
        } else {
            c.skip(&child)?;
            Body::Other(child.offset)
        });
        Ok(())
    })?;
    c.leave();
    Ok(body.unwrap_or(Body::Empty(e.offset)))
}
