//! What ganglion leaves on disk is patient data: the data directory and every folder it makes
//! are 0700, every file holding a message 0600; and it refuses to start on a data directory
//! that other users can reach into, unless told to.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use codecs::hl7v2::AckCode;
use tests::endpoint::{msa, Endpoint, Reply, Sender};
use tests::process::{dead_letters, ganglion, ganglion_exit, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

/// The permission bits, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    format!(
        "{:o}",
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    )
}

fn config(scratch: &Scratch, data: &Path, server_extra: &str, endpoint: &Endpoint) -> String {
    let text = format!(
        "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n{server_extra}\n\
         [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
         [[endpoint]]\nname = \"refuser\"\nprotocol = \"mllp\"\naddress = \"{}\"\n\n\
         [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"refuser\"\n",
        data.display(),
        endpoint.addr
    );
    scratch.file("routes.toml", text).display().to_string()
}

const ADT: &[u8] = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A08|P1|P|2.4\rPID|1||943^^^NHS^NH\r";

#[test]
fn dead_letters_are_private_files_in_private_folders() {
    let scratch = Scratch::new("modes");
    let data = scratch.join("data");
    let refuser = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AR));
    let config = config(&scratch, &data, "", &refuser);
    let router = RouterProcess::start(Path::new(&config), &["--grace", "1"], &["in", "admin"]);
    let mut sender = Sender::connect(router.addr("in")).unwrap();
    assert_eq!(msa(&sender.exchange(ADT).unwrap()).0, "AA");
    assert!(refuser.inbox.wait_for(1, WAIT));
    assert!(router.terminate(WAIT).success());

    assert_eq!(mode(&data), "700", "the data directory");
    let letters = data.join("dead-letters");
    assert_eq!(mode(&letters), "700", "{}", letters.display());
    let files: Vec<_> = std::fs::read_dir(&letters)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    for file in &files {
        assert_eq!(mode(file), "600", "{}", file.display());
    }
    // Taken for replay offline, a letter keeps its mode.
    let id = dead_letters(&data)[0]["id"].as_str().unwrap().to_string();
    let data_arg = data.display().to_string();
    let replayed = ganglion(&["dead-letters", "replay", &id, "--data-dir", &data_arg]);
    assert!(replayed.status.success(), "{replayed:?}");
}

#[test]
fn the_offline_tools_make_private_folders_too() {
    let scratch = Scratch::new("modes-offline");
    let listed = ganglion(&[
        "dead-letters",
        "list",
        "--data-dir",
        &scratch.path().display().to_string(),
    ]);
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(mode(&scratch.join("dead-letters")), "700");
}

#[test]
fn a_data_directory_others_can_reach_is_refused_unless_allowed() {
    let scratch = Scratch::new("shared-data");
    let data = scratch.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let endpoint = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let refused_config = config(&scratch, &data, "", &endpoint);
    let output = ganglion_exit(&["run", "--config", &refused_config, "--no-watch"], WAIT)
        .expect("ganglion started on a data directory everyone can read");
    assert!(!output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&data.display().to_string()), "{said}");
    assert!(said.contains("0755"), "{said}");
    assert!(said.contains("allow_shared_data_dir"), "{said}");
    assert_eq!(mode(&data), "755", "left as the operator made it");

    // The command-line override.
    let router = RouterProcess::start(
        Path::new(&refused_config),
        &["--allow-shared-data-dir", "--grace", "1"],
        &["in", "admin"],
    );
    assert!(router.terminate(WAIT).success());

    // The routes.toml override, said loudly in the log.
    let allowed_config = config(&scratch, &data, "allow_shared_data_dir = true\n", &endpoint);
    let mut router = RouterProcess::start(
        Path::new(&allowed_config),
        &["--grace", "1"],
        &["in", "admin"],
    );
    assert!(
        router.wait_for_output("allow_shared_data_dir", WAIT),
        "{}",
        router.output()
    );
    assert!(router.terminate(WAIT).success());
}

/// A shard whose log cannot be opened (here its folder is a file) stops start-up with the
/// shard and the path named, and the router exits rather than serve without its log.
#[test]
fn a_log_that_cannot_be_opened_stops_start_up_naming_the_shard_and_the_file() {
    let scratch = Scratch::new("unopenable-log");
    let data = scratch.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let in_the_way = data.join("shard-0");
    std::fs::write(&in_the_way, b"not a folder").unwrap();
    let endpoint = Endpoint::mllp(None, |_, _| Reply::Ack(AckCode::AA));
    let config = config(&scratch, &data, "", &endpoint);
    let output = ganglion_exit(&["run", "--config", &config, "--no-watch"], WAIT)
        .expect("ganglion kept running without its log");
    assert!(!output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("shard 0: write-ahead log:"), "{said}");
    assert!(said.contains(&in_the_way.display().to_string()), "{said}");
    assert_eq!(
        std::fs::read(&in_the_way).unwrap(),
        b"not a folder",
        "left as it was"
    );
}
