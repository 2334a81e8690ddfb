//! Property tests for the MLLP decoder: any bytes, any split, no panic, same frames.
use codecs::mllp::{encode, Decoder, Event};
use proptest::prelude::*;

/// A frame (Ok) or the head of an oversized one (Err), owned.
type Decoded = Result<Vec<u8>, Vec<u8>>;

/// Decodes `input` delivered in pieces cut at `cuts`; returns frames (Ok) and oversize heads (Err).
fn decode_in_pieces(max: usize, input: &[u8], cuts: &[usize]) -> Vec<Decoded> {
    let mut dec = Decoder::new(max);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    for cut in points {
        buf.extend_from_slice(&input[last..cut]);
        last = cut;
        loop {
            let d = dec.decode(&buf);
            let ev = d.event.map(|e| match e {
                Event::Frame(f) => Ok(f.to_vec()),
                Event::TooLarge { head } => Err(head.to_vec()),
            });
            buf.drain(..d.consumed);
            match ev {
                Some(e) => out.push(e),
                None => break,
            }
        }
        assert!(buf.len() <= max + 2);
    }
    out
}

/// Payloads never contain the start byte or an END CR pair, as in real HL7.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>().prop_filter("no VT", |b| *b != 0x0B), 0..200).prop_map(
        |mut v| {
            for i in 1..v.len() {
                if v[i - 1] == 0x1C && v[i] == 0x0D {
                    v[i] = b'x';
                }
            }
            if v.last() == Some(&0x1C) {
                v.pop();
            }
            v
        },
    )
}

proptest! {
    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2000),
                                cuts in proptest::collection::vec(any::<usize>(), 0..8),
                                max in 1usize..300) {
        let _ = decode_in_pieces(max, &input, &cuts);
    }

    #[test]
    fn frames_survive_any_split(payloads in proptest::collection::vec(payload(), 1..6),
                                junk in proptest::collection::vec(
                                    any::<u8>().prop_filter("not VT", |b| *b != 0x0B), 0..20),
                                cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut input = junk.clone();
        for p in &payloads {
            encode(p, &mut input);
        }
        let got = decode_in_pieces(256, &input, &cuts);
        let want: Vec<_> = payloads.iter().cloned().map(Ok).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn oversized_frames_are_reported_once_and_the_next_frame_survives(
        big in 11usize..500, cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut input = Vec::new();
        encode(&vec![b'a'; big], &mut input);
        encode(b"MSH|next", &mut input);
        let got = decode_in_pieces(10, &input, &cuts);
        prop_assert_eq!(got, vec![Err(vec![b'a'; 10]), Ok(b"MSH|next".to_vec())]);
    }
}
