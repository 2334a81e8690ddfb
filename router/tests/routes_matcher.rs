//! The compiled matcher against a naive model: random rule sets are written out as
//! `routes.toml`, compiled, and asked to route random messages; a plain linear evaluation of
//! the same rules, written here from the documented semantics (file order, first match wins,
//! `continue`, lookups that must all resolve, absent = empty, negation = complement), must
//! reach the same decision. `explain` must agree with `route` too.
use std::borrow::Cow;
use std::path::Path;

use proptest::prelude::*;
use router::config::load_str;
use router::routes::keys::{ItkKey, MshKey};
use router::routes::{Decision, Key, MessageKind, MessageView, Outcome, RouteTable};

// ---- the model ----

const HL7_KEYS: [&str; 5] = [
    "sending_facility",
    "receiving_facility",
    "message_type",
    "trigger_event",
    "\"PID-3.4\"",
];
const ITK_KEYS: [&str; 3] = ["service", "address", "sender"];
const HL7_VALUES: [&str; 5] = ["A", "B", "C", "AB", "BA"];
const ADDRESSES: [&str; 5] = [
    "u1",
    "u2",
    "u3",
    "urn:nhs-uk:addressing:ods:RX8",
    "urn:nhs-uk:addressing:ods:RX9:W1",
];
const ENDPOINTS: [&str; 6] = ["e0", "e1", "e2", "e3", "e4", "e5"];

#[derive(Clone, Debug)]
struct Pattern {
    negated: bool,
    alts: Vec<String>,
}

