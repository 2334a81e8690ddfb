//! `[[route]]` and `[[test]]` tables.
//!
//! A route is conditions (`hl7.<name or field path>`, `itk.<name>`), one action (`to`, `reject`
//! or `drop`) and `continue`. Condition values become [`Pattern`]s here, so a bad value is found
//! before compile; endpoint and group names stay strings until compile resolves them.
use toml::de::DeValue;
use toml::Spanned;

use super::misplaced_top_key_hint;
use crate::config::diag::did_you_mean;
use crate::config::file::{ActionSpec, ConditionSpec, RouteSection, TargetSpec, TestSection};
use crate::config::schema::{str_list, type_name, Ctx, Table};
use crate::routes::keys::{Column, FieldKey, ItkKey, Key, LookupFrom, MshKey};
use crate::routes::pattern::{Alt, Pattern};
use crate::routes::table::{Expect, MessageSource};

const ROUTE_KEYS: &[&str] = &["name", "hl7", "itk", "to", "reject", "drop", "continue"];
const TEST_KEYS: &[&str] = &[
    "name", "message", "file", "to", "reject", "drop", "unrouted",
];

/// A route key that would be right one level down, under `hl7` or `itk`.
fn route_key_hint(key: &str) -> Option<String> {
    if MshKey::from_name(key).is_some() || looks_like_field_path(key) {
        let shown = if looks_like_field_path(key) {
            format!("\"{key}\"")
        } else {
            key.to_owned()
        };
        return Some(format!(
            "HL7 conditions go under `hl7`: write hl7.{shown} = …"
        ));
    }
    if ItkKey::from_name(key).is_some() {
        return Some(format!(
            "ITK conditions go under `itk`: write itk.{key} = …"
        ));
    }
    misplaced_top_key_hint(key)
}

/// `PID-3`, `ZXY-2.1`, `MSH-9.1`: a segment id and a dash (what follows is the codec's to judge).
fn looks_like_field_path(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() >= 4
        && b.iter()
            .take(3)
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b.get(3) == Some(&b'-')
}

pub fn route(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, number: usize) -> Option<RouteSection> {
    let before = ctx.diags.len();
    t.reject_unknown(ctx, ROUTE_KEYS, route_key_hint);
    let name = t
        .str(ctx, "name")
        .unwrap_or_else(|| Spanned::new(t.span.clone(), format!("route #{number}")));
    let mut conditions = Vec::new();
    if let Some(v) = t.get("hl7") {
        if let Some(h) = Table::open_any(ctx, v, &format!("the hl7 conditions of {}", t.what)) {
            hl7_conditions(ctx, &h, &mut conditions);
        }
    }
    if let Some(v) = t.get("itk") {
        if let Some(i) = Table::open_any(ctx, v, &format!("the itk conditions of {}", t.what)) {
            let names: Vec<&str> = ItkKey::ALL.iter().map(|k| k.name()).collect();
            i.reject_unknown(ctx, &names, |_| None);
            for (k, v) in i.entries() {
                if let (Some(key), Some(pattern)) =
                    (ItkKey::from_name(k.get_ref()), pattern(ctx, k.get_ref(), v))
                {
                    conditions.push(ConditionSpec {
                        key_span: k.span(),
                        key: Key::Itk(key),
                        pattern,
                    });
                }
            }
        }
    }
    // A route whose conditions were reported bad stands for less than was written.
    let complete = ctx.diags.len() == before;
    let action = action(ctx, t);
    let cont = t.bool(ctx, "continue").is_some_and(|b| *b.get_ref());
    let action = action?;
    if cont && !matches!(action, ActionSpec::To(_)) {
        let span = t.key_span("continue").unwrap_or(t.span.clone());
        ctx.error(span, format!("`continue = true` in {} needs a `to` action", t.what))
            .hint = Some("`continue` sends the message on to later routes as well; a rejected or dropped message has nowhere further to go".to_owned());
        return None;
    }
    Some(RouteSection {
        span: t.span.clone(),
        name,
        conditions,
        action,
        cont,
        complete,
    })
}

