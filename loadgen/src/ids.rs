//! Message identifiers that carry their own bookkeeping: a 32-bit run tag (one per step, so a
//! late delivery from an earlier step is never counted in a later one) and a 48-bit sequence
//! number, as 20 upper-case hex digits. HL7v2 carries them as MSH-10 (20 characters, the
//! ST limit); ITK as the tail of an upper-case UUID (tracking id and WS-Addressing MessageID).

/// The control id for `seq` in the run tagged `tag`.
pub fn control_id(tag: u32, seq: u64) -> String {
    format!("{tag:08X}{:012X}", seq & 0xFFFF_FFFF_FFFF)
}

/// The UUID form: `TTTTTTTT-0000-4000-8000-SSSSSSSSSSSS`.
pub fn uuid(tag: u32, seq: u64) -> String {
    format!("{tag:08X}-0000-4000-8000-{:012X}", seq & 0xFFFF_FFFF_FFFF)
}

fn hex(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in bytes {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'F' => b - b'A' + 10,
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// `(tag, seq)` from either form; `None` for identifiers loadgen did not make.
pub fn parse(id: &[u8]) -> Option<(u32, u64)> {
    match id.len() {
        20 => Some((hex(&id[..8])? as u32, hex(&id[8..])?)),
        36 if &id[8..24] == b"-0000-4000-8000-" => Some((hex(&id[..8])? as u32, hex(&id[24..])?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_back() {
        assert_eq!(control_id(0xAB, 5), "000000AB000000000005");
        assert_eq!(parse(b"000000AB000000000005"), Some((0xAB, 5)));
        assert_eq!(uuid(1, 0x1F), "00000001-0000-4000-8000-00000000001F");
        assert_eq!(parse(uuid(1, 0x1F).as_bytes()), Some((1, 0x1F)));
        assert_eq!(parse(b"MSG00017342"), None);
        assert_eq!(parse(b"00000001-0000-4000-9000-00000000001F"), None);
        assert_eq!(parse(b"0000000G000000000005"), None);
    }
}
