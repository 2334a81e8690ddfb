//! The driver is open-loop: it keeps to its schedule while the router says nothing, and the
//! latency it reports grows with the stall. The stand-in router here reads every message and
//! answers none until the last one has arrived, so a driver that waited for answers would
//! send one message and stop.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use codecs::hl7v2::{write_ack, Ack, AckCode, Message};
use codecs::mllp;
use loadgen::directory::{Proto, Row};
use loadgen::drive::observer::Observer;
use loadgen::drive::schedule::{self, Arrivals};
use loadgen::drive::{run, DriveConfig, Targets};
use loadgen::gen::{Generator, Mix};

/// Accepts connections, reads frames, and once `total` frames have arrived answers them all.
fn stalled_router(total: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut conns = Vec::new();
        let mut frames: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut bufs: Vec<(Vec<u8>, mllp::Decoder)> = Vec::new();
        // Bounded: gives up after ~20 s whatever happens.
        for _ in 0..20_000 {
            while let Ok((c, _)) = listener.accept() {
                c.set_nonblocking(true).unwrap();
                conns.push(c);
                bufs.push((Vec::new(), mllp::Decoder::new(1 << 24)));
            }
            for (i, c) in conns.iter_mut().enumerate() {
                let mut chunk = [0u8; 65536];
                while let Ok(n) = c.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    bufs[i].0.extend_from_slice(&chunk[..n]);
                }
                let (buf, dec) = &mut bufs[i];
                loop {
                    let d = dec.decode(buf);
                    let frame = match d.event {
                        Some(mllp::Event::Frame(f)) => Some(f.to_vec()),
                        _ => None,
                    };
                    buf.drain(..d.consumed);
                    match frame {
                        Some(f) => frames.push((i, f)),
                        None => break,
                    }
                }
            }
            if frames.len() >= total {
                for (i, f) in frames.drain(..) {
                    let parsed = Message::parse(&f).unwrap();
                    let mut body = Vec::new();
                    let ack = Ack {
                        code: AckCode::AA,
                        control_id: b"X",
                        timestamp: b"20260101000000",
                        text: None,
                        error: None,
                    };
                    write_ack(Some(&parsed.msh()), &ack, &mut body);
                    let mut out = Vec::new();
                    mllp::encode(&body, &mut out);
                    conns[i].set_nonblocking(false).unwrap();
                    conns[i].write_all(&out).unwrap();
                    conns[i].set_nonblocking(true).unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    addr
}

#[test]
fn a_stalled_router_neither_slows_the_schedule_nor_hides_its_stall() {
    let rate = 200.0;
    let duration = Duration::from_millis(500);
    let offsets = schedule::offsets(rate, duration.as_nanos() as u64, Arrivals::Uniform, 7);
    let total = offsets.len();
    assert_eq!(total, 100);
    let router = stalled_router(total);
    let rows: Vec<Row> = (0..10)
        .map(|index| Row {
            index,
            proto: Proto::Mllp,
            addr: "127.0.0.1:9".parse().unwrap(),
            tls: false,
        })
        .collect();
    let mix = Mix::parse("hl7").unwrap();
    let config = DriveConfig {
        mllp: vec![router],
        itk: Vec::new(),
        rate,
        duration,
        connections: 2,
        mix: mix.clone(),
        seed: 7,
        arrivals: Arrivals::Uniform,
        tag: 0,
        drain: Duration::from_secs(15),
        progress: None,
        window: Some(Duration::from_millis(250)),
        patients: None,
    };
    let stats = run(
        &config,
        &Generator::new(7, &mix),
        &Targets::new(&rows),
        &mut Observer::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    // Every message was sent although none was answered until the last had arrived.
    assert_eq!(stats.scheduled, total as u64);
    assert_eq!(stats.sent, total as u64, "{stats:?}");
    assert_eq!(stats.acked, total as u64, "{:?}", stats.errors);
    // The first message was answered only after the last was sent, which was no earlier than
    // its intended time: its latency, measured from its own intended time, spans the schedule.
    let span_us = (offsets[total - 1] - offsets[0]) / 1000;
    let p = stats.ack.percentiles();
    assert!(
        p.max * 1001 / 1000 >= span_us,
        "max {} < span {span_us}",
        p.max
    );
    // And latency falls along the schedule: half the messages waited at least half the span.
    assert!(
        p.p50 * 1001 / 1000 >= span_us / 2 - span_us / 50,
        "p50 {} span {span_us}",
        p.p50
    );
    // Cut in two by intended time, the first half waited longer than the second, and each
    // message is counted in its own half.
    let halves = &stats.windows;
    assert_eq!(halves.len(), 2, "{halves:?}");
    assert_eq!((halves[0].start_s, halves[1].start_s), (0.0, 0.25));
    for half in halves {
        assert_eq!((half.sent, half.acked), (50, 50), "{halves:?}");
        assert_eq!(half.ack.len(), 50);
    }
    let (early, late) = (halves[0].ack.percentiles(), halves[1].ack.percentiles());
    assert!(early.p50 > late.p50, "{early:?} {late:?}");
    assert!(early.max >= span_us * 999 / 1000, "{early:?}");
}
