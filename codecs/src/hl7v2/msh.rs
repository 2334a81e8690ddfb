//! The typed MSH view: the routing keys of a message read in ONE pass over the MSH line.
//!
//! [`Msh::scan`] walks the line once, recording where each of the first [`SLOTS`] field
//! separators is (a fixed array of `u16`, no allocation) and where the line ends; every accessor
//! is then two array reads plus a short `memchr` for the component. Fields past the recorded
//! ones (MSH-25 and up, rare) are found by scanning on from the last recorded separator.

use memchr::{memchr, memchr2};

use super::error::{ErrorKind, ParseError};
use super::field::{component_of_first_repetition, first_part, non_empty, nth_part, Field};
use super::segment::Segment;
use super::separators::Separators;

/// Field separators recorded by the scan: covers MSH-1 to MSH-24 directly.
const SLOTS: usize = 24;

/// Acknowledgement mode requested by the sender (MSH-15/MSH-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// MSH-15 and MSH-16 both empty (or `""`): one application ACK, AA/AE/AR.
    Original,
    /// MSH-15 or MSH-16 valued: an accept ACK (CA/CE/CR) governed by MSH-15, then an
    /// application ACK governed by MSH-16.
    Enhanced,
}

/// HL7 table 0155, the values of MSH-15 and MSH-16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCondition {
    /// `AL`
    Always,
    /// `NE`
    Never,
    /// `ER`: only on error or reject.
    ErrorOnly,
    /// `SU`: only on success.
    SuccessOnly,
}

impl AckCondition {
    /// Reads a table 0155 code; `None` for anything else.
    pub fn from_bytes(code: &[u8]) -> Option<AckCondition> {
        match code {
            b"AL" => Some(AckCondition::Always),
            b"NE" => Some(AckCondition::Never),
            b"ER" => Some(AckCondition::ErrorOnly),
            b"SU" => Some(AckCondition::SuccessOnly),
            _ => None,
        }
    }
}

/// A typed view of the MSH segment. `Copy`, under 90 bytes, built without allocating.
///
/// Value accessors return the first component of the first repetition, raw (escapes
/// undecoded), and `None` when it is empty or absent.
#[derive(Debug, Clone, Copy)]
pub struct Msh<'a> {
    line: &'a [u8],
    offset: usize,
    seps: Separators,
    /// Number of entries of `pos` in use.
    count: u8,
    /// `false` when the line has more field separators than `SLOTS`.
    complete: bool,
    /// `pos[k]` = index in `line` of the k-th field separator; `pos[0]` = 3 (MSH-1). u16 keeps
    /// the view small enough to copy in registers; longer lines are not indexed.
    pos: [u16; SLOTS],
}

