//! Reads a Distribution Envelope element into [`DistributionEnvelope`], enforcing the schema's
//! structure (element order, required attributes, `count`s, manifest ↔ payload ids) and naming
//! the DE error code of the part at fault.
//!
//! What is checked here is what makes the envelope unusable for routing. Shape rules the
//! router may choose to relax (upper-case tracking ids, profile ids present, NCName ids) live in
//! `check.rs`.

use super::check::is_absolute_uri;
use super::cursor::{Close, Cursor, Elem, Ev, Ns};
use super::envelope::{
    parse_bool, Address, DistributionEnvelope, HandlingSpec, ManifestItem, Payload,
};
use super::error::{DeCode, ItkError, ItkErrorKind as K};
use super::response::read_infrastructure_response;
use super::text::Text;
use super::{KEY_ACK_REQUESTED, KEY_BUS_RESPONSE_REQUESTED, KEY_INF_ACK_REQUESTED};

/// Most manifest items, payloads or specs accepted: far above real use, and it keeps the
/// manifest ↔ payload id matching (quadratic, allocation-free) cheap on hostile input.
pub(crate) const MAX_ITEMS: usize = 1024;

/// First capacity of the repeated parts: what `Vec` would pick at the first push, taken
/// directly to skip its growth path (one allocation per part either way).
const SMALL: usize = 4;

struct Header<'a> {
    service: Text<'a>,
    tracking_id: Text<'a>,
    addresses: Vec<Address<'a>>,
    audit_identities: Vec<Address<'a>>,
    sender_address: Option<Address<'a>>,
    handling: Vec<HandlingSpec<'a>>,
    manifest: Option<Vec<ManifestItem<'a>>>,
}

/// Reads the `DistributionEnvelope` element `e` (already opened) to its end.
pub(crate) fn read<'a>(
    c: &mut Cursor<'a>,
    e: &Elem<'a>,
    in_soap: bool,
) -> Result<DistributionEnvelope<'a>, ItkError> {
    c.enter("DistributionEnvelope", Some(DeCode::Envelope));
    let mut header = None;
    let mut payloads = None;
    let close = c.children(e, |c, child| {
        if child.is(Ns::Itk, "header") {
            if header.is_some() {
                return Err(c.fail_de(child.offset, K::DuplicateElement("header"), DeCode::Header));
            }
            if payloads.is_some() {
                return Err(c.fail_de(child.offset, K::OutOfOrder("header"), DeCode::Header));
            }
            header = Some(read_header(c, &child)?);
        } else if child.is(Ns::Itk, "payloads") {
            if payloads.is_some() {
                let kind = K::DuplicateElement("payloads");
                return Err(c.fail_de(child.offset, kind, DeCode::Payloads));
            }
            payloads = Some(read_payloads(c, &child)?);
        } else {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        Ok(())
    })?;
    let Some(h) = header else {
        return Err(c.fail_de(e.offset, K::MissingElement("header"), DeCode::Header));
    };
    let Some(payloads) = payloads else {
        return Err(c.fail_de(
            close.offset,
            K::MissingElement("payloads"),
            DeCode::Payloads,
        ));
    };
    let Some(manifest) = h.manifest else {
        // read_header refuses a header without manifest; keep the types honest anyway.
        return Err(c.fail_de(e.offset, K::MissingElement("manifest"), DeCode::Manifest));
    };
    cross_check(c, &manifest, &payloads)?;
    c.leave();
    Ok(DistributionEnvelope {
        service: h.service,
        tracking_id: h.tracking_id,
        addresses: h.addresses,
        audit_identities: h.audit_identities,
        sender_address: h.sender_address,
        handling: h.handling,
        manifest,
        payloads,
        span: e.offset..close.end,
        in_soap,
    })
}

