//! What `inspect` says about one message: the keys routing reads, as text for people.
use std::borrow::Cow;

use codecs::{hl7v2, itk};
use serde::Serialize;

use super::find::Item;
use crate::charset::Charset;

/// One line of `inspect` output, less the `file` and `index` keys the caller adds.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    Hl7v2(Hl7v2Keys),
    Itk(ItkKeys),
    Error { error: String, offset: usize },
}

/// The MSH values of an HL7v2 message; each the first component, escapes decoded.
#[derive(Debug, Serialize)]
pub struct Hl7v2Keys {
    pub kind: &'static str,
    pub sending_application: Option<String>,
    pub sending_facility: Option<String>,
    pub receiving_application: Option<String>,
    pub receiving_facility: Option<String>,
    pub message_type: Option<String>,
    pub trigger_event: Option<String>,
    pub message_structure: Option<String>,
    pub control_id: Option<String>,
    pub processing_id: Option<String>,
    pub version: Option<String>,
    pub charset: Option<String>,
    pub segments: usize,
    pub segment_ids: Vec<String>,
}

/// The SOAP and Distribution Envelope values of an ITK message; entities resolved.
#[derive(Debug, Serialize)]
pub struct ItkKeys {
    pub kind: &'static str,
    pub service: Option<String>,
    pub tracking_id: Option<String>,
    pub addresses: Vec<String>,
    pub sender: Option<String>,
    pub audit_identities: Vec<String>,
    pub interaction: Option<String>,
    pub ack_requested: Option<bool>,
    pub inf_ack_requested: Option<bool>,
    pub payload_ids: Vec<String>,
    pub message_id: Option<String>,
    pub action: Option<String>,
}

/// Reads `item`, found `offset` bytes into its file.
pub fn report(item: &Item<'_>, offset: usize) -> Report {
    let result = match item {
        Item::Hl7v2(bytes) => hl7v2_keys(bytes).map(Report::Hl7v2),
        Item::Itk(bytes) => itk_keys(bytes).map(Report::Itk),
    };
    result.unwrap_or_else(|(at, error)| Report::Error {
        error,
        offset: offset + at,
    })
}

fn hl7v2_keys(bytes: &[u8]) -> Result<Hl7v2Keys, (usize, String)> {
    let fail = |e: hl7v2::ParseError| (e.offset, e.to_string());
    let message = hl7v2::Message::parse(bytes).map_err(fail)?;
    message.validate().map_err(fail)?;
    let msh = message.msh();
    let seps = message.separators();
    let charset = Charset::from_msh18(msh.charset()).unwrap_or(Charset::Utf8);
    let text = |raw: Option<&[u8]>| {
        raw.map(|raw| {
            let value = hl7v2::unescape(raw, seps);
            charset.decode(&value).into_owned()
        })
    };
    let segment_ids: Vec<String> = message
        .segments()
        .map(|s| String::from_utf8_lossy(s.id()).into_owned())
        .collect();
    Ok(Hl7v2Keys {
        kind: "hl7v2",
        sending_application: text(msh.sending_application()),
        sending_facility: text(msh.sending_facility()),
        receiving_application: text(msh.receiving_application()),
        receiving_facility: text(msh.receiving_facility()),
        message_type: text(msh.message_type()),
        trigger_event: text(msh.trigger_event()),
        message_structure: text(msh.message_structure()),
        control_id: text(msh.control_id()),
        processing_id: text(msh.processing_id()),
        version: text(msh.version()),
        charset: text(msh.charset()),
        segments: segment_ids.len(),
        segment_ids,
    })
}

fn itk_keys(bytes: &[u8]) -> Result<ItkKeys, (usize, String)> {
    // Declared non-UTF-8 XML is rare; transcoding the whole document keeps the codec simple.
    let utf8: Cow<'_, [u8]> = match declared_encoding(bytes) {
        Some(encoding) if encoding != encoding_rs::UTF_8 => {
            Cow::Owned(encoding.decode(bytes).0.into_owned().into_bytes())
        }
        _ => Cow::Borrowed(bytes),
    };
    let fail = |e: itk::ItkError| (e.offset, e.to_string());
    let message = itk::parse(&utf8).map_err(fail)?;
    let text = |t: &itk::Text<'_>| t.decoded().map(Cow::into_owned).map_err(fail);
    let opt = |t: Option<&itk::Text<'_>>| t.map(text).transpose();
    let de = &message.envelope;
    let soap = message.soap.as_ref();
    Ok(ItkKeys {
        kind: "itk",
        service: Some(text(&de.service)?),
        tracking_id: Some(text(&de.tracking_id)?),
        addresses: de
            .addresses
            .iter()
            .map(|a| text(&a.uri))
            .collect::<Result<_, _>>()?,
        sender: opt(de.sender_address.as_ref().map(|a| &a.uri))?,
        audit_identities: de
            .audit_identities
            .iter()
            .map(|a| text(&a.uri))
            .collect::<Result<_, _>>()?,
        interaction: opt(de.interaction().as_ref())?,
        ack_requested: de.ack_requested(),
        inf_ack_requested: de.inf_ack_requested(),
        payload_ids: de
            .payloads
            .iter()
            .map(|p| text(&p.id))
            .collect::<Result<_, _>>()?,
        message_id: opt(soap.and_then(|s| s.message_id.as_ref()))?,
        action: opt(soap.and_then(|s| s.action.as_ref()))?,
    })
}

/// The encoding an XML declaration names, if the document starts with one.
fn declared_encoding(xml: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let decl_end = xml.iter().position(|&b| b == b'>')?;
    let decl = xml.get(..decl_end)?;
    if !decl.starts_with(b"<?xml") {
        return None;
    }
    let at = decl.windows(8).position(|w| w == b"encoding")? + 8;
    let rest = decl.get(at..)?;
    let quote_at = rest.iter().position(|&b| b == b'"' || b == b'\'')?;
    let quote = rest[quote_at];
    let value = rest.get(quote_at + 1..)?;
    let value = &value[..value.iter().position(|&b| b == quote)?];
    encoding_rs::Encoding::for_label(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_declaration_encoding() {
        let latin = br#"<?xml version="1.0" encoding='ISO-8859-1'?><a/>"#;
        assert_eq!(
            declared_encoding(latin),
            Some(encoding_rs::WINDOWS_1252) // the WHATWG label table maps latin-1 there
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(declared_encoding(b"<a encoding=\"x\"/>"), None);
    }
}
