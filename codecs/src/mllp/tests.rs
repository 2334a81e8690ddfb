use super::*;

/// A frame (Ok) or the head of an oversized one (Err), owned.
type Owned = Result<Vec<u8>, Vec<u8>>;

/// Feeds `chunks` one after another through a buffer the way a connection would, and returns
/// every event (frames as owned bytes, oversized frames as `Err(head)`) plus the skip count.
fn run(max: usize, chunks: &[&[u8]]) -> (Vec<Owned>, u64) {
    let mut dec = Decoder::new(max);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let d = dec.decode(&buf);
            let event = d.event.map(|e| match e {
                Event::Frame(f) => Ok(f.to_vec()),
                Event::TooLarge { head } => Err(head.to_vec()),
            });
            buf.drain(..d.consumed);
            match event {
                Some(e) => out.push(e),
                None => break,
            }
        }
        assert!(
            buf.len() <= max + 2,
            "buffer grew to {} past max {max}",
            buf.len()
        );
    }
    (out, dec.skipped())
}

fn framed(p: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode(p, &mut v);
    v
}

#[test]
fn one_frame() {
    let (ev, skipped) = run(100, &[b"\x0bMSH|^~\\&|A\r\x1c\r"]);
    assert_eq!(ev, vec![Ok(b"MSH|^~\\&|A\r".to_vec())]);
    assert_eq!(skipped, 0);
}

#[test]
fn several_frames_in_one_read() {
    let mut input = framed(b"one");
    input.extend(framed(b"two"));
    input.extend(framed(b"three"));
    let (ev, _) = run(100, &[&input]);
    assert_eq!(
        ev,
        vec![
            Ok(b"one".to_vec()),
            Ok(b"two".to_vec()),
            Ok(b"three".to_vec())
        ]
    );
}

#[test]
fn trailer_split_between_end_and_cr() {
    let (ev, _) = run(100, &[b"\x0babc\x1c", b"\r"]);
    assert_eq!(ev, vec![Ok(b"abc".to_vec())]);
}

#[test]
fn every_split_point_gives_the_same_frames() {
    let mut input = b"junk\n".to_vec();
    input.extend(framed(b"MSH|first\rPID|1\r"));
    input.extend(b"\n");
    input.extend(framed(b"MSH|second\r"));
    for cut in 0..=input.len() {
        let (ev, skipped) = run(100, &[&input[..cut], &input[cut..]]);
        assert_eq!(
            ev,
            vec![
                Ok(b"MSH|first\rPID|1\r".to_vec()),
                Ok(b"MSH|second\r".to_vec())
            ],
            "cut at {cut}"
        );
        assert_eq!(skipped, 6, "cut at {cut}");
    }
}

#[test]
fn byte_at_a_time() {
    let input = framed(b"MSH|x\r");
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    let (ev, _) = run(100, &chunks);
    assert_eq!(ev, vec![Ok(b"MSH|x\r".to_vec())]);
}

#[test]
fn garbage_before_start_is_skipped_and_counted() {
    let mut input = b"\n\nlog line\0".to_vec();
    input.extend(framed(b"m"));
    let (ev, skipped) = run(100, &[&input]);
    assert_eq!(ev, vec![Ok(b"m".to_vec())]);
    assert_eq!(skipped, 11);
}

#[test]
fn end_byte_without_cr_is_data() {
    let (ev, _) = run(100, &[b"\x0ba\x1cb\x1c\r"]);
    assert_eq!(ev, vec![Ok(b"a\x1cb".to_vec())]);
}

#[test]
fn frame_of_exactly_max_is_accepted() {
    let payload = vec![b'x'; 10];
    let (ev, _) = run(10, &[&framed(&payload)]);
    assert_eq!(ev, vec![Ok(payload)]);
}

#[test]
fn oversized_frame_is_reported_and_decoder_resynchronises() {
    let mut input = framed(&[b'x'; 11]);
    input.extend(framed(b"next"));
    let (ev, _) = run(10, &[&input]);
    assert_eq!(ev, vec![Err(vec![b'x'; 10]), Ok(b"next".to_vec())]);
}

#[test]
fn oversized_frame_arriving_slowly_never_grows_the_buffer() {
    let big = vec![b'y'; 5000];
    let mut input = framed(&big);
    input.extend(framed(b"ok"));
    let chunks: Vec<&[u8]> = input.chunks(7).collect();
    let (ev, _) = run(64, &chunks);
    assert_eq!(ev, vec![Err(vec![b'y'; 64]), Ok(b"ok".to_vec())]);
}

#[test]
fn start_byte_inside_oversized_tail_resynchronises_there() {
    // The oversized frame is cut at the limit; a start byte in its tail begins a new frame.
    let input = b"\x0bAAAAAAAAAAAA\x0bgood\x1c\r";
    let (ev, _) = run(5, &[input]);
    assert_eq!(ev, vec![Err(b"AAAAA".to_vec()), Ok(b"good".to_vec())]);
}

#[test]
fn half_a_frame_is_reported_as_in_frame() {
    let mut dec = Decoder::new(100);
    let d = dec.decode(b"\x0bMSH|half");
    assert_eq!(
        d,
        Decoded {
            consumed: 0,
            event: None
        }
    );
    assert!(dec.in_frame());
}

#[test]
fn empty_input_needs_more() {
    let mut dec = Decoder::new(100);
    assert_eq!(
        dec.decode(b""),
        Decoded {
            consumed: 0,
            event: None
        }
    );
    dec.decode(b"\x0bpartial");
    assert_eq!(
        dec.decode(b""),
        Decoded {
            consumed: 0,
            event: None
        }
    );
}

#[test]
fn caller_dropping_frame_bytes_does_not_panic() {
    let mut dec = Decoder::new(100);
    dec.decode(b"\x0bpartial");
    // Contract broken by the caller: the frame's start byte is gone.
    let d = dec.decode(b"artial\x1c\r\x0bnext\x1c\r");
    assert_eq!(d.event, Some(Event::Frame(b"next")));
}

#[test]
fn encode_wraps_payload() {
    let mut out = b"keep".to_vec();
    encode(b"MSH|", &mut out);
    assert_eq!(out, b"keep\x0bMSH|\x1c\r");
}

#[test]
fn between_frames_is_only_outside_a_frame() {
    let mut dec = Decoder::new(4);
    assert!(dec.between_frames());
    // Half a frame: inside.
    assert_eq!(dec.decode(b"\x0bab").event, None);
    assert!(!dec.between_frames());
    let whole = b"\x0babcd\x1c\r";
    let d = dec.decode(whole);
    assert_eq!(d.event, Some(Event::Frame(b"abcd")));
    assert!(dec.between_frames());
    // An oversized frame's tail is not outside a frame: it is being discarded.
    let d = dec.decode(b"\x0babcdefgh");
    assert!(matches!(d.event, Some(Event::TooLarge { .. })));
    assert!(!dec.between_frames());
    let d = dec.decode(b"ijk\x1c\r\x0b");
    assert_eq!(d.event, None);
    assert!(!dec.between_frames());
}