#[derive(Clone, Debug)]
enum Target {
    Name(usize),
    Lookup(&'static str),
}

#[derive(Clone, Debug)]
enum Action {
    To(Vec<Target>, bool),
    Reject,
    Drop,
}

#[derive(Clone, Debug)]
struct Rule {
    itk: bool,
    /// (key index into HL7_KEYS or ITK_KEYS, pattern); keys distinct.
    conds: Vec<(usize, Pattern)>,
    action: Action,
}

#[derive(Clone, Debug)]
struct Message {
    itk: bool,
    /// HL7: one optional value per HL7_KEYS entry; ITK: service, sender (optional).
    hl7: Vec<Option<String>>,
    service: Option<String>,
    sender: Option<String>,
    addresses: Vec<String>,
}

fn glob_matches(p: &[u8], v: &[u8]) -> bool {
    match p.split_first() {
        None => v.is_empty(),
        Some((b'*', rest)) => (0..=v.len()).any(|i| glob_matches(rest, &v[i..])),
        Some((c, rest)) => v.first() == Some(c) && glob_matches(rest, &v[1..]),
    }
}

fn pattern_holds(p: &Pattern, values: &[String]) -> bool {
    let empty = [String::new()];
    let values = if values.is_empty() {
        &empty[..]
    } else {
        values
    };
    let any = values.iter().any(|v| {
        p.alts
            .iter()
            .any(|a| glob_matches(a.as_bytes(), v.as_bytes()))
    });
    any != p.negated
}

fn values_of(m: &Message, itk_rule: bool, key: usize) -> Vec<String> {
    if itk_rule {
        match key {
            0 => m.service.iter().cloned().collect(),
            1 => m.addresses.clone(),
            _ => m.sender.iter().cloned().collect(),
        }
    } else {
        m.hl7.get(key).cloned().flatten().into_iter().collect()
    }
}

/// The directory: hl7_facility A→e0, B→e1; itk_address u1→e2, u2→e3; ods RX8→e4.
fn directory(lookup: &str, value: &str) -> Option<usize> {
    match lookup {
        "hl7.receiving_facility" => ["A", "B"].iter().position(|v| *v == value),
        "itk.address" => ["u1", "u2"].iter().position(|v| *v == value).map(|i| i + 2),
        _ => {
            let code = value
                .strip_prefix("urn:nhs-uk:addressing:ods:")?
                .split(':')
                .next()?;
            (code == "RX8").then_some(4)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Deliver(Vec<usize>),
    Reject(usize),
    Drop(usize),
    Unrouted,
}

fn naive(rules: &[Rule], m: &Message) -> (Expected, Vec<usize>) {
    let mut endpoints: Vec<usize> = Vec::new();
    let mut matched = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let any_kind = r.conds.is_empty() && !has_lookup(r);
        if !any_kind && r.itk != m.itk {
            continue;
        }
        if !r
            .conds
            .iter()
            .all(|(k, p)| pattern_holds(p, &values_of(m, r.itk, *k)))
        {
            continue;
        }
        match &r.action {
            Action::To(targets, cont) => {
                let mut add = Vec::new();
                let mut ok = true;
                for t in targets {
                    match t {
                        Target::Name(e) => add.push(*e),
                        Target::Lookup(l) => {
                            let vals = if *l == "hl7.receiving_facility" {
                                values_of(m, false, 1)
                            } else {
                                m.addresses.clone()
                            };
                            if vals.is_empty() {
                                ok = false;
                            }
                            for v in vals {
                                match directory(l, &v) {
                                    Some(e) => add.push(e),
                                    None => ok = false,
                                }
                            }
                        }
                    }
                }
                if !ok {
                    continue;
                }
                for e in add {
                    if !endpoints.contains(&e) {
                        endpoints.push(e);
                    }
                }
                matched.push(i);
                if !cont {
                    return (Expected::Deliver(endpoints), matched);
                }
            }
            Action::Reject => {
                matched.push(i);
                return (Expected::Reject(i), matched);
            }
            Action::Drop => {
                matched.push(i);
                let e = if endpoints.is_empty() {
                    Expected::Drop(i)
                } else {
                    Expected::Deliver(endpoints)
                };
                return (e, matched);
            }
        }
    }
    let e = if endpoints.is_empty() {
        Expected::Unrouted
    } else {
        Expected::Deliver(endpoints)
    };
    (e, matched)
}

fn has_lookup(r: &Rule) -> bool {
    matches!(&r.action, Action::To(t, _) if t.iter().any(|t| matches!(t, Target::Lookup(_))))
}

// ---- the model as routes.toml ----

fn quoted(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("[{}]", items.join(", "))
    }
}

fn to_toml(rules: &[Rule]) -> String {
    let mut s = String::from("[directory]\nfile = \"endpoints.csv\"\n");
    for (i, r) in rules.iter().enumerate() {
        s += &format!("[[route]]\nname = \"r{i}\"\n");
        for (k, p) in &r.conds {
            let (table, key) = if r.itk {
                ("itk", ITK_KEYS[*k])
            } else {
                ("hl7", HL7_KEYS[*k])
            };
            let value = if p.negated {
                format!("{{ not = {} }}", quoted(&p.alts))
            } else {
                quoted(&p.alts)
            };
            s += &format!("{table}.{key} = {value}\n");
        }
        match &r.action {
            Action::To(targets, cont) => {
                let t: Vec<String> = targets
                    .iter()
                    .map(|t| match t {
                        Target::Name(e) => format!("\"{}\"", ENDPOINTS[*e]),
                        Target::Lookup(l) => format!("{{ lookup = \"{l}\" }}"),
                    })
                    .collect();
                s += &format!("to = [{}]\n", t.join(", "));
                if *cont {
                    s += "continue = true\n";
                }
            }
            Action::Reject => s += &format!("reject = \"no {i}\"\n"),
            Action::Drop => s += "drop = true\n",
        }
    }
    s
}

const CSV: &str = "id,protocol,address,hl7_facility,itk_address,ods\n\
e0,mllp,e0:1,A,,\n\
e1,mllp,e1:1,B,,\n\
e2,itk-http,http://e2/,,u1,\n\
e3,itk-http,http://e3/,,u2,\n\
e4,itk-http,http://e4/,,,RX8\n\
e5,mllp,e5:1,,,\n";

/// The model message as the matcher sees it.
struct View<'m>(&'m Message);

