//! Receiving messages from senders.
//!
//! - [`listener`]: SO_REUSEPORT sockets per shard and the accept loop.
//! - [`mllp`]: an MLLP sender's connection: frames in, ACKs out, in order, one write per batch.
//! - [`itk`]: an ITK sender's HTTP/1.1 connection: SOAP requests in, responses or faults out.
//! - [`accept`]: route, wait for room, hand to the endpoints' owners: where "accepted" is decided.
//! - [`answer`]: what the sender is told (AA/AE/AR, CA/CE/CR), decided in one place.
//! - [`reader`]: reading within the listener's deadlines and the input budgets, for both.
//! - [`budget`]: memory for unfinished input, per process and per sender address.
//! - [`cutoff`]: connections closed at a limit, counted and logged without flooding.
pub mod accept;
pub mod answer;
pub mod budget;
pub mod cutoff;
pub mod itk;
pub mod listener;
pub mod mllp;
pub mod reader;
