//! Dead letters end to end: an endpoint refuses a message, it is stored with the endpoint's
//! reply; `ganglion dead-letters` lists, shows and replays it through a running router's admin
//! address (the endpoint, now willing, gets it), and works on the files of a stopped router.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codecs::hl7v2::AckCode;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::process::{dead_letters, ganglion, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A08|{id}|P|2.4\rPID|1\r").into_bytes()
}

#[test]
fn refused_messages_are_kept_listed_replayed_and_dropped() {
    let scratch = Scratch::new("dlq");
    let willing = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&willing);
    let picky = Endpoint::mllp(None, move |_, _| {
        Reply::Ack(if flag.load(Ordering::SeqCst) {
            AckCode::AA
        } else {
            AckCode::AR
        })
    });
    let config = scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 2\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"picky\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
             [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"picky\"\n",
            scratch.join("data").display(),
            picky.addr
        ),
    );
    let router = RouterProcess::start(&config, &["--grace", "1"], &["in", "admin"]);
    let admin = router.addr("admin").to_string();
    // The token is found through the routes file; the address is given (the file says port 0).
    let config_arg = config.display().to_string();
    let through_admin = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--admin", &admin, "--config", &config_arg]);
        ganglion(&all)
    };
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    for id in ["D1", "D2"] {
        assert_eq!(msa(&sender.exchange(&adt(id)).unwrap()).0, "AA");
    }
    assert!(picky.inbox.wait_for(2, WAIT));

    // Listed through the admin address, with the endpoint's reply kept.
    let deadline = std::time::Instant::now() + WAIT;
    let letters = loop {
        let output = through_admin(&["dead-letters", "list", "--json"]);
        assert!(output.status.success(), "{output:?}");
        let letters: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if letters.len() == 2 || std::time::Instant::now() > deadline {
            break letters;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(letters.len(), 2, "{letters:?}");
    let id_of = |control: &str| -> String {
        letters
            .iter()
            .find(|l| l["control_id"] == control)
            .and_then(|l| l["id"].as_str())
            .unwrap()
            .to_string()
    };
    let (d1, d2) = (id_of("D1"), id_of("D2"));
    let shown = through_admin(&["dead-letters", "show", &d1]);
    let letter: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(letter["reason"], "rejected");
    assert!(
        letter["reply"].as_str().unwrap().contains("MSA|AR|D1"),
        "{letter}"
    );
    assert_eq!(
        letter["message"].as_str().unwrap().as_bytes(),
        &adt("D1")[..]
    );

    // The endpoint changes its mind; replaying D1 through the running router delivers it.
    willing.store(true, Ordering::SeqCst);
    let replayed = through_admin(&["dead-letters", "replay", &d1, "--json"]);
    assert!(replayed.status.success(), "{replayed:?}");
    let said: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(
        (&said["id"], &said["ok"]),
        (&d1.clone().into(), &true.into()),
        "{said}"
    );
    assert!(said["done"].is_string(), "{said}");
    assert!(picky.inbox.wait_for(3, WAIT));
    assert_eq!(picky.inbox.messages()[2], adt("D1"));
    assert!(router.terminate(WAIT).success());

    // On the stopped router's files: D1 is gone, D2 is still there, and can be dropped.
    let data = scratch.join("data");
    let left = dead_letters(&data);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"].as_str(), Some(d2.as_str()));
    let data_arg = data.display().to_string();
    let dropped = ganglion(&["dead-letters", "drop", &d2, "--data-dir", &data_arg]);
    assert!(dropped.status.success(), "{dropped:?}");
    assert!(dead_letters(&data).is_empty());
    // With --json, one object per id, failures included (and the exit status still says).
    let again = ganglion(&[
        "dead-letters",
        "drop",
        &d2,
        "--data-dir",
        &data_arg,
        "--json",
    ]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    let said: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (&said["id"], &said["ok"]),
        (&d2.clone().into(), &false.into()),
        "{said}"
    );
    assert!(said["error"].is_string(), "{said}");
}
