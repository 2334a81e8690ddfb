//! Checks beyond what routing needs, which the router may choose to enforce: the schema's
//! upper-case UUID for tracking ids, ids that are XML NCNames, a profile id on every manifest
//! item (separately: a receiver's policy), and the ITK Web Services rules on the SOAP header (MessageID, Action and To present,
//! To an absolute URI, Action equal to the DE service, every mustUnderstand header understood,
//! a complete `wsse:Security` when one is sent). Parsing never fails for these, because real
//! senders get some of them wrong and refusing is a policy decision.

use super::envelope::DistributionEnvelope;
use super::error::{DeCode, ItkError, ItkErrorKind as K};
use super::soap::SoapHeader;
use super::text::Text;
use super::ItkMessage;

/// The schema's `itk:uuid`: `[A-F0-9]{8}-[A-F0-9]{4}-[A-F0-9]{4}-[A-F0-9]{4}-[A-F0-9]{12}`,
/// upper case only.
pub fn is_itk_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'A'..=b'F').contains(&c),
        })
}

/// An absolute URI in the sense the router needs: a scheme (`ALPHA *(ALPHA / DIGIT / + / - /
/// .)`), a colon, and a non-empty rest without whitespace, controls or characters RFC 3986
/// never allows (`<>"{}|\^` and backquote).
pub fn is_absolute_uri(b: &[u8]) -> bool {
    let Some(colon) = b.iter().position(|&c| c == b':') else {
        return false;
    };
    let (scheme, rest) = (
        b.get(..colon).unwrap_or_default(),
        b.get(colon + 1..).unwrap_or_default(),
    );
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    scheme_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|&c| URI_REST.get(usize::from(c)) == Some(&true))
}

/// Bytes an absolute URI may hold after its scheme: no whitespace or controls, none of
/// `<>"{}|\^` and backquote. A table, as this runs on every address of every message.
#[allow(clippy::indexing_slicing)] // evaluated at compile time: a slip fails the build
const URI_REST: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0x21;
    while c < 256 {
        t[c] = c != 0x7f
            && !matches!(
                c as u8,
                b'<' | b'>' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'`'
            );
        c += 1;
    }
    t
};

/// An XML NCName, as xs:ID and xs:IDREF need (ASCII rules; any non-ASCII byte is accepted as
/// a name character).
pub fn is_ncname(b: &[u8]) -> bool {
    let start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80;
    b.first().is_some_and(|&c| start(c))
        && b.iter()
            .all(|&c| start(c) || c.is_ascii_digit() || c == b'-' || c == b'.')
}

