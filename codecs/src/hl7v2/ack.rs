//! The acknowledgement builder: MSH + MSA + (for negative codes) ERR, written into a caller's
//! buffer.
//!
//! The ACK reuses the original's separators, swaps sender and receiver (MSH-3/4 ↔ MSH-5/6, copied
//! raw: same separators, so no re-encoding), answers MSH-9 with `ACK^<trigger>^ACK`, copies
//! MSH-11/12 and MSH-18 (the character set: the copied fields are in it, and a receiver decodes
//! the ACK by it), and echoes MSH-10 into MSA-2. Texts (MSA-3, ERR-8) are written in that
//! character set: UTF-8 when MSH-18 is empty or names Unicode, ISO 8859-1 for `8859/1`, and
//! ASCII otherwise, a character the set cannot hold becoming `?`. The caller supplies the ACK's own MSH-10 and MSH-7
//! (codecs read no clock and invent no ids). Every caller-supplied value is escaped. Segments end
//! with CR. Whether to acknowledge at all (never an ACK: see [`Msh::is_ack`]) and which code to
//! send is the caller's policy.
//!
//! ERR layout (one segment, readable by v2.3 and v2.5+ receivers, which ignore fields they do not
//! know): ERR-1 `SEG^1^field^code&text&HL70357` (v2.3 ELD), ERR-2 `SEG^1^field` (ERL), ERR-3
//! `code^text^HL70357`, ERR-4 `E`, ERR-7 `byte <offset>`, ERR-8 the caller's text. The segment
//! sequence is written as 1 (the first occurrence).

use std::borrow::Cow;

use super::error::ParseError;
use super::escape::escape;
use super::lines::skip_preamble;
use super::message::Message;
use super::msh::Msh;
use super::separators::Separators;

/// MSH-11 of an ACK for input whose MSH could not be read.
pub const FALLBACK_PROCESSING_ID: &[u8] = b"P";
/// MSH-12 of an ACK for input whose MSH could not be read.
pub const FALLBACK_VERSION: &[u8] = b"2.5";

/// MSA-1, HL7 table 0008.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Original mode: application accept.
    AA,
    /// Original mode: application error.
    AE,
    /// Original mode: application reject.
    AR,
    /// Enhanced mode: commit accept.
    CA,
    /// Enhanced mode: commit error.
    CE,
    /// Enhanced mode: commit reject.
    CR,
}

impl AckCode {
    /// The two letters.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// Reads MSA-1.
    pub fn from_bytes(code: &[u8]) -> Option<AckCode> {
        match code {
            b"AA" => Some(AckCode::AA),
            b"AE" => Some(AckCode::AE),
            b"AR" => Some(AckCode::AR),
            b"CA" => Some(AckCode::CA),
            b"CE" => Some(AckCode::CE),
            b"CR" => Some(AckCode::CR),
            _ => None,
        }
    }

    /// AE, AR, CE and CR: the codes that carry an ERR segment.
    pub fn is_negative(&self) -> bool {
        !matches!(self, AckCode::AA | AckCode::CA)
    }

    /// CA, CE and CR: enhanced-mode accept acknowledgements.
    pub fn is_commit(&self) -> bool {
        matches!(self, AckCode::CA | AckCode::CE | AckCode::CR)
    }
}

/// What was wrong, for the ERR segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckError<'x> {
    /// Segment id of the offending segment.
    pub segment: Option<&'x [u8]>,
    /// Field number (HL7 numbering).
    pub field: Option<u16>,
    /// Byte offset in the original message.
    pub offset: Option<usize>,
    /// HL7 table 0357 code (100 segment sequence, 101 required field missing, 102 data type,
    /// 103 table value, 200 unsupported message type, 207 application internal error, …).
    pub code: u16,
    /// Human-readable text (ERR-8).
    pub text: &'x str,
}

impl<'x> AckError<'x> {
    /// The ERR content for a parse error; `text` is usually `err.to_string()`.
    pub fn from_parse_error(err: &'x ParseError, text: &'x str) -> AckError<'x> {
        AckError {
            segment: err.segment.as_ref().map(|s| &s[..]),
            field: err.field,
            offset: Some(err.offset),
            code: err.hl7_code(),
            text,
        }
    }
}

