//! [`MessageView`]s over the codecs' parsed messages, as the matcher reads them.
//!
//! HL7v2 values are the codec's raw slices with escape sequences decoded (borrowed unless the
//! value holds the escape character); the MSH view is scanned once when the view is built.
//! ITK values are attribute values with XML references resolved (borrowed unless the value
//! holds one). Values are compared as bytes: `routes.toml` values are UTF-8, and routing keys
//! (application and facility codes, URNs) are ASCII in practice.
use std::borrow::Cow;

use codecs::hl7v2;
use codecs::itk;

use super::keys::{ItkKey, Key, MessageKind, MessageView, MshKey};
use crate::inspect::Item;

/// An HL7v2 message as the matcher sees it.
#[derive(Clone, Copy, Debug)]
pub struct Hl7View<'a> {
    msg: hl7v2::Message<'a>,
    msh: hl7v2::Msh<'a>,
}

impl<'a> Hl7View<'a> {
    pub fn new(msg: hl7v2::Message<'a>) -> Self {
        Hl7View {
            msh: msg.msh(),
            msg,
        }
    }

    pub fn parse(bytes: &'a [u8]) -> Result<Self, hl7v2::ParseError> {
        hl7v2::Message::parse(bytes).map(Self::new)
    }

    pub fn message(&self) -> &hl7v2::Message<'a> {
        &self.msg
    }
}

impl MessageView for Hl7View<'_> {
    fn kind(&self) -> MessageKind {
        MessageKind::Hl7v2
    }

    fn value(&self, key: &Key, nth: usize) -> Option<Cow<'_, [u8]>> {
        if nth > 0 {
            return None;
        }
        let m = &self.msh;
        let raw = match key {
            Key::Msh(k) => match k {
                MshKey::SendingApplication => m.sending_application(),
                MshKey::SendingFacility => m.sending_facility(),
                MshKey::ReceivingApplication => m.receiving_application(),
                MshKey::ReceivingFacility => m.receiving_facility(),
                MshKey::MessageType => m.message_type(),
                MshKey::TriggerEvent => m.trigger_event(),
                MshKey::MessageStructure => m.message_structure(),
                MshKey::ProcessingId => m.processing_id(),
                MshKey::Version => m.version(),
            },
            Key::Field(f) => self.msg.get(f.path()),
            Key::Itk(_) => None,
        }?;
        Some(hl7v2::unescape(raw, self.msg.separators()))
    }
}

/// An ITK message (SOAP envelope or bare Distribution Envelope) as the matcher sees it.
#[derive(Debug)]
pub struct ItkView<'a> {
    msg: itk::ItkMessage<'a>,
}

impl<'a> ItkView<'a> {
    pub fn new(msg: itk::ItkMessage<'a>) -> Self {
        ItkView { msg }
    }

    pub fn parse(bytes: &'a [u8]) -> Result<Self, itk::ItkError> {
        itk::parse(bytes).map(Self::new)
    }

    pub fn message(&self) -> &itk::ItkMessage<'a> {
        &self.msg
    }
}

fn text<'t>(t: &itk::Text<'t>) -> Cow<'t, [u8]> {
    match t.decoded() {
        Ok(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
        Ok(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
        // The reader checked every value when it read it; keep the raw bytes if not.
        Err(_) => Cow::Borrowed(t.raw()),
    }
}

impl MessageView for ItkView<'_> {
    fn kind(&self) -> MessageKind {
        MessageKind::Itk
    }

    fn value(&self, key: &Key, nth: usize) -> Option<Cow<'_, [u8]>> {
        let env = &self.msg.envelope;
        let Key::Itk(k) = key else { return None };
        match k {
            ItkKey::Service => (nth == 0).then(|| text(&env.service)),
            ItkKey::Address => env.addresses.get(nth).map(|a| text(&a.uri)),
            ItkKey::Sender => env
                .sender_address
                .as_ref()
                .filter(|_| nth == 0)
                .map(|a| text(&a.uri)),
            ItkKey::Interaction => env.interaction().filter(|_| nth == 0).map(|t| text(&t)),
            ItkKey::ProfileId => env
                .manifest
                .iter()
                .filter_map(|m| m.profile_id.as_ref())
                .nth(nth)
                .map(text),
        }
    }
}

/// A message of either kind, parsed.
#[derive(Debug)]
pub enum ParsedMessage<'a> {
    Hl7v2(Hl7View<'a>),
    /// Boxed: the envelope view is several hundred bytes, the HL7v2 view a hundred.
    Itk(Box<ItkView<'a>>),
}

impl<'a> ParsedMessage<'a> {
    /// Parses a message found by [`crate::inspect::find_messages`]; the error is a sentence.
    pub fn parse(item: &'a Item<'_>) -> Result<Self, String> {
        match item {
            Item::Hl7v2(bytes) => Hl7View::parse(bytes)
                .map(ParsedMessage::Hl7v2)
                .map_err(|e| e.to_string()),
            Item::Itk(bytes) => ItkView::parse(bytes)
                .map(|v| ParsedMessage::Itk(Box::new(v)))
                .map_err(|e| e.to_string()),
        }
    }
}

impl MessageView for ParsedMessage<'_> {
    fn kind(&self) -> MessageKind {
        match self {
            ParsedMessage::Hl7v2(m) => m.kind(),
            ParsedMessage::Itk(m) => m.kind(),
        }
    }

    fn value(&self, key: &Key, nth: usize) -> Option<Cow<'_, [u8]>> {
        match self {
            ParsedMessage::Hl7v2(m) => m.value(key, nth),
            ParsedMessage::Itk(m) => m.value(key, nth),
        }
    }
}
