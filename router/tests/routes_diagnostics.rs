//! Every kind of diagnostic that loading `routes.toml` can raise, each fed a broken file, with
//! the exact file, line, column and message asserted. Positions were counted from the inputs
//! by hand. Routes and tests have their own file (`routes_diagnostics_rules.rs`).
mod routes_common;

use routes_common::{errors, errors_with, first_hint, load_in, warnings, EP};

// ---- reading the file ----

#[test]
fn missing_config_file() {
    let (got, _, ok) = load_in(&[("other.toml", b"")]);
    assert!(!ok);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("routes.toml: error: cannot read the config: "),
        "{}",
        got[0]
    );
}

#[test]
fn config_not_utf8() {
    errors_with(
        &[("routes.toml", b"unrouted = \"reject\"\nx = \"\xff\"\n")],
        &["routes.toml:2:6: error: the config is not UTF-8 text"],
    );
}

#[test]
fn toml_syntax_error_stops_before_the_schema() {
    // Line 2 has no value. The unknown key on line 3 is not reported after a syntax error.
    let (got, _, ok) = load_in(&[("routes.toml", b"[server]\nworkers =\nbogus = 1\n")]);
    assert!(!ok);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("routes.toml:2:10: error: invalid TOML: "),
        "{}",
        got[0]
    );
}

// ---- unknown keys and wrong types ----

#[test]
fn unknown_keys_are_all_reported_at_once() {
    errors(
        "colour = 1\n[server]\nworkrs = 2\n[[listener]]\nname = \"in\"\nprotocl = \"mllp\"\nbind = \"0.0.0.0:1\"\n",
        &[
            "routes.toml:1:1: error: unknown key `colour` at the top level",
            "routes.toml:3:1: error: unknown key `workrs` in [server]",
            "routes.toml:4:1: error: [[listener]] \"in\" has no `protocol`",
            "routes.toml:6:1: error: unknown key `protocl` in [[listener]] \"in\"",
        ],
    );
}

#[test]
fn unknown_key_hint_is_the_nearest_spelling() {
    first_hint("[server]\nworkrs = 2\n", "did you mean `workers`?");
}

#[test]
fn unrouted_after_a_table_is_explained() {
    let toml = format!("{EP}unrouted = \"dead-letter\"\n");
    errors(
        &toml,
        &["routes.toml:5:1: error: unknown key `unrouted` in [[endpoint]] \"pas\""],
    );
    first_hint(
        &toml,
        "`unrouted` is a top-level key: move it above the first [section] of the file",
    );
}

#[test]
fn wrong_types() {
    errors(
        "[server]\ndata_dir = 5\n\n[[listener]]\nname = true\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\nmax_connections = \"many\"\n",
        &[
            "routes.toml:2:12: error: `data_dir` in [server] must be a string, found an integer",
            "routes.toml:5:8: error: `name` in [[listener]] #1 must be a string, found a boolean",
            "routes.toml:8:19: error: `max_connections` in [[listener]] #1 must be an integer, found a string",
        ],
    );
}

#[test]
fn single_brackets_for_an_array_of_tables() {
    errors(
        "[route]\ndrop = true\n",
        &["routes.toml:1:1: error: `route` must be written [[route]] (one table per route)"],
    );
    first_hint(
        "[route]\ndrop = true\n",
        "write [[route]] with double brackets",
    );
}

#[test]
fn arrays_of_tables_that_hold_other_things() {
    errors(
        "route = [1, { drop = true }]\nlistener = 3\n",
        &[
            "routes.toml:1:10: error: `route` must hold tables, found an integer",
            "routes.toml:2:12: error: `listener` must be written as [[listener]] tables, found an integer",
        ],
    );
}

#[test]
fn section_that_is_not_a_table() {
    errors(
        "server = 3\n",
        &["routes.toml:1:10: error: [server] must be a table, found an integer"],
    );
}

// ---- top level and [server] ----

#[test]
fn unrouted_value() {
    errors(
        "unrouted = \"bounce\"\n",
        &["routes.toml:1:12: error: `unrouted` must be \"reject\" or \"dead-letter\", not \"bounce\""],
    );
    first_hint("unrouted = \"rejct\"\n", "did you mean `reject`?");
}

