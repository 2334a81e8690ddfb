//! `routes::diff`: what a reload changes. Endpoints are paired by name and compared by identity
//! (protocol, address, server name, TLS profile); rules by what the operator wrote.
mod routes_common;

use router::config::load;
use router::routes::{diff, RouteTable, TableDiff};
use routes_common::folder;

const TLS: &str = "[tls.nhs]\nverify_server_name = true\n[directory]\nfile = \"e.csv\"\n";
const CSV: &str = "id,protocol,address,tls,hl7_facility\n\
a,mllp,a.local:1,,FA\n\
b,mllps,b.local:2,nhs,FB\n\
c,mllps,c.local:3,nhs,FC\n";
const ROUTES: &str = "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"a\"\n\
[[route]]\nname = \"rest\"\nto = { lookup = \"hl7.receiving_facility\" }\n";

fn table(toml: &str, csv: &str) -> RouteTable {
    let dir = folder(&[("routes.toml", toml.as_bytes()), ("e.csv", csv.as_bytes())]);
    let result = load(&dir.join("routes.toml"));
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok((t, _)) => t,
        Err(d) => panic!("config does not load: {d:#?}"),
    }
}

/// The diff as endpoint names, for readable assertions.
fn names(old: Option<&RouteTable>, new: &RouteTable, d: &TableDiff) -> [Vec<String>; 4] {
    let name = |t: Option<&RouteTable>, id| {
        t.and_then(|t| t.endpoint(id))
            .map(|e| e.name.clone())
            .unwrap_or_default()
    };
    [
        d.added.iter().map(|&id| name(Some(new), id)).collect(),
        d.removed.iter().map(|&id| name(old, id)).collect(),
        d.changed
            .iter()
            .map(|&(_, id)| name(Some(new), id))
            .collect(),
        d.unchanged
            .iter()
            .map(|&(_, id)| name(Some(new), id))
            .collect(),
    ]
}

