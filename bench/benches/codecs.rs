//! Routing-key extraction: ganglion's codecs against their peers, same bytes, same run.
//!
//! HL7v2: MSH-3..MSH-12 of a 1.8 KB ADT^A01 and of a 120-byte ACK, read by `codecs::hl7v2`
//! and by hl7-parser 0.3 (`Message::parse` plus the same lookups). `hl7v2_router_work` is the
//! like-for-like comparison: everything the router's codec work per message is (parse, the
//! structural check, MSH-9/10/12 required, the routing keys, the control id's position, and
//! PID-3's CX.1 for the trace), against hl7-parser's full parse plus the same lookups — what
//! a router built on hl7-parser would run. ITK: service, tracking id and
//! addresses of a 4 KB SOAP request, read by `codecs::itk` and by roxmltree.
use std::hint::black_box;

use bench::fixtures;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn ganglion_hl7_keys(bytes: &[u8]) -> usize {
    codecs::hl7v2::Message::parse(bytes).map_or(0, |message| msh_keys(&message.msh()))
}

/// MSH-3..MSH-12 read from a parsed MSH, their lengths summed.
fn msh_keys(msh: &codecs::hl7v2::Msh<'_>) -> usize {
    let keys = [
        msh.sending_application(),
        msh.sending_facility(),
        msh.receiving_application(),
        msh.receiving_facility(),
        msh.message_type(),
        msh.trigger_event(),
        msh.message_structure(),
        msh.control_id(),
        msh.processing_id(),
        msh.version(),
    ];
    keys.iter().map(|k| k.map_or(0, <[u8]>::len)).sum()
}

fn hl7_parser_keys(text: &str) -> usize {
    let Ok(message) = hl7_parser::Message::parse(text) else {
        return 0;
    };
    let Some(msh) = message.segment("MSH") else {
        return 0;
    };
    let first = |n: usize| {
        msh.field(n)
            .and_then(|f| f.component(1))
            .map_or(0, |c| c.raw_value().len())
    };
    let component = |n: usize, c: usize| {
        msh.field(n)
            .and_then(|f| f.component(c))
            .map_or(0, |c| c.raw_value().len())
    };
    first(3)
        + first(4)
        + first(5)
        + first(6)
        + component(9, 1)
        + component(9, 2)
        + component(9, 3)
        + msh.field(10).map_or(0, |f| f.raw_value().len())
        + first(11)
        + first(12)
}

/// The router's codec work on one message, as `ingress/mllp.rs` and the trace's recorder do
/// it; returns the keys' total length so that nothing is optimised away.
fn ganglion_router_work(bytes: &[u8]) -> usize {
    let Ok(message) = codecs::hl7v2::Message::parse(bytes) else {
        return 0;
    };
    let msh = message.msh();
    if message
        .validate()
        .and_then(|()| msh.check_required())
        .is_err()
    {
        return 0;
    }
    let control_at = msh
        .control_id()
        .and_then(|c| message.offset_of(c))
        .unwrap_or(0);
    // The trace parses again for PID-3, as the recorder does (a parse is lazy: MSH only).
    let patients = codecs::hl7v2::Message::parse(bytes)
        .ok()
        .and_then(|m| m.segment(b"PID").and_then(|pid| pid.field(3)))
        .map_or(0, |field| {
            field
                .repetitions()
                .filter_map(|r| r.component(1))
                .map(<[u8]>::len)
                .sum()
        });
    msh_keys(&msh) + control_at.min(1) + patients
}

/// The same with hl7-parser: its parse, the same keys, PID-3's CX.1 of every repetition.
fn hl7_parser_router_work(text: &str) -> usize {
    let Ok(message) = hl7_parser::Message::parse(text) else {
        return 0;
    };
    let required = message.segment("MSH").is_some_and(|msh| {
        [9, 10, 12]
            .iter()
            .all(|&n| msh.field(n).is_some_and(|f| !f.raw_value().is_empty()))
    });
    if !required {
        return 0;
    }
    let control_at = usize::from(
        message
            .segment("MSH")
            .is_some_and(|m| m.field(10).is_some()),
    );
    let patients = message
        .segment("PID")
        .and_then(|pid| pid.field(3))
        .map_or(0, |field| {
            field
                .repeats
                .iter()
                .filter_map(|r| r.component(1))
                .map(|c| c.raw_value().len())
                .sum()
        });
    hl7_parser_keys(text) + control_at + patients
}