/// One acknowledgement to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack<'x> {
    /// MSA-1.
    pub code: AckCode,
    /// MSH-10 of the ACK itself (a new id, from the caller).
    pub control_id: &'x [u8],
    /// MSH-7 of the ACK (from the caller's clock), e.g. `20240101120000+0000`.
    pub timestamp: &'x [u8],
    /// MSA-3, optional text.
    pub text: Option<&'x str>,
    /// The ERR segment, written only when `code` is negative.
    pub error: Option<AckError<'x>>,
}

/// Appends the ACK for `original` to `out` (the buffer is NOT cleared, so a caller may put a
/// frame header first; clear it yourself to reuse it). With `original == None` (the input had no
/// usable MSH) the ACK uses the default separators, empty sender and receiver, MSH-9 `ACK`,
/// [`FALLBACK_PROCESSING_ID`], [`FALLBACK_VERSION`] and an empty MSA-2; see
/// [`write_ack_for_bytes`] to salvage the control id.
pub fn write_ack(original: Option<&Msh<'_>>, ack: &Ack<'_>, out: &mut Vec<u8>) {
    match original {
        Some(msh) => {
            let raw = |n: usize| msh.field(n).map(|f| f.raw()).unwrap_or_default();
            let header = Header {
                seps: *msh.separators(),
                sender: [raw(5), raw(6)],
                receiver: [raw(3), raw(4)],
                trigger: msh.trigger_event(),
                processing_id: raw(11),
                version: raw(12),
                charset: raw(18),
            };
            write(&header, ack, raw(10), false, out);
        }
        None => write(&Header::fallback(), ack, b"", true, out),
    }
}

/// Appends the ACK for raw input: as [`write_ack`] when it parses as a message; otherwise the
/// fallback ACK with MSA-2 set to whatever MSH-10 could be salvaged from a damaged MSH line.
pub fn write_ack_for_bytes(original: &[u8], ack: &Ack<'_>, out: &mut Vec<u8>) {
    match Message::parse(original) {
        Ok(message) => write_ack(Some(&message.msh()), ack, out),
        Err(_) => {
            let salvaged = salvage_control_id(original).unwrap_or_default();
            write(&Header::fallback(), ack, salvaged, true, out);
        }
    }
}

/// MSH-10 of input whose MSH-2 is unusable: the line must start with `MSH` and a plausible field
/// separator (printable, not a letter or digit); the 10th field is taken as it stands.
pub fn salvage_control_id(original: &[u8]) -> Option<&[u8]> {
    let rest = original.get(skip_preamble(original)..)?;
    let line = rest.strip_prefix(b"MSH")?;
    let (&fs, _) = line.split_first()?;
    if !fs.is_ascii_graphic() || fs.is_ascii_alphanumeric() {
        return None;
    }
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    let line = line.get(..end)?;
    // line = "|enc|MSH-3|…": element 0 is empty (before MSH-1), element 1 is MSH-2.
    line.split(|&b| b == fs).nth(9).filter(|v| !v.is_empty())
}

/// The MSH fields of the ACK that come from the original (raw, already in its encoding).
struct Header<'o> {
    seps: Separators,
    sender: [&'o [u8]; 2],
    receiver: [&'o [u8]; 2],
    trigger: Option<&'o [u8]>,
    processing_id: &'o [u8],
    version: &'o [u8],
    /// MSH-18 as the original has it (every repetition); empty for none.
    charset: &'o [u8],
}

impl Header<'_> {
    /// `text` in the ACK's character set (see the module notes).
    fn text<'t>(&self, text: &'t str) -> Cow<'t, [u8]> {
        if text.is_ascii() {
            return Cow::Borrowed(text.as_bytes());
        }
        let first = self
            .charset
            .split(|&b| b == self.seps.repetition)
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let limit = match first {
            b"" | b"UNICODE" | b"UNICODE UTF-8" | b"UTF-8" => {
                return Cow::Borrowed(text.as_bytes())
            }
            b"8859/1" | b"ISO IR100" => 0xFF,
            _ => 0x7F,
        };
        Cow::Owned(
            text.chars()
                .map(|c| {
                    u8::try_from(u32::from(c))
                        .ok()
                        .filter(|&b| u32::from(b) <= limit)
                })
                .map(|b| b.unwrap_or(b'?'))
                .collect(),
        )
    }
}

impl Header<'static> {
    fn fallback() -> Self {
        Header {
            seps: Separators::default(),
            sender: [b"", b""],
            receiver: [b"", b""],
            trigger: None,
            processing_id: FALLBACK_PROCESSING_ID,
            version: FALLBACK_VERSION,
            charset: b"",
        }
    }
}

