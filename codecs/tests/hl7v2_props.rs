//! Property tests for `codecs::hl7v2`: nothing panics on random or mutated input, escaping
//! round-trips for any separators, messages built from random values read back the same
//! values, and ACKs parse back with the original's control id and swapped parties.

use codecs::hl7v2::{
    escape, split_messages, unescape, write_ack, write_ack_for_bytes, Ack, AckCode, AckError,
    Batch, FieldPath, Message, Separators,
};
use proptest::prelude::*;

const ADT: &[u8] = b"MSH|^~\\&|EPIC^1.2^ISO|HOSP|ROUTER|NHS|20240101120000||ADT^A04^ADT_A01|CTRL-1|P|2.5.1|||AL|NE||UNICODE UTF-8\rEVN|A04|20240101\rPID|1||123^^^H^MR~456^^^N^NH||DOE^JOHN^^^^^L||19700101|M|||1 HIGH ST^^LEEDS^^LS1 1AA\rPV1|1|I|W1^B2\rOBX|1|TX|||line\\.br\\two \\T\\ \\X0D0A\\ \\H\\x\\N\\ \\Zq\\\rZU1|a&b^c~d\r";

/// Printable ASCII that is neither a letter nor a digit: what a delimiter may be.
fn delimiter_chars() -> Vec<u8> {
    (0x21u8..0x7f)
        .filter(|b| !b.is_ascii_alphanumeric())
        .collect()
}

/// Random valid separators, with or without a truncation character.
fn separators() -> impl Strategy<Value = Separators> {
    (
        proptest::sample::subsequence(delimiter_chars(), 6).prop_shuffle(),
        any::<bool>(),
    )
        .prop_map(|(d, truncation)| Separators {
            field: d[0],
            component: d[1],
            repetition: d[2],
            escape: d[3],
            subcomponent: d[4],
            truncation: truncation.then_some(d[5]),
        })
}

/// Bytes biased towards the ones the parser cares about.
fn hl7ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"MSH",
        b"FHS",
        b"BHS",
        b"BTS",
        b"FTS",
        b"PID",
        b"|",
        b"^",
        b"~",
        b"\\",
        b"&",
        b"#",
        b"^~\\&",
        b"\r",
        b"\n",
        b"\r\n",
        b"\x0b",
        b"\x1c",
        b"\x00",
        b"\xEF\xBB\xBF",
        b"\"\"",
        b"\\X0D\\",
        b"\\.br\\",
        b"\\.sp9\\",
        b"\\F\\",
        b"\\P\\",
        b"A01",
        b"0",
        b" ",
        b"\xff",
    ];
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(tokens).prop_map(|t| t.to_vec()),
            any::<u8>().prop_map(|b| vec![b]),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// Touches every accessor; must not panic whatever the message holds.
fn exercise(m: &Message<'_>) {
    let seps = *m.separators();
    let msh = m.msh();
    let _ = (
        msh.sending_application(),
        msh.sending_facility(),
        msh.receiving_application(),
        msh.receiving_facility(),
        msh.timestamp(),
        msh.message_type(),
        msh.trigger_event(),
        msh.message_structure(),
        msh.control_id(),
        msh.processing_id(),
        msh.version(),
        msh.accept_ack_type(),
        msh.application_ack_type(),
        msh.accept_ack_condition(),
        msh.charset(),
        msh.ack_mode(),
        msh.is_ack(),
        msh.line(),
    );
    for n in 0..32 {
        assert_eq!(msh.field(n), msh.segment().field(n));
        let _ = msh.component(n, 2);
    }
    for seg in m.segments() {
        let _ = (seg.id(), seg.is_header(), seg.field_count());
        for field in seg.fields() {
            let _ = field.decoded(&seps);
            for rep in field.repetitions() {
                for c in 0..4 {
                    let _ = (
                        rep.component(c),
                        rep.subcomponent(c, 1),
                        rep.subcomponent(c, 2),
                    );
                }
            }
        }
    }
    for path in [
        "MSH-1",
        "MSH-2",
        "MSH-9.2",
        "MSH-30",
        "PID-3[2].4.1",
        "PID-5",
        "ZU1-1.2",
    ] {
        let _ = m.get(&FieldPath::parse(path).unwrap());
    }
    if let Err(e) = m.validate() {
        assert!(e.offset < m.bytes().len());
        let _ = e.to_string();
    }
}

