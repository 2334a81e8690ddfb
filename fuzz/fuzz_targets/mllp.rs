#![no_main]
//! Any bytes, delivered in pieces whose sizes come from the input itself: the decoder must
//! never panic, never return a frame over its limit, and never make the caller's buffer grow
//! past the limit.
use codecs::mllp::{Decoder, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(first) + 1;
    let mut decoder = Decoder::new(max);
    let mut buf = Vec::new();
    for chunk in rest.chunks(usize::from(first % 17) + 1) {
        buf.extend_from_slice(chunk);
        loop {
            // Callers ask this before each decode (to spot bytes outside a frame).
            let _ = decoder.between_frames();
            let decoded = decoder.decode(&buf);
            let more = match decoded.event {
                Some(Event::Frame(frame)) => {
                    assert!(frame.len() <= max);
                    true
                }
                Some(Event::TooLarge { head }) => {
                    assert_eq!(head.len(), max);
                    true
                }
                None => false,
            };
            buf.drain(..decoded.consumed);
            if !more {
                break;
            }
        }
        assert!(buf.len() <= max + 2);
    }
});