impl<'a> Msh<'a> {
    /// Scans the MSH line at the start of `bytes` (which must start with `MSH` and the field
    /// separator of `seps`); `offset` is where `bytes` starts in the input.
    ///
    /// The line end comes from `memchr2` (SIMD); the field separators from one pass over the
    /// line 8 bytes at a time (SWAR), so a 300-byte MSH line costs ~40 word steps plus one step
    /// per field, whatever the number of fields accessed later.
    pub(crate) fn scan(bytes: &'a [u8], offset: usize, seps: Separators) -> Msh<'a> {
        let end = memchr2(b'\r', b'\n', bytes).unwrap_or(bytes.len());
        let line = bytes.get(..end).unwrap_or(bytes);
        let mut msh = Msh {
            line,
            offset,
            seps,
            count: 0,
            complete: true,
            pos: [0; SLOTS],
        };
        if line.len() > usize::from(u16::MAX) {
            // Too long for u16 offsets (no real MSH line is): every access scans the line.
            msh.complete = false;
            return msh;
        }
        let mut count = 0usize;
        let mut record = |at: usize| match msh.pos.get_mut(count) {
            Some(slot) => {
                *slot = at as u16; // at < line.len() <= u16::MAX
                count += 1;
                true
            }
            None => false,
        };
        let body = line.get(3..).unwrap_or_default();
        let mut chunks = body.chunks_exact(8);
        let mut base = 3;
        let splat_fs = u64::from_le_bytes([seps.field; 8]);
        let mut full = false;
        'words: for chunk in &mut chunks {
            let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                break; // chunks_exact yields 8 bytes
            };
            let mut hits = zero_bytes(u64::from_le_bytes(word) ^ splat_fs);
            while hits != 0 {
                if !record(base + (hits.trailing_zeros() / 8) as usize) {
                    full = true;
                    break 'words;
                }
                hits &= hits - 1;
            }
            base += 8;
        }
        if !full {
            for (k, &b) in chunks.remainder().iter().enumerate() {
                if b == seps.field && !record(base + k) {
                    full = true;
                    break;
                }
            }
        }
        msh.count = count as u8; // count <= SLOTS
        msh.complete = !full;
        msh
    }

    /// Element `k` of the line split on the field separator (`k` = field number - 1, k >= 1).
    #[inline]
    fn element(&self, k: usize) -> Option<&'a [u8]> {
        let count = usize::from(self.count);
        if k == 0 {
            return self.line.get(..3);
        }
        if k <= count {
            let start = self.pos.get(k - 1).map(|&p| usize::from(p) + 1)?;
            let end = match self.pos.get(k) {
                Some(&p) if k < count => usize::from(p),
                _ if self.complete => self.line.len(),
                _ => {
                    let rest = self.line.get(start..)?;
                    start + memchr(self.seps.field, rest).unwrap_or(rest.len())
                }
            };
            return self.line.get(start..end);
        }
        if self.complete {
            return None;
        }
        // Past the recorded separators (or an unindexed line): scan on from the last one.
        let (from, part) = match count.checked_sub(1).and_then(|i| self.pos.get(i)) {
            Some(&p) => (usize::from(p) + 1, k - count + 1),
            None => (0, k + 1),
        };
        nth_part(self.line.get(from..)?, self.seps.field, part)
    }

    /// Field `n` in HL7 numbering (MSH-1 is the field separator, MSH-2 the encoding
    /// characters, both literal); `None` past the end of the segment.
    pub fn field(&self, n: usize) -> Option<Field<'a>> {
        match n {
            0 => None,
            1 => self
                .line
                .get(3..4)
                .map(|raw| Field::literal(raw, self.seps)),
            2 => self.element(1).map(|raw| Field::literal(raw, self.seps)),
            _ => self.element(n - 1).map(|raw| Field::new(raw, self.seps)),
        }
    }

    /// Component `c` (1-based) of the first repetition of field `n`, raw; `None` when empty.
    #[inline]
    pub fn component(&self, n: usize, c: usize) -> Option<&'a [u8]> {
        if n < 3 {
            return self.field(n)?.component(c);
        }
        component_of_first_repetition(self.element(n - 1)?, &self.seps, c).and_then(non_empty)
    }

    #[inline]
    fn first_component(&self, n: usize) -> Option<&'a [u8]> {
        component_of_first_repetition(self.element(n - 1)?, &self.seps, 1).and_then(non_empty)
    }

    /// The MSH line, without its terminator.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// Byte offset of `MSH` in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The message's separators.
    pub fn separators(&self) -> &Separators {
        &self.seps
    }

    /// The MSH line as a generic [`Segment`].
    pub fn segment(&self) -> Segment<'a> {
        Segment::new(self.line, self.offset, self.seps)
    }

    /// MSH-3.1
    pub fn sending_application(&self) -> Option<&'a [u8]> {
        self.first_component(3)
    }

    /// MSH-4.1
    pub fn sending_facility(&self) -> Option<&'a [u8]> {
        self.first_component(4)
    }

    /// MSH-5.1
    pub fn receiving_application(&self) -> Option<&'a [u8]> {
        self.first_component(5)
    }

    /// MSH-6.1
    pub fn receiving_facility(&self) -> Option<&'a [u8]> {
        self.first_component(6)
    }

    /// MSH-7.1, the message date/time.
    pub fn timestamp(&self) -> Option<&'a [u8]> {
        self.first_component(7)
    }

    /// MSH-9.1, e.g. `ADT`.
    pub fn message_type(&self) -> Option<&'a [u8]> {
        self.first_component(9)
    }

    /// MSH-9.2, e.g. `A01`.
    pub fn trigger_event(&self) -> Option<&'a [u8]> {
        self.component(9, 2)
    }

    /// MSH-9.3, e.g. `ADT_A01`.
    pub fn message_structure(&self) -> Option<&'a [u8]> {
        self.component(9, 3)
    }

    /// MSH-10, the whole field.
    pub fn control_id(&self) -> Option<&'a [u8]> {
        self.element(9).and_then(non_empty)
    }

    /// MSH-11.1: `P`, `T` or `D`.
    pub fn processing_id(&self) -> Option<&'a [u8]> {
        self.first_component(11)
    }

    /// MSH-12.1, e.g. `2.5.1`.
    pub fn version(&self) -> Option<&'a [u8]> {
        self.first_component(12)
    }

    /// MSH-15.1 (table 0155).
    pub fn accept_ack_type(&self) -> Option<&'a [u8]> {
        self.first_component(15)
    }

    /// MSH-16.1 (table 0155).
    pub fn application_ack_type(&self) -> Option<&'a [u8]> {
        self.first_component(16)
    }

    /// MSH-15 read as table 0155; `None` when empty or not a table value.
    pub fn accept_ack_condition(&self) -> Option<AckCondition> {
        self.accept_ack_type().and_then(AckCondition::from_bytes)
    }

    /// MSH-16 read as table 0155; `None` when empty or not a table value.
    pub fn application_ack_condition(&self) -> Option<AckCondition> {
        self.application_ack_type()
            .and_then(AckCondition::from_bytes)
    }

    /// MSH-18, first repetition (e.g. `UNICODE UTF-8`, `8859/1`); `None` means ASCII.
    pub fn charset(&self) -> Option<&'a [u8]> {
        let raw = self.element(17)?;
        non_empty(first_part(raw, self.seps.repetition))
    }

    /// Original mode unless MSH-15 or MSH-16 holds a value. `""` (explicit null) and blanks
    /// (trailing spaces are common in hand-edited files) count as no value.
    pub fn ack_mode(&self) -> AckMode {
        let valued =
            |v: Option<&[u8]>| matches!(v, Some(v) if v != b"\"\"" && v.iter().any(|&b| b != b' '));
        if valued(self.accept_ack_type()) || valued(self.application_ack_type()) {
            AckMode::Enhanced
        } else {
            AckMode::Original
        }
    }

    /// Whether this message is itself an acknowledgement (MSH-9.1 = `ACK`). Never acknowledge
    /// one: two routers doing so would loop forever.
    pub fn is_ack(&self) -> bool {
        self.message_type() == Some(b"ACK")
    }

    /// The fields without which a message cannot be answered or told apart: MSH-9 (its
    /// message type), MSH-10 (its control id) and MSH-12 (its version). `Err` names the first
    /// that is empty or absent, at the byte where its value starts, or where the MSH line ends
    /// when the line stops before it.
    pub fn check_required(&self) -> Result<(), ParseError> {
        let fields = [
            (9, self.message_type()),
            (10, self.control_id()),
            (12, self.version()),
        ];
        match fields.into_iter().find(|(_, value)| value.is_none()) {
            None => Ok(()),
            Some((n, _)) => Err(ParseError::at(
                self.value_offset(n),
                *b"MSH",
                Some(n),
                ErrorKind::RequiredFieldMissing,
            )),
        }
    }

    /// Offset in the input of the value of field `n` (3 or more), or of the end of the line
    /// when the field is absent.
    fn value_offset(&self, n: u16) -> usize {
        let within = match self.element(usize::from(n) - 1) {
            Some(raw) => (raw.as_ptr() as usize).saturating_sub(self.line.as_ptr() as usize),
            None => self.line.len(),
        };
        self.offset + within
    }
}

