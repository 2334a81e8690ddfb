//! The values a route can test, and the trait through which the matcher reads them from a message.
//!
//! A [`Key`] names one routing value: an MSH field by name, any HL7v2 field by path, or an ITK
//! header value. The matcher never sees a parser: it asks a [`MessageView`] for the `nth` value of
//! a key, so the same table routes a parsed HL7v2 message, a parsed ITK envelope, or (in tests
//! and benches) a plain map. Views return `Cow` so that values without escapes are borrowed and
//! the common case allocates nothing.
use std::borrow::Cow;
use std::fmt;

use codecs::hl7v2::FieldPath;

pub use codecs::MessageKind;

/// MSH values by name (first component of each field, as the codec's `Msh` accessors give it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MshKey {
    SendingApplication,
    SendingFacility,
    ReceivingApplication,
    ReceivingFacility,
    MessageType,
    TriggerEvent,
    MessageStructure,
    ProcessingId,
    Version,
}

impl MshKey {
    pub const ALL: [MshKey; 9] = [
        MshKey::SendingApplication,
        MshKey::SendingFacility,
        MshKey::ReceivingApplication,
        MshKey::ReceivingFacility,
        MshKey::MessageType,
        MshKey::TriggerEvent,
        MshKey::MessageStructure,
        MshKey::ProcessingId,
        MshKey::Version,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MshKey::SendingApplication => "sending_application",
            MshKey::SendingFacility => "sending_facility",
            MshKey::ReceivingApplication => "receiving_application",
            MshKey::ReceivingFacility => "receiving_facility",
            MshKey::MessageType => "message_type",
            MshKey::TriggerEvent => "trigger_event",
            MshKey::MessageStructure => "message_structure",
            MshKey::ProcessingId => "processing_id",
            MshKey::Version => "version",
        }
    }

    /// The field it reads, for explanations.
    pub fn field(self) -> &'static str {
        match self {
            MshKey::SendingApplication => "MSH-3",
            MshKey::SendingFacility => "MSH-4",
            MshKey::ReceivingApplication => "MSH-5",
            MshKey::ReceivingFacility => "MSH-6",
            MshKey::MessageType => "MSH-9.1",
            MshKey::TriggerEvent => "MSH-9.2",
            MshKey::MessageStructure => "MSH-9.3",
            MshKey::ProcessingId => "MSH-11",
            MshKey::Version => "MSH-12",
        }
    }

    pub fn from_name(name: &str) -> Option<MshKey> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// ITK Distribution Envelope values by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItkKey {
    /// `header/@service`.
    Service,
    /// Each `addresslist/address/@uri` (several values).
    Address,
    /// `senderAddress/@uri`.
    Sender,
    /// The `urn:nhs-itk:ns:201005:interaction` handling specification.
    Interaction,
    /// Each `manifestitem/@profileid` (several values).
    ProfileId,
}

impl ItkKey {
    pub const ALL: [ItkKey; 5] = [
        ItkKey::Service,
        ItkKey::Address,
        ItkKey::Sender,
        ItkKey::Interaction,
        ItkKey::ProfileId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ItkKey::Service => "service",
            ItkKey::Address => "address",
            ItkKey::Sender => "sender",
            ItkKey::Interaction => "interaction",
            ItkKey::ProfileId => "profile_id",
        }
    }

    pub fn from_name(name: &str) -> Option<ItkKey> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Any HL7v2 field by path (`PID-3.4`), kept with its text for messages and comparisons.
#[derive(Clone, Debug)]
pub struct FieldKey {
    text: Box<str>,
    path: FieldPath,
}