impl DistributionEnvelope<'_> {
    fn header_path(&self) -> &'static str {
        if self.in_soap {
            "/Envelope/Body/DistributionEnvelope/header"
        } else {
            "/DistributionEnvelope/header"
        }
    }

    fn payloads_path(&self) -> &'static str {
        if self.in_soap {
            "/Envelope/Body/DistributionEnvelope/payloads"
        } else {
            "/DistributionEnvelope/payloads"
        }
    }

    fn error(&self, at: &Text<'_>, path: String, kind: K, de: DeCode) -> ItkError {
        ItkError {
            offset: at.offset(),
            path,
            kind,
            de: Some(de),
        }
    }

    /// The tracking id is an upper-case UUID, as the schema requires (DE0002).
    pub fn check_tracking_id(&self) -> Result<(), ItkError> {
        if is_itk_uuid(self.tracking_id.raw()) {
            return Ok(());
        }
        let path = format!("{}/@trackingid", self.header_path());
        let kind = K::InvalidValue("trackingid");
        Err(self.error(&self.tracking_id, path, kind, DeCode::Header))
    }

    /// Every manifest item names a non-empty profile id (DE0007). The schema makes it optional,
    /// but receivers of clinical documents refuse items without one.
    pub fn check_profile_ids(&self) -> Result<(), ItkError> {
        for m in &self.manifest {
            let path = format!("{}/manifest/manifestitem/@profileid", self.header_path());
            match m.profile_id {
                Some(p) if !p.is_empty() => {}
                Some(p) => {
                    let kind = K::InvalidValue("profileid");
                    return Err(self.error(&p, path, kind, DeCode::ManifestItem));
                }
                None => {
                    let kind = K::MissingAttribute("profileid");
                    return Err(self.error(&m.id, path, kind, DeCode::ManifestItem));
                }
            }
        }
        Ok(())
    }

    /// Everything the schema says that parsing let through: the service is an absolute URI
    /// (DE0002), the tracking id an upper-case UUID (DE0002), manifest and payload ids are
    /// NCNames (DE0007, DE0012). Profile ids are a receiver's policy, checked separately by
    /// [`Self::check_profile_ids`] (infrastructure ACKs carry none).
    pub fn check_strict(&self) -> Result<(), ItkError> {
        if !is_absolute_uri(self.service.raw()) {
            let path = format!("{}/@service", self.header_path());
            let kind = K::InvalidValue("service");
            return Err(self.error(&self.service, path, kind, DeCode::Header));
        }
        self.check_tracking_id()?;
        for m in &self.manifest {
            if !is_ncname(m.id.raw()) {
                let path = format!("{}/manifest/manifestitem/@id", self.header_path());
                let kind = K::InvalidValue("id");
                return Err(self.error(&m.id, path, kind, DeCode::ManifestItem));
            }
        }
        for p in &self.payloads {
            if !is_ncname(p.id.raw()) {
                let path = format!("{}/payload/@id", self.payloads_path());
                let kind = K::InvalidValue("id");
                return Err(self.error(&p.id, path, kind, DeCode::Payload));
            }
        }
        Ok(())
    }
}

impl SoapHeader<'_> {
    fn error(&self, offset: usize, what: &str, kind: K) -> ItkError {
        ItkError {
            offset,
            path: format!("/Envelope/Header{what}"),
            kind,
            de: None,
        }
    }

    /// ITK Web Services rules: MessageID, Action and To present, To an absolute URI, no
    /// mustUnderstand header left unprocessed, and a `wsse:Security` (when sent) with a
    /// timestamp whose Created precedes Expires and a user name.
    pub fn check_strict(&self) -> Result<(), ItkError> {
        if let Some(name) = self.not_understood {
            return Err(self.error(name.offset(), "", K::NotUnderstood));
        }
        let required = [
            (self.message_id, "MessageID"),
            (self.action, "Action"),
            (self.to, "To"),
        ];
        for (value, name) in required {
            match value {
                Some(v) if !v.is_empty() => {}
                Some(v) => {
                    return Err(self.error(v.offset(), &format!("/{name}"), K::InvalidValue(name)))
                }
                None => return Err(self.error(self.offset, "", K::MissingElement(name))),
            }
        }
        if let Some(to) = self.to.filter(|t| !is_absolute_uri(t.raw())) {
            return Err(self.error(to.offset(), "/To", K::InvalidValue("To")));
        }
        if let Some(s) = self.security {
            let parts = [
                (s.created, "Created", "/Security/Timestamp"),
                (s.expires, "Expires", "/Security/Timestamp"),
                (s.username, "Username", "/Security/UsernameToken"),
            ];
            for (value, name, path) in parts {
                if value.is_none_or(|v| v.is_empty()) {
                    return Err(self.error(s.offset, path, K::MissingElement(name)));
                }
            }
            if let (Some(created), Some(expires)) = (s.created, s.expires) {
                if timestamps_out_of_order(created.raw(), expires.raw()) {
                    let kind = K::InvalidValue("Expires");
                    return Err(self.error(expires.offset(), "/Security/Timestamp/Expires", kind));
                }
            }
        }
        Ok(())
    }
}