#[test]
fn server_values() {
    errors(
        "[server]\nworkers = 0\nadmin = \"localhost:80\"\n",
        &[
            "routes.toml:2:11: error: `workers` in [server] must be between 1 and 1024",
            "routes.toml:3:9: error: `admin` in [server] is not an IP address and port: \"localhost:80\"",
        ],
    );
    errors(
        "[server]\nworkers = \"all\"\n",
        &["routes.toml:2:11: error: `workers` in [server] must be \"auto\" or a number of shards, found \"all\""],
    );
    errors(
        "[server]\nwal_budget = \"4 GB\"\n",
        &["routes.toml:2:14: error: `wal_budget` in [server] is not a size"],
    );
}

// ---- [[listener]] ----

#[test]
fn listener_required_keys() {
    errors(
        "[[listener]]\nbind = \"0.0.0.0:2575\"\n",
        &[
            "routes.toml:1:1: error: [[listener]] #1 has no `name`",
            "routes.toml:1:1: error: [[listener]] #1 has no `protocol`",
        ],
    );
    errors(
        "[[listener]]\nname = \"in\"\nprotocol = \"mllp\"\n",
        &["routes.toml:1:1: error: [[listener]] \"in\" has no `bind`"],
    );
}

#[test]
fn listener_protocol() {
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"hl7\"\nbind = \"0.0.0.0:1\"\n",
        &["routes.toml:3:12: error: unknown protocol \"hl7\": expected one of mllp, mllps, itk-http, itk-https"],
    );
    first_hint(
        "[[listener]]\nname = \"a\"\nprotocol = \"mlps\"\nbind = \"0.0.0.0:1\"\n",
        "did you mean `mllps`?",
    );
}

#[test]
fn listener_tls_files() {
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"mllps\"\nbind = \"0.0.0.0:1\"\nkey = \"k.pem\"\n",
        &[
            "routes.toml:1:1: error: [[listener]] \"a\" uses mllps but has no `cert`",
            "routes.toml:5:7: error: the TLS file of listener `a` `k.pem` does not exist",
        ],
    );
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"itk-http\"\nbind = \"0.0.0.0:1\"\ncert = \"c.pem\"\n",
        &[
            "routes.toml:5:1: error: `cert` is only used by TLS listeners, but [[listener]] \"a\" uses itk-http",
            "routes.toml:5:8: error: the TLS file of listener `a` `c.pem` does not exist",
        ],
    );
}

#[test]
fn listener_client_certificates() {
    let toml = "[[listener]]\nname = \"a\"\nprotocol = \"mllps\"\nbind = \"0.0.0.0:1\"\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_cert = \"required\"\n";
    errors_with(
        &[("routes.toml", toml.as_bytes()), ("c.pem", b"x"), ("k.pem", b"x")],
        &["routes.toml:7:1: error: [[listener]] \"a\" asks for client certificates but has no `client_ca` to check them with"],
    );
    let toml = toml.replace("\"required\"", "\"always\"");
    errors_with(
        &[("routes.toml", toml.as_bytes()), ("c.pem", b"x"), ("k.pem", b"x")],
        &["routes.toml:7:15: error: `client_cert` must be \"none\", \"optional\" or \"required\", not \"always\""],
    );
}

#[test]
fn listener_sizes_and_durations() {
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\nmax_message_bytes = \"16 MB\"\nidle_timeout = \"5 minutes\"\n",
        &[
            "routes.toml:5:21: error: `max_message_bytes` in [[listener]] \"a\" is not a size",
            "routes.toml:6:16: error: `idle_timeout` in [[listener]] \"a\" is not a duration",
        ],
    );
}

#[test]
fn listener_timeouts_and_buffer_limits() {
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\nhandshake_timeout = \"soon\"\nfirst_byte_timeout = 0\nmax_buffered_per_peer = \"1 MiB\"\n",
        &[
            "routes.toml:5:21: error: `handshake_timeout` in [[listener]] \"a\" is not a duration",
            "routes.toml:6:22: error: `first_byte_timeout` in [[listener]] \"a\" is not a duration",
            "routes.toml:7:25: error: `max_buffered_per_peer` in [[listener]] \"a\" (1 MiB) is less than its `max_message_bytes` (16 MiB): a message that long could never be read",
        ],
    );
    first_hint(
        "[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\nmax_buffered_per_peer = \"1 MiB\"\n",
        "raise max_buffered_per_peer, or lower max_message_bytes",
    );
}

