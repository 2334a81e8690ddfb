//! Diagnostics for `[[group]]`, `[[route]]` and `[[test]]` tables: each kind fed a broken file,
//! the exact line, column and message asserted. Most configs start with `EP` (lines 1–4, one
//! endpoint named `pas`), so the tables under test start on line 5.
mod routes_common;

use routes_common::{errors, errors_with, first_hint, warnings, EP};

fn with_ep(rest: &str) -> String {
    format!("{EP}{rest}")
}

// ---- [[group]] ----

#[test]
fn group_without_members() {
    errors(
        &with_ep("[[group]]\nname = \"g\"\n"),
        &["routes.toml:5:1: error: [[group]] \"g\" has no `members`"],
    );
    errors(
        &with_ep("[[group]]\nname = \"g\"\nmembers = []\n"),
        &["routes.toml:7:11: error: `members` in [[group]] \"g\" is an empty list"],
    );
}

#[test]
fn group_member_problems() {
    errors(
        &with_ep("[[group]]\nname = \"a\"\nmembers = [\"pass\"]\n[[group]]\nname = \"b\"\nmembers = [\"pas\", \"a\"]\n"),
        &[
            "routes.toml:7:12: error: group `a` lists `pass`, which is not an endpoint",
            "routes.toml:10:19: error: group `b` lists group `a`; groups hold endpoints only",
        ],
    );
    first_hint(
        &with_ep("[[group]]\nname = \"a\"\nmembers = [\"pass\"]\n"),
        "did you mean `pas`?",
    );
}

#[test]
fn group_names() {
    errors(
        &with_ep("[[group]]\nname = \"g\"\nmembers = \"pas\"\n[[group]]\nname = \"g\"\nmembers = \"pas\"\n[[group]]\nname = \"pas\"\nmembers = \"pas\"\n"),
        &[
            "routes.toml:9:8: error: two groups are named `g` (the first on line 6)",
            "routes.toml:12:8: error: group `pas` has the name of an endpoint (routes.toml:1); `to` could not tell them apart",
        ],
    );
}

#[test]
fn group_member_listed_twice_is_a_warning() {
    warnings(
        &[(
            "routes.toml",
            with_ep("[[group]]\nname = \"g\"\nmembers = [\"pas\", \"pas\"]\n").as_bytes(),
        )],
        &["routes.toml:7:19: warning: `pas` is listed twice in group `g`"],
    );
}

// ---- [[route]] conditions ----

#[test]
fn route_key_that_belongs_under_hl7_or_itk() {
    let toml =
        with_ep("[[route]]\nname = \"r\"\nmessage_type = \"ADT\"\nservice = \"x\"\nto = \"pas\"\n");
    errors(
        &toml,
        &[
            "routes.toml:7:1: error: unknown key `message_type` in [[route]] \"r\"",
            "routes.toml:8:1: error: unknown key `service` in [[route]] \"r\"",
        ],
    );
    first_hint(
        &toml,
        "HL7 conditions go under `hl7`: write hl7.message_type = …",
    );
}

#[test]
fn unknown_hl7_and_itk_keys() {
    let toml = with_ep("[[route]]\nname = \"r\"\nhl7.mesage_type = \"ADT\"\nto = \"pas\"\n[[route]]\nname = \"i\"\nitk.servce = \"x\"\nto = \"pas\"\n");
    errors(
        &toml,
        &[
            "routes.toml:7:5: error: unknown key `mesage_type` in the hl7 conditions of [[route]] \"r\"",
            "routes.toml:11:5: error: unknown key `servce` in the itk conditions of [[route]] \"i\"",
        ],
    );
    first_hint(&toml, "did you mean `message_type`?");
}

#[test]
fn conditions_that_are_not_a_table() {
    errors(
        &with_ep("[[route]]\nhl7 = \"ADT\"\nto = \"pas\"\n"),
        &["routes.toml:6:7: error: the hl7 conditions of [[route]] #1 must be a table, found a string"],
    );
}

#[test]
fn bad_field_path() {
    errors(
        &with_ep("[[route]]\nhl7.\"PID-x\" = \"NHS\"\nto = \"pas\"\n"),
        &["routes.toml:6:5: error: `PID-x` is not a field path: field path, character 4: expected a number from 1 to 65535 without leading zeros"],
    );
}

#[test]
fn condition_values() {
    errors(
        &with_ep("[[route]]\nhl7.message_type = 3\nhl7.trigger_event = [\"A01\", 1]\nhl7.version = []\nhl7.processing_id = { nott = \"T\" }\nto = \"pas\"\n"),
        &[
            "routes.toml:6:20: error: `message_type` must be a string, a list of strings or { not = … }, found an integer",
            "routes.toml:7:29: error: `trigger_event` must list strings, found an integer",
            "routes.toml:8:15: error: `version` is an empty list",
            "routes.toml:9:21: error: the value of `processing_id` is a table without `not`",
            "routes.toml:9:23: error: unknown key `nott` in the value of `processing_id`",
        ],
    );
}

// ---- [[route]] actions ----