impl MessageView for View<'_> {
    fn kind(&self) -> MessageKind {
        if self.0.itk {
            MessageKind::Itk
        } else {
            MessageKind::Hl7v2
        }
    }

    fn value(&self, key: &Key, nth: usize) -> Option<Cow<'_, [u8]>> {
        let m = self.0;
        fn single(v: &Option<String>, nth: usize) -> Option<Cow<'_, [u8]>> {
            v.as_deref()
                .filter(|_| nth == 0)
                .map(|s| Cow::Borrowed(s.as_bytes()))
        }
        match (key, m.itk) {
            (Key::Msh(k), false) => {
                let i = match k {
                    MshKey::SendingFacility => 0,
                    MshKey::ReceivingFacility => 1,
                    MshKey::MessageType => 2,
                    MshKey::TriggerEvent => 3,
                    _ => return None,
                };
                single(&m.hl7[i], nth)
            }
            (Key::Field(f), false) if f.as_str() == "PID-3.4" => single(&m.hl7[4], nth),
            (Key::Itk(ItkKey::Service), true) => single(&m.service, nth),
            (Key::Itk(ItkKey::Sender), true) => single(&m.sender, nth),
            (Key::Itk(ItkKey::Address), true) => {
                m.addresses.get(nth).map(|s| Cow::Borrowed(s.as_bytes()))
            }
            _ => None,
        }
    }
}

// ---- strategies ----

fn pattern(values: &'static [&'static str]) -> impl Strategy<Value = Pattern> {
    let alt = prop_oneof![
        4 => prop::sample::select(values).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => prop::sample::select(values).prop_map(|v| format!("{}*", &v[..1])),
        1 => prop::sample::select(values).prop_map(|v| format!("*{}", &v[v.len() - 1..])),
        1 => Just("*".to_owned()),
    ];
    (prop::bool::weighted(0.2), prop::collection::vec(alt, 1..3))
        .prop_map(|(negated, alts)| Pattern { negated, alts })
}

fn rule() -> impl Strategy<Value = Rule> {
    let hl7 = prop::collection::btree_map(0..HL7_KEYS.len(), pattern(&HL7_VALUES), 0..3);
    let itk = prop::collection::btree_map(0..ITK_KEYS.len(), pattern(&ADDRESSES), 0..3);
    let conds = prop_oneof![
        hl7.prop_map(|c| (false, c.into_iter().collect::<Vec<_>>())),
        itk.prop_map(|c| (true, c.into_iter().collect::<Vec<_>>())),
    ];
    let target = prop_oneof![4 => (0..ENDPOINTS.len()).prop_map(Target::Name), 1 => Just(())
        .prop_map(|_| Target::Lookup(""))];
    let action = prop_oneof![
        6 => (prop::collection::vec(target, 1..3), prop::bool::weighted(0.3)).prop_map(|(t, c)| Action::To(t, c)),
        1 => Just(Action::Reject),
        1 => Just(Action::Drop),
    ];
    (conds, action, 0..3usize).prop_map(|((itk, conds), mut action, which)| {
        // A lookup must fit the rule's kind, or the rule would test both kinds.
        if let Action::To(targets, _) = &mut action {
            for t in targets.iter_mut() {
                if let Target::Lookup(l) = t {
                    *l = match (itk, which) {
                        (false, _) => "hl7.receiving_facility",
                        (true, 0) => "itk.address.ods",
                        (true, _) => "itk.address",
                    };
                }
            }
        }
        Rule { itk, conds, action }
    })
}