#[test]
fn the_process_budget_holds_every_listeners_largest_message() {
    errors(
        "[server]\nmax_buffered_input = \"8 MiB\"\n\n[[listener]]\nname = \"small\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\nmax_message_bytes = \"1 MiB\"\n\n[[listener]]\nname = \"big\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:2\"\n",
        &["routes.toml:2:22: error: `max_buffered_input` in [server] (8 MiB) is less than `max_message_bytes` of [[listener]] \"big\" (16 MiB): a message that long could never be read"],
    );
    errors(
        "[server]\nmax_buffered_input = \"lots\"\n",
        &["routes.toml:2:22: error: `max_buffered_input` in [server] is not a size"],
    );
}

#[test]
fn listener_value_types() {
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"pas.local:1\"\nmax_message_bytes = true\nidle_timeout = [5]\n",
        &[
            "routes.toml:4:8: error: `bind` in [[listener]] \"a\" is not an IP address and port: \"pas.local:1\"",
            "routes.toml:5:21: error: `max_message_bytes` in [[listener]] \"a\" must be a size, found a boolean",
            "routes.toml:6:16: error: `idle_timeout` in [[listener]] \"a\" must be a duration, found an array",
        ],
    );
}

#[test]
fn listener_duplicates() {
    errors(
        "[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\n[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"0.0.0.0:1\"\n",
        &[
            "routes.toml:6:8: error: two listeners are named `a` (the first on line 2)",
            "routes.toml:6:8: error: listener `a` binds 0.0.0.0:1, as the listener on line 2 does",
        ],
    );
    // Port 0 asks for any free port: two listeners asking for one each do not collide.
    let (diags, _, loaded) = load_in(&[(
        "routes.toml",
        b"[[listener]]\nname = \"a\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
[[listener]]\nname = \"b\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n",
    )]);
    assert!(loaded, "{diags:?}");
}

// ---- [tls.*] ----

#[test]
fn tls_profile_files() {
    errors(
        "[tls.nhs]\nca = \"ca.pem\"\ncert = \"client.pem\"\n",
        &[
            "routes.toml:2:6: error: the TLS file of [tls.nhs] `ca.pem` does not exist",
            "routes.toml:3:1: error: [tls.nhs] has `cert` but no `key`",
            "routes.toml:3:8: error: the TLS file of [tls.nhs] `client.pem` does not exist",
        ],
    );
    first_hint(
        "[tls.nhs]\nca = \"ca.pem\"\n",
        "looked for TMP/ca.pem; paths are relative to the folder of routes.toml",
    );
}

#[test]
fn tls_file_that_is_a_folder() {
    errors_with(
        &[
            ("routes.toml", b"[tls.nhs]\nca = \"certs\"\n"),
            ("certs/readme", b"x"),
        ],
        &["routes.toml:2:6: error: the TLS file of [tls.nhs] `certs` is not a file"],
    );
}

// ---- [[endpoint]] ----

#[test]
fn endpoint_required_keys() {
    errors(
        "[[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\n",
        &["routes.toml:1:1: error: [[endpoint]] \"pas\" has no `address`"],
    );
}

#[test]
fn endpoint_addresses() {
    errors(
        "[[endpoint]]\nname = \"pas\"\nprotocol = \"mllp\"\naddress = \"pas.local\"\n",
        &["routes.toml:4:11: error: bad address for endpoint `pas`: `pas.local` has no port: write `host:port`, like `pas.local:2575`"],
    );
    errors(
        "[[endpoint]]\nname = \"itk\"\nprotocol = \"itk-https\"\naddress = \"http://itk.local/x\"\n",
        &["routes.toml:4:11: error: bad address for endpoint `itk`: itk-https addresses must start with https://, not `http://itk.local/x`"],
    );
}

#[test]
fn endpoint_tls_profiles() {
    errors(
        "[tls.nhs]\n[[endpoint]]\nname = \"a\"\nprotocol = \"mllps\"\naddress = \"a:1\"\ntls = \"nsh\"\n[[endpoint]]\nname = \"b\"\nprotocol = \"mllp\"\naddress = \"b:1\"\ntls = \"nhs\"\n",
        &[
            "routes.toml:6:7: error: endpoint `a` names TLS profile `nsh`, which is not defined",
            "routes.toml:11:7: error: endpoint `b` names TLS profile `nhs` but uses mllp",
        ],
    );
    first_hint(
        "[tls.nhs]\n[[endpoint]]\nname = \"a\"\nprotocol = \"mllps\"\naddress = \"a:1\"\ntls = \"nsh\"\n",
        "did you mean `nhs`?",
    );
}