fn check_input(bytes: &[u8]) {
    match Message::parse(bytes) {
        Ok(m) => exercise(&m),
        Err(e) => {
            assert!(e.offset <= bytes.len(), "{e}");
            assert!(e.to_string().starts_with(&format!("byte {}", e.offset)));
        }
    }
    for item in split_messages(bytes) {
        match item {
            Ok((offset, slice)) => {
                assert_eq!(bytes.get(offset..offset + slice.len()), Some(slice));
                if let Ok(m) = Message::parse(slice) {
                    exercise(&m);
                }
            }
            Err(e) => assert!(e.offset < bytes.len()),
        }
    }
    let _ = Batch::scan(bytes).map(|b| b.declared_count());
    let _ = unescape(bytes, &Separators::default());
    let mut out = Vec::new();
    write_ack_for_bytes(bytes, &ack(AckCode::AR), &mut out);
    assert!(Message::parse(&out).is_ok());
}

fn ack(code: AckCode) -> Ack<'static> {
    Ack {
        code,
        control_id: b"ACK-1",
        timestamp: b"20240102030405",
        text: Some("text | with ^ delimiters"),
        error: Some(AckError {
            segment: Some(b"PID"),
            field: Some(3),
            offset: Some(10),
            code: 101,
            text: "PID-3 & more",
        }),
    }
}

/// Builds `value` escaped as one field.
fn escaped(value: &[u8], seps: &Separators) -> Vec<u8> {
    let mut out = Vec::new();
    escape(value, seps, &mut out);
    out
}

/// Appends `fs` + the components of one field, each escaped.
fn push_field(out: &mut Vec<u8>, seps: &Separators, components: &[&[u8]]) {
    out.push(seps.field);
    for (c, value) in components.iter().enumerate() {
        if c > 0 {
            out.push(seps.component);
        }
        escape(value, seps, out);
    }
}

