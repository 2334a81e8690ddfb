//! Text from HL7v2 bytes, by the message's own character set (MSH-18, HL7 table 0211).
//!
//! The router forwards bytes untouched; only what people read (inspect, explain, logs) is
//! decoded, so a mistake here can never corrupt a message in transit. Decoding is lossy by
//! design: a byte that is not valid in the declared set becomes U+FFFD rather than an error,
//! because the reader still wants to see the rest of the value.
use std::borrow::Cow;

use encoding_rs::Encoding;

/// A character set named by MSH-18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8: `UNICODE UTF-8`, plain `UNICODE` as NHS ITK profiles send it, and an empty MSH-18.
    /// HL7 makes ASCII the default, but real senders put UTF-8 in messages that declare nothing,
    /// and UTF-8 reads ASCII unchanged.
    Utf8,
    /// ISO 8859-1 exactly (byte n is U+00nn); not windows-1252, which the WHATWG label maps it to.
    Latin1,
    /// Any other set that encoding_rs knows.
    Other(&'static Encoding),
}

impl Charset {
    /// The set MSH-18 names; `None` for a name this table does not know.
    pub fn from_msh18(value: Option<&[u8]>) -> Option<Charset> {
        let name = match value {
            None => return Some(Charset::Utf8),
            Some(v) => v.trim_ascii(),
        };
        let upper = name.to_ascii_uppercase();
        let charset = match upper.as_slice() {
            b"" | b"ASCII" | b"ISO IR6" | b"UNICODE" | b"UNICODE UTF-8" | b"UTF-8" => Charset::Utf8,
            b"8859/1" | b"ISO IR100" => Charset::Latin1,
            b"8859/2" | b"ISO IR101" => Charset::Other(encoding_rs::ISO_8859_2),
            b"8859/3" | b"ISO IR109" => Charset::Other(encoding_rs::ISO_8859_3),
            b"8859/4" | b"ISO IR110" => Charset::Other(encoding_rs::ISO_8859_4),
            b"8859/5" | b"ISO IR144" => Charset::Other(encoding_rs::ISO_8859_5),
            b"8859/6" | b"ISO IR127" => Charset::Other(encoding_rs::ISO_8859_6),
            b"8859/7" | b"ISO IR126" => Charset::Other(encoding_rs::ISO_8859_7),
            b"8859/8" | b"ISO IR138" => Charset::Other(encoding_rs::ISO_8859_8),
            // encoding_rs has no ISO 8859-9; windows-1254 is its superset.
            b"8859/9" | b"ISO IR148" => Charset::Other(encoding_rs::WINDOWS_1254),
            b"8859/15" | b"ISO IR203" => Charset::Other(encoding_rs::ISO_8859_15),
            b"ISO IR14" | b"ISO IR87" | b"ISO IR159" => Charset::Other(encoding_rs::SHIFT_JIS),
            b"GB 18030-2000" | b"GB18030" => Charset::Other(encoding_rs::GB18030),
            b"KS X 1001" => Charset::Other(encoding_rs::EUC_KR),
            b"BIG-5" | b"CNS 11643-1992" => Charset::Other(encoding_rs::BIG5),
            b"UNICODE UTF-16" => Charset::Other(encoding_rs::UTF_16LE),
            _ => return None,
        };
        Some(charset)
    }

    /// `bytes` as text in this set.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Cow<'a, str> {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes),
            Charset::Latin1 => match std::str::from_utf8(bytes) {
                Ok(ascii) if bytes.is_ascii() => Cow::Borrowed(ascii),
                _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            },
            Charset::Other(encoding) => encoding.decode_without_bom_handling(bytes).0,
        }
    }
}

/// A whole input as UTF-8 when it starts with a UTF-16 byte-order mark: HL7 files saved by
/// Windows tools come that way, and every codec here reads 8-bit text. `None` otherwise.
pub fn transcode_utf16(input: &[u8]) -> Option<Vec<u8>> {
    let (encoding, _) = Encoding::for_bom(input)?;
    if encoding == encoding_rs::UTF_8 {
        return None;
    }
    let (text, _) = encoding.decode_with_bom_removal(input);
    Some(text.into_owned().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_table_0211() {
        assert_eq!(Charset::from_msh18(None), Some(Charset::Utf8));
        assert_eq!(
            Charset::from_msh18(Some(b"UNICODE UTF-8")),
            Some(Charset::Utf8)
        );
        assert_eq!(Charset::from_msh18(Some(b"unicode")), Some(Charset::Utf8));
        assert_eq!(Charset::from_msh18(Some(b"8859/1")), Some(Charset::Latin1));
        assert_eq!(
            Charset::from_msh18(Some(b"8859/15")),
            Some(Charset::Other(encoding_rs::ISO_8859_15))
        );
        assert_eq!(Charset::from_msh18(Some(b"EBCDIC")), None);
    }

    #[test]
    fn latin1_is_exact_not_windows_1252() {
        // 0x80 is a C1 control in ISO 8859-1 but the euro sign in windows-1252.
        assert_eq!(Charset::Latin1.decode(b"Fran\xe7ois\x80"), "François\u{80}");
        assert_eq!(Charset::Latin1.decode(b"plain"), "plain");
    }

    #[test]
    fn other_sets_decode() {
        let euro = Charset::from_msh18(Some(b"8859/15")).unwrap();
        assert_eq!(euro.decode(b"\xa4"), "€");
        assert_eq!(Charset::Utf8.decode("Siobhán".as_bytes()), "Siobhán");
    }

    #[test]
    fn utf16_files_become_utf8() {
        let mut le = vec![0xFF, 0xFE];
        for unit in "MSH|^~\\&|é".encode_utf16() {
            le.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(transcode_utf16(&le).unwrap(), "MSH|^~\\&|é".as_bytes());
        assert_eq!(transcode_utf16(b"MSH|"), None);
        assert_eq!(transcode_utf16(b"\xef\xbb\xbfMSH|"), None);
    }
}