fn hl7_conditions(ctx: &mut Ctx<'_>, h: &Table<'_, '_>, out: &mut Vec<ConditionSpec>) {
    for (k, v) in h.entries() {
        let name: &str = k.get_ref();
        let key = if let Some(m) = MshKey::from_name(name) {
            Key::Msh(m)
        } else if looks_like_field_path(name) {
            match FieldKey::parse(name) {
                Ok(f) => Key::Field(f),
                Err(e) => {
                    ctx.error(k.span(), format!("`{name}` is not a field path: {e}"))
                        .hint = Some("field paths look like \"PID-3\", \"PID-3.4\", \"PID-3.4.1\" or \"PID-3[2].4\"".to_owned());
                    continue;
                }
            }
        } else {
            let names = MshKey::ALL.map(MshKey::name);
            let hint = did_you_mean(name, names).or_else(|| {
                Some("use an MSH name (message_type, receiving_facility, …) or a field path like \"PID-3.4\"".to_owned())
            });
            ctx.error(k.span(), format!("unknown key `{name}` in {}", h.what))
                .hint = hint;
            continue;
        };
        if let Some(pattern) = pattern(ctx, name, v) {
            out.push(ConditionSpec {
                key_span: k.span(),
                key,
                pattern,
            });
        }
    }
}

