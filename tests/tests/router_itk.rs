//! `ganglion run` with ITK over HTTP/1.1: SOAP requests in, fanned out per address to ITK
//! endpoints, answered with SimpleMessageResponse or a SOAP fault.
use std::path::{Path, PathBuf};

use tests::endpoint::{request_body, Endpoint, HttpClient, Inbox};
use tests::process::RouterProcess;
use tests::scratch::Scratch;
use tests::WAIT;

const CDA: &str = "urn:nhs-itk:services:201005:SendCDADocument-v2-0";

fn ok() -> impl Fn(usize, &[u8]) -> (u16, Vec<u8>) + Send + Sync + 'static {
    |_, _| (200, b"<ok/>".to_vec())
}

/// A listener `itk`, ITK endpoints looked up by their ITK address, one lookup route.
fn config(scratch: &Scratch, endpoints: &[(&str, &str, &Endpoint)]) -> PathBuf {
    let mut text = format!(
        "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.1:0\"\n\n",
        scratch.join("data").display()
    );
    for (name, address, endpoint) in endpoints {
        text.push_str(&format!(
            "[[endpoint]]\nname = \"{name}\"\nprotocol = \"itk-http\"\naddress = \"http://{}/itk/inbox\"\nitk_address = \"{address}\"\n\n",
            endpoint.addr
        ));
    }
    text.push_str(&format!(
        "[[route]]\nname = \"documents\"\nitk.service = \"{CDA}\"\nto = {{ lookup = \"itk.address\" }}\n"
    ));
    scratch.file("routes.toml", text)
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start_quick(config, 2, &["itk", "admin"])
}

fn wait_all(inboxes: &[&Inbox], n: usize) -> bool {
    inboxes.iter().all(|i| i.wait_for(n, WAIT))
}

#[test]
fn a_soap_request_is_fanned_out_per_address_and_answered() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    // Three addressees (read from the file): BBB:X0912, X0913, X0914.
    let request =
        std::fs::read(corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_SOAP.xml"))
            .unwrap();
    let scratch = Scratch::new("itk-fanout");
    let a = Endpoint::itk(None, ok());
    let b = Endpoint::itk(None, ok());
    let c = Endpoint::itk(None, ok());
    let config = config(
        &scratch,
        &[
            ("bbb", "urn:nhs-uk:addressing:ods:BBB:X0912", &a),
            ("x0913", "urn:nhs-uk:addressing:ods:X0913", &b),
            ("x0914", "urn:nhs-uk:addressing:ods:X0914", &c),
        ],
    );
    let router = start(&config);
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    let response = client.post("/syncsoap", CDA, &request).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    assert!(text.contains("SimpleMessageResponse"), "{text}");
    assert!(
        text.contains("<wsa:RelatesTo>D174645D-AD0E-4363-89EE-910A4BEF7201</wsa:RelatesTo>"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<wsa:Action>{CDA}Response</wsa:Action>")),
        "{text}"
    );
    assert!(wait_all(&[&a.inbox, &b.inbox, &c.inbox], 1));
    for endpoint in [&a, &b, &c] {
        let received = endpoint.inbox.messages();
        assert_eq!(received.len(), 1);
        // The body is forwarded as received; the POST goes to the endpoint's path with the
        // sender's SOAPAction.
        assert_eq!(request_body(&received[0]), &request[..]);
        let head =
            String::from_utf8_lossy(&received[0][..received[0].len() - request.len()]).into_owned();
        assert!(head.starts_with("POST /itk/inbox HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\"{CDA}\"")), "{head}");
    }
    // Keep-alive: the same connection serves the next request.
    let again = client.post("/syncsoap", CDA, &request).unwrap();
    assert_eq!(again.status, 200);
    assert!(wait_all(&[&a.inbox, &b.inbox, &c.inbox], 2));
    assert!(router.terminate(WAIT).success());
}