fn hl7v2(c: &mut Criterion) {
    for (name, bytes) in [("adt_a01", fixtures::adt_a01()), ("ack", fixtures::ack())] {
        let text = std::str::from_utf8(&bytes).expect("fixtures are UTF-8");
        // Both readers must see the same keys, or the comparison means nothing.
        assert_eq!(ganglion_hl7_keys(&bytes), hl7_parser_keys(text), "{name}");
        let mut group = c.benchmark_group(format!("hl7v2_keys/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("ganglion", |b| {
            b.iter(|| ganglion_hl7_keys(black_box(&bytes)))
        });
        group.bench_function("hl7-parser", |b| {
            b.iter(|| hl7_parser_keys(black_box(text)))
        });
        group.finish();

        assert_eq!(
            ganglion_router_work(&bytes),
            hl7_parser_router_work(text),
            "{name}: the same work must find the same values"
        );
        let mut group = c.benchmark_group(format!("hl7v2_router_work/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("ganglion", |b| {
            b.iter(|| ganglion_router_work(black_box(&bytes)))
        });
        group.bench_function("hl7-parser", |b| {
            b.iter(|| hl7_parser_router_work(black_box(text)))
        });
        group.finish();
    }
}

fn ganglion_itk_keys(bytes: &[u8]) -> usize {
    let Ok(message) = codecs::itk::parse(bytes) else {
        return 0;
    };
    let de = &message.envelope;
    de.service.raw().len()
        + de.tracking_id.raw().len()
        + de.addresses
            .iter()
            .map(|a| a.uri.raw().len())
            .sum::<usize>()
}

fn roxmltree_itk_keys(text: &str) -> usize {
    const ITK: &str = "urn:nhs-itk:ns:201005";
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return 0;
    };
    let Some(header) = doc.descendants().find(|n| n.has_tag_name((ITK, "header"))) else {
        return 0;
    };
    let attr = |name: &str| header.attribute(name).map_or(0, str::len);
    let addresses: usize = header
        .children()
        .filter(|n| n.has_tag_name((ITK, "addresslist")))
        .flat_map(|list| list.children())
        .filter(|n| n.has_tag_name((ITK, "address")))
        .map(|a| a.attribute("uri").map_or(0, str::len))
        .sum();
    attr("service") + attr("trackingid") + addresses
}

fn itk(c: &mut Criterion) {
    let bytes = fixtures::itk_request();
    let text = std::str::from_utf8(&bytes).expect("fixtures are UTF-8");
    assert_eq!(ganglion_itk_keys(&bytes), roxmltree_itk_keys(text));
    assert!(ganglion_itk_keys(&bytes) > 0);
    let mut group = c.benchmark_group("itk_keys/soap_4k");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("ganglion", |b| {
        b.iter(|| ganglion_itk_keys(black_box(&bytes)))
    });
    group.bench_function("roxmltree", |b| {
        b.iter(|| roxmltree_itk_keys(black_box(text)))
    });
    group.finish();
}

fn mllp(c: &mut Criterion) {
    let mut stream = Vec::new();
    for _ in 0..32 {
        codecs::mllp::encode(&fixtures::adt_a01(), &mut stream);
    }
    let mut group = c.benchmark_group("mllp_decode/32_adt_frames");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("ganglion", |b| {
        b.iter(|| {
            let mut decoder = codecs::mllp::Decoder::new(64 * 1024);
            let mut pos = 0;
            let mut frames = 0;
            while let Some(event) = {
                let d = decoder.decode(black_box(&stream[pos..]));
                pos += d.consumed;
                d.event
            } {
                frames += matches!(event, codecs::mllp::Event::Frame(_)) as usize;
            }
            frames
        })
    });
    group.finish();
}

criterion_group!(benches, hl7v2, itk, mllp);
criterion_main!(benches);
