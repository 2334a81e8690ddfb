//! What flows from ingress to egress: an accepted message and its deliveries.
//!
//! A message is copied once, out of the connection's receive buffer into an [`Accepted`], when
//! it is accepted; every destination then shares it through an `Arc`, so fan-out to N endpoints
//! costs N small [`Delivery`] values, not N copies. The bytes are exactly those received.
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use crate::shard::room::QueueCount;
use crate::shard::stream::Settle;
use crate::wal::RecordId;

pub use codecs::MessageKind;

/// Which log, which record, which destination: enough to mark a delivery done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef {
    /// The log's number (its `shard-<n>` directory).
    pub log: u16,
    pub id: RecordId,
    pub destination: u16,
}

/// One message accepted from a sender.
#[derive(Debug)]
pub struct Accepted {
    /// Unique within this run of the router: the shard in the top bits, a counter below.
    pub seq: u64,
    pub kind: MessageKind,
    pub bytes: Box<[u8]>,
    /// Where the identifier a reply must quote sits in `bytes`: MSH-10 for HL7v2, the
    /// Distribution Envelope tracking id for ITK.
    pub control_id: Range<usize>,
    /// The `SOAPAction` the sender used (ITK), forwarded unchanged.
    pub soap_action: Option<Box<str>>,
    pub arrived: SystemTime,
    pub listener: Arc<str>,
    /// The sender's address as text, formatted once per connection and shared by its messages
    /// (the log records it as text; a replayed message may come from a peer gone long ago).
    pub peer: Arc<str>,
}

impl Accepted {
    /// The identifier a reply must quote (MSH-10, or the ITK tracking id).
    pub fn control_id(&self) -> &[u8] {
        self.bytes.get(self.control_id.clone()).unwrap_or_default()
    }
}

/// One message on its way to one endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<Accepted>,
    /// The endpoint's name: stable across reloads, unlike its index in a table.
    pub endpoint: Arc<str>,
    /// The endpoint's count of messages not yet done, lowered when this one is.
    pub queued: Arc<QueueCount>,
    /// Where the message is in the write-ahead log, to mark this destination done; `None`
    /// when the router runs without durability.
    pub record: Option<RecordRef>,
    /// Taken from the log at start-up: the endpoint holds new senders back until this one is
    /// in its worker's queue (see [`QueueCount::hold`]).
    pub held: bool,
    /// Consumed from the cluster's stream: acknowledged there once this destination and the
    /// message's others in the same partition are done. `None` on a node running alone.
    pub settle: Option<Arc<Settle>>,
}