/// `acked_id` is MSA-2: raw from a parsed original, or salvaged bytes to escape.
fn write(h: &Header<'_>, ack: &Ack<'_>, acked_id: &[u8], escape_id: bool, out: &mut Vec<u8>) {
    let seps = &h.seps;
    let fs = seps.field;
    let cs = seps.component;
    out.extend_from_slice(b"MSH");
    out.push(fs);
    out.extend_from_slice(seps.encoding_characters().as_bytes());
    for part in h.sender.iter().chain(h.receiver.iter()) {
        out.push(fs);
        out.extend_from_slice(part);
    }
    out.push(fs);
    escape(ack.timestamp, seps, out);
    out.push(fs); // MSH-8 security: empty
    out.push(fs);
    out.extend_from_slice(b"ACK");
    if let Some(trigger) = h.trigger {
        out.push(cs);
        out.extend_from_slice(trigger);
        out.push(cs);
        out.extend_from_slice(b"ACK");
    }
    out.push(fs);
    escape(ack.control_id, seps, out);
    out.push(fs);
    out.extend_from_slice(h.processing_id);
    out.push(fs);
    out.extend_from_slice(h.version);
    if !h.charset.is_empty() {
        // MSH-13 to MSH-17 empty, then MSH-18.
        out.extend_from_slice(&[fs; 6]);
        out.extend_from_slice(h.charset);
    }
    out.push(b'\r');

    out.extend_from_slice(b"MSA");
    out.push(fs);
    out.extend_from_slice(ack.code.as_str().as_bytes());
    out.push(fs);
    if escape_id {
        escape(acked_id, seps, out);
    } else {
        out.extend_from_slice(acked_id);
    }
    if let Some(text) = ack.text.filter(|t| !t.is_empty()) {
        out.push(fs);
        escape(&h.text(text), seps, out);
    }
    out.push(b'\r');

    if let Some(err) = ack.error.as_ref().filter(|_| ack.code.is_negative()) {
        write_err(err, h, out);
    }
}

fn write_err(err: &AckError<'_>, h: &Header<'_>, out: &mut Vec<u8>) {
    let seps = &h.seps;
    let fs = seps.field;
    let cs = seps.component;
    let ss = seps.subcomponent;
    let description = table_0357(err.code).unwrap_or("");
    out.extend_from_slice(b"ERR");
    out.push(fs);
    // ERR-1 (v2.3 ELD): segment^sequence^field^code&text&table
    if let Some(segment) = err.segment {
        escape(segment, seps, out);
        out.push(cs);
        out.push(b'1');
        out.push(cs);
        if let Some(field) = err.field {
            number(out, field.into());
        }
        out.push(cs);
        number(out, err.code.into());
        out.push(ss);
        out.extend_from_slice(description.as_bytes());
        out.push(ss);
        out.extend_from_slice(b"HL70357");
    }
    out.push(fs);
    // ERR-2 (ERL): segment^sequence[^field]
    if let Some(segment) = err.segment {
        escape(segment, seps, out);
        out.push(cs);
        out.push(b'1');
        if let Some(field) = err.field {
            out.push(cs);
            number(out, field.into());
        }
    }
    out.push(fs);
    // ERR-3 (CWE, table 0357) and ERR-4 severity.
    number(out, err.code.into());
    out.push(cs);
    out.extend_from_slice(description.as_bytes());
    out.push(cs);
    out.extend_from_slice(b"HL70357");
    out.push(fs);
    out.push(b'E');
    // ERR-7 diagnostic (the byte offset) and ERR-8 user message, only when there is one.
    if err.offset.is_some() || !err.text.is_empty() {
        out.extend_from_slice(&[fs, fs, fs]);
        if let Some(offset) = err.offset {
            out.extend_from_slice(b"byte ");
            number(out, offset);
        }
        if !err.text.is_empty() {
            out.push(fs);
            escape(&h.text(err.text), seps, out);
        }
    }
    out.push(b'\r');
}