/// A condition value: `"x"`, `["x", "y*"]` or `{ not = … }`.
fn pattern(ctx: &mut Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Option<Pattern> {
    let (negated, list) = match v.get_ref() {
        DeValue::Table(_) => {
            let t = Table::open(ctx, v, &format!("the value of `{key}`"), &["not"])?;
            let Some(inner) = t.get("not") else {
                ctx.error(
                    v.span(),
                    format!("the value of `{key}` is a table without `not`"),
                );
                return None;
            };
            (true, str_list(ctx, &format!("`not` of `{key}`"), inner)?)
        }
        DeValue::String(_) | DeValue::Array(_) => (false, str_list(ctx, &format!("`{key}`"), v)?),
        other => {
            ctx.error(
                v.span(),
                format!(
                    "`{key}` must be a string, a list of strings or {{ not = … }}, found {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    Pattern::new(
        negated,
        list.iter().map(|s| Alt::new(s.get_ref())).collect(),
    )
}

fn action(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<ActionSpec> {
    let mut found: Vec<(&str, ActionSpec)> = Vec::new();
    let mut bad = false;
    if let Some(v) = t.get("to") {
        match targets(ctx, t, v) {
            Some(list) => found.push(("to", ActionSpec::To(list))),
            None => bad = true,
        }
    }
    if let Some(r) = t.str(ctx, "reject") {
        if r.get_ref().trim().is_empty() {
            ctx.error(
                r.span(),
                "`reject` needs a reason, which is sent back to the sender",
            );
            bad = true;
        } else {
            found.push(("reject", ActionSpec::Reject(r.into_inner())));
        }
    } else if t.get("reject").is_some() {
        bad = true;
    }
    match t.bool(ctx, "drop") {
        Some(d) if *d.get_ref() => found.push(("drop", ActionSpec::Drop)),
        Some(d) => {
            ctx.error(d.span(), "`drop = false` does nothing").hint = Some(
                "remove it, or write `drop = true` to accept and discard matching messages"
                    .to_owned(),
            );
            bad = true;
        }
        None => bad |= t.get("drop").is_some(),
    }
    match found.len() {
        0 if !bad => {
            ctx.error(t.span.clone(), format!("{} has no action", t.what))
                .hint = Some("add `to = [...]`, `reject = \"reason\"` or `drop = true`".to_owned());
            None
        }
        0 => None,
        1 => found.pop().map(|(_, a)| a),
        _ => {
            let first = found.first().map_or("", |f| f.0);
            for (k, _) in found.iter().skip(1) {
                let span = t.key_span(k).unwrap_or(t.span.clone());
                ctx.error(
                    span,
                    format!(
                        "{} has both `{first}` and `{k}`; a route takes one action",
                        t.what
                    ),
                );
            }
            None
        }
    }
}

/// `to`: a name, or a list of names and `{ lookup = … }` tables.
fn targets(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    v: &Spanned<DeValue<'_>>,
) -> Option<Vec<TargetSpec>> {
    let items: Vec<&Spanned<DeValue<'_>>> = match v.get_ref() {
        DeValue::Array(a) if a.is_empty() => {
            ctx.error(v.span(), format!("`to` in {} is an empty list", t.what))
                .hint = Some("to discard messages on purpose, write `drop = true`".to_owned());
            return None;
        }
        DeValue::Array(a) => a.iter().collect(),
        _ => vec![v],
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            DeValue::String(s) => {
                out.push(TargetSpec::Name(Spanned::new(item.span(), s.to_string())))
            }
            DeValue::Table(_) => match lookup(ctx, item) {
                Some(l) => out.push(l),
                None => ok = false,
            },
            other => {
                ctx.error(
                    item.span(),
                    format!(
                        "`to` lists endpoint or group names and {{ lookup = … }} tables, found {}",
                        type_name(other)
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn lookup(ctx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>) -> Option<TargetSpec> {
    let t = Table::open(ctx, v, "the lookup in `to`", &["lookup", "key"])?;
    let from = t.req_str(ctx, "lookup");
    let column = t.str(ctx, "key");
    let from = from.and_then(|f| {
        let parsed = LookupFrom::from_name(f.get_ref());
        if parsed.is_none() {
            let names = LookupFrom::ALL.map(LookupFrom::name);
            ctx.error(
                f.span(),
                format!(
                    "cannot look up by \"{}\": expected one of {}",
                    f.get_ref(),
                    names.join(", ")
                ),
            )
            .hint = did_you_mean(f.get_ref(), names);
        }
        parsed
    })?;
    let column = match column {
        None => Spanned::new(v.span(), from.default_column()),
        Some(c) => match Column::from_name(c.get_ref()) {
            Some(col) => Spanned::new(c.span(), col),
            None => {
                let names = Column::ALL.map(Column::name);
                ctx.error(
                    c.span(),
                    format!(
                        "\"{}\" is not a directory key: expected one of {}",
                        c.get_ref(),
                        names.join(", ")
                    ),
                )
                .hint = did_you_mean(c.get_ref(), names);
                return None;
            }
        },
    };
    Some(TargetSpec::Lookup {
        span: v.span(),
        from,
        column,
    })
}

pub fn test(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, number: usize) -> Option<TestSection> {
    t.reject_unknown(ctx, TEST_KEYS, misplaced_top_key_hint);
    let name = t
        .str(ctx, "name")
        .map_or_else(|| format!("test #{number}"), Spanned::into_inner);
    let inline = t.str(ctx, "message");
    let file = t.str(ctx, "file");
    let message = match (inline, file) {
        (Some(m), None) => Some(MessageSource::Inline(m.into_inner())),
        (None, Some(f)) => Some(MessageSource::File(f)),
        (Some(_), Some(f)) => {
            ctx.error(
                f.span(),
                format!("{} has both `message` and `file`; give one", t.what),
            );
            None
        }
        (None, None) => {
            if t.get("message").is_none() && t.get("file").is_none() {
                ctx.error(t.span.clone(), format!("{} has no message", t.what))
                    .hint = Some(
                    "add `file = \"path/to/message.hl7\"` or `message = \"\"\"MSH|…\"\"\"`"
                        .to_owned(),
                );
            }
            None
        }
    };
    let mut expects: Vec<(&str, Expect)> = Vec::new();
    if let Some(v) = t.get("to") {
        if let Some(list) = str_list(ctx, &format!("`to` in {}", t.what), v) {
            expects.push(("to", Expect::To(list)));
        }
    }
    if let Some(v) = t.get("reject") {
        match v.get_ref() {
            DeValue::String(s) => expects.push(("reject", Expect::Reject(Some(s.to_string())))),
            DeValue::Boolean(true) => expects.push(("reject", Expect::Reject(None))),
            other => {
                ctx.error(
                    v.span(),
                    format!(
                        "`reject` in {} must be true or the expected reason, found {}",
                        t.what,
                        type_name(other)
                    ),
                );
            }
        }
    }
    for (k, e) in [("drop", Expect::Drop), ("unrouted", Expect::Unrouted)] {
        if let Some(b) = t.bool(ctx, k) {
            if *b.get_ref() {
                expects.push((k, e));
            } else {
                ctx.error(
                    b.span(),
                    format!("`{k} = false` says nothing; write what the message must get"),
                );
            }
        }
    }
    let expect = match expects.len() {
        0 => {
            if !t
                .entries()
                .any(|(k, _)| ["to", "reject", "drop", "unrouted"].contains(&k.get_ref().as_ref()))
            {
                ctx.error(t.span.clone(), format!("{} expects nothing", t.what))
                    .hint = Some(
                    "add `to = [...]`, `reject = true`, `drop = true` or `unrouted = true`"
                        .to_owned(),
                );
            }
            None
        }
        1 => expects.pop().map(|(_, e)| e),
        _ => {
            let first = expects.first().map_or("", |e| e.0);
            for (k, _) in expects.iter().skip(1) {
                let span = t.key_span(k).unwrap_or(t.span.clone());
                ctx.error(
                    span,
                    format!(
                        "{} expects both `{first}` and `{k}`; give one outcome",
                        t.what
                    ),
                );
            }
            None
        }
    };
    Some(TestSection {
        span: t.span.clone(),
        name,
        message: message?,
        expect: expect?,
    })
}