/// High bit set in each byte of the result exactly where `x` has a zero byte (no false
/// positives: the `& 0x7f` keeps carries inside each byte).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    !(((x & LOW7).wrapping_add(LOW7)) | x) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_byte_test_is_exact() {
        for v in 0..=255u8 {
            let word = u64::from_le_bytes([v, 0, 0x80, 1, 0xff, 0x7f, v, 0x01]);
            let hits = zero_bytes(word);
            for (k, &b) in word.to_le_bytes().iter().enumerate() {
                assert_eq!(hits >> (k * 8 + 7) & 1 == 1, b == 0, "byte {k} = {b}");
            }
        }
    }

    #[test]
    fn every_line_length_and_position() {
        // Field separators and the terminator at every offset modulo 8.
        for len in 0..40 {
            let mut line = b"MSH|^~\\&|".to_vec();
            line.extend(std::iter::repeat_n(b'x', len));
            line.extend_from_slice(b"|A|");
            let m = msh(&line);
            assert_eq!(m.field(3).unwrap().raw().len(), len);
            assert_eq!(m.field(4).unwrap().raw(), b"A");
            assert_eq!(m.field(5).unwrap().raw(), b"");
            line.extend_from_slice(b"B\rPID|1|2");
            let m = msh(&line);
            assert_eq!(m.field(5).unwrap().raw(), b"B");
            assert!(m.field(6).is_none());
            assert_eq!(m.line().len(), line.len() - 8);
        }
    }

    fn msh(bytes: &[u8]) -> Msh<'_> {
        let (seps, _) = Separators::from_header(bytes, 0).unwrap();
        Msh::scan(bytes, 0, seps)
    }

    const ADT: &[u8] = b"MSH|^~\\&|EPIC^1.2.3^ISO|HOSP|ROUTER|NHS|20240101120000||ADT^A04^ADT_A01|CTRL-1|P^T|2.5.1^GBR|||AL|NE||UNICODE UTF-8~8859/1\rEVN|A04\r";

    #[test]
    fn typed_accessors() {
        let m = msh(ADT);
        assert_eq!(m.sending_application(), Some(&b"EPIC"[..]));
        assert_eq!(m.sending_facility(), Some(&b"HOSP"[..]));
        assert_eq!(m.receiving_application(), Some(&b"ROUTER"[..]));
        assert_eq!(m.receiving_facility(), Some(&b"NHS"[..]));
        assert_eq!(m.timestamp(), Some(&b"20240101120000"[..]));
        assert_eq!(m.message_type(), Some(&b"ADT"[..]));
        assert_eq!(m.trigger_event(), Some(&b"A04"[..]));
        assert_eq!(m.message_structure(), Some(&b"ADT_A01"[..]));
        assert_eq!(m.control_id(), Some(&b"CTRL-1"[..]));
        assert_eq!(m.processing_id(), Some(&b"P"[..]));
        assert_eq!(m.version(), Some(&b"2.5.1"[..]));
        assert_eq!(m.accept_ack_type(), Some(&b"AL"[..]));
        assert_eq!(m.application_ack_type(), Some(&b"NE"[..]));
        assert_eq!(m.accept_ack_condition(), Some(AckCondition::Always));
        assert_eq!(m.application_ack_condition(), Some(AckCondition::Never));
        assert_eq!(m.charset(), Some(&b"UNICODE UTF-8"[..]));
        assert_eq!(m.ack_mode(), AckMode::Enhanced);
        assert!(!m.is_ack());
        assert_eq!(
            m.line().len(),
            ADT.iter().position(|&b| b == b'\r').unwrap()
        );
        assert_eq!(m.field(1).unwrap().raw(), b"|");
        assert_eq!(m.field(2).unwrap().raw(), b"^~\\&");
        assert_eq!(m.field(3).unwrap().raw(), b"EPIC^1.2.3^ISO");
        assert_eq!(m.component(3, 2), Some(&b"1.2.3"[..]));
        assert_eq!(m.field(18).unwrap().repetition(2).unwrap().raw(), b"8859/1");
        assert!(m.field(19).is_none());
    }

    #[test]
    fn agrees_with_the_generic_segment_view() {
        let m = msh(ADT);
        let s = m.segment();
        for n in 0..25 {
            assert_eq!(m.field(n), s.field(n), "MSH-{n}");
        }
    }

    #[test]
    fn short_and_empty_fields() {
        let m = msh(b"MSH|^~\\&|||||||ACK|");
        assert_eq!(m.sending_application(), None);
        assert_eq!(m.message_type(), Some(&b"ACK"[..]));
        assert_eq!(m.trigger_event(), None);
        assert_eq!(m.control_id(), None);
        assert!(m.field(10).unwrap().is_empty());
        assert_eq!(m.version(), None);
        assert_eq!(m.ack_mode(), AckMode::Original);
        assert!(m.is_ack());
        let m = msh(b"MSH|^~\\&");
        assert_eq!(m.field(2).unwrap().raw(), b"^~\\&");
        assert!(m.field(3).is_none());
        assert_eq!(m.message_type(), None);
    }

    #[test]
    fn a_line_too_long_to_index_is_still_read() {
        let mut line = b"MSH|^~\\&|APP|".to_vec();
        line.extend(std::iter::repeat_n(b'x', 70_000));
        line.extend_from_slice(b"|R^X||||ADT^A01|ID|P|2.5\rPID|1");
        let m = msh(&line);
        assert_eq!(m.sending_application(), Some(&b"APP"[..]));
        assert_eq!(m.sending_facility().map(|f| f.len()), Some(70_000));
        assert_eq!(m.receiving_application(), Some(&b"R"[..]));
        assert_eq!(m.trigger_event(), Some(&b"A01"[..]));
        assert_eq!(m.version(), Some(&b"2.5"[..]));
        assert!(m.field(13).is_none());
        assert_eq!(m.field(12), m.segment().field(12));
    }

    #[test]
    fn required_fields_are_named_where_they_are_missing() {
        assert_eq!(msh(ADT).check_required(), Ok(()));
        let cases: [(&[u8], u16, usize); 5] = [
            (b"MSH|^~\\&|A|B|C|D|1|||ID|P|2.5", 9, 20),
            (b"MSH|^~\\&|A|B|C|D|1||^A01|ID|P|2.5", 9, 20),
            (b"MSH|^~\\&|A|B|C|D|1||ADT^A01||P|2.5\rPID|1", 10, 28),
            (b"MSH|^~\\&|A|B|C|D|1||ADT^A01|ID|P\rPID|1", 12, 32),
            (b"MSH|^~\\&|App|Fac", 9, 16),
        ];
        for (line, field, offset) in cases {
            let e = msh(line).check_required().unwrap_err();
            assert_eq!(
                (e.segment, e.field, e.offset, e.kind),
                (
                    Some(*b"MSH"),
                    Some(field),
                    offset,
                    ErrorKind::RequiredFieldMissing
                ),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Offsets count from the start of the input, after a preamble.
        let m = crate::hl7v2::Message::parse(b"\n\nMSH|^~\\&|A|B|C|D|1||ADT^A01||P|2.5").unwrap();
        assert_eq!(m.msh().check_required().unwrap_err().offset, 30);
    }

    #[test]
    fn explicit_null_ack_types_mean_original_mode() {
        let m = msh(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.4|||\"\"|\"\"");
        assert_eq!(m.ack_mode(), AckMode::Original);
        let m = msh(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.4||||ER");
        assert_eq!(m.ack_mode(), AckMode::Enhanced);
        let m = msh(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.4||| ");
        assert_eq!(m.ack_mode(), AckMode::Original);
    }

    #[test]
    fn lf_terminated_and_beyond_the_recorded_slots() {
        let mut line = b"MSH|^~\\&".to_vec();
        for n in 3..=40 {
            line.extend_from_slice(format!("|F{n}").as_bytes());
        }
        line.extend_from_slice(b"\nPID|1");
        let m = msh(&line);
        let s = m.segment();
        assert_eq!(s.field_count(), 40);
        for n in 1..=41 {
            assert_eq!(m.field(n), s.field(n), "MSH-{n}");
        }
        assert_eq!(m.field(40).unwrap().raw(), b"F40");
        assert_eq!(m.field(25).unwrap().raw(), b"F25");
        assert_eq!(m.field(24).unwrap().raw(), b"F24");
        assert!(m.field(41).is_none());
        // Exactly SLOTS separators: the last field ends at the line end.
        let mut line = b"MSH|^~\\&".to_vec();
        for n in 3..=25 {
            line.extend_from_slice(format!("|G{n}").as_bytes());
        }
        let m = msh(&line);
        assert_eq!(m.field(25).unwrap().raw(), b"G25");
        assert!(m.field(26).is_none());
        assert_eq!(m.segment().field_count(), 25);
    }
}
