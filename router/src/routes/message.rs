//! [`MessageView`]s over the codecs' parsed messages, as the matcher reads them.
//!
//! HL7v2 values are the codec's raw slices with escape sequences decoded (borrowed unless the
//! value holds the escape character); the MSH view is scanned once when the view is built. A
//! value with an escape sequence HL7 does not define cannot be compared honestly: the matcher
//! gets it as written, and the view remembers the first such place ([`Hl7View::unreadable`])
//! so that ingress refuses the message as unreadable rather than as unroutable.
//! ITK values are attribute values with XML references resolved (borrowed unless the value
//! holds one). Values are compared as bytes: `routes.toml` values are UTF-8, and routing keys
//! (application and facility codes, URNs) are ASCII in practice.
use std::borrow::Cow;
use std::cell::Cell;

use codecs::hl7v2;
use codecs::itk;

use super::keys::{ItkKey, Key, MessageKind, MessageView, MshKey};
use crate::inspect::Item;

/// An HL7v2 message as the matcher sees it.
#[derive(Clone, Debug)]
pub struct Hl7View<'a> {
    msg: hl7v2::Message<'a>,
    msh: hl7v2::Msh<'a>,
    /// The first value read whose escape sequences could not be decoded: its offset, segment
    /// and field.
    bad_escape: Cell<Option<(usize, [u8; 3], u16)>>,
}

impl<'a> Hl7View<'a> {
    pub fn new(msg: hl7v2::Message<'a>) -> Self {
        Hl7View {
            msh: msg.msh(),
            msg,
            bad_escape: Cell::new(None),
        }
    }

    /// The MSH view, scanned when this view was built.
    pub fn msh(&self) -> hl7v2::Msh<'a> {
        self.msh
    }

    /// Where a value the matcher read holds an escape sequence HL7 does not define (the first
    /// such value), as the error an unreadable message is answered with.
    pub fn unreadable(&self) -> Option<hl7v2::ParseError> {
        self.bad_escape
            .get()
            .map(|(offset, segment, field)| hl7v2::ParseError {
                offset,
                segment: Some(segment),
                field: Some(field),
                kind: hl7v2::ErrorKind::BadEscape,
            })
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
        let (raw, segment, field) = match key {
            Key::Msh(k) => {
                let (raw, field) = match k {
                    MshKey::SendingApplication => (m.sending_application(), 3),
                    MshKey::SendingFacility => (m.sending_facility(), 4),
                    MshKey::ReceivingApplication => (m.receiving_application(), 5),
                    MshKey::ReceivingFacility => (m.receiving_facility(), 6),
                    MshKey::MessageType => (m.message_type(), 9),
                    MshKey::TriggerEvent => (m.trigger_event(), 9),
                    MshKey::MessageStructure => (m.message_structure(), 9),
                    MshKey::ProcessingId => (m.processing_id(), 11),
                    MshKey::Version => (m.version(), 12),
                };
                (raw?, *b"MSH", field)
            }
            Key::Field(f) => {
                let path = f.path();
                (self.msg.get(path)?, *path.segment(), path.field())
            }
            Key::Itk(_) => return None,
        };
        match hl7v2::unescape_strict(raw, self.msg.separators()) {
            Ok(value) => Some(value),
            Err(at) => {
                if self.bad_escape.get().is_none() {
                    let offset = self.msg.offset_of(raw).unwrap_or(0) + at;
                    self.bad_escape.set(Some((offset, segment, field)));
                }
                Some(Cow::Borrowed(raw))
            }
        }
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