impl FieldKey {
    pub fn parse(text: &str) -> Result<FieldKey, String> {
        match FieldPath::parse(text) {
            Ok(path) => Ok(FieldKey {
                text: text.into(),
                path,
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

// Two spellings of one path are different keys; that only costs an index entry.
impl PartialEq for FieldKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for FieldKey {}
impl std::hash::Hash for FieldKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Msh(MshKey),
    Field(FieldKey),
    Itk(ItkKey),
}

impl Key {
    pub fn kind(&self) -> MessageKind {
        match self {
            Key::Msh(_) | Key::Field(_) => MessageKind::Hl7v2,
            Key::Itk(_) => MessageKind::Itk,
        }
    }

    /// Whether one message can carry several values for this key.
    pub fn is_multi(&self) -> bool {
        matches!(self, Key::Itk(ItkKey::Address | ItkKey::ProfileId))
    }
}

impl fmt::Display for Key {
    /// As written in `routes.toml`: `hl7.message_type`, `hl7."PID-3.4"`, `itk.service`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Msh(k) => write!(f, "hl7.{}", k.name()),
            Key::Field(k) => write!(f, "hl7.\"{}\"", k.as_str()),
            Key::Itk(k) => write!(f, "itk.{}", k.name()),
        }
    }
}

/// A message as the matcher sees it.
pub trait MessageView {
    fn kind(&self) -> MessageKind;

    /// The `nth` value of `key` (0 first), `None` past the last. A key of the other message
    /// kind, or an absent field, has no values.
    fn value(&self, key: &Key, nth: usize) -> Option<Cow<'_, [u8]>>;
}

/// Where a directory lookup takes its values from in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LookupFrom {
    /// Each ITK address, whole.
    ItkAddress,
    /// The ODS code inside each ITK address (`urn:nhs-uk:addressing:ods:<ODS>[:…]`).
    ItkAddressOds,
    /// MSH-5.
    Hl7ReceivingApplication,
    /// MSH-6.
    Hl7ReceivingFacility,
}

impl LookupFrom {
    pub const ALL: [LookupFrom; 4] = [
        LookupFrom::ItkAddress,
        LookupFrom::ItkAddressOds,
        LookupFrom::Hl7ReceivingApplication,
        LookupFrom::Hl7ReceivingFacility,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LookupFrom::ItkAddress => "itk.address",
            LookupFrom::ItkAddressOds => "itk.address.ods",
            LookupFrom::Hl7ReceivingApplication => "hl7.receiving_application",
            LookupFrom::Hl7ReceivingFacility => "hl7.receiving_facility",
        }
    }

    pub fn from_name(name: &str) -> Option<LookupFrom> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn kind(self) -> MessageKind {
        match self {
            LookupFrom::ItkAddress | LookupFrom::ItkAddressOds => MessageKind::Itk,
            LookupFrom::Hl7ReceivingApplication | LookupFrom::Hl7ReceivingFacility => {
                MessageKind::Hl7v2
            }
        }
    }

    /// The directory column looked in when the route names none.
    pub fn default_column(self) -> Column {
        match self {
            LookupFrom::ItkAddress => Column::ItkAddress,
            LookupFrom::ItkAddressOds => Column::Ods,
            LookupFrom::Hl7ReceivingApplication => Column::Hl7Application,
            LookupFrom::Hl7ReceivingFacility => Column::Hl7Facility,
        }
    }

    /// The message key the values come from.
    pub fn key(self) -> Key {
        match self {
            LookupFrom::ItkAddress | LookupFrom::ItkAddressOds => Key::Itk(ItkKey::Address),
            LookupFrom::Hl7ReceivingApplication => Key::Msh(MshKey::ReceivingApplication),
            LookupFrom::Hl7ReceivingFacility => Key::Msh(MshKey::ReceivingFacility),
        }
    }

    /// Turns one message value into the value to look up (`None`: it has no such part).
    pub fn extract(self, value: &[u8]) -> Option<&[u8]> {
        match self {
            LookupFrom::ItkAddressOds => {
                let rest = value.strip_prefix(b"urn:nhs-uk:addressing:ods:")?;
                let code = rest.split(|&b| b == b':').next()?;
                (!code.is_empty()).then_some(code)
            }
            _ => Some(value),
        }
    }
}

/// A directory column that endpoints can be looked up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Id,
    Ods,
    ItkAddress,
    Hl7Application,
    Hl7Facility,
}

impl Column {
    pub const ALL: [Column; 5] = [
        Column::Id,
        Column::Ods,
        Column::ItkAddress,
        Column::Hl7Application,
        Column::Hl7Facility,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Ods => "ods",
            Column::ItkAddress => "itk_address",
            Column::Hl7Application => "hl7_application",
            Column::Hl7Facility => "hl7_facility",
        }
    }

    pub fn from_name(name: &str) -> Option<Column> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ods_code_from_itk_address() {
        let f = LookupFrom::ItkAddressOds;
        assert_eq!(
            f.extract(b"urn:nhs-uk:addressing:ods:RX8"),
            Some(&b"RX8"[..])
        );
        assert_eq!(
            f.extract(b"urn:nhs-uk:addressing:ods:BBB:X0912"),
            Some(&b"BBB"[..])
        );
        assert_eq!(f.extract(b"urn:nhs-uk:addressing:ods:"), None);
        assert_eq!(f.extract(b"urn:nhs-uk:identity:ods:XZ901"), None);
    }
}