fn message() -> impl Strategy<Value = Message> {
    let hl7 = prop::collection::vec(
        prop::option::weighted(
            0.8,
            prop::sample::select(&HL7_VALUES[..]).prop_map(str::to_owned),
        ),
        5,
    );
    let opt_addr = || {
        prop::option::weighted(
            0.7,
            prop::sample::select(&ADDRESSES[..]).prop_map(str::to_owned),
        )
    };
    let addrs = prop::collection::vec(
        prop::sample::select(&ADDRESSES[..]).prop_map(str::to_owned),
        0..4,
    );
    (any::<bool>(), hl7, opt_addr(), opt_addr(), addrs).prop_map(
        |(itk, hl7, service, sender, addresses)| Message {
            itk,
            hl7,
            service,
            sender,
            addresses,
        },
    )
}

fn table(rules: &[Rule], dir: &Path) -> RouteTable {
    let toml = to_toml(rules);
    let path = dir.join("routes.toml");
    match load_str(&path, &toml) {
        Ok((t, _warnings)) => t,
        Err(d) => panic!("generated config does not load: {d:#?}\n{toml}"),
    }
}

fn got(t: &RouteTable, d: &Decision) -> (Expected, Vec<usize>) {
    let names: Vec<usize> = d
        .endpoints
        .iter()
        .filter_map(|&id| t.endpoint(id))
        .filter_map(|e| ENDPOINTS.iter().position(|n| *n == e.name))
        .collect();
    let e = match d.outcome {
        Outcome::Deliver => Expected::Deliver(names),
        Outcome::Reject(r) => Expected::Reject(r.index()),
        Outcome::Drop(r) => Expected::Drop(r.index()),
        Outcome::Unrouted(_) => Expected::Unrouted,
    };
    (e, d.matched.iter().map(|r| r.index()).collect())
}

/// A folder holding the directory CSV; one per caller, since tests run in parallel.
fn csv_dir(who: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ganglion-routes-matcher-{}-{who}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    std::fs::write(dir.join("endpoints.csv"), CSV).expect("the temp dir is writable");
    dir
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn compiled_matcher_agrees_with_the_naive_one(
        rules in prop::collection::vec(rule(), 0..25),
        messages in prop::collection::vec(message(), 1..12),
    ) {
        let dir = csv_dir("prop");
        let t = table(&rules, &dir);
        let mut d = Decision::default();
        for m in &messages {
            let expected = naive(&rules, m);
            t.route(&View(m), &mut d);
            prop_assert_eq!(&got(&t, &d), &expected, "message {:?}\n{}", m, to_toml(&rules));
            let explained = t.explain(&View(m));
            prop_assert_eq!(&got(&t, &explained.decision), &expected);
            // Every rule up to the deciding one (or all, when none decided) matched or was
            // passed over with a reason.
            let terminal = expected.1.last().filter(|&&i| !matches!(rules[i].action, Action::To(_, true)));
            let end = terminal.map_or(rules.len(), |&i| i + 1);
            prop_assert_eq!(explained.skipped.len() + expected.1.len(), end);
        }
    }
}

#[test]
fn many_rules_on_one_value_keep_file_order() {
    // 2,000 rules all anchored on message_type "ADT": the first whose facility matches wins.
    let mut toml = String::from("[directory]\nfile = \"endpoints.csv\"\n");
    for i in 0..2000 {
        toml += &format!(
            "[[route]]\nhl7.message_type = \"ADT\"\nhl7.sending_facility = \"F{i}\"\nto = \"e{}\"\n",
            i % 6
        );
    }
    let dir = csv_dir("order");
    let (t, _) = load_str(&dir.join("routes.toml"), &toml).unwrap_or_else(|d| panic!("{d:#?}"));
    let m = Message {
        itk: false,
        hl7: vec![Some("F1234".into()), None, Some("ADT".into()), None, None],
        service: None,
        sender: None,
        addresses: vec![],
    };
    let mut d = Decision::default();
    t.route(&View(&m), &mut d);
    assert_eq!(got(&t, &d), (Expected::Deliver(vec![1234 % 6]), vec![1234]));
}
