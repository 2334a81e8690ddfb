//! The index's two entries, "received" and "outcome", and their bytes.
//!
//! An entry is framed as `[u32 body length][u32 CRC32C of the body][body]`, little-endian; the
//! shard writes the CRC as zero and the writer thread fills it in, so the hot path does not
//! checksum. Strings are `u16` length + UTF-8 (cut at [`MAX_TEXT`] bytes); lists are a `u8`
//! count. Neither entry holds a patient identifier: only its keyed hash ([`super::hash`]).

/// The `log` of a message that has no place in a write-ahead log (durability off, or an
/// unrouted message kept as a dead letter): its `record` is then the run's sequence number.
pub const NO_LOG: u16 = u16::MAX;
/// Longest string kept; longer ones (a peer's address, a rule name) are cut on a char boundary.
pub const MAX_TEXT: usize = 1024;
/// Bytes before an entry's body.
pub const FRAME: usize = 8;
/// Patient hashes kept per message: PID-3 repetitions past this are not indexed.
pub const MAX_PATIENT_IDS: usize = 4;

const RECEIVED: u8 = 1;
const OUTCOME: u8 = 2;

/// Where a message is: its shard's log and record id, the same key the log marks it done by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef {
    pub log: u16,
    pub record: u64,
}

pub use codecs::MessageKind;

/// What happened at one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The endpoint took it; the detail is its ACK code (`AA`, `CA`) or `HTTP 200`.
    Delivered,
    /// Given up on; the detail is why, and the dead letter's id is kept.
    DeadLettered,
    /// An attempt failed and will be tried again; the detail is the failure.
    Retrying,
}

impl What {
    fn code(self) -> u8 {
        match self {
            What::Delivered => 1,
            What::DeadLettered => 2,
            What::Retrying => 3,
        }
    }

    fn from_code(code: u8) -> Option<What> {
        match code {
            1 => Some(What::Delivered),
            2 => Some(What::DeadLettered),
            3 => Some(What::Retrying),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            What::Delivered => "delivered",
            What::DeadLettered => "dead-lettered",
            What::Retrying => "retrying",
        }
    }
}

/// A message accepted: when, from where, by which rules, to which endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub time_unix_nanos: u64,
    pub message: MessageRef,
    pub kind: MessageKind,
    pub id_hash: u64,
    pub patient_hashes: Vec<u64>,
    pub control_id: String,
    pub listener: String,
    pub peer: String,
    pub rules: Vec<String>,
    pub destinations: Vec<String>,
}

/// One endpoint's news about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub time_unix_nanos: u64,
    pub message: MessageRef,
    pub id_hash: u64,
    pub what: What,
    pub endpoint: String,
    pub detail: String,
    /// Set for [`What::DeadLettered`].
    pub dead_letter: Option<String>,
    /// Kept so that an id lookup still names the message when its "received" entry was lost.
    pub control_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Received(Received),
    Outcome(Outcome),
}

impl Entry {
    pub fn time_unix_nanos(&self) -> u64 {
        match self {
            Entry::Received(r) => r.time_unix_nanos,
            Entry::Outcome(o) => o.time_unix_nanos,
        }
    }

    pub fn message(&self) -> MessageRef {
        match self {
            Entry::Received(r) => r.message,
            Entry::Outcome(o) => o.message,
        }
    }
}

/// The borrowed parts of a "received" entry, as the shard has them.
pub struct NewReceived<'a> {
    pub time_unix_nanos: u64,
    pub message: MessageRef,
    pub kind: MessageKind,
    pub id_hash: u64,
    pub patient_hashes: &'a [u64],
    pub control_id: &'a str,
    pub listener: &'a str,
    pub peer: &'a str,
    pub rules: &'a [&'a str],
    pub destinations: &'a [&'a str],
}

/// The borrowed parts of an "outcome" entry.
pub struct NewOutcome<'a> {
    pub time_unix_nanos: u64,
    pub message: MessageRef,
    pub id_hash: u64,
    pub what: What,
    pub endpoint: &'a str,
    pub detail: &'a str,
    pub dead_letter: Option<&'a str>,
    pub control_id: &'a str,
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = cut(s);
    // At most MAX_TEXT bytes, well inside u16.
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_list(out: &mut Vec<u8>, items: &[&str]) {
    let n = items.len().min(usize::from(u8::MAX));
    out.push(n as u8);
    for item in items.iter().take(n) {
        put_str(out, item);
    }
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME]);
    start
}

fn end(out: &mut [u8], start: usize) {
    let len = (out.len() - start - FRAME) as u32;
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
}

fn put_ref(out: &mut Vec<u8>, time: u64, message: MessageRef) {
    out.extend_from_slice(&time.to_le_bytes());
    out.extend_from_slice(&message.log.to_le_bytes());
    out.extend_from_slice(&message.record.to_le_bytes());
}

/// Appends a framed "received" entry (CRC left zero) to `out`.
pub fn encode_received(out: &mut Vec<u8>, e: &NewReceived<'_>) {
    let start = begin(out);
    out.push(RECEIVED);
    put_ref(out, e.time_unix_nanos, e.message);
    out.push(match e.kind {
        MessageKind::Hl7v2 => 1,
        MessageKind::Itk => 2,
    });
    out.extend_from_slice(&e.id_hash.to_le_bytes());
    let patients = &e.patient_hashes[..e.patient_hashes.len().min(MAX_PATIENT_IDS)];
    out.push(patients.len() as u8);
    for hash in patients {
        out.extend_from_slice(&hash.to_le_bytes());
    }
    put_str(out, e.control_id);
    put_str(out, e.listener);
    put_str(out, e.peer);
    put_list(out, e.rules);
    put_list(out, e.destinations);
    end(out, start);
}

