#![no_main]
//! Any bytes through every reader of `codecs::hl7v2`: parse, validate, the MSH view, every
//! field and component, escapes (lenient and strict), the required MSH fields, batch splitting
//! and the ACK builder (in the message's own character set). None may panic.
use codecs::hl7v2::{self, Ack, AckCode, FieldPath, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for piece in hl7v2::split_messages(data).flatten() {
        let _ = piece;
    }
    let Ok(message) = Message::parse(data) else {
        let mut out = Vec::new();
        let ack = Ack {
            code: AckCode::AE,
            control_id: b"F",
            timestamp: b"20260101",
            text: Some("x"),
            error: None,
        };
        hl7v2::write_ack_for_bytes(data, &ack, &mut out);
        return;
    };
    let _ = message.validate();
    let msh = message.msh();
    if let Err(e) = msh.check_required() {
        // The place it names must be inside the message.
        assert!(e.offset <= data.len(), "{e}");
    }
    let seps = *message.separators();
    for n in 0..30 {
        if let Some(field) = msh.field(n) {
            let lenient = hl7v2::unescape(field.raw(), &seps);
            match hl7v2::unescape_strict(field.raw(), &seps) {
                // Where the strict reading succeeds, both readings agree.
                Ok(strict) => assert_eq!(&*strict, &*lenient),
                Err(at) => assert!(at <= field.raw().len()),
            }
        }
    }
    let _ = (msh.control_id(), msh.message_type(), msh.trigger_event(), msh.charset(), msh.ack_mode());
    for segment in message.segments().take(64) {
        for n in 0..segment.field_count().min(64) {
            if let Some(field) = segment.field(n) {
                let _ = field.decoded(&seps);
                for r in 1..4 {
                    if let Some(rep) = field.repetition(r) {
                        let _ = rep.component(2);
                        let _ = rep.subcomponent(1, 2);
                    }
                }
            }
        }
    }
    if let Ok(path) = FieldPath::parse("PID-3[2].4.1") {
        let _ = message.get(&path);
    }
    let mut out = Vec::new();
    let ack = Ack {
        code: AckCode::AR,
        control_id: b"F",
        timestamp: b"20260101",
        text: Some("x"),
        error: None,
    };
    hl7v2::write_ack(Some(&msh), &ack, &mut out);
    let _ = Message::parse(&out).expect("our own ACK parses");
});