/// Every manifest item names a payload (DE0007); every payload id is unique and listed (DE0012).
fn cross_check(
    c: &Cursor<'_>,
    manifest: &[ManifestItem<'_>],
    payloads: &[Payload<'_>],
) -> Result<(), ItkError> {
    let item_path = ["header", "manifest", "manifestitem"];
    let payload_path = ["payloads", "payload"];
    for m in manifest {
        if !payloads.iter().any(|p| p.id.raw() == m.id.raw()) {
            let (at, kind) = (m.id.offset(), K::UnknownPayloadRef);
            let de = Some(DeCode::ManifestItem);
            return Err(c.fail_at(at, kind, de, &item_path, Some("id")));
        }
    }
    for (i, p) in payloads.iter().enumerate() {
        let earlier = payloads.get(..i).unwrap_or_default();
        let kind = if earlier.iter().any(|q| q.id.raw() == p.id.raw()) {
            K::DuplicatePayloadId
        } else if !manifest.iter().any(|m| m.id.raw() == p.id.raw()) {
            K::UnlistedPayload
        } else {
            continue;
        };
        let de = Some(DeCode::Payload);
        return Err(c.fail_at(p.id.offset(), kind, de, &payload_path, Some("id")));
    }
    Ok(())
}

/// A required attribute: absent is `MissingAttribute`, present but empty is `InvalidValue`.
fn required<'a>(
    c: &Cursor<'a>,
    e: &Elem<'a>,
    value: Option<Text<'a>>,
    name: &'static str,
) -> Result<Text<'a>, ItkError> {
    match value {
        Some(t) if !t.is_empty() => Ok(t),
        Some(t) => Err(c.fail_attr(t.offset(), name, K::InvalidValue(name))),
        None => Err(c.fail_attr(e.offset, name, K::MissingAttribute(name))),
    }
}

fn read_header<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Header<'a>, ItkError> {
    c.enter("header", Some(DeCode::Header));
    let [service, tracking_id] = c.attrs(e, ["service", "trackingid"])?;
    let mut h = Header {
        service: required(c, e, service, "service")?,
        tracking_id: required(c, e, tracking_id, "trackingid")?,
        addresses: Vec::new(),
        audit_identities: Vec::new(),
        sender_address: None,
        handling: Vec::new(),
        manifest: None,
    };
    // The schema fixes the order: addresslist, auditIdentity, manifest, senderAddress,
    // handlingSpecification; each at most once.
    let mut stage = 0u8;
    let close = c.children(e, |c, child| {
        let (step, name, de) = match (child.ns, child.local()) {
            (Ns::Itk, b"addresslist") => (1, "addresslist", DeCode::AddressList),
            (Ns::Itk, b"auditIdentity") => (2, "auditIdentity", DeCode::AuditIdentity),
            (Ns::Itk, b"manifest") => (3, "manifest", DeCode::Manifest),
            (Ns::Itk, b"senderAddress") => (4, "senderAddress", DeCode::SenderAddress),
            (Ns::Itk, b"handlingSpecification") => {
                (5, "handlingSpecification", DeCode::HandlingSpecification)
            }
            _ => return Err(c.fail(child.offset, K::UnexpectedElement)),
        };
        if step == stage {
            return Err(c.fail_de(child.offset, K::DuplicateElement(name), de));
        }
        if step < stage {
            return Err(c.fail_de(child.offset, K::OutOfOrder(name), de));
        }
        stage = step;
        match step {
            1 => h.addresses = read_address_list(c, &child)?,
            2 => h.audit_identities = read_audit_identity(c, &child)?,
            3 => h.manifest = Some(read_manifest(c, &child)?),
            4 => {
                let sender = read_address(c, &child, "senderAddress", DeCode::SenderAddress)?;
                h.sender_address = Some(sender);
            }
            _ => h.handling = read_handling(c, &child)?,
        }
        Ok(())
    })?;
    if h.manifest.is_none() {
        return Err(c.fail_de(
            close.offset,
            K::MissingElement("manifest"),
            DeCode::Manifest,
        ));
    }
    c.leave();
    Ok(h)
}

/// An attribute-only element with `@uri` (required, an absolute URI) and optional `@type`.
pub(crate) fn read_address<'a>(
    c: &mut Cursor<'a>,
    e: &Elem<'a>,
    name: &'static str,
    de: DeCode,
) -> Result<Address<'a>, ItkError> {
    c.enter(name, Some(de));
    let [uri, type_oid] = c.attrs(e, ["uri", "type"])?;
    let uri = required(c, e, uri, "uri")?;
    if !is_absolute_uri(uri.raw()) {
        return Err(c.fail_attr(uri.offset(), "uri", K::InvalidValue("uri")));
    }
    c.expect_empty(e)?;
    c.leave();
    Ok(Address { uri, type_oid })
}

