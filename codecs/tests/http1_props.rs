//! Property tests for `codecs::http1`: any bytes never panic the head parsers or the chunked
//! decoder; a chunked body split at every byte boundary (or fed a byte at a time) decodes to
//! the same bytes, through both front-ends; what the writers produce parses back.

use codecs::http1::{
    parse_request, parse_response, write_post, write_response, BodyFraming, Chunk, ChunkedDecoder,
    HttpErrorKind, Limits, PostSpec, ResponseSpec, EMPTY_HEADER,
};
use proptest::prelude::*;

const REQUEST: &[u8] =
    b"POST /syncsoap HTTP/1.1\r\nContent-Length: 5\r\nServer: HSCIC ITK Test Platform\r\n\
SOAPaction: \"urn:nhs-itk:services:201005:SendBusinessAck-v1-0\"\r\nHost: 127.0.0.1\r\n\
Content-type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n<a/>";

fn small_limits() -> impl Strategy<Value = Limits> {
    (0usize..300, 0usize..12, 0u64..100).prop_map(|(h, n, b)| Limits {
        max_head_bytes: h,
        max_headers: n,
        max_body: b,
    })
}

/// Parses as request and as response; checks the invariants that must hold for any input.
fn check_heads(buf: &[u8], limits: &Limits) {
    let mut hs = [EMPTY_HEADER; 16];
    match parse_request(buf, &mut hs, limits) {
        Ok(Some(h)) => {
            assert!(h.head_len <= buf.len() && h.head_len <= limits.max_head_bytes);
            assert!(h.headers.len() <= limits.max_headers);
            if let BodyFraming::Length(n) = h.framing {
                assert!(n <= limits.max_body);
            }
            let _ = h.body(buf);
        }
        Ok(None) => assert!(buf.len() <= limits.max_head_bytes),
        Err(e) => {
            assert!(e.offset <= buf.len(), "{e}");
            assert!([400, 413, 431, 501].contains(&e.status()), "{e}");
        }
    }
    let mut hs = [EMPTY_HEADER; 16];
    match parse_response(buf, &mut hs, limits) {
        Ok(Some(h)) => assert!(h.head_len <= buf.len()),
        Ok(None) => assert!(buf.len() <= limits.max_head_bytes),
        Err(e) => assert!(e.offset <= buf.len(), "{e}"),
    }
}

/// Random edits of a seed: byte replacements, insertions of HTTP-significant snippets, cuts.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let snippets = prop::sample::select(vec![
        &b"\r\n"[..],
        b"\n",
        b"\r",
        b":",
        b" ",
        b"\t",
        b"\x00",
        b"\xff",
        b"Content-Length: 3\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Host: x\r\n",
        b"HTTP/1.0",
    ]);
    let edit = (any::<prop::sample::Index>(), 0u8..3, any::<u8>(), snippets);
    prop::collection::vec(edit, 1..8).prop_map(move |edits| {
        let mut v = seed.to_vec();
        for (at, op, byte, snippet) in edits {
            let i = at.index(v.len() + 1);
            match op {
                0 if i < v.len() => v[i] = byte,
                1 => v.splice(i..i, snippet.iter().copied()).for_each(drop),
                _ => v.truncate(i),
            }
        }
        v
    })
}

