//! `ItkError`: where (byte offset and element path such as
//! `/Envelope/Body/DistributionEnvelope/header/manifest/@count`), what, and, for faults in the
//! Distribution Envelope structure, which ITK DE error code (DE0001–DE0012, vocabulary OID
//! 2.16.840.1.113883.2.1.3.2.4.17.516) an infrastructure NACK should carry.

use std::fmt;

/// ITK Distribution Envelope error codes, from `DE_error_reference.xml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeCode {
    /// DE0001 Distribution Envelope processing error.
    Envelope,
    /// DE0002 header.
    Header,
    /// DE0003 address list.
    AddressList,
    /// DE0004 audit identity.
    AuditIdentity,
    /// DE0005 (audit identity) id.
    Id,
    /// DE0006 manifest.
    Manifest,
    /// DE0007 manifest item.
    ManifestItem,
    /// DE0008 sender address.
    SenderAddress,
    /// DE0009 handling specifications.
    HandlingSpecification,
    /// DE0010 spec.
    Spec,
    /// DE0011 payloads.
    Payloads,
    /// DE0012 payload.
    Payload,
}

impl DeCode {
    /// The code as it appears in the vocabulary, e.g. `DE0006`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Envelope => "DE0001",
            Self::Header => "DE0002",
            Self::AddressList => "DE0003",
            Self::AuditIdentity => "DE0004",
            Self::Id => "DE0005",
            Self::Manifest => "DE0006",
            Self::ManifestItem => "DE0007",
            Self::SenderAddress => "DE0008",
            Self::HandlingSpecification => "DE0009",
            Self::Spec => "DE0010",
            Self::Payloads => "DE0011",
            Self::Payload => "DE0012",
        }
    }

    /// The display name from the vocabulary.
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::Envelope => "Distribution Envelope Processing Error",
            Self::Header => "Distribution Envelope Header Processing Error",
            Self::AddressList => "Distribution Envelope Address List Processing Error",
            Self::AuditIdentity => "Distribution Envelope Audit Identity Processing Error",
            Self::Id => "Distribution Envelope Id Processing Error",
            Self::Manifest => "Distribution Envelope Manifest Processing Error",
            Self::ManifestItem => "Distribution Envelope Manifest Item Processing Error",
            Self::SenderAddress => "Distribution Envelope Sender Address Processing Error",
            Self::HandlingSpecification => {
                "Distribution Envelope Handling Specifications Processing Error"
            }
            Self::Spec => "Distribution Envelope Spec Processing Error",
            Self::Payloads => "Distribution Envelope Payloads Processing Error",
            Self::Payload => "Distribution Envelope Payload Processing Error",
        }
    }
}

/// An ITK read or check failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItkError {
    /// Byte offset in the input of the element, attribute value or character at fault.
    pub offset: usize,
    /// Element path by local names, `/Envelope/Body/DistributionEnvelope/header/@service`;
    /// empty when not known (a [`super::Text::decoded`] failure).
    pub path: String,
    /// What was wrong.
    pub kind: ItkErrorKind,
    pub(crate) de: Option<DeCode>,
}

impl ItkError {
    pub(crate) fn new(offset: usize, kind: ItkErrorKind) -> Self {
        Self {
            offset,
            path: String::new(),
            kind,
            de: None,
        }
    }

    /// The ITK DE error code (`DE0001`–`DE0012`) when the fault is in the Distribution Envelope
    /// structure; `None` for XML syntax, encoding and SOAP-layer faults, which are answered with
    /// a SOAP fault rather than an infrastructure NACK.
    pub fn de_code(&self) -> Option<&'static str> {
        self.de.map(DeCode::as_str)
    }

    /// The DE code as an enum.
    pub const fn de(&self) -> Option<DeCode> {
        self.de
    }
}