#[test]
fn route_without_an_action() {
    errors(
        &with_ep("[[route]]\nname = \"r\"\n"),
        &["routes.toml:5:1: error: [[route]] \"r\" has no action"],
    );
    first_hint(
        &with_ep("[[route]]\nname = \"r\"\n"),
        "add `to = [...]`, `reject = \"reason\"` or `drop = true`",
    );
}

#[test]
fn route_with_two_actions() {
    errors(
        &with_ep("[[route]]\nname = \"r\"\nto = \"pas\"\nreject = \"no\"\n"),
        &["routes.toml:8:1: error: [[route]] \"r\" has both `to` and `reject`; a route takes one action"],
    );
}

#[test]
fn action_values() {
    errors(
        &with_ep("[[route]]\ndrop = false\n[[route]]\nreject = \" \"\n[[route]]\nto = []\n[[route]]\nto = [1]\n"),
        &[
            "routes.toml:6:8: error: `drop = false` does nothing",
            "routes.toml:8:10: error: `reject` needs a reason, which is sent back to the sender",
            "routes.toml:10:6: error: `to` in [[route]] #3 is an empty list",
            "routes.toml:12:7: error: `to` lists endpoint or group names and { lookup = … } tables, found an integer",
        ],
    );
}

#[test]
fn reject_that_is_not_a_reason() {
    errors(
        &with_ep("[[route]]\nname = \"r\"\nreject = true\n"),
        &["routes.toml:7:10: error: `reject` in [[route]] \"r\" must be a string, found a boolean"],
    );
}

#[test]
fn continue_needs_to() {
    errors(
        &with_ep("[[route]]\nname = \"r\"\nreject = \"no\"\ncontinue = true\n"),
        &["routes.toml:8:1: error: `continue = true` in [[route]] \"r\" needs a `to` action"],
    );
}

#[test]
fn unknown_endpoint_in_to() {
    errors(
        &with_ep("[[route]]\nto = [\"pas\", \"pax\"]\n"),
        &["routes.toml:6:14: error: unknown endpoint or group `pax`"],
    );
    first_hint(
        &with_ep("[[route]]\nto = [\"pas\", \"pax\"]\n"),
        "did you mean `pas`?",
    );
}

#[test]
fn duplicate_route_names() {
    errors(
        &with_ep("[[route]]\nname = \"r\"\nhl7.message_type = \"ADT\"\ndrop = true\n[[route]]\nname = \"r\"\nto = \"pas\"\n"),
        &["routes.toml:10:8: error: two routes are named `r` (the first on line 5)"],
    );
}

#[test]
fn route_mixing_hl7_and_itk() {
    errors(
        &with_ep("[[route]]\nname = \"r\"\nhl7.message_type = \"ADT\"\nitk.service = \"x\"\nto = \"pas\"\n"),
        &["routes.toml:8:5: error: route `r` tests both HL7v2 and ITK values, so no message can match it"],
    );
}

// ---- lookups ----

#[test]
fn lookup_source_and_key() {
    let toml = with_ep("[[route]]\nto = { lookup = \"itk.adress\" }\n[[route]]\nto = { lookup = \"itk.address\", key = \"odss\" }\n[[route]]\nto = { key = \"ods\" }\n");
    errors(
        &toml,
        &[
            "routes.toml:6:17: error: cannot look up by \"itk.adress\": expected one of itk.address, itk.address.ods, hl7.receiving_application, hl7.receiving_facility",
            "routes.toml:8:38: error: \"odss\" is not a directory key: expected one of id, ods, itk_address, hl7_application, hl7_facility",
            "routes.toml:10:6: error: the lookup in `to` has no `lookup`",
        ],
    );
    first_hint(&toml, "did you mean `itk.address`?");
}

#[test]
fn lookup_by_a_column_no_endpoint_fills() {
    errors(
        &with_ep("[[route]]\nto = { lookup = \"itk.address.ods\" }\n[[route]]\nto = { lookup = \"hl7.receiving_facility\", key = \"hl7_facility\" }\n"),
        &[
            "routes.toml:6:6: error: no endpoint has a value in the `ods` column, so this lookup can never find one",
            "routes.toml:8:49: error: no endpoint has a value in the `hl7_facility` column, so this lookup can never find one",
        ],
    );
}

#[test]
fn lookup_of_the_other_message_kind() {
    errors_with(
        &[
            (
                "routes.toml",
                b"[directory]\nfile = \"e.csv\"\n[[route]]\nhl7.message_type = \"ORU\"\nto = { lookup = \"itk.address\" }\n",
            ),
            ("e.csv", b"id,protocol,address,itk_address\na,itk-http,http://a/,urn:a\n"),
        ],
        &["routes.toml:5:6: error: route `route #1` tests both HL7v2 and ITK values, so no message can match it"],
    );
}

// ---- unreachable routes ----

