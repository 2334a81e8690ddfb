//! A shard's side of the trace: entries encoded into a buffer of its own (no lock, no
//! allocation per message once the buffer has grown) and handed to the writer thread a chunk
//! at a time, when the buffer passes [`CHUNK`] or at the shard's flush tick.
//!
//! Nothing here waits for the disk: entries not yet written when the process dies are not in
//! the index (at most a tick's worth); the log still delivers their messages after the
//! restart, and those outcomes are recorded then, so an id lookup still finds the message.
use std::cell::RefCell;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::entry::{self, MessageRef, NewOutcome, NewReceived, What, NO_LOG};
use super::hash::{self, PatientKey};
use crate::ingress::accept::unix_nanos;
use crate::pipeline::{Accepted, Delivery, MessageKind};

/// Bytes a shard gathers before it hands them over without waiting for its tick.
pub const CHUNK: usize = 64 * 1024;
/// How often a shard hands over what it has gathered.
pub const TICK: Duration = Duration::from_millis(100);

pub struct Recorder {
    buf: RefCell<Vec<u8>>,
    patients: RefCell<Vec<u64>>,
    sink: Sender<Vec<u8>>,
    key: Arc<PatientKey>,
}

/// The key a delivery's outcomes are recorded under: its place in the log, or the run's
/// sequence number when it has none.
pub fn message_ref(delivery: &Delivery) -> MessageRef {
    match delivery.record {
        Some(r) => MessageRef {
            log: r.log,
            record: r.id.0,
        },
        None => unlogged(&delivery.message),
    }
}

/// The key of a message that is not in a log.
pub fn unlogged(message: &Accepted) -> MessageRef {
    MessageRef {
        log: NO_LOG,
        record: message.seq,
    }
}

impl Recorder {
    pub fn new(sink: Sender<Vec<u8>>, key: Arc<PatientKey>) -> Recorder {
        Recorder {
            buf: RefCell::new(Vec::with_capacity(CHUNK + 4096)),
            patients: RefCell::new(Vec::new()),
            sink,
            key,
        }
    }

    /// A message was accepted (it is in the log, or kept as a dead letter).
    pub fn received(
        &self,
        message: &Accepted,
        at: MessageRef,
        rules: &[&str],
        destinations: &[&str],
    ) {
        let mut patients = self.patients.borrow_mut();
        patients.clear();
        if message.kind == MessageKind::Hl7v2 {
            self.key
                .pid3(&message.bytes, &mut patients, entry::MAX_PATIENT_IDS);
        }
        let control_id = String::from_utf8_lossy(message.control_id());
        let mut buf = self.buf.borrow_mut();
        entry::encode_received(
            &mut buf,
            &NewReceived {
                time_unix_nanos: unix_nanos(message.arrived),
                message: at,
                kind: message.kind,
                id_hash: hash::control_id(message.control_id()),
                patient_hashes: &patients,
                control_id: &control_id,
                listener: &message.listener,
                peer: &message.peer,
                rules,
                destinations,
            },
        );
        self.maybe_flush(buf);
    }

    /// An endpoint's news about a message.
    pub fn outcome(
        &self,
        delivery: &Delivery,
        what: What,
        detail: &str,
        dead_letter: Option<&str>,
    ) {
        let message = &delivery.message;
        let control_id = String::from_utf8_lossy(message.control_id());
        let mut buf = self.buf.borrow_mut();
        entry::encode_outcome(
            &mut buf,
            &NewOutcome {
                time_unix_nanos: unix_nanos(SystemTime::now()),
                message: message_ref(delivery),
                id_hash: hash::control_id(message.control_id()),
                what,
                endpoint: &delivery.endpoint,
                detail,
                dead_letter,
                control_id: &control_id,
            },
        );
        self.maybe_flush(buf);
    }

    fn maybe_flush(&self, mut buf: std::cell::RefMut<'_, Vec<u8>>) {
        if buf.len() >= CHUNK {
            let full = std::mem::replace(&mut *buf, Vec::with_capacity(CHUNK + 4096));
            // The writer is gone only at shutdown; what it misses then is not kept.
            let _ = self.sink.send(full);
        }
    }

    /// Hands over what has gathered.
    pub fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        if !buf.is_empty() {
            let chunk = std::mem::replace(&mut *buf, Vec::with_capacity(4096));
            let _ = self.sink.send(chunk);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}
