#![no_main]
//! Any bytes as an HTTP request, a response, and a chunked body, fed whole and split where the
//! input says. None may panic, and in-place chunked decoding must agree with slice decoding.
use codecs::http1::{self, Chunk, ChunkedDecoder, Limits, EMPTY_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut headers = [EMPTY_HEADER; 32];
    let _ = http1::parse_request(data, &mut headers, &limits);
    let mut headers = [EMPTY_HEADER; 32];
    let _ = http1::parse_response(data, &mut headers, &limits);

    let mut by_slices = Vec::new();
    let mut decoder = ChunkedDecoder::new(1 << 20, 0);
    let mut at = 0;
    let slices_ok = loop {
        match decoder.next(&data[at..]) {
            Ok((consumed, Chunk::Data(d))) => {
                by_slices.extend_from_slice(d);
                at += consumed;
            }
            Ok((_, Chunk::Done)) => break true,
            Ok((_, Chunk::NeedMore)) | Err(_) => break false,
        }
    };
    let mut buf = data.to_vec();
    let mut in_place = ChunkedDecoder::new(1 << 20, 0);
    if let Ok((end, done)) = in_place.decode_vec(&mut buf, 0) {
        if slices_ok && done {
            assert_eq!(&buf[..end], &by_slices[..]);
        }
    }
});