#[test]
fn malformed_and_unroutable_requests_get_client_faults() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let scratch = Scratch::new("itk-negative");
    let sink = Endpoint::itk(None, ok());
    let config = config(
        &scratch,
        &[("x0912", "urn:nhs-uk:addressing:ods:X0912", &sink)],
    );
    let router = start(&config);
    let negatives = corpus
        .join("itk/UECIT+cdss-tkw/TKW/contrib/ITK_2_01_Test_Messages/111/Negative_111_Templates");
    let mut faults = 0;
    let mut files: Vec<_> = std::fs::read_dir(&negatives)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
    {
        let body = std::fs::read(path).unwrap();
        let mut client = HttpClient::connect(router.addr("itk")).unwrap();
        let response = client.post("/syncsoap", CDA, &body).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = response.text();
        // Every negative sample is answered: a fault, or (for the business-level variants the
        // transport cannot see) acceptance; never a dropped connection.
        assert!(
            response.status == 200 || response.status == 500,
            "{name}: {}",
            response.status
        );
        if response.status == 500 {
            faults += 1;
            assert!(
                text.contains("<soap:Fault>") && text.contains("ToolkitErrorInfo"),
                "{name}: {text}"
            );
        }
        // The structural and transport faults named in the file names must be refused.
        let must_fault = [
            "DE_EMPPID",
            "DE_INVMPC",
            "DE_INVPID",
            "DE_MISPID",
            "ER_INVXML",
            "SO_NOACTN",
            "SO_NOTOEL",
        ];
        if must_fault.iter().any(|p| name.starts_with(p)) {
            assert_eq!(response.status, 500, "{name} was accepted: {text}");
        }
    }
    assert!(faults >= 8, "{faults} faults");

    // Something that routes nowhere: a service no route takes.
    let unroutable =
        std::fs::read(corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_SOAP.xml"))
            .unwrap();
    let unroutable = String::from_utf8(unroutable)
        .unwrap()
        .replace("SendCDADocument-v2-0", "SendSomethingElse-v1-0");
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    let response = client
        .post(
            "/syncsoap",
            "urn:nhs-itk:services:201005:SendSomethingElse-v1-0",
            unroutable.as_bytes(),
        )
        .unwrap();
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("soap:Client") && response.text().contains("no route"),
        "{}",
        response.text()
    );

    // A header block the sender says we must understand, and we do not.
    let must = String::from_utf8(std::fs::read(corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_SOAP.xml")).unwrap())
        .unwrap()
        .replacen(
            "<soap:Header>",
            "<soap:Header><x:Routing xmlns:x=\"urn:example\" soap:mustUnderstand=\"1\">fast</x:Routing>",
            1,
        );
    let response = client.post("/syncsoap", CDA, must.as_bytes()).unwrap();
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("soap:MustUnderstand"),
        "{}",
        response.text()
    );

    // Not XML at all, and a GET.
    let response = client.post("/syncsoap", CDA, b"not xml").unwrap();
    assert_eq!(response.status, 500);
    client
        .send_raw(b"GET /syncsoap HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(client.response().unwrap().status, 405);
    assert!(sink.inbox.is_empty());
    assert!(router.terminate(WAIT).success());
}

#[test]
fn endpoint_faults_are_retried_or_refused_by_their_code() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    let request =
        std::fs::read(corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_SOAP.xml"))
            .unwrap();
    let scratch = Scratch::new("itk-faults");
    let fault = |code: &str| {
        format!(
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:{code}</faultcode><faultstring>no</faultstring></soap:Fault></soap:Body></soap:Envelope>"
        )
        .into_bytes()
    };
    let server_then_ok = Endpoint::itk(None, move |n, _| {
        if n == 0 {
            (500, fault("Server"))
        } else {
            (200, b"<ok/>".to_vec())
        }
    });
    let client_fault = Endpoint::itk(None, {
        let fault = fault("Client");
        move |_, _| (500, fault.clone())
    });
    let http_503_then_ok = Endpoint::itk(None, |n, _| {
        if n == 0 {
            (503, Vec::new())
        } else {
            (202, Vec::new())
        }
    });
    let config = config(
        &scratch,
        &[
            (
                "retry",
                "urn:nhs-uk:addressing:ods:BBB:X0912",
                &server_then_ok,
            ),
            ("refuse", "urn:nhs-uk:addressing:ods:X0913", &client_fault),
            ("busy", "urn:nhs-uk:addressing:ods:X0914", &http_503_then_ok),
        ],
    );
    let mut router = start(&config);
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    assert_eq!(client.post("/syncsoap", CDA, &request).unwrap().status, 200);
    assert!(server_then_ok.inbox.wait_for(2, WAIT));
    assert!(http_503_then_ok.inbox.wait_for(2, WAIT));
    assert!(client_fault.inbox.wait_for(1, WAIT));
    assert!(router.wait_for_output("dead letter", WAIT));
    router.wait_settled(2, 1);
    assert_eq!(server_then_ok.inbox.len(), 2);
    assert_eq!(http_503_then_ok.inbox.len(), 2);
    assert_eq!(client_fault.inbox.len(), 1);
    assert!(router.terminate(WAIT).success());
}

#[test]
fn an_infrastructure_ack_goes_back_to_a_sender_in_the_directory() {
    let Some(corpus) = tests::corpus() else {
        return;
    };
    // ITK_SOAP.xml asks for an InfAck (infackrequested = true); its sender is
    // urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987 and its tracking id 217D1168-….
    let request =
        std::fs::read(corpus.join("itk/nhsdigitalmait+TKW-x/src/test/resources/ITK_SOAP.xml"))
            .unwrap();
    let scratch = Scratch::new("itk-infack");
    let a = Endpoint::itk(None, ok());
    let b = Endpoint::itk(None, ok());
    let c = Endpoint::itk(None, ok());
    let sender_system = Endpoint::itk(None, ok());
    let config = config(
        &scratch,
        &[
            ("bbb", "urn:nhs-uk:addressing:ods:BBB:X0912", &a),
            ("x0913", "urn:nhs-uk:addressing:ods:X0913", &b),
            ("x0914", "urn:nhs-uk:addressing:ods:X0914", &c),
            (
                "sender",
                "urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987",
                &sender_system,
            ),
        ],
    );
    let router = start(&config);
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    assert_eq!(client.post("/syncsoap", CDA, &request).unwrap().status, 200);
    assert!(sender_system.inbox.wait_for(1, WAIT));
    let ack = String::from_utf8(sender_system.inbox.messages()[0].clone()).unwrap();
    assert!(
        ack.contains("\"urn:nhs-itk:services:201005:SendInfrastructureAck-v1-0\""),
        "{ack}"
    );
    let body = String::from_utf8_lossy(request_body(ack.as_bytes())).into_owned();
    let parsed = codecs::itk::parse(body.as_bytes()).expect("the InfAck is a valid ITK request");
    assert_eq!(
        parsed.envelope.service.raw(),
        b"urn:nhs-itk:services:201005:SendInfrastructureAck-v1-0"
    );
    assert_eq!(
        parsed.envelope.addresses[0].uri.raw(),
        b"urn:nhs-uk:addressing:ods:AAA:XZ901:XY7650987"
    );
    assert!(
        body.contains("trackingIdRef=\"217D1168-7F0B-4F31-A0A9-5B030E545FAE\""),
        "{body}"
    );
    assert!(body.contains("result=\"OK\""), "{body}");
    assert!(router.terminate(WAIT).success());
}

/// A valid ITK request that the test config routes nowhere (an infrastructure ACK: only
/// SendCDADocument is routed), with the tracking id given.
fn unroutable_request(tracking_id: &str) -> Vec<u8> {
    tests::itk::inf_ack_request(tracking_id)
}

#[test]
fn an_error_after_a_byte_order_mark_names_the_right_byte() {
    let scratch = Scratch::new("itk-bom");
    let sink = Endpoint::itk(None, ok());
    let config = config(
        &scratch,
        &[("sink", "urn:nhs-uk:addressing:ods:SINK", &sink)],
    );
    let router = start(&config);
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    let body = "\u{feff}<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
                <soap:Body><x:Other xmlns:x=\"urn:x\"/></soap:Body></soap:Envelope>";
    let response = client.post("/syncsoap", CDA, body.as_bytes()).unwrap();
    assert_eq!(response.status, 500);
    let at = body.find("<x:Other").unwrap();
    let text = response.text();
    assert!(
        text.contains(&format!("carries no DistributionEnvelope at byte {at} ")),
        "{at}: {text}"
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn client_faults_are_logged_once_with_the_peer_and_never_the_message() {
    let scratch = Scratch::new("itk-refusal-log");
    let sink = Endpoint::itk(None, ok());
    let config = config(
        &scratch,
        &[("sink", "urn:nhs-uk:addressing:ods:SINK", &sink)],
    );
    let mut router = start(&config);
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    let peer = client.local_addr().unwrap();
    let tracking = "9F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0";
    let response = client
        .post(
            "/syncsoap",
            codecs::itk::SERVICE_INF_ACK,
            &unroutable_request(tracking),
        )
        .unwrap();
    assert_eq!(response.status, 500);
    assert!(response.text().contains("no route"), "{}", response.text());
    let response = client.post("/syncsoap", CDA, b"<not xml").unwrap();
    assert_eq!(response.status, 500);
    client
        .send_raw(b"GET /syncsoap HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(client.response().unwrap().status, 405);
    let needle = format!("listener=\"itk\" peer={peer} ");
    assert!(
        router.wait_for_count(&needle, 3, WAIT),
        "{}",
        router.output()
    );
    let output = router.output();
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.contains(" refused: ") && l.contains(&needle))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains("no route") && lines[0].contains(&format!("tracking_id=\"{tracking}\"")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("unreadable") && lines[1].contains("at byte"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("only POST"), "{}", lines[2]);
    // The message's content (here the addressee and the acknowledged id) is not logged.
    assert!(
        !output.contains("217D1168") && !output.contains("X0912"),
        "{output}"
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn an_itk_endpoint_with_several_in_flight_gets_a_connection_for_each() {
    const MESSAGES: usize = 40;
    let scratch = Scratch::new("itk-hot");
    let sink = Endpoint::itk(None, |_, _| {
        // Slow enough that the lanes overlap.
        std::thread::sleep(std::time::Duration::from_millis(5));
        (200, b"<ok/>".to_vec())
    });
    let config = scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"itk\"\nprotocol = \"itk-http\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"sink\"\nprotocol = \"itk-http\"\n\
             address = \"http://{}/itk/inbox\"\nconnections = 2\nmax_in_flight = 2\n\n\
             [[route]]\nname = \"acks\"\nitk.service = \"{}\"\nto = \"sink\"\n",
            scratch.join("data").display(),
            sink.addr,
            codecs::itk::SERVICE_INF_ACK,
        ),
    );
    let router = start(&config);
    let mut client = HttpClient::connect(router.addr("itk")).unwrap();
    for i in 0..MESSAGES {
        let request = tests::itk::inf_ack_request(&format!("7C1B2A3D-4E5F-4061-9728-{i:012X}"));
        let response = client
            .post("/syncsoap", codecs::itk::SERVICE_INF_ACK, &request)
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    }
    router.wait_settled(MESSAGES as u64, 0);
    assert_eq!(sink.inbox.len(), MESSAGES, "each message once");
    // HTTP/1.1 carries one request at a time: connections × max_in_flight connections.
    assert_eq!(sink.inbox.connections(), 4);
    assert!(router.terminate(WAIT).success());
}
