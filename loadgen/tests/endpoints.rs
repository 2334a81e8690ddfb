//! The endpoint fleet over real sockets: HL7v2 answered with MSA-2 = MSH-10, ITK answered with
//! a SimpleMessageResponse relating to the request, faults as configured, and every arrival
//! reported on the control stream with the message's id.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codecs::hl7v2::Message;
use codecs::{http1, mllp};
use loadgen::directory::Proto;
use loadgen::fleet::report::{self, Line};
use loadgen::fleet::{Behaviour, Fleet, FleetConfig};
use loadgen::gen::{Dest, Generator, Kind, Mix};
use loadgen::rng::Rng;

struct Running {
    fleet_rows: Vec<loadgen::directory::Row>,
    control: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn start(behaviour: Behaviour) -> Running {
    let fleet = Fleet::bind(FleetConfig {
        first: 0,
        count: 4,
        protocols: (1, 1),
        tls: None,
        behaviour,
        seed: 3,
        port: 0,
        control: "127.0.0.1:0".parse().unwrap(),
    })
    .unwrap();
    let rows = fleet.rows.clone();
    let control = fleet.control_addr;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || fleet.run(&flag));
    Running {
        fleet_rows: rows,
        control,
        stop,
    }
}

fn read_frame(conn: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut decoder = mllp::Decoder::new(1 << 20);
    let mut chunk = [0u8; 4096];
    loop {
        let d = decoder.decode(&buf);
        if let Some(mllp::Event::Frame(f)) = d.event {
            return f.to_vec();
        }
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "endpoint closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn msa(ack: &[u8]) -> (String, String) {
    let m = Message::parse(ack).unwrap();
    let msa = m.segment(b"MSA").unwrap();
    let f = |n| String::from_utf8_lossy(msa.field(n).unwrap().raw()).into_owned();
    (f(1), f(2))
}

fn hl7(seq: u64) -> Vec<u8> {
    let mix = Mix::parse("oru-r01").unwrap();
    let gen = Generator::new(1, &mix);
    let mut rng = Rng::new(seq);
    let t = gen.variant(Kind::OruR01, &mut rng).unwrap();
    let mut out = Vec::new();
    let dest = Dest::Hl7 {
        application: "",
        facility: "F00000",
    };
    Generator::write(t, Kind::OruR01, dest, 0xAB, seq, &mut out);
    out
}

/// Waits for the first line on the control stream: the fleet then counts us as a watcher,
/// so no arrival after this can be missed.
fn wait_registered(control: &mut TcpStream) {
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    loop {
        assert_eq!(control.read(&mut byte).unwrap(), 1, "control stream closed");
        if byte[0] == b'\n' {
            return;
        }
    }
}

/// Reads report lines until `n` arrivals have been seen (bounded by a read timeout).
fn arrivals(control: &mut TcpStream, n: usize) -> Vec<(u8, String)> {
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while seen.len() < n {
        let got = control.read(&mut chunk).unwrap();
        assert!(got > 0);
        buf.extend_from_slice(&chunk[..got]);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            if let Some(Line::Arrival { outcome, id, .. }) = report::parse(&line[..line.len() - 1])
            {
                seen.push((outcome, String::from_utf8_lossy(id).into_owned()));
            }
        }
    }
    seen
}

