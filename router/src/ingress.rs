//! Receiving messages from senders.
//!
//! - [`listener`]: SO_REUSEPORT sockets per shard and the accept loop.
//! - [`slot`]: the settings a listener serves new connections with, swapped by a reload, and
//!   the signal that closes it.
//! - [`mllp`]: an MLLP sender's connection: frames in, ACKs out, in order, one write per batch.
//! - [`itk`]: an ITK sender's HTTP/1.1 connection: SOAP requests in, responses or faults out.
//! - [`session`]: one pipeline for both protocols: parsed messages in, routed, committed, and a
//!   typed answer for each out; counts and logs each answer. No sockets.
//! - [`accept`]: route, wait for room, hand to the endpoints' owners: where "accepted" is decided.
//! - [`answer`]: what the sender is told: the protocol-neutral `Answer`, mapped to an HL7v2
//!   ACK (AA/AE/AR, CA/CE/CR) or an ITK response or SOAP fault.
//! - [`reader`]: reading within the listener's deadlines and the input budgets, for both.
//! - [`budget`]: memory for unfinished input, per process and per sender address.
//! - [`cutoff`]: connections closed at a limit, counted and logged without flooding.
//! - [`refusals`]: one log line per refusal, rate-limited per peer, summaries for floods.
//! - [`not_mllp`]: what bytes outside an MLLP frame look like, for the line that closes them.
pub mod accept;
pub mod answer;
pub mod budget;
pub mod cutoff;
pub mod itk;
pub mod listener;
pub mod mllp;
pub mod not_mllp;
pub mod reader;
pub mod refusals;
pub mod session;
pub mod slot;
