//! Delivery settings in `routes.toml`: `[delivery]`, `[[group]]` and `[[endpoint]]` keys, which
//! one each endpoint gets, and the errors, with exact positions.
mod routes_common;

use std::time::Duration;

use codecs::hl7v2::FieldPath;
use router::config::load;
use router::routes::delivery::{DeliverySettings, OrderBy};
use routes_common::{errors, first_hint, folder};

const DIRECTORY: &str = "id,protocol,address\nlab,mllp,lab.local:2575\nward,mllp,ward.local:2575\n";

#[test]
fn each_key_comes_from_the_endpoint_else_its_group_else_delivery_else_the_default() {
    let toml =
        "[delivery]\nretry_for = \"1h\"\nstuck_after = \"2m\"\nalert_circuit_open = \"10m\"\n\n\
                [directory]\nfile = \"endpoints.csv\"\n\n\
                [[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n\
                queue_limit = 7\nretry_for = \"30s\"\nalert_dead_letters_per_hour = 5\n\n\
                [[group]]\nname = \"poison-prone\"\nmembers = [\"pas\", \"lab\"]\n\
                max_attempts = 3\nqueue_limit = 50\nalert_queue_depth = 40\n";
    let dir = folder(&[
        ("routes.toml", toml.as_bytes()),
        ("endpoints.csv", DIRECTORY.as_bytes()),
    ]);
    let (table, warnings) = load(&dir.join("routes.toml")).expect("a valid file");
    assert!(warnings.is_empty(), "{warnings:?}");
    let settings = |name: &str| {
        let id = table.endpoint_id(name).expect("the endpoint exists");
        table.endpoint(id).expect("its id is valid").delivery
    };
    assert_eq!(
        settings("pas"),
        DeliverySettings {
            retry_for: Duration::from_secs(30),
            max_attempts: Some(3),
            queue_limit: 7,
            stuck_after: Duration::from_secs(120),
            alert_queue_depth: Some(40),
            alert_circuit_open: Some(Duration::from_secs(600)),
            alert_dead_letters_per_hour: Some(5),
            ..DeliverySettings::default()
        }
    );
    assert_eq!(
        settings("lab"),
        DeliverySettings {
            retry_for: Duration::from_secs(3600),
            max_attempts: Some(3),
            queue_limit: 50,
            stuck_after: Duration::from_secs(120),
            alert_queue_depth: Some(40),
            alert_circuit_open: Some(Duration::from_secs(600)),
            alert_dead_letters_per_hour: None,
            ..DeliverySettings::default()
        }
    );
    assert_eq!(
        settings("ward"),
        DeliverySettings {
            retry_for: Duration::from_secs(3600),
            stuck_after: Duration::from_secs(120),
            alert_circuit_open: Some(Duration::from_secs(600)),
            ..DeliverySettings::default()
        }
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_any_keys_every_endpoint_has_the_defaults() {
    let toml = "[[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n";
    let dir = folder(&[("routes.toml", toml.as_bytes())]);
    let (table, _) = load(&dir.join("routes.toml")).expect("a valid file");
    let defaults = DeliverySettings::default();
    assert_eq!(table.endpoints()[0].delivery, defaults);
    assert_eq!(defaults.retry_for, Duration::from_secs(24 * 3600));
    assert_eq!(defaults.max_attempts, None);
    assert_eq!(defaults.queue_limit, 10_000);
    assert_eq!(defaults.stuck_after, Duration::from_secs(300));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_values_are_reported_where_they_are_written() {
    errors(
        "[delivery]\nretry_for = \"soon\"\nqueue_limit = 0\n\n\
         [[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n\
         max_attempts = -1\nstuck_after = true\n\n\
         [[group]]\nname = \"g\"\nmembers = \"pas\"\nqueue_limit = \"many\"\n",
        &[
            "routes.toml:2:13: error: `retry_for` in [delivery] is not a duration",
            "routes.toml:3:15: error: `queue_limit` in [delivery] must be between 1 and 100000000",
            "routes.toml:9:16: error: `max_attempts` in [[endpoint]] \"pas\" must be between 1 and 100000000",
            "routes.toml:10:15: error: `stuck_after` in [[endpoint]] \"pas\" must be a duration, found a boolean",
            "routes.toml:15:15: error: `queue_limit` in [[group]] \"g\" must be an integer, found a string",
        ],
    );
}

#[test]
fn in_flight_keys_cascade_and_default_to_one_at_a_time() {
    let toml = "[delivery]\norder_by = \"PV1-19\"\n\n\
                [[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n\
                connections = 2\norder_by = \"PID-3\"\n\n\
                [[endpoint]]\nname = \"lab\"\nprotocol = \"mllp\"\naddress = \"lab.local:2575\"\n\
                order_by = \"endpoint\"\n\n\
                [[group]]\nname = \"hot\"\nmembers = [\"pas\", \"lab\"]\nmax_in_flight = 8\n";
    let dir = folder(&[("routes.toml", toml.as_bytes())]);
    let (table, _) = load(&dir.join("routes.toml")).expect("a valid file");
    let settings = |name: &str| {
        let id = table.endpoint_id(name).expect("the endpoint exists");
        table.endpoint(id).expect("its id is valid").delivery
    };
    let (pas, lab) = (settings("pas"), settings("lab"));
    assert_eq!(
        (pas.max_in_flight, pas.connections, pas.order_by),
        (8, 2, OrderBy::Patient)
    );
    assert_eq!(
        (lab.max_in_flight, lab.connections, lab.order_by),
        (8, 1, OrderBy::Endpoint)
    );
    let _ = std::fs::remove_dir_all(dir);

    let plain = DeliverySettings::default();
    assert_eq!((plain.max_in_flight, plain.connections), (1, 1));
    let only_delivery = "[delivery]\norder_by = \"PV1-19\"\n\n\
                         [[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n";
    let dir = folder(&[("routes.toml", only_delivery.as_bytes())]);
    let (table, _) = load(&dir.join("routes.toml")).expect("a valid file");
    let path = FieldPath::parse("PV1-19").expect("a field path");
    assert_eq!(table.endpoints()[0].delivery.order_by, OrderBy::Field(path));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_in_flight_values_are_reported_where_they_are_written() {
    errors(
        "[delivery]\nmax_in_flight = 0\nconnections = 100000\norder_by = \"patient\"\n",
        &[
            "routes.toml:2:17: error: `max_in_flight` in [delivery] must be between 1 and 256",
            "routes.toml:3:15: error: `connections` in [delivery] must be between 1 and 256",
            "routes.toml:4:12: error: `order_by` in [delivery] is neither \"endpoint\" nor a field path",
        ],
    );
    first_hint(
        "[delivery]\norder_by = \"patient\"\n",
        "\"PID-3\" (one patient's messages in order, the default), \"endpoint\" (strict order) \
         or another field path such as \"PV1-19\"",
    );
}

#[test]
fn unknown_keys_in_delivery_are_refused_with_the_nearest_spelling() {
    let toml = "[delivery]\nretry_fro = \"1h\"\n";
    errors(
        toml,
        &["routes.toml:2:1: error: unknown key `retry_fro` in [delivery]"],
    );
    first_hint(toml, "did you mean `retry_for`?");
    errors(
        "[[group]]\nname = \"g\"\nmembers = []\nqueue_limt = 5\n",
        &[
            "routes.toml:3:11: error: `members` in [[group]] \"g\" is an empty list",
            "routes.toml:4:1: error: unknown key `queue_limt` in [[group]] \"g\"",
        ],
    );
}

#[test]
fn two_groups_of_one_endpoint_that_disagree_are_an_error_unless_it_decides() {
    let groups = "[[group]]\nname = \"a\"\nmembers = [\"pas\"]\nretry_for = \"10m\"\n\n\
                  [[group]]\nname = \"b\"\nmembers = [\"pas\"]\nretry_for = \"1h\"\n";
    let endpoint =
        "[[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local:2575\"\n";
    let toml = format!("{endpoint}\n{groups}");
    errors(
        &toml,
        &["routes.toml:14:13: error: endpoint `pas` is in groups `a` (line 9) and `b`, which set \
           `retry_for` to 600s and 3600s"],
    );
    first_hint(
        &toml,
        "set `retry_for` in one of the groups only, or on the endpoint itself",
    );
    // The endpoint's own value settles it.
    let decided = format!("{endpoint}retry_for = \"5m\"\n\n{groups}");
    let dir = folder(&[("routes.toml", decided.as_bytes())]);
    let (table, _) = load(&dir.join("routes.toml")).expect("the endpoint decides");
    assert_eq!(
        table.endpoints()[0].delivery.retry_for,
        Duration::from_secs(300)
    );
    let _ = std::fs::remove_dir_all(dir);
    // Two groups that agree are fine.
    let agree = format!("{endpoint}\n{}", groups.replace("\"1h\"", "\"10m\""));
    let dir = folder(&[("routes.toml", agree.as_bytes())]);
    assert!(load(&dir.join("routes.toml")).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