fn v(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn start_up_is_a_diff_from_nothing() {
    let new = table(&format!("{TLS}{ROUTES}"), CSV);
    let d = diff(None, &new);
    assert_eq!(
        names(None, &new, &d),
        [v(&["a", "b", "c"]), v(&[]), v(&[]), v(&[])]
    );
    assert!(d.rules_changed);
}

#[test]
fn the_same_files_change_nothing() {
    let old = table(&format!("{TLS}{ROUTES}"), CSV);
    let new = table(&format!("{TLS}{ROUTES}"), CSV);
    let d = diff(Some(&old), &new);
    assert_eq!(
        names(Some(&old), &new, &d),
        [v(&[]), v(&[]), v(&[]), v(&["a", "b", "c"])]
    );
    assert!(!d.rules_changed);
    assert!(d.is_empty());
}

#[test]
fn endpoints_added_removed_and_changed() {
    let old = table(&format!("{TLS}{ROUTES}"), CSV);
    // b moves to another port; c is gone; d is new; a is untouched.
    let csv = "id,protocol,address,tls,hl7_facility\na,mllp,a.local:1,,FA\nb,mllps,b.local:20,nhs,FB\nd,mllp,d.local:4,,FD\n";
    let new = table(&format!("{TLS}{ROUTES}"), csv);
    let d = diff(Some(&old), &new);
    assert_eq!(
        names(Some(&old), &new, &d),
        [v(&["d"]), v(&["c"]), v(&["b"]), v(&["a"])]
    );
    // The directory's lookup contents changed, so decisions can differ.
    assert!(d.rules_changed);
}

/// Delivery keys keep the connection; those that change how messages are spread over
/// connections (`max_in_flight`, `connections`, `order_by`) also rebuild the lanes.
#[test]
fn keys_that_spread_messages_differently_rearrange_and_keep_the_identity() {
    let with = |delivery: &str| table(&format!("[delivery]\n{delivery}{TLS}{ROUTES}"), CSV);
    let rearranged = |old: &str, new: &str| {
        let (old, new) = (with(old), with(new));
        let d = diff(Some(&old), &new);
        assert_eq!(d.unchanged.len(), 3, "{d:?}");
        d.rearranged
            .iter()
            .filter_map(|&id| new.endpoint(id).map(|e| e.name.clone()))
            .collect::<Vec<String>>()
    };
    let all = v(&["a", "b", "c"]);
    assert_eq!(rearranged("", "connections = 2\n"), all);
    assert_eq!(rearranged("max_in_flight = 8\n", ""), all);
    assert_eq!(
        rearranged(
            "max_in_flight = 8\n",
            "max_in_flight = 8\norder_by = \"endpoint\"\n"
        ),
        all
    );
    // Spread the same way: an MLLP connection's window, a retry budget, `order_by` with one in
    // flight.
    assert_eq!(
        rearranged("max_in_flight = 8\n", "max_in_flight = 4\n"),
        v(&[])
    );
    assert_eq!(rearranged("", "retry_for = \"1h\"\n"), v(&[]));
    assert_eq!(rearranged("", "order_by = \"endpoint\"\n"), v(&[]));
    let (old, new) = (with(""), with("connections = 2\n"));
    assert!(
        !diff(Some(&old), &new).is_empty(),
        "a rearrangement is a change"
    );
}

#[test]
fn a_changed_tls_profile_changes_its_endpoints_only() {
    let old = table(&format!("{TLS}{ROUTES}"), CSV);
    let new = table(&format!("{}{ROUTES}", TLS.replace("true", "false")), CSV);
    let d = diff(Some(&old), &new);
    assert_eq!(
        names(Some(&old), &new, &d),
        [v(&[]), v(&[]), v(&["b", "c"]), v(&["a"])]
    );
    assert!(!d.rules_changed);
}

#[test]
fn a_new_directory_order_keeps_connections_and_rules() {
    let old = table(&format!("{TLS}{ROUTES}"), CSV);
    let csv = "id,protocol,address,tls,hl7_facility\nc,mllps,c.local:3,nhs,FC\nb,mllps,b.local:2,nhs,FB\na,mllp,a.local:1,,FA\n";
    let new = table(&format!("{TLS}{ROUTES}"), csv);
    let d = diff(Some(&old), &new);
    assert_eq!(
        names(Some(&old), &new, &d),
        [v(&[]), v(&[]), v(&[]), v(&["c", "b", "a"])]
    );
    // Ids differ between the tables; the pairs map old ids to new ones.
    let pairs: Vec<(String, String)> = d
        .unchanged
        .iter()
        .map(|&(o, n)| {
            let on = old.endpoint(o).map(|e| e.name.clone()).unwrap_or_default();
            let nn = new.endpoint(n).map(|e| e.name.clone()).unwrap_or_default();
            (on, nn)
        })
        .collect();
    assert!(pairs.iter().all(|(a, b)| a == b), "{pairs:?}");
    assert!(!d.rules_changed);
}

#[test]
fn rule_changes_are_seen() {
    let old = table(&format!("{TLS}{ROUTES}"), CSV);
    let cases = [
        // Another target.
        format!("{TLS}{}", ROUTES.replace("to = \"a\"", "to = \"b\"")),
        // Another value.
        format!("{TLS}{}", ROUTES.replace("\"ADT\"", "\"ORU\"")),
        // The same rules in another order.
        format!(
            "{TLS}[[route]]\nname = \"rest\"\nto = {{ lookup = \"hl7.receiving_facility\" }}\n\
             [[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"a\"\n"
        ),
        // `continue` added.
        format!(
            "{TLS}{}",
            ROUTES.replace("to = \"a\"\n", "to = \"a\"\ncontinue = true\n")
        ),
        // The unrouted policy.
        format!("unrouted = \"dead-letter\"\n{TLS}{ROUTES}"),
    ];
    for toml in cases {
        let new = table(&toml, CSV);
        let d = diff(Some(&old), &new);
        assert!(d.rules_changed, "not seen as a rule change:\n{toml}");
        assert_eq!(d.unchanged.len(), 3);
    }
}

/// Loads `routes.toml` from `dir` as it is now.
fn table_in(dir: &std::path::Path) -> RouteTable {
    match load(&dir.join("routes.toml")) {
        Ok((t, _)) => t,
        Err(d) => panic!("config does not load: {d:#?}"),
    }
}

fn listener(name: &str, bind: &str, extra: &str) -> String {
    format!("[[listener]]\nname = \"{name}\"\nprotocol = \"mllp\"\nbind = \"{bind}\"\n{extra}")
}

#[test]
fn listeners_added_removed_moved_and_changed() {
    let old = table(
        &[
            listener("same", "127.0.0.1:2575", ""),
            listener("gone", "127.0.0.1:2576", ""),
            listener("moves", "127.0.0.1:2577", ""),
            listener("limits", "127.0.0.1:2578", ""),
            format!("{TLS}{ROUTES}"),
        ]
        .concat(),
        CSV,
    );
    let new = table(
        &[
            listener("limits", "127.0.0.1:2578", "max_connections = 5\n"),
            listener("moves", "127.0.0.1:2587", ""),
            listener("same", "127.0.0.1:2575", ""),
            listener("fresh", "127.0.0.1:2579", ""),
            format!("{TLS}{ROUTES}"),
        ]
        .concat(),
        CSV,
    );
    let d = diff(Some(&old), &new).listeners;
    let name = |t: &RouteTable, i: usize| t.listeners()[i].name.clone();
    let pairs = |v: &[(usize, usize)]| -> Vec<String> {
        v.iter()
            .map(|&(o, n)| {
                assert_eq!(name(&old, o), name(&new, n));
                name(&new, n)
            })
            .collect()
    };
    assert_eq!(
        d.added.iter().map(|&i| name(&new, i)).collect::<Vec<_>>(),
        v(&["fresh"])
    );
    assert_eq!(
        d.removed.iter().map(|&i| name(&old, i)).collect::<Vec<_>>(),
        v(&["gone"])
    );
    assert_eq!(pairs(&d.moved), v(&["moves"]));
    assert_eq!(pairs(&d.changed), v(&["limits"]));
    assert_eq!(pairs(&d.unchanged), v(&["same"]));

    // Start-up opens every listener; the same file changes none.
    let all = diff(None, &new).listeners;
    assert_eq!(all.added, vec![0, 1, 2, 3]);
    assert!(diff(Some(&new), &new).listeners.is_empty());
}

#[test]
fn a_certificate_renewed_in_place_is_a_change() {
    let listener = listener(
        "in",
        "127.0.0.1:2575",
        "cert = \"hub.crt\"\nkey = \"hub.key\"\n",
    )
    .replace("\"mllp\"", "\"mllps\"");
    let toml =
        format!("{listener}[tls.nhs]\nca = \"ca.crt\"\n[directory]\nfile = \"e.csv\"\n{ROUTES}");
    let dir = folder(&[
        ("routes.toml", toml.as_bytes()),
        ("e.csv", CSV.as_bytes()),
        ("hub.crt", b"first certificate"),
        ("hub.key", b"first key"),
        ("ca.crt", b"first CA"),
    ]);
    let first = table_in(&dir);
    assert!(diff(Some(&first), &table_in(&dir)).is_empty());

    // The listener's certificate, renewed under the same name.
    std::fs::write(dir.join("hub.crt"), "renewed certificate").unwrap();
    let renewed = table_in(&dir);
    let d = diff(Some(&first), &renewed);
    assert_eq!(d.listeners.changed, vec![(0, 0)]);
    assert_eq!(d.changed.len(), 0);

    // The profile's CA bundle: its endpoints reconnect, the others keep their connections.
    std::fs::write(dir.join("ca.crt"), "renewed CA").unwrap();
    let d = diff(Some(&renewed), &table_in(&dir));
    assert_eq!(
        names(Some(&renewed), &table_in(&dir), &d),
        [v(&[]), v(&[]), v(&["b", "c"]), v(&["a"])]
    );
    assert!(d.listeners.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_settings_that_differ_are_named() {
    let old = table(
        &format!("[server]\nworkers = 2\ndata_dir = \"d1\"\n{TLS}{ROUTES}"),
        CSV,
    );
    let new = table(
        &format!(
            "[server]\nworkers = \"auto\"\ndata_dir = \"d2\"\nadmin = \"127.0.0.1:1\"\n{TLS}{ROUTES}"
        ),
        CSV,
    );
    let said: Vec<String> = diff(Some(&old), &new)
        .server
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(said.len(), 3, "{said:?}");
    assert_eq!(said[0], "[server] workers 2 -> \"auto\"");
    assert!(
        said[1].starts_with("[server] data_dir ") && said[1].ends_with("d2"),
        "{said:?}"
    );
    assert_eq!(said[2], "[server] admin 127.0.0.1:9464 -> 127.0.0.1:1");
    assert!(diff(Some(&old), &old).server.is_empty());
}

#[test]
fn admin_access_settings_that_differ_are_named_without_their_values() {
    let old = table(&format!("[server]\n{TLS}{ROUTES}"), CSV);
    let new = table(
        &format!(
            "[server]\nadmin_token_file = \"secret/token\"\nadmin_names = [\"hub.example.org\"]\n\
             allow_shared_data_dir = true\n{TLS}{ROUTES}"
        ),
        CSV,
    );
    let said: Vec<String> = diff(Some(&old), &new)
        .server
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        said,
        [
            "[server] admin_token_file changed",
            "[server] admin_names changed",
            "[server] allow_shared_data_dir changed"
        ]
    );
}