/// Whether both values are UTC `xs:dateTime`s of the same shape (`YYYY-MM-DDThh:mm:ss[.f]Z`)
/// and Expires is not after Created. Values of other shapes are not judged here (comparing
/// against the clock, and time zones, are the router's business).
fn timestamps_out_of_order(created: &[u8], expires: &[u8]) -> bool {
    let utc = |v: &[u8]| {
        v.len() >= 20
            && v.ends_with(b"Z")
            && v.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 if v.len() > 20 => c == b'.',
                _ if i + 1 == v.len() => c == b'Z',
                _ => c.is_ascii_digit(),
            })
    };
    utc(created) && utc(expires) && created.len() == expires.len() && expires <= created
}

impl ItkMessage<'_> {
    /// [`SoapHeader::check_strict`] (when the message came in SOAP), `wsa:Action` equal to the
    /// DE service, and [`DistributionEnvelope::check_strict`].
    pub fn check_strict(&self) -> Result<(), ItkError> {
        if let Some(soap) = &self.soap {
            soap.check_strict()?;
            if let Some(action) = soap.action {
                if action.raw() != self.envelope.service.raw() {
                    return Err(soap.error(action.offset(), "/Action", K::ActionMismatch));
                }
            }
        }
        self.envelope.check_strict()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itk_uuids_are_upper_case() {
        assert!(is_itk_uuid(b"217D1168-7F0B-4F31-A0A9-5B030E545FAE"));
        assert!(!is_itk_uuid(b"217d1168-7f0b-4f31-a0a9-5b030e545fae"));
        assert!(!is_itk_uuid(b"217D1168-7F0B-4F31-A0A9-5B030E545FA"));
        assert!(!is_itk_uuid(b"217D1168X7F0B-4F31-A0A9-5B030E545FAE"));
        assert!(!is_itk_uuid(b"uuid_217D1168-7F0B-4F31-A0A9-5B030E545FAE"));
        assert!(!is_itk_uuid(b"__TRACKING_ID__"));
    }

    #[test]
    fn absolute_uris() {
        assert!(is_absolute_uri(b"urn:nhs-uk:addressing:ods:RX8"));
        assert!(is_absolute_uri(b"http://127.0.0.1:4848/syncsoap"));
        assert!(!is_absolute_uri(b"http//:this.is.invalid/address"));
        assert!(!is_absolute_uri(b"SendNHS111Report-v2-0"));
        assert!(!is_absolute_uri(b"urn:"));
        assert!(!is_absolute_uri(b":x"));
        assert!(!is_absolute_uri(b"1urn:x"));
        assert!(!is_absolute_uri(b"urn:a b"));
        assert!(!is_absolute_uri(b"__TO_URI__"));
    }

    #[test]
    fn absolute_uris_refuse_exactly_whitespace_controls_and_unsafe_characters() {
        for c in 0..=255u8 {
            let refused = c <= b' ' || c == 0x7f || b"<>\"{}|\\^`".contains(&c);
            assert_eq!(is_absolute_uri(&[b'u', b':', c]), !refused, "{c:#04x}");
        }
    }

    #[test]
    fn ncnames() {
        assert!(is_ncname(b"uuid_57B3E02B-BF35-42DB-BD14-7B2E462D06D5"));
        assert!(is_ncname(b"_a.b-c"));
        assert!(!is_ncname(b"57B3E02B-BF35-42DB-BD14-7B2E462D06D5"));
        assert!(!is_ncname(b"a:b"));
        assert!(!is_ncname(b""));
    }

    #[test]
    fn timestamp_order_is_judged_only_for_comparable_utc_values() {
        let a = b"2017-09-28T14:16:18Z";
        let b = b"2017-09-28T14:16:28Z";
        assert!(!timestamps_out_of_order(a, b));
        assert!(timestamps_out_of_order(b, a));
        assert!(timestamps_out_of_order(a, a));
        assert!(!timestamps_out_of_order(b"__EXPIRES__", b"__TIMESTAMP__"));
        assert!(!timestamps_out_of_order(b"2017-09-28T14:16:28.5Z", a));
        assert!(timestamps_out_of_order(
            b"2017-09-28T14:16:28.5Z",
            b"2017-09-28T14:16:28.1Z"
        ));
    }
}