fn read_address_list<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Vec<Address<'a>>, ItkError> {
    c.enter("addresslist", Some(DeCode::AddressList));
    let mut out = Vec::with_capacity(SMALL);
    c.children(e, |c, child| {
        if !child.is(Ns::Itk, "address") {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        out.push(read_address(c, &child, "address", DeCode::AddressList)?);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(c.fail(e.offset, K::MissingElement("address")));
    }
    c.leave();
    Ok(out)
}

fn read_audit_identity<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Vec<Address<'a>>, ItkError> {
    c.enter("auditIdentity", Some(DeCode::AuditIdentity));
    let mut out = Vec::with_capacity(SMALL);
    c.children(e, |c, child| {
        if !child.is(Ns::Itk, "id") {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        if out.len() == 4 {
            return Err(c.fail(child.offset, K::TooMany { what: "id", max: 4 }));
        }
        out.push(read_address(c, &child, "id", DeCode::Id)?);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(c.fail(e.offset, K::MissingElement("id")));
    }
    c.leave();
    Ok(out)
}

/// xs:integer as written in `count` attributes: optional `+`, digits.
fn parse_count(raw: &[u8]) -> Option<u64> {
    let digits = raw.strip_prefix(b"+").unwrap_or(raw);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Reads `@count` of a container and later compares it with what was found.
fn read_count<'a>(c: &Cursor<'a>, e: &Elem<'a>) -> Result<(u64, Text<'a>), ItkError> {
    let [count] = c.attrs(e, ["count"])?;
    let count = required(c, e, count, "count")?;
    let n = parse_count(count.raw())
        .ok_or_else(|| c.fail_attr(count.offset(), "count", K::InvalidValue("count")))?;
    Ok((n, count))
}

fn check_count(
    c: &Cursor<'_>,
    (declared, at): (u64, Text<'_>),
    what: &'static str,
    actual: usize,
) -> Result<(), ItkError> {
    if u64::try_from(actual).is_ok_and(|a| a == declared) {
        return Ok(());
    }
    let kind = K::CountMismatch {
        what,
        declared,
        actual,
    };
    Err(c.fail_attr(at.offset(), "count", kind))
}

fn read_manifest<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Vec<ManifestItem<'a>>, ItkError> {
    c.enter("manifest", Some(DeCode::Manifest));
    let count = read_count(c, e)?;
    let mut out = Vec::with_capacity(SMALL);
    c.children(e, |c, child| {
        if !child.is(Ns::Itk, "manifestitem") {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        if out.len() == MAX_ITEMS {
            let kind = K::TooMany {
                what: "manifestitem",
                max: MAX_ITEMS,
            };
            return Err(c.fail(child.offset, kind));
        }
        out.push(read_manifest_item(c, &child)?);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(c.fail(e.offset, K::MissingElement("manifestitem")));
    }
    check_count(c, count, "manifestitem", out.len())?;
    c.leave();
    Ok(out)
}

fn read_manifest_item<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<ManifestItem<'a>, ItkError> {
    c.enter("manifestitem", Some(DeCode::ManifestItem));
    let names = [
        "id",
        "mimetype",
        "profileid",
        "base64",
        "compressed",
        "encrypted",
        "metadata",
    ];
    let [id, mime_type, profile_id, base64, compressed, encrypted, metadata] = c.attrs(e, names)?;
    let flag = |v: Option<Text<'a>>, name: &'static str| match v {
        None => Ok(false),
        Some(t) => {
            parse_bool(t.raw()).ok_or_else(|| c.fail_attr(t.offset(), name, K::InvalidValue(name)))
        }
    };
    let item = ManifestItem {
        id: required(c, e, id, "id")?,
        mime_type: required(c, e, mime_type, "mimetype")?,
        profile_id,
        base64: flag(base64, "base64")?,
        compressed: flag(compressed, "compressed")?,
        encrypted: flag(encrypted, "encrypted")?,
        metadata: flag(metadata, "metadata")?,
    };
    c.expect_empty(e)?;
    c.leave();
    Ok(item)
}

fn read_handling<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Vec<HandlingSpec<'a>>, ItkError> {
    c.enter("handlingSpecification", Some(DeCode::HandlingSpecification));
    let mut out = Vec::with_capacity(SMALL);
    c.children(e, |c, child| {
        if !child.is(Ns::Itk, "spec") {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        if out.len() == MAX_ITEMS {
            let kind = K::TooMany {
                what: "spec",
                max: MAX_ITEMS,
            };
            return Err(c.fail(child.offset, kind));
        }
        out.push(read_spec(c, &child)?);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(c.fail(e.offset, K::MissingElement("spec")));
    }
    c.leave();
    Ok(out)
}

fn read_spec<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<HandlingSpec<'a>, ItkError> {
    c.enter("spec", Some(DeCode::Spec));
    let [key, value] = c.attrs(e, ["key", "value"])?;
    let key = required(c, e, key, "key")?;
    // The value may be empty, but it must be there.
    let value =
        value.ok_or_else(|| c.fail_attr(e.offset, "value", K::MissingAttribute("value")))?;
    let boolean = [
        KEY_ACK_REQUESTED,
        KEY_INF_ACK_REQUESTED,
        KEY_BUS_RESPONSE_REQUESTED,
    ]
    .iter()
    .any(|k| key.eq_str(k));
    if boolean && parse_bool(value.raw()).is_none() {
        return Err(c.fail_attr(value.offset(), "value", K::InvalidValue("value")));
    }
    c.expect_empty(e)?;
    c.leave();
    Ok(HandlingSpec { key, value })
}

fn read_payloads<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Vec<Payload<'a>>, ItkError> {
    c.enter("payloads", Some(DeCode::Payloads));
    let count = read_count(c, e)?;
    let mut out = Vec::with_capacity(SMALL);
    c.children(e, |c, child| {
        if !child.is(Ns::Itk, "payload") {
            return Err(c.fail(child.offset, K::UnexpectedElement));
        }
        if out.len() == MAX_ITEMS {
            let kind = K::TooMany {
                what: "payload",
                max: MAX_ITEMS,
            };
            return Err(c.fail(child.offset, kind));
        }
        out.push(read_payload(c, &child)?);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(c.fail(e.offset, K::MissingElement("payload")));
    }
    check_count(c, count, "payload", out.len())?;
    c.leave();
    Ok(out)
}

fn read_payload<'a>(c: &mut Cursor<'a>, e: &Elem<'a>) -> Result<Payload<'a>, ItkError> {
    c.enter("payload", Some(DeCode::Payload));
    let [id, filename] = c.attrs(e, ["id", "filename"])?;
    let id = required(c, e, id, "id")?;
    let mut infrastructure_response = None;
    let close = if e.empty {
        Close {
            offset: e.content,
            end: e.content,
        }
    } else {
        // Payload content is opaque (mixed content, xs:any), except that an ITK
        // InfrastructureResponse as first element is read for ACK correlation.
        let mut first = true;
        loop {
            match c.next_opaque()? {
                Ev::Open(child) => {
                    if first && child.is(Ns::Itk, "InfrastructureResponse") {
                        infrastructure_response = Some(read_infrastructure_response(c, &child)?);
                    } else {
                        c.skip(&child)?;
                    }
                    first = false;
                }
                Ev::Text(_) => first = false,
                Ev::Close(close) => break close,
                Ev::Eof => return Err(c.fail(c.pos(), K::Truncated)),
            }
        }
    };
    let range = e.content..close.offset;
    let content = c.input().get(range.clone()).unwrap_or_default();
    c.leave();
    Ok(Payload {
        id,
        filename,
        range,
        content,
        infrastructure_response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_as_xml_schema_integers() {
        assert_eq!(parse_count(b"1"), Some(1));
        assert_eq!(parse_count(b"+02"), Some(2));
        assert_eq!(parse_count(b""), None);
        assert_eq!(parse_count(b"+"), None);
        assert_eq!(parse_count(b"-1"), None);
        assert_eq!(parse_count(b"1.0"), None);
        assert_eq!(parse_count(b"99999999999999999999999"), None);
    }
}