impl fmt::Display for ItkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if !self.path.is_empty() {
            write!(f, " in {}", self.path)?;
        }
        if let Some(de) = self.de {
            write!(f, " ({})", de.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for ItkError {}

/// What was wrong with an ITK message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItkErrorKind {
    /// Not well-formed XML (quick-xml's message).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// A `<!DOCTYPE`: DTDs and entity declarations are refused, never expanded.
    #[error("DTDs and entity declarations are refused")]
    DtdRefused,
    /// `&name;` for a name that is not one of the five predefined XML entities.
    #[error("undefined entity reference &{0};")]
    UndefinedEntity(String),
    /// `&#...;` that is not a number or not an XML character.
    #[error("invalid character reference")]
    BadCharRef,
    /// An encoding other than UTF-8 (declared, or a UTF-16 byte order mark).
    #[error("unsupported encoding {0}")]
    UnsupportedEncoding(String),
    /// A value that is not UTF-8.
    #[error("text is not UTF-8")]
    InvalidUtf8,
    /// The input ended inside an element.
    #[error("input ends inside an element")]
    Truncated,
    /// No root element.
    #[error("no root element")]
    NoRoot,
    /// Something other than whitespace, comments or processing instructions outside the root.
    #[error("content outside the root element")]
    ContentOutsideRoot,
    /// The root is neither a SOAP 1.1 Envelope nor an ITK DistributionEnvelope (or, for
    /// responses, not a SOAP 1.1 Envelope).
    #[error("root element is not an ITK message")]
    UnexpectedRoot,
    /// A SOAP 1.2 envelope; ITK web services use SOAP 1.1 (answer with a VersionMismatch fault).
    #[error("SOAP 1.2 envelope where SOAP 1.1 is required")]
    SoapVersionMismatch,
    /// The SOAP Body carries no DistributionEnvelope.
    #[error("SOAP Body carries no DistributionEnvelope")]
    NoDistributionEnvelope,
    /// A required element is absent.
    #[error("missing element {0}")]
    MissingElement(&'static str),
    /// A required attribute is absent or empty.
    #[error("missing attribute {0}")]
    MissingAttribute(&'static str),
    /// An element the schema does not allow here.
    #[error("unexpected element")]
    UnexpectedElement,
    /// Character data where the schema allows only elements.
    #[error("unexpected text")]
    UnexpectedText,
    /// An element that may occur once occurs again.
    #[error("element {0} repeated")]
    DuplicateElement(&'static str),
    /// An element before one the schema says must precede it.
    #[error("element {0} out of schema order")]
    OutOfOrder(&'static str),
    /// More occurrences than the schema allows.
    #[error("more than {max} {what}")]
    TooMany {
        /// Element name.
        what: &'static str,
        /// Allowed maximum.
        max: usize,
    },
    /// A value of the wrong shape (the text names the field).
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    /// A `count` attribute that disagrees with the elements present.
    #[error("{what} count is {declared} but {actual} present")]
    CountMismatch {
        /// Element counted.
        what: &'static str,
        /// Value of the `count` attribute.
        declared: u64,
        /// Elements found.
        actual: usize,
    },
    /// A manifest item whose id matches no payload.
    #[error("manifest item refers to no payload")]
    UnknownPayloadRef,
    /// A payload that no manifest item lists.
    #[error("payload is not listed in the manifest")]
    UnlistedPayload,
    /// Two payloads with the same id.
    #[error("duplicate payload id")]
    DuplicatePayloadId,
    /// A SOAP header block marked mustUnderstand that we do not process.
    #[error("header block marked mustUnderstand is not understood")]
    NotUnderstood,
    /// `wsa:Action` differs from the DE `service`.
    #[error("wsa:Action does not match the DistributionEnvelope service")]
    ActionMismatch,
}

impl ItkErrorKind {
    /// Whether this is a fault in the XML itself rather than in what it says, in which case no
    /// DE code applies.
    pub(crate) const fn is_xml_level(&self) -> bool {
        matches!(
            self,
            Self::Xml(_)
                | Self::DtdRefused
                | Self::UndefinedEntity(_)
                | Self::BadCharRef
                | Self::UnsupportedEncoding(_)
                | Self::InvalidUtf8
                | Self::Truncated
                | Self::NoRoot
                | Self::ContentOutsideRoot
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_place_path_and_code() {
        let e = ItkError {
            offset: 42,
            path: "/DistributionEnvelope/header/manifest/@count".into(),
            kind: ItkErrorKind::CountMismatch {
                what: "manifestitem",
                declared: 2,
                actual: 1,
            },
            de: Some(DeCode::Manifest),
        };
        assert_eq!(
            e.to_string(),
            "manifestitem count is 2 but 1 present at byte 42 in \
/DistributionEnvelope/header/manifest/@count (DE0006)"
        );
        assert_eq!(e.de_code(), Some("DE0006"));
        let plain = ItkError::new(3, ItkErrorKind::DtdRefused);
        assert_eq!(
            plain.to_string(),
            "DTDs and entity declarations are refused at byte 3"
        );
        assert_eq!(plain.de_code(), None);
    }

    #[test]
    fn codes_are_numbered_as_in_the_vocabulary() {
        let all = [
            DeCode::Envelope,
            DeCode::Header,
            DeCode::AddressList,
            DeCode::AuditIdentity,
            DeCode::Id,
            DeCode::Manifest,
            DeCode::ManifestItem,
            DeCode::SenderAddress,
            DeCode::HandlingSpecification,
            DeCode::Spec,
            DeCode::Payloads,
            DeCode::Payload,
        ];
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c.as_str(), format!("DE{:04}", i + 1));
        }
    }
}