/// Appends `n` in decimal, without going through a `String`.
fn number(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// HL7 table 0357 descriptions.
pub fn table_0357(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "Message accepted",
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        104 => "Value too long",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        202 => "Unsupported processing id",
        203 => "Unsupported version id",
        204 => "Unknown key identifier",
        205 => "Duplicate key identifier",
        206 => "Application record locked",
        207 => "Application internal error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &[u8] = b"MSH|^~\\&|EPIC^1.2^ISO|HOSP|ROUTER|NHS|20240101120000||ADT^A04^ADT_A01|CTRL-1|P|2.5.1\rEVN|A04\r";

    fn ack<'x>(code: AckCode) -> Ack<'x> {
        Ack {
            code,
            control_id: b"ACK-9",
            timestamp: b"20240102030405",
            text: None,
            error: None,
        }
    }

    fn build(original: &[u8], ack: &Ack<'_>) -> Vec<u8> {
        let m = Message::parse(original).unwrap();
        let mut out = Vec::new();
        write_ack(Some(&m.msh()), ack, &mut out);
        out
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn aa_swaps_sender_and_receiver() {
        let out = build(ORIGINAL, &ack(AckCode::AA));
        assert_eq!(
            text(&out),
            "MSH|^~\\&|ROUTER|NHS|EPIC^1.2^ISO|HOSP|20240102030405||ACK^A04^ACK|ACK-9|P|2.5.1\r\
             MSA|AA|CTRL-1\r"
        );
    }

    #[test]
    fn ca_in_the_original_separators() {
        let original = b"MSH^~|\\&^SENDING^200M^RECEIVING^200^20120918173931-0500^^ADT~A24^2003582144^T^2.4^^^AL^AL^^M\nEVN^A24\n";
        let m = Message::parse(original).unwrap();
        assert_eq!(m.msh().ack_mode(), crate::hl7v2::AckMode::Enhanced);
        let out = build(original, &ack(AckCode::CA));
        assert_eq!(
            text(&out),
            "MSH^~|\\&^RECEIVING^200^SENDING^200M^20240102030405^^ACK~A24~ACK^ACK-9^T^2.4^^^^^^M\r\
             MSA^CA^2003582144\r"
        );
    }

    #[test]
    fn ae_with_err_segment_and_escaped_text() {
        let a = Ack {
            text: Some("bad id|see ERR"),
            error: Some(AckError {
                segment: Some(b"PID"),
                field: Some(3),
                offset: Some(120),
                code: 101,
                text: "PID-3 is empty",
            }),
            ..ack(AckCode::AE)
        };
        let out = build(ORIGINAL, &a);
        assert_eq!(
            text(&out),
            "MSH|^~\\&|ROUTER|NHS|EPIC^1.2^ISO|HOSP|20240102030405||ACK^A04^ACK|ACK-9|P|2.5.1\r\
             MSA|AE|CTRL-1|bad id\\F\\see ERR\r\
             ERR|PID^1^3^101&Required field missing&HL70357|PID^1^3|101^Required field missing^HL70357|E|||byte 120|PID-3 is empty\r"
        );
    }

    #[test]
    fn ar_without_location() {
        let a = Ack {
            error: Some(AckError {
                segment: None,
                field: None,
                offset: None,
                code: 200,
                text: "",
            }),
            ..ack(AckCode::AR)
        };
        let out = build(ORIGINAL, &a);
        assert_eq!(
            text(&out),
            "MSH|^~\\&|ROUTER|NHS|EPIC^1.2^ISO|HOSP|20240102030405||ACK^A04^ACK|ACK-9|P|2.5.1\r\
             MSA|AR|CTRL-1\r\
             ERR|||200^Unsupported message type^HL70357|E\r"
        );
        // A positive code never carries ERR, even when an error is given.
        let a = Ack {
            code: AckCode::AA,
            ..a
        };
        assert!(!text(&build(ORIGINAL, &a)).contains("ERR"));
    }

    #[test]
    fn the_character_set_is_carried_and_texts_are_written_in_it() {
        let latin1 = b"MSH|^~\\&|PAS|H\xd4PITAL|EPR|RX8|2026||ADT^A01|L1|P|2.4|||||FRA|8859/1~UNICODE UTF-8\rPID|1\r";
        let a = Ack {
            text: Some("refus\u{e9} \u{2192} \u{e0} l'instant"),
            error: Some(AckError {
                segment: None,
                field: None,
                offset: None,
                code: 207,
                text: "d\u{e9}j\u{e0}",
            }),
            ..ack(AckCode::AR)
        };
        let out = build(latin1, &a);
        let mut expected = b"MSH|^~\\&|EPR|RX8|PAS|H\xd4PITAL|20240102030405||ACK^A01^ACK|ACK-9|P|2.4||||||8859/1~UNICODE UTF-8\r".to_vec();
        expected.extend_from_slice(b"MSA|AR|L1|refus\xe9 ? \xe0 l'instant\r");
        expected
            .extend_from_slice(b"ERR|||207^Application internal error^HL70357|E||||d\xe9j\xe0\r");
        assert_eq!(out, expected, "{}", String::from_utf8_lossy(&out));
        // UTF-8 as it is where MSH-18 says Unicode or nothing; `?` where it says ASCII.
        let utf8 = String::from_utf8(build(ORIGINAL, &a)).unwrap();
        assert!(
            utf8.contains("MSA|AR|CTRL-1|refus\u{e9} \u{2192}"),
            "{utf8}"
        );
        assert!(
            utf8.contains("|P|2.5.1\rMSA|"),
            "no MSH-18 when there was none: {utf8}"
        );
        let ascii = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|C2|P|2.4||||||ASCII\r";
        let out = text(&build(ascii, &a));
        assert!(
            out.contains("|P|2.4||||||ASCII\rMSA|AR|C2|refus? ? ? l'instant\r"),
            "{out}"
        );
    }

    #[test]
    fn ack_for_unparsable_input() {
        let mut out = Vec::new();
        write_ack(None, &ack(AckCode::AR), &mut out);
        assert_eq!(
            text(&out),
            "MSH|^~\\&|||||20240102030405||ACK|ACK-9|P|2.5\rMSA|AR|\r"
        );
        let broken = b"MSH|^~|x|y|z|w|t||ADT^A01|CTRL-9|P|2.4\rPID|1\r";
        let err = Message::parse(broken).unwrap_err();
        let msg = err.to_string();
        let a = Ack {
            error: Some(AckError::from_parse_error(&err, &msg)),
            ..ack(AckCode::AR)
        };
        let mut out = b"\x0b".to_vec();
        write_ack_for_bytes(broken, &a, &mut out);
        assert_eq!(
            text(&out),
            "\x0bMSH|^~\\&|||||20240102030405||ACK|ACK-9|P|2.5\r\
             MSA|AR|CTRL-9\r\
             ERR|MSH^1^2^102&Data type error&HL70357|MSH^1^2|102^Data type error^HL70357|E|||byte 6|\
             byte 6, MSH-2: encoding characters must be 4 (component, repetition, escape, sub-component), found 2\r"
        );
        // Parsable input takes the normal path.
        let mut out = Vec::new();
        write_ack_for_bytes(ORIGINAL, &ack(AckCode::AA), &mut out);
        assert_eq!(out, build(ORIGINAL, &ack(AckCode::AA)));
    }

    #[test]
    fn salvage() {
        assert_eq!(
            salvage_control_id(b"\nMSH|bad|a|b|c|d|e|f|g|ID-7|P"),
            Some(&b"ID-7"[..])
        );
        assert_eq!(salvage_control_id(b"MSH|bad|a|b|c|d|e|f|g||P"), None);
        assert_eq!(salvage_control_id(b"MSH0000|||||||||X"), None);
        assert_eq!(salvage_control_id(b"PID|1"), None);
        assert_eq!(salvage_control_id(b"MSH"), None);
        assert_eq!(salvage_control_id(b"MSH|a|b\r|c|d|e|f|g|h|ID"), None);
    }

    #[test]
    fn codes() {
        for code in [
            AckCode::AA,
            AckCode::AE,
            AckCode::AR,
            AckCode::CA,
            AckCode::CE,
            AckCode::CR,
        ] {
            assert_eq!(AckCode::from_bytes(code.as_str().as_bytes()), Some(code));
        }
        assert!(AckCode::CE.is_negative() && AckCode::CE.is_commit());
        assert!(!AckCode::AA.is_negative() && !AckCode::AA.is_commit());
        assert_eq!(AckCode::from_bytes(b"XX"), None);
        assert_eq!(table_0357(207), Some("Application internal error"));
        assert_eq!(table_0357(999), None);
    }

    #[test]
    fn numbers() {
        for n in [0, 7, 10, 101, 65535, usize::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn appends_without_clearing() {
        let mut out = b"prefix".to_vec();
        write_ack(None, &ack(AckCode::CA), &mut out);
        assert!(out.starts_with(b"prefixMSH|"));
        assert!(out.ends_with(b"MSA|CA|\r"));
    }
}