/// `MSH` + MSH-1 + MSH-2, then the given fields from MSH-3 on.
fn msh_line(seps: &Separators, fields: &[&[&[u8]]]) -> Vec<u8> {
    let mut out = b"MSH".to_vec();
    out.push(seps.field);
    out.extend_from_slice(seps.encoding_characters().as_bytes());
    for components in fields {
        push_field(&mut out, seps, components);
    }
    out
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_input(&bytes);
    }

    #[test]
    fn hl7_like_bytes_never_panic(bytes in hl7ish_bytes()) {
        check_input(&bytes);
        let mut with_msh = b"MSH|^~\\&|".to_vec();
        with_msh.extend_from_slice(&bytes);
        check_input(&with_msh);
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = ADT.to_vec();
        for (at, byte, op) in edits {
            let at = at % (bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.push(byte),
            }
        }
        check_input(&bytes);
    }

    #[test]
    fn field_paths_never_panic_and_round_trip(s in "\\PC{0,16}", valid in (
        "[A-Z][A-Z0-9]{2}", 1u16.., proptest::option::of(1u16..), proptest::option::of((1u16.., proptest::option::of(1u16..)))
    )) {
        if let Ok(p) = FieldPath::parse(&s) {
            prop_assert_eq!(FieldPath::parse(&p.to_string()), Ok(p));
        }
        let (seg, field, rep, comp) = valid;
        let mut text = format!("{seg}-{field}");
        if let Some(r) = rep {
            text.push_str(&format!("[{r}]"));
        }
        if let Some((c, s)) = comp {
            text.push_str(&format!(".{c}"));
            if let Some(s) = s {
                text.push_str(&format!(".{s}"));
            }
        }
        let p = FieldPath::parse(&text).unwrap();
        prop_assert_eq!(p.to_string(), text);
        prop_assert_eq!(p.field(), field);
        prop_assert_eq!(p.repetition(), rep);
    }

    #[test]
    fn escape_then_unescape_is_identity(
        value in proptest::collection::vec(any::<u8>(), 0..80),
        seps in separators(),
    ) {
        let out = escaped(&value, &seps);
        prop_assert!(!out.iter().any(|&b| b == seps.field || b == seps.component
            || b == seps.repetition || b == seps.subcomponent || Some(b) == seps.truncation
            || b == b'\r' || b == b'\n'));
        let back = unescape(&out, &seps);
        prop_assert_eq!(back.as_ref(), &value[..]);
    }

    #[test]
    fn unescape_of_plain_bytes_borrows(
        value in proptest::collection::vec(any::<u8>(), 0..80),
        seps in separators(),
    ) {
        let plain: Vec<u8> = value.into_iter().filter(|&b| b != seps.escape).collect();
        prop_assert!(matches!(unescape(&plain, &seps), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn built_messages_read_back(
        seps in separators(),
        parties in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 4),
        control_id in "[A-Za-z0-9.-]{1,20}",
        segments in proptest::collection::vec(
            ("Z[A-Z0-9]{2}", proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..10), 1..4),
                0..6,
            )),
            0..5,
        ),
        eol in proptest::sample::select(vec![&b"\r"[..], b"\n", b"\r\n"]),
    ) {
        let fs = seps.field;
        let msh9 = [&b"ADT"[..], b"A01", b"ADT_A01"];
        let mut msg = msh_line(&seps, &[
            &[&parties[0]], &[&parties[1]], &[&parties[2]], &[&parties[3]],
            &[b"20240101"], &[], &msh9, &[control_id.as_bytes()], &[b"P"], &[b"2.7"],
        ]);
        msg.extend_from_slice(eol);
        for (id, fields) in &segments {
            msg.extend_from_slice(id.as_bytes());
            for components in fields {
                msg.push(fs);
                for (c, value) in components.iter().enumerate() {
                    if c > 0 {
                        msg.push(seps.component);
                    }
                    msg.extend_from_slice(&escaped(value, &seps));
                }
            }
            msg.extend_from_slice(eol);
        }

        let m = Message::parse(&msg).unwrap();
        prop_assert_eq!(m.separators(), &seps);
        m.validate().unwrap();
        let msh = m.msh();
        let getters = [
            msh.sending_application(),
            msh.sending_facility(),
            msh.receiving_application(),
            msh.receiving_facility(),
        ];
        for (got, want) in getters.iter().zip(&parties) {
            let got = got.map(|g| unescape(g, &seps).into_owned()).unwrap_or_default();
            prop_assert_eq!(&got, want);
        }
        let dec = |v: Option<&[u8]>| v.map(|v| unescape(v, &seps).into_owned());
        prop_assert_eq!(dec(msh.message_type()), Some(b"ADT".to_vec()));
        prop_assert_eq!(dec(msh.trigger_event()), Some(b"A01".to_vec()));
        prop_assert_eq!(dec(msh.message_structure()), Some(b"ADT_A01".to_vec()));
        prop_assert_eq!(dec(msh.control_id()), Some(control_id.clone().into_bytes()));
        prop_assert_eq!(dec(msh.processing_id()), Some(b"P".to_vec()));
        prop_assert_eq!(dec(msh.version()), Some(b"2.7".to_vec()));
        prop_assert_eq!(m.segments().count(), 1 + segments.len());
        for (seg, (id, fields)) in m.segments().skip(1).zip(&segments) {
            prop_assert_eq!(seg.id(), id.as_bytes());
            prop_assert_eq!(seg.field_count(), fields.len());
            for (n, components) in fields.iter().enumerate() {
                let field = seg.field(n + 1).unwrap();
                prop_assert_eq!(field.repetition_count(), usize::from(!field.raw().is_empty()));
                for (c, value) in components.iter().enumerate() {
                    let got = field.component(c + 1).map(|v| unescape(v, &seps).into_owned());
                    prop_assert_eq!(got.unwrap_or_default(), value.clone());
                }
                if components.len() == 1 {
                    let decoded = field.decoded(&seps);
                    prop_assert_eq!(decoded.as_ref(), &components[0][..]);
                }
            }
        }
    }

    #[test]
    fn acks_parse_back(
        seps in separators(),
        parties in proptest::collection::vec("[A-Za-z0-9 .]{0,10}", 4),
        control_id in "[A-Za-z0-9.-]{1,20}",
        code in proptest::sample::select(vec![
            AckCode::AA, AckCode::AE, AckCode::AR, AckCode::CA, AckCode::CE, AckCode::CR,
        ]),
        text in proptest::option::of(any::<String>()),
        prefix in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let p: Vec<&[u8]> = parties.iter().map(|p| p.as_bytes()).collect();
        let mut original = msh_line(&seps, &[
            &[p[0]], &[p[1]], &[p[2]], &[p[3]], &[b"20240101"], &[], &[b"ORU", b"R01"],
            &[control_id.as_bytes()], &[b"T"], &[b"2.5.1"],
        ]);
        original.extend_from_slice(b"\rPID");
        push_field(&mut original, &seps, &[b"1"]);
        original.push(b'\r');
        let m = Message::parse(&original).unwrap();
        let a = Ack { text: text.as_deref(), ..ack(code) };
        let mut out = prefix.clone();
        write_ack(Some(&m.msh()), &a, &mut out);
        prop_assert!(out.starts_with(&prefix));
        let reply = Message::parse(&out[prefix.len()..]).unwrap();
        reply.validate().unwrap();
        prop_assert_eq!(reply.separators(), &seps);
        let r = reply.msh();
        let o = m.msh();
        prop_assert_eq!(r.sending_application(), o.receiving_application());
        prop_assert_eq!(r.sending_facility(), o.receiving_facility());
        prop_assert_eq!(r.receiving_application(), o.sending_application());
        prop_assert_eq!(r.receiving_facility(), o.sending_facility());
        prop_assert!(r.is_ack());
        prop_assert_eq!(r.trigger_event(), o.trigger_event());
        let ack_id = r.control_id().map(|v| unescape(v, &seps).into_owned());
        prop_assert_eq!(ack_id.as_deref(), Some(&b"ACK-1"[..]));
        prop_assert_eq!(r.version(), o.version());
        prop_assert_eq!(r.field(12).unwrap().raw(), o.field(12).unwrap().raw());
        let msa = reply.segment(b"MSA").unwrap();
        prop_assert_eq!(msa.field(1).unwrap().raw(), code.as_str().as_bytes());
        prop_assert_eq!(msa.field(2).unwrap().raw(), o.field(10).unwrap().raw());
        let acked = msa.field(2).unwrap().decoded(&seps);
        prop_assert_eq!(acked.as_ref(), control_id.as_bytes());
        let want_text = text.as_deref().filter(|t| !t.is_empty()).map(str::as_bytes);
        let got_text = msa.field(3).map(|f| f.decoded(&seps).into_owned());
        prop_assert_eq!(got_text.as_deref(), want_text);
        let err = reply.segment(b"ERR");
        prop_assert_eq!(err.is_some(), code.is_negative());
        if let Some(err) = err {
            prop_assert_eq!(err.field(3).unwrap().component(1), Some(&b"101"[..]));
            prop_assert_eq!(err.field(4).unwrap().raw(), b"E");
            let user_text = err.field(8).unwrap().decoded(&seps);
            prop_assert_eq!(user_text.as_ref(), b"PID-3 & more");
        }
        prop_assert_eq!(reply.segments().count(), 2 + usize::from(code.is_negative()));
    }
}