/// Encodes `body` as chunks of the given sizes, with optional extensions and trailers.
fn chunked(body: &[u8], sizes: &[usize], ext: bool, trailers: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        out.extend_from_slice(format!("{n:X}").as_bytes());
        if ext {
            out.extend_from_slice(b";name=\"v;x\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if trailers {
        out.extend_from_slice(b"Expires: never\r\nX-Trace: 1\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Feeds `input` in two pieces cut at `cut`, holding unconsumed bytes as a caller would.
fn decode_slices(input: &[u8], cut: usize) -> (Vec<u8>, usize) {
    let mut dec = ChunkedDecoder::new(u64::MAX, 0);
    let mut held = Vec::new();
    let mut out = Vec::new();
    let mut used = 0;
    for piece in [&input[..cut], &input[cut..]] {
        held.extend_from_slice(piece);
        loop {
            let (n, c) = dec.next(&held).unwrap();
            let step = match c {
                Chunk::Data(d) => {
                    out.extend_from_slice(d);
                    None
                }
                Chunk::NeedMore => Some(false),
                Chunk::Done => Some(true),
            };
            held.drain(..n);
            used += n;
            match step {
                None => {}
                Some(false) => break,
                Some(true) => return (out, used),
            }
        }
    }
    panic!("not done after all input");
}

/// Feeds `input` a byte at a time through the in-place front-end.
fn decode_bytewise_in_place(input: &[u8]) -> Vec<u8> {
    let mut dec = ChunkedDecoder::new(u64::MAX, 0);
    let mut buf = Vec::new();
    let mut end = 0;
    for &b in input {
        buf.push(b);
        let (e, done) = dec.decode_vec(&mut buf, end).unwrap();
        end = e;
        if done {
            buf.truncate(end);
            return buf;
        }
    }
    panic!("not done after all input");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_head_parsers(
        buf in prop::collection::vec(any::<u8>(), 0..400),
        limits in small_limits(),
    ) {
        check_heads(&buf, &limits);
        check_heads(&buf, &Limits::default());
    }

    #[test]
    fn mutated_requests_never_panic(buf in mutated(REQUEST), limits in small_limits()) {
        check_heads(&buf, &limits);
        check_heads(&buf, &Limits::default());
    }

    #[test]
    fn random_bytes_never_panic_the_chunked_decoder(
        buf in prop::collection::vec(any::<u8>(), 0..300),
        prefix in prop::sample::select(vec![&b""[..], b"5\r\nhello\r\n", b"0\r\n", b"1;x\r\n"]),
        max in 0u64..64,
    ) {
        let input = [prefix, &buf[..]].concat();
        let mut dec = ChunkedDecoder::new(max, 7);
        let mut pos = 0;
        while let Ok((n, c)) = dec.next(&input[pos..]) {
            pos += n;
            prop_assert!(pos <= input.len());
            if !matches!(c, Chunk::Data(_)) {
                break;
            }
        }
        prop_assert!(dec.decoded_len() <= max);
        let mut copy = input.clone();
        let mut dec = ChunkedDecoder::new(max, 0);
        if let Ok(r) = dec.decode_in_place(&mut copy) {
            prop_assert!(r.written <= r.consumed && r.consumed <= copy.len());
        }
    }

    #[test]
    fn chunked_bodies_split_anywhere_decode_the_same(
        body in prop::collection::vec(any::<u8>(), 0..160),
        sizes in prop::collection::vec(1usize..40, 1..6),
        ext in any::<bool>(),
        trailers in any::<bool>(),
    ) {
        let mut wire = chunked(&body, &sizes, ext, trailers);
        let encoded_len = wire.len();
        wire.extend_from_slice(b"POST /next");
        for cut in 0..=wire.len() {
            let (out, used) = decode_slices(&wire, cut);
            prop_assert_eq!(&out, &body);
            prop_assert_eq!(used, encoded_len);
        }
        prop_assert_eq!(decode_bytewise_in_place(&wire[..encoded_len]), body.clone());
        let mut whole = wire.clone();
        let r = ChunkedDecoder::new(u64::MAX, 0).decode_in_place(&mut whole).unwrap();
        prop_assert!(r.done);
        prop_assert_eq!(&whole[..r.written], &body[..]);
        prop_assert_eq!(&whole[r.consumed..], b"POST /next");
    }

    #[test]
    fn oversized_chunked_bodies_are_refused(
        body in prop::collection::vec(any::<u8>(), 1..100),
        sizes in prop::collection::vec(1usize..20, 1..4),
    ) {
        let wire = chunked(&body, &sizes, false, false);
        let limit = body.len() as u64 - 1;
        let mut dec = ChunkedDecoder::new(limit, 0);
        let mut pos = 0;
        let err = loop {
            match dec.next(&wire[pos..]) {
                Ok((n, Chunk::Data(_))) => pos += n,
                Ok((_, other)) => panic!("{other:?}"),
                Err(e) => break e,
            }
        };
        prop_assert_eq!(err.status(), 413);
        prop_assert_eq!(err.kind, HttpErrorKind::BodyTooLarge { limit });
    }

    #[test]
    fn posts_parse_back(
        path in "/[!-~]{0,40}",
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        action in "urn:[a-zA-Z0-9:._ -]{0,40}[a-z]",
        body in prop::collection::vec(any::<u8>(), 0..200),
        keep_alive in any::<bool>(),
    ) {
        let spec = PostSpec {
            path: &path,
            host: &host,
            soap_action: &action,
            content_type: "text/xml; charset=utf-8",
            keep_alive,
        };
        let mut out = Vec::new();
        write_post(&mut out, &spec, &body).unwrap();
        let mut hs = [EMPTY_HEADER; 16];
        let head = parse_request(&out, &mut hs, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(head.method, "POST");
        prop_assert_eq!(head.target, path.as_str());
        prop_assert_eq!(head.header("host"), Some(host.as_bytes()));
        prop_assert_eq!(head.soap_action(), Some(action.as_bytes()));
        prop_assert_eq!(head.keep_alive, keep_alive);
        prop_assert_eq!(head.body(&out), Some(&body[..]));
        prop_assert_eq!(head.head_len + body.len(), out.len());
    }

    #[test]
    fn responses_parse_back(
        status in 200u16..600,
        body in prop::collection::vec(any::<u8>(), 0..200),
        keep_alive in any::<bool>(),
    ) {
        let spec = ResponseSpec { status, content_type: "text/xml", keep_alive };
        let mut out = Vec::new();
        match write_response(&mut out, &spec, &body) {
            Ok(()) => {
                let mut hs = [EMPTY_HEADER; 16];
                let head = parse_response(&out, &mut hs, &Limits::default()).unwrap().unwrap();
                prop_assert_eq!(head.status, status);
                prop_assert_eq!(head.keep_alive, keep_alive);
                let expected: &[u8] = if status == 204 || status == 304 { b"" } else { &body };
                prop_assert_eq!(head.body(&out), Some(expected));
            }
            Err(e) => {
                prop_assert!((status == 204 || status == 304) && !body.is_empty(), "{}", e);
                prop_assert!(out.is_empty());
            }
        }
    }
}
