//! The ITK Distribution Envelope (`urn:nhs-itk:ns:201005`, schema
//! `distributionEnvelope-v2-0.xsd`) as read: every value a [`Text`] slice of the input, payload
//! content as a byte range. A handful of small `Vec`s per message hold the repeated parts.

use super::response::InfrastructureResponse;
use super::text::Text;
use super::{
    KEY_ACK_REQUESTED, KEY_BUS_RESPONSE_REQUESTED, KEY_INF_ACK_REQUESTED, KEY_INTERACTION,
};
use std::ops::Range;

/// A Distribution Envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionEnvelope<'a> {
    /// `header/@service`, e.g. `urn:nhs-itk:services:201005:SendCDADocument-v2-0`.
    pub service: Text<'a>,
    /// `header/@trackingid`; the schema wants an upper-case UUID, see
    /// [`DistributionEnvelope::check_tracking_id`].
    pub tracking_id: Text<'a>,
    /// `addresslist/address`, in order (empty when the optional list is absent).
    pub addresses: Vec<Address<'a>>,
    /// `auditIdentity/id` (one to four when present).
    pub audit_identities: Vec<Address<'a>>,
    /// `senderAddress`.
    pub sender_address: Option<Address<'a>>,
    /// `handlingSpecification/spec`, in order.
    pub handling: Vec<HandlingSpec<'a>>,
    /// `manifest/manifestitem`, in order (at least one).
    pub manifest: Vec<ManifestItem<'a>>,
    /// `payloads/payload`, in order (at least one, each listed in the manifest).
    pub payloads: Vec<Payload<'a>>,
    /// Byte range of the whole `DistributionEnvelope` element in the input.
    pub span: Range<usize>,
    /// Whether the envelope sat in a SOAP Body (for error paths of later checks).
    pub(crate) in_soap: bool,
}

/// An address or identity: `uri` plus the optional `type` OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address<'a> {
    /// `@uri`, e.g. `urn:nhs-uk:addressing:ods:RX8`.
    pub uri: Text<'a>,
    /// `@type`; absent means the schema default ([`super::ADDRESS_TYPE_OID`] for addresses,
    /// [`super::IDENTITY_TYPE_OID`] for identities).
    pub type_oid: Option<Text<'a>>,
}

/// One `handlingSpecification/spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlingSpec<'a> {
    /// `@key`, e.g. `urn:nhs-itk:ns:201005:interaction`.
    pub key: Text<'a>,
    /// `@value`.
    pub value: Text<'a>,
}

/// One `manifest/manifestitem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestItem<'a> {
    /// `@id`: the id of the payload it describes.
    pub id: Text<'a>,
    /// `@mimetype`.
    pub mime_type: Text<'a>,
    /// `@profileid`, e.g. `urn:nhs-en:profile:nonCodedCDADocument-v2-0`.
    pub profile_id: Option<Text<'a>>,
    /// `@base64` (default false).
    pub base64: bool,
    /// `@compressed` (default false).
    pub compressed: bool,
    /// `@encrypted` (default false).
    pub encrypted: bool,
    /// `@metadata` (default false).
    pub metadata: bool,
}

/// One `payloads/payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<'a> {
    /// `@id`.
    pub id: Text<'a>,
    /// `@filename`.
    pub filename: Option<Text<'a>>,
    /// Byte range of the payload content (between the start and end tags) in the input.
    pub range: Range<usize>,
    /// The payload content, as it is in the input (`input[range]`).
    pub content: &'a [u8],
    /// The payload read as an `itk:InfrastructureResponse`, when that is its first element
    /// (infrastructure ACKs and NACKs), so the router can correlate it by `trackingIdRef`.
    pub infrastructure_response: Option<InfrastructureResponse<'a>>,
}

impl<'a> DistributionEnvelope<'a> {
    /// Value of the first handling spec whose key equals `key`.
    pub fn spec(&self, key: &str) -> Option<Text<'a>> {
        self.handling
            .iter()
            .find(|s| s.key.eq_str(key))
            .map(|s| s.value)
    }

    /// The `urn:nhs-itk:ns:201005:interaction` handling spec.
    pub fn interaction(&self) -> Option<Text<'a>> {
        self.spec(KEY_INTERACTION)
    }

    /// `urn:nhs-itk:ns:201005:ackrequested` (a business ACK is wanted). `None` when absent.
    pub fn ack_requested(&self) -> Option<bool> {
        self.spec(KEY_ACK_REQUESTED)
            .and_then(|t| parse_bool(t.raw()))
    }

    /// `urn:nhs-itk:ns:201005:infackrequested` (an infrastructure ACK is wanted).
    pub fn inf_ack_requested(&self) -> Option<bool> {
        self.spec(KEY_INF_ACK_REQUESTED)
            .and_then(|t| parse_bool(t.raw()))
    }

    /// `urn:nhs-itk:ns:201005:busresponserequested`.
    pub fn bus_response_requested(&self) -> Option<bool> {
        self.spec(KEY_BUS_RESPONSE_REQUESTED)
            .and_then(|t| parse_bool(t.raw()))
    }

    /// The profile ids of the manifest items that have one, in manifest order.
    pub fn profile_ids(&self) -> impl Iterator<Item = Text<'a>> + '_ {
        self.manifest.iter().filter_map(|m| m.profile_id)
    }

    /// The payload with id `id`.
    pub fn payload(&self, id: &[u8]) -> Option<&Payload<'a>> {
        self.payloads.iter().find(|p| p.id.raw() == id)
    }

    /// The manifest item describing `payload`.
    pub fn manifest_item(&self, payload: &Payload<'_>) -> Option<&ManifestItem<'a>> {
        self.manifest
            .iter()
            .find(|m| m.id.raw() == payload.id.raw())
    }
}

/// xs:boolean: `true`, `false`, `1`, `0`.
pub(crate) fn parse_bool(raw: &[u8]) -> Option<bool> {
    match raw {
        b"true" | b"1" => Some(true),
        b"false" | b"0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_xml_schema() {
        assert_eq!(parse_bool(b"true"), Some(true));
        assert_eq!(parse_bool(b"1"), Some(true));
        assert_eq!(parse_bool(b"false"), Some(false));
        assert_eq!(parse_bool(b"0"), Some(false));
        assert_eq!(parse_bool(b"TRUE"), None);
        assert_eq!(parse_bool(b"yes"), None);
    }
}