#[test]
fn endpoint_server_name_without_tls_is_a_warning() {
    warnings(
        &[("routes.toml", b"[[endpoint]]\nname = \"a\"\nprotocol = \"mllp\"\naddress = \"a:1\"\nserver_name = \"a.example\"\n")],
        &["routes.toml:5:15: warning: endpoint `a` uses mllp, which has no TLS: its server_name is not used"],
    );
}

#[test]
fn duplicate_endpoint_names_across_toml_and_csv() {
    let toml = format!("[directory]\nfile = \"e.csv\"\n{EP}");
    errors_with(
        &[
            ("routes.toml", toml.as_bytes()),
            ("e.csv", b"id,protocol,address\npas,mllp,other:1\n"),
        ],
        &["e.csv:2: error: two endpoints are named `pas` (the first at routes.toml:3)"],
    );
}

#[test]
fn duplicate_lookup_values() {
    errors_with(
        &[
            ("routes.toml", b"[directory]\nfile = \"e.csv\"\n"),
            (
                "e.csv",
                b"id,protocol,address,ods\na,mllp,a:1,RX8\nb,mllp,b:1,RX9\nc,mllp,c:1,RX8\n",
            ),
        ],
        &["e.csv:4: error: ods `RX8` of endpoint `c` is also the ods of endpoint `a` (e.csv:2)"],
    );
}

// ---- [directory] and the CSV ----

#[test]
fn directory_without_file() {
    errors(
        "[directory]\n",
        &["routes.toml:1:1: error: [directory] has no `file`"],
    );
}

#[test]
fn directory_unreadable() {
    let (got, _, ok) = load_in(&[("routes.toml", b"[directory]\nfile = \"missing.csv\"\n")]);
    assert!(!ok);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "routes.toml:2:8: error: cannot read the endpoint directory `TMP/missing.csv`: "
        ),
        "{}",
        got[0]
    );
}

#[test]
fn directory_header_problems() {
    errors_with(
        &[
            ("routes.toml", b"[directory]\nfile = \"e.csv\"\n"),
            ("e.csv", b"id,protocl,address,id\n"),
        ],
        &[
            "e.csv:1: error: unknown column `protocl`",
            "e.csv:1: error: column `id` appears twice in the header",
            "e.csv:1: error: the header has no `protocol` column, which every endpoint needs",
        ],
    );
    errors_with(
        &[
            ("routes.toml", b"[directory]\nfile = \"e.csv\"\n"),
            ("e.csv", b""),
        ],
        &["e.csv: error: the directory is empty; it needs a header row"],
    );
}

#[test]
fn directory_row_problems() {
    errors_with(
        &[
            ("routes.toml", b"[directory]\nfile = \"e.csv\"\n"),
            (
                "e.csv",
                b"# endpoints\nid,protocol,address,prewarm\n,mllp,a:1,\nb,mlp,b:1,\nc,mllp,,\n\nd,mllp,d:1,maybe\ne,mllp\nf,mllp,f,\n",
            ),
        ],
        &[
            "e.csv:3: error: this row has no `id`",
            "e.csv:4: error: unknown protocol `mlp`: expected one of mllp, mllps, itk-http, itk-https",
            "e.csv:5: error: this row has no `address`",
            "e.csv:7: error: `prewarm` must be true or false, not `maybe`",
            "e.csv:8: error: this row has 2 fields but the header has 4",
            "e.csv:9: error: bad address for endpoint `f`: `f` has no port: write `host:port`, like `f:2575`",
        ],
    );
}

#[test]
fn directory_row_that_is_not_utf8() {
    errors_with(
        &[
            ("routes.toml", b"[directory]\nfile = \"e.csv\"\n"),
            ("e.csv", b"id,protocol,address\na,mllp,a:1\nb,mllp,\xff:1\n"),
        ],
        &["e.csv:3: error: unreadable CSV: field 3 is not UTF-8 text"],
    );
}