/// Appends a framed "outcome" entry (CRC left zero) to `out`.
pub fn encode_outcome(out: &mut Vec<u8>, e: &NewOutcome<'_>) {
    let start = begin(out);
    out.push(OUTCOME);
    put_ref(out, e.time_unix_nanos, e.message);
    out.extend_from_slice(&e.id_hash.to_le_bytes());
    out.push(e.what.code());
    put_str(out, e.endpoint);
    put_str(out, e.detail);
    put_str(out, e.dead_letter.unwrap_or(""));
    put_str(out, e.control_id);
    end(out, start);
}

/// Reads a body left to right; every read is checked, so damaged bytes give `None`.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        Some(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.u8()?;
        (0..n).map(|_| self.string()).collect()
    }
    fn head(&mut self) -> Option<(u64, MessageRef)> {
        let time = self.u64()?;
        let log = self.u16()?;
        let record = self.u64()?;
        Some((time, MessageRef { log, record }))
    }
}

/// The entry a body holds; `None` when the bytes are not one.
pub fn decode(body: &[u8]) -> Option<Entry> {
    let mut r = Reader { bytes: body };
    match r.u8()? {
        RECEIVED => {
            let (time_unix_nanos, message) = r.head()?;
            let kind = match r.u8()? {
                1 => MessageKind::Hl7v2,
                2 => MessageKind::Itk,
                _ => return None,
            };
            let id_hash = r.u64()?;
            let n = r.u8()?;
            let patient_hashes = (0..n).map(|_| r.u64()).collect::<Option<Vec<u64>>>()?;
            Some(Entry::Received(Received {
                time_unix_nanos,
                message,
                kind,
                id_hash,
                patient_hashes,
                control_id: r.string()?,
                listener: r.string()?,
                peer: r.string()?,
                rules: r.list()?,
                destinations: r.list()?,
            }))
        }
        OUTCOME => {
            let (time_unix_nanos, message) = r.head()?;
            let id_hash = r.u64()?;
            let what = What::from_code(r.u8()?)?;
            let endpoint = r.string()?;
            let detail = r.string()?;
            let dead_letter = Some(r.string()?).filter(|s| !s.is_empty());
            Some(Entry::Outcome(Outcome {
                time_unix_nanos,
                message,
                id_hash,
                what,
                endpoint,
                detail,
                dead_letter,
                control_id: r.string()?,
            }))
        }
        _ => None,
    }
}

/// The lookup keys of an entry and its time, read without decoding its strings: what the
/// writer needs of every entry. `keys` gets the id hash, and each patient hash of a "received"
/// entry or the message key of an outcome (a message's outcomes are found by it once its
/// arrival is found; nothing looks for an arrival by it, so it is not indexed there).
pub fn keys_of(body: &[u8], keys: &mut Vec<u64>) -> Option<u64> {
    let mut r = Reader { bytes: body };
    let tag = r.u8()?;
    let (time, message) = r.head()?;
    match tag {
        RECEIVED => {
            r.u8()?;
            keys.push(r.u64()?);
            let n = r.u8()?;
            for _ in 0..n {
                keys.push(r.u64()?);
            }
        }
        OUTCOME => {
            keys.push(r.u64()?);
            keys.push(super::hash::message_key(message));
        }
        _ => return None,
    }
    Some(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(framed: &[u8]) -> &[u8] {
        let len = u32::from_le_bytes(framed[..4].try_into().unwrap()) as usize;
        assert_eq!(framed.len(), FRAME + len);
        &framed[FRAME..]
    }

    #[test]
    fn entries_read_back_as_written_and_damage_is_none() {
        let mut out = Vec::new();
        let message = MessageRef { log: 3, record: 77 };
        encode_received(
            &mut out,
            &NewReceived {
                time_unix_nanos: 5,
                message,
                kind: MessageKind::Hl7v2,
                id_hash: 9,
                patient_hashes: &[11, 12],
                control_id: "MSG1",
                listener: "in",
                peer: "10.0.0.1:5000",
                rules: &["admissions"],
                destinations: &["epr", "lab"],
            },
        );
        let received = decode(body(&out)).unwrap();
        let Entry::Received(r) = &received else {
            panic!("{received:?}")
        };
        assert_eq!(
            (r.message, r.id_hash, &r.patient_hashes[..], r.kind),
            (message, 9, &[11, 12][..], MessageKind::Hl7v2)
        );
        assert_eq!((&r.control_id[..], &r.destinations[1][..]), ("MSG1", "lab"));
        let mut keys = Vec::new();
        assert_eq!(keys_of(body(&out), &mut keys), Some(5));
        assert_eq!(keys, [9, 11, 12]);

        for cut in 0..body(&out).len() {
            assert_eq!(decode(&body(&out)[..cut]), None, "cut at {cut}");
        }

        let mut out = Vec::new();
        let long = "x".repeat(5000);
        encode_outcome(
            &mut out,
            &NewOutcome {
                time_unix_nanos: 6,
                message,
                id_hash: 9,
                what: What::DeadLettered,
                endpoint: "lab",
                detail: &long,
                dead_letter: Some("dl-1"),
                control_id: "MSG1",
            },
        );
        let Some(Entry::Outcome(o)) = decode(body(&out)) else {
            panic!()
        };
        assert_eq!(o.detail.len(), MAX_TEXT);
        assert_eq!(
            (o.what, o.dead_letter.as_deref(), &o.endpoint[..]),
            (What::DeadLettered, Some("dl-1"), "lab")
        );
    }
}