#[test]
fn route_after_one_that_takes_everything_it_would() {
    warnings(
        &[(
            "routes.toml",
            with_ep("[[route]]\nname = \"all ADT\"\nhl7.message_type = [\"ADT\", \"ORU\"]\nto = \"pas\"\n[[route]]\nname = \"admissions\"\nhl7.message_type = \"ADT\"\nhl7.trigger_event = \"A01\"\ndrop = true\n")
                .as_bytes(),
        )],
        &["routes.toml:9:1: warning: route `admissions` can never match: route `all ADT` (line 5) takes every message it would"],
    );
    warnings(
        &[(
            "routes.toml",
            with_ep("[[route]]\nname = \"any\"\nto = \"pas\"\n[[route]]\nname = \"late\"\nitk.service = \"*\"\ndrop = true\n").as_bytes(),
        )],
        &["routes.toml:8:1: warning: route `late` can never match: route `any` (line 5) takes every message it would"],
    );
}

#[test]
fn routes_that_can_still_match_are_not_warned_about() {
    // `continue` passes messages on; a lookup can miss; a narrower route first is fine.
    warnings(
        &[
            (
                "routes.toml",
                with_ep("[directory]\nfile = \"e.csv\"\n[[route]]\nhl7.message_type = \"ADT\"\nto = \"pas\"\ncontinue = true\n[[route]]\nto = { lookup = \"hl7.receiving_facility\" }\n[[route]]\nhl7.message_type = \"ADT\"\nhl7.trigger_event = \"A01\"\nto = \"pas\"\n[[route]]\nhl7.message_type = \"ADT\"\ndrop = true\n")
                    .as_bytes(),
            ),
            ("e.csv", b"id,protocol,address,hl7_facility\na,mllp,a:1,RX8\n"),
        ],
        &[],
    );
}

// ---- [[test]] ----

#[test]
fn test_message_and_expectation() {
    errors(
        &with_ep("[[test]]\nname = \"a\"\nto = \"pas\"\n[[test]]\nname = \"b\"\nmessage = \"MSH\"\nfile = \"m.hl7\"\ndrop = true\n[[test]]\nname = \"c\"\nmessage = \"MSH\"\n[[test]]\nname = \"d\"\nmessage = \"MSH\"\ndrop = true\nunrouted = true\n"),
        &[
            "routes.toml:5:1: error: [[test]] \"a\" has no message",
            "routes.toml:11:8: error: [[test]] \"b\" has both `message` and `file`; give one",
            "routes.toml:13:1: error: [[test]] \"c\" expects nothing",
            "routes.toml:20:1: error: [[test]] \"d\" expects both `drop` and `unrouted`; give one outcome",
        ],
    );
}

#[test]
fn test_expectation_values() {
    errors(
        &with_ep("[[test]]\nmessage = \"MSH\"\nreject = 1\n[[test]]\nmessage = \"MSH\"\ndrop = false\n[[test]]\nmessage = \"MSH\"\nto = [\"pas\", \"nobody\"]\n"),
        &[
            "routes.toml:7:10: error: `reject` in [[test]] #1 must be true or the expected reason, found an integer",
            "routes.toml:10:8: error: `drop = false` says nothing; write what the message must get",
            "routes.toml:13:14: error: unknown endpoint or group `nobody`",
        ],
    );
}

// ---- running [[test]] cases (what `ganglion check` does after a clean load) ----

/// Loads `toml` (plus files) and runs its tests: the failures, as short strings.
fn test_failures(files: &[(&str, &[u8])]) -> Vec<String> {
    let dir = routes_common::folder(files);
    let table = match router::config::load(&dir.join("routes.toml")) {
        Ok((t, _)) => t,
        Err(d) => panic!("config does not load: {d:#?}"),
    };
    let got = router::config::testcase::run_tests(&table)
        .iter()
        .map(|d| routes_common::short(d, &dir))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    got
}

#[test]
fn test_cases_that_fail() {
    let toml = with_ep(
        "[[route]]\nname = \"adt\"\nhl7.message_type = \"ADT\"\nto = \"pas\"\n\
         [[test]]\nname = \"rejected\"\nmessage = \"MSH|^~\\\\&|A|B|C|D|1||ADT^A01|1|P|2.4\"\nreject = true\n\
         [[test]]\nname = \"empty\"\nmessage = \"\"\ndrop = true\n\
         [[test]]\nname = \"not hl7\"\nmessage = \"hello\"\ndrop = true\n\
         [[test]]\nname = \"two\"\nfile = \"two.hl7\"\nto = \"pas\"\n",
    );
    let two = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.4\rMSH|^~\\&|A|B|C|D|1||ORU^R01|2|P|2.4\r";
    let got = test_failures(&[("routes.toml", toml.as_bytes()), ("two.hl7", two)]);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!(
        got[0],
        "routes.toml:9:1: error: test `rejected` failed: expected a rejection, got delivery to pas by route `adt` (line 5)"
    );
    assert_eq!(
        got[1],
        "routes.toml:13:1: error: test `empty`: the message is empty"
    );
    assert!(
        got[2].starts_with("routes.toml:17:1: error: test `not hl7`: the message cannot be read: "),
        "{}",
        got[2]
    );
    assert_eq!(
        got[3],
        "routes.toml:21:1: error: test `two` failed (message 2 of 2): expected delivery to pas, got no matching route (unrouted = \"reject\")"
    );
}
