//! The status page at `/` in a real browser (Debian's Chromium): it loads with no console
//! error and no CSP violation, takes the token from the address's fragment and out of the
//! address bar, shows the counts of what the test sent, shows an endpoint as down within
//! seconds of it going away, and says so when the token is refused. Also the page's headers,
//! and that it needs no token but a Host that names the admin address.
//!
//! Skips (loudly) on a developer's machine without Chromium; fails in CI.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use codecs::hl7v2::AckCode;
use tests::admin::{host, request};
use tests::browser::Browser;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::process::{metric, wait_until, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

/// A patient's NHS number and name, which must never reach the page.
const PATIENT: [&str; 2] = ["9434765919", "PAGETEST"];

fn message(kind: &str, app: &str, id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|{app}|RX8|EPR|RX8|20261204||{kind}|{id}|P|2.4\r\
         PID|1||{}^^^NHS||{}^JANE\r",
        PATIENT[0], PATIENT[1]
    )
    .into_bytes()
}

#[test]
fn the_status_page_shows_counts_and_an_endpoint_going_down_in_a_real_browser() {
    let started = Instant::now();
    let scratch = Scratch::new("status-page");
    let Some(mut browser) = Browser::launch(&scratch.join("chromium-profile")) else {
        return;
    };
    // Once `gone` is set, a message still reaching one of epr's connections is not answered.
    let gone = Arc::new(AtomicBool::new(false));
    let epr = Endpoint::mllp(None, {
        let gone = Arc::clone(&gone);
        move |_, _| match gone.load(Ordering::SeqCst) {
            false => Reply::Ack(AckCode::AA),
            true => Reply::Close,
        }
    });
    let lab = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AR));
    let config = scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[endpoint]]\nname = \"lab\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[route]]\nname = \"tests\"\nhl7.sending_application = \"ZZ*\"\n\
             reject = \"test systems may not send here\"\n\n\
             [[route]]\nname = \"admissions\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n\n\
             [[route]]\nname = \"results\"\nhl7.message_type = \"ORU\"\nto = \"lab\"\n",
            scratch.join("data").display(),
            epr.addr,
            lab.addr
        ),
    );
    let router = RouterProcess::start(
        &config,
        &["--retry-base-ms", "20", "--grace", "1"],
        &["in", "admin"],
    );
    let admin = router.addr("admin");
    let token = std::fs::read_to_string(scratch.join("data/admin.token")).unwrap();
    let token = token.trim();

    // The page needs no token, only a Host that names the admin address, and comes with the
    // headers that keep it safe.
    let page = request(admin, "GET", "/", &[&host(admin)]).unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    let foreign = request(admin, "GET", "/", &["Host: evil.example:9464"]).unwrap();
    assert_eq!(foreign.status, 403, "{foreign:?}");
    let head = raw_head(admin);
    for header in [
        "content-type: text/html; charset=utf-8",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
        "x-frame-options: deny",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("no CSP in {head}"));
    for directive in [
        "default-src 'none'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");

    // 4 admissions delivered, 1 result refused by its endpoint (dead-lettered), 2 from a test
    // system rejected by a rule (AR), 1 without a control id (AE): 5 accepted.
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    let mut send = |bytes: &[u8], want: &str| {
        let ack = sender.exchange(bytes).unwrap();
        assert_eq!(msa(&ack).0, want);
    };
    for i in 0..4 {
        send(&message("ADT^A01", "PAS", &format!("A{i}")), "AA");
    }
    send(&message("ORU^R01", "LIMS", "R0"), "AA");
    send(&message("ADT^A01", "ZZTEST", "T0"), "AR");
    send(&message("ADT^A01", "ZZTEST", "T1"), "AR");
    send(&message("ADT^A01", "PAS", ""), "AE");
    assert!(epr.inbox.wait_for(4, WAIT));
    wait_until("the refused result's dead letter", WAIT, || {
        metric(admin, "ganglion_dead_lettered_total") == 1
    });

    // Opened as the operator would, with the token in the fragment.
    let status = browser
        .open(&format!("http://{admin}/#token={token}"))
        .unwrap();
    assert_eq!(status, 200);
    expect(&mut browser, "#ready", "ready");
    expect(&mut browser, "#count-accepted", "5");
    expect(&mut browser, "#count-delivered", "4");
    expect(&mut browser, "#count-dead-lettered", "1");
    expect(&mut browser, "#count-rejected", "2");
    expect(&mut browser, "#count-unreadable", "1");
    expect(&mut browser, "#shards-summary", "2 shards, 2 serving.");
    // The routes in force: the version start-up applied, and when.
    let routes = request(admin, "GET", "/routes", &[&host(admin), &bearer(token)]).unwrap();
    assert_eq!(routes.status, 200, "{routes:?}");
    let loaded_at: serde_json::Value = serde_json::from_str(&routes.body).unwrap();
    expect(&mut browser, "#routes-version", "1");
    expect(
        &mut browser,
        "#routes-loaded",
        loaded_at["loaded_at"].as_str().unwrap_or("?"),
    );
    // The token is out of the address bar and kept for this tab.
    let href = browser.eval("location.href").unwrap();
    assert_eq!(href, format!("http://{admin}/"), "{href}");
    let kept = browser
        .eval("sessionStorage.getItem('ganglion.admin.token')")
        .unwrap();
    assert_eq!(kept, token);
    let listed = browser
        .eval("document.querySelector('[data-endpoint=\"epr\"]') === null")
        .unwrap();
    assert_eq!(listed, true, "epr is not in trouble yet");

    // The endpoint goes away (its open connections answer nothing more, it stops listening);
    // the next message to it is an attempt that fails, and so is every retry.
    gone.store(true, Ordering::SeqCst);
    drop(epr);
    let stopped = Instant::now();
    send(&message("ADT^A01", "PAS", "A9"), "AA");
    expect(&mut browser, "[data-endpoint=\"epr\"] .connection", "down");
    let seen_down = stopped.elapsed();
    expect(&mut browser, "#count-accepted", "6");
    assert!(seen_down < WAIT, "{seen_down:?}");

    let text = browser.eval("document.body.innerText").unwrap();
    let text = text.as_str().unwrap_or_default();
    for patient in PATIENT {
        assert!(!text.contains(patient), "{patient} on the page:\n{text}");
    }
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    browser.screenshot(&shot).unwrap();

    // No console error, no exception, no CSP violation.
    let problems: Vec<_> = browser.problems().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");

    // A wrong token: the page says so, forgets it, and asks for the right one.
    browser
        .open(&format!("http://{admin}/#token=0000{}", &token[4..]))
        .unwrap();
    expect(&mut browser, "#endpoints-summary", "the token was refused");
    let asks = browser
        .eval("!document.getElementById('token-panel').hidden")
        .unwrap();
    assert_eq!(asks, true);
    let kept = browser
        .eval("sessionStorage.getItem('ganglion.admin.token')")
        .unwrap();
    assert_eq!(kept, serde_json::Value::Null);

    drop(browser);
    println!(
        "status page: endpoint shown down {seen_down:?} after it stopped; whole test {:?}; \
         screenshot {}",
        started.elapsed(),
        shot.display()
    );
}

/// Waits until the page shows `text` at `selector`.
fn expect(browser: &mut Browser, selector: &str, text: &str) {
    if let Err(e) = browser.wait_text(selector, text, WAIT) {
        let problems = browser.problems();
        panic!("{e}\nwhat the page complained about: {problems:#?}");
    }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The response head of `GET /`, lower-cased.
fn raw_head(admin: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(admin).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        tcp,
        "GET / HTTP/1.1\r\n{}\r\nConnection: close\r\n\r\n",
        host(admin)
    )
    .unwrap();
    let mut all = String::new();
    tcp.read_to_string(&mut all).unwrap();
    all.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}