#[test]
fn an_hl7_endpoint_acknowledges_with_the_message_control_id_and_reports_it() {
    let fleet = start(Behaviour::default());
    let mllp_row = fleet
        .fleet_rows
        .iter()
        .find(|r| r.proto == Proto::Mllp)
        .unwrap();
    let mut control = TcpStream::connect(fleet.control).unwrap();
    wait_registered(&mut control);
    let mut conn = TcpStream::connect(mllp_row.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut ids = Vec::new();
    for seq in 0..3 {
        let message = hl7(seq);
        let id = Message::parse(&message)
            .unwrap()
            .msh()
            .control_id()
            .unwrap()
            .to_vec();
        let mut framed = Vec::new();
        mllp::encode(&message, &mut framed);
        conn.write_all(&framed).unwrap();
        let (code, acked) = msa(&read_frame(&mut conn));
        assert_eq!(code, "AA");
        assert_eq!(acked.as_bytes(), &id[..]);
        ids.push(String::from_utf8(id).unwrap());
    }
    let seen = arrivals(&mut control, 3);
    assert_eq!(seen, ids.into_iter().map(|i| (b'A', i)).collect::<Vec<_>>());
}

#[test]
fn an_endpoint_told_to_reject_answers_ar() {
    let fleet = start(Behaviour {
        reject: 1.0,
        ..Behaviour::default()
    });
    let row = fleet
        .fleet_rows
        .iter()
        .find(|r| r.proto == Proto::Mllp)
        .unwrap();
    let mut conn = TcpStream::connect(row.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut framed = Vec::new();
    mllp::encode(&hl7(9), &mut framed);
    conn.write_all(&framed).unwrap();
    let (code, acked) = msa(&read_frame(&mut conn));
    assert_eq!(code, "AR");
    assert_eq!(acked, loadgen::ids::control_id(0xAB, 9));
}

#[test]
fn an_itk_endpoint_answers_a_simple_message_response_relating_to_the_request() {
    let fleet = start(Behaviour::default());
    let row = fleet
        .fleet_rows
        .iter()
        .find(|r| r.proto == Proto::Itk)
        .unwrap();
    let mix = Mix::parse("itk").unwrap();
    let gen = Generator::new(2, &mix);
    let mut rng = Rng::new(2);
    let t = gen.variant(Kind::Itk, &mut rng).unwrap();
    let mut body = Vec::new();
    let address = row.itk_address();
    Generator::write(
        t,
        Kind::Itk,
        Dest::Itk { address: &address },
        0xCD,
        4,
        &mut body,
    );
    let mut request = Vec::new();
    let spec = http1::PostSpec {
        path: "/itk/syncsoap",
        host: "endpoint",
        soap_action: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
        content_type: "text/xml; charset=utf-8",
        keep_alive: true,
    };
    http1::write_post(&mut request, &spec, &body).unwrap();
    let mut conn = TcpStream::connect(row.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(&request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let response = loop {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [http1::EMPTY_HEADER; 16];
        if let Some(h) =
            http1::parse_response(&buf, &mut headers, &http1::Limits::default()).unwrap()
        {
            if let http1::BodyFraming::Length(len) = h.framing {
                if buf.len() >= h.head_len + len as usize {
                    break (
                        h.status,
                        buf[h.head_len..h.head_len + len as usize].to_vec(),
                    );
                }
            }
        }
    };
    assert_eq!(response.0, 200);
    let parsed = codecs::itk::parse_response(&response.1).unwrap();
    let text = String::from_utf8_lossy(&response.1);
    assert!(text.contains("SimpleMessageResponse"), "{text}");
    let id = loadgen::ids::uuid(0xCD, 4);
    assert!(
        text.contains(&format!("<wsa:RelatesTo>uuid:{id}</wsa:RelatesTo>")),
        "{text}"
    );
    let _ = parsed;
}

/// Reads report lines until a stats line satisfies `want` (bounded by a read timeout).
fn wait_stats(control: &mut TcpStream, want: impl Fn(u64, u64) -> bool) {
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let got = control.read(&mut chunk).unwrap();
        assert!(got > 0, "control stream closed");
        buf.extend_from_slice(&chunk[..got]);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            if let Some(Line::Stats { down, flaps, .. }) = report::parse(&line[..line.len() - 1]) {
                if want(down, flaps) {
                    return;
                }
            }
        }
    }
}

/// Sends one HL7v2 message on `conn` and checks it is acknowledged.
fn exchange(conn: &mut TcpStream, seq: u64) {
    let mut framed = Vec::new();
    mllp::encode(&hl7(seq), &mut framed);
    conn.write_all(&framed).unwrap();
    let (code, acked) = msa(&read_frame(conn));
    assert_eq!(code, "AA");
    assert_eq!(acked, loadgen::ids::control_id(0xAB, seq));
}

#[test]
fn an_endpoint_told_down_refuses_and_drops_its_connections_and_told_up_listens_again() {
    let fleet = start(Behaviour::default());
    let mllp: Vec<_> = fleet
        .fleet_rows
        .iter()
        .filter(|r| r.proto == Proto::Mllp)
        .collect();
    let (flapping, steady) = (mllp[0], mllp[1]);
    let mut control = TcpStream::connect(fleet.control).unwrap();
    wait_registered(&mut control);
    let mut held = TcpStream::connect(flapping.addr).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(&mut held, 1);

    // Commands for endpoints this process does not serve are ignored.
    control.write_all(b"down 999999\n").unwrap();
    control
        .write_all(
            loadgen::fleet::report::Command::Down(flapping.index)
                .line()
                .as_bytes(),
        )
        .unwrap();
    wait_stats(&mut control, |down, flaps| down == 1 && flaps == 1);
    let mut byte = [0u8; 1];
    match held.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("a down endpoint sent data"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    let refused = TcpStream::connect(flapping.addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // The other endpoints are not affected.
    let mut other = TcpStream::connect(steady.addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(&mut other, 2);

    control
        .write_all(format!("up {}\n", flapping.index).as_bytes())
        .unwrap();
    wait_stats(&mut control, |down, flaps| down == 0 && flaps == 1);
    let mut back = TcpStream::connect(flapping.addr).unwrap();
    back.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(&mut back, 3);
}
