//! HL7 v2 ER7 ("pipe and hat") messages: a lazy, zero-copy reader, the escape codec, file and
//! batch splitting, and the ACK builder.
//!
//! Parts:
//! - [`separators`](Separators): MSH-1/MSH-2 (any printable non-alphanumeric choice, the v2.7
//!   truncation character tolerated);
//! - [`Message`] → [`Segment`] → [`Field`] → repetition / component / sub-component, each a
//!   `&[u8]` slice of the input found only when asked for, in HL7 numbering (MSH-1 is the field
//!   separator itself; the same for FHS and BHS); CR, LF, CRLF or a mix end segments;
//! - [`Msh`]: the routing keys, read in one pass over the MSH line without allocating;
//! - [`FieldPath`]: `PID-3[2].4.1` style paths for [`Message::get`];
//! - [`unescape`] / [`escape`]: escape sequences, decoded into a `Cow` only on request;
//! - [`split_messages`] / [`Batch`]: files of several messages, FHS/BHS batches;
//! - [`write_ack`]: AA/AE/AR and CA/CE/CR acknowledgements into a caller's buffer.
//!
//! Invariants: nothing allocates except `unescape` (only when there is something to decode) and
//! the writers (which only grow the caller's buffer); no panic on any input; every error carries
//! a byte offset and, when known, the segment and field. Offsets count from the start of the
//! slice given to the parser.

mod ack;
mod batch;
mod error;
mod escape;
mod field;
mod lines;
mod message;
mod msh;
mod path;
mod segment;
mod separators;

pub use ack::{
    salvage_control_id, table_0357, write_ack, write_ack_for_bytes, Ack, AckCode, AckError,
    FALLBACK_PROCESSING_ID, FALLBACK_VERSION,
};
pub use batch::{split_messages, Batch, SplitMessages};
pub use error::{ErrorKind, ParseError, PathError, PathErrorKind};
pub use escape::{escape, unescape, unescape_strict};
pub use field::{Field, Parts, Repetitions};
pub use message::{Message, Segments};
pub use msh::{AckCondition, AckMode, Msh};
pub use path::FieldPath;
pub use segment::{Fields, Segment};
pub use separators::{EncodingChars, Separators};
