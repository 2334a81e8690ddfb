//! Routes and tests: names resolved to endpoint ids, keys interned, kinds checked.
use rustc_hash::FxHashMap;
use toml::Spanned;

use super::endpoints::{Endpoints, Groups};
use crate::config::diag::did_you_mean;
use crate::config::file::{ActionSpec, RouteSection, TargetSpec, TestSection};
use crate::config::schema::Ctx;
use crate::routes::endpoint::EndpointId;
use crate::routes::keys::{Key, MessageKind};
use crate::routes::table::{Action, Cond, Expect, KeyId, Lookup, Rule, Target, TestCase};

pub(super) struct Rules {
    pub rules: Vec<Rule>,
    pub keys: Vec<Key>,
}

/// Resolves an endpoint or group name into `out`; `false` (reported) when it is neither.
fn resolve_name(
    ctx: &mut Ctx<'_>,
    name: &Spanned<String>,
    eps: &Endpoints,
    groups: &Groups,
    out: &mut Vec<EndpointId>,
) -> bool {
    let n = name.get_ref();
    if let Some(&id) = eps.names.get(n.as_str()) {
        if !out.contains(&id) {
            out.push(id);
        }
        return true;
    }
    if let Some(g) = groups.by_name.get(n).and_then(|&i| groups.groups.get(i)) {
        for &id in &g.members {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        return true;
    }
    if eps.broken.contains(n) || !eps.complete {
        return false;
    }
    let candidates = eps
        .names
        .keys()
        .map(|k| &**k)
        .chain(groups.groups.iter().map(|g| g.name.as_str()));
    let hint = did_you_mean(n, candidates);
    ctx.error(name.span(), format!("unknown endpoint or group `{n}`"))
        .hint = hint;
    false
}

pub(super) fn routes(
    ctx: &mut Ctx<'_>,
    sections: &[RouteSection],
    eps: &Endpoints,
    groups: &Groups,
) -> Rules {
    let mut keys: Vec<Key> = Vec::new();
    let mut key_ids: FxHashMap<Key, KeyId> = FxHashMap::default();
    let mut names: FxHashMap<&str, u32> = FxHashMap::default();
    let mut rules = Vec::with_capacity(sections.len());
    for r in sections {
        let name = r.name.get_ref();
        let line = ctx.idx.line_of(r.span.start);
        if let Some(first) = names.get(name.as_str()) {
            ctx.error(
                r.name.span(),
                format!("two routes are named `{name}` (the first on line {first})"),
            );
        } else {
            names.insert(name, line);
        }
        let mut conds = Vec::with_capacity(r.conditions.len());
        let mut kinds: Vec<(MessageKind, std::ops::Range<usize>)> = Vec::new();
        for c in &r.conditions {
            let id = match key_ids.get(&c.key) {
                Some(&id) => id,
                None => {
                    let Ok(n) = u16::try_from(keys.len()) else {
                        ctx.error(
                            c.key_span.clone(),
                            "more than 65,536 distinct keys in one file",
                        );
                        continue;
                    };
                    keys.push(c.key.clone());
                    key_ids.insert(c.key.clone(), KeyId(n));
                    KeyId(n)
                }
            };
            kinds.push((c.key.kind(), c.key_span.clone()));
            conds.push(Cond {
                key: id,
                pattern: c.pattern.clone(),
            });
        }
        let action = match &r.action {
            ActionSpec::Reject(reason) => Some(Action::Reject(reason.as_str().into())),
            ActionSpec::Drop => Some(Action::Drop),
            ActionSpec::To(targets) => {
                let mut ok = true;
                let mut ids = Vec::new();
                let mut out: Vec<Target> = Vec::with_capacity(targets.len());
                for t in targets {
                    match t {
                        TargetSpec::Name(n) => {
                            ids.clear();
                            ok &= resolve_name(ctx, n, eps, groups, &mut ids);
                            for &id in &ids {
                                if !out.contains(&Target::Endpoint(id)) {
                                    out.push(Target::Endpoint(id));
                                }
                            }
                        }
                        TargetSpec::Lookup { span, from, column } => {
                            kinds.push((from.kind(), span.clone()));
                            let col = *column.get_ref();
                            if !eps.directory.has_column(col) && eps.complete {
                                let c = col.name();
                                ctx.error(
                                    column.span(),
                                    format!("no endpoint has a value in the `{c}` column, so this lookup can never find one"),
                                )
                                .hint = Some(format!(
                                    "fill the `{c}` column of the directory, or look up by another key"
                                ));
                                ok = false;
                            }
                            out.push(Target::Lookup(Lookup {
                                from: *from,
                                column: col,
                            }));
                        }
                    }
                }
                ok.then(|| Action::To(out.into()))
            }
        };
        let kind = kinds.first().map(|k| k.0);
        if let Some((other, span)) = kinds.iter().find(|k| Some(k.0) != kind) {
            let first = kind.map_or(String::new(), |k| k.to_string());
            ctx.error(
                span.clone(),
                format!("route `{name}` tests both {first} and {other} values, so no message can match it"),
            )
            .hint = Some("a message is either HL7v2 or ITK: split it into two routes".to_owned());
            continue;
        }
        let Some(action) = action else { continue };
        rules.push(Rule {
            name: name.clone(),
            line,
            span: r.span.clone(),
            kind,
            conds: conds.into(),
            action,
            cont: r.cont,
            complete: r.complete,
        });
    }
    Rules { rules, keys }
}

pub(super) fn tests(
    ctx: &mut Ctx<'_>,
    sections: &[TestSection],
    eps: &Endpoints,
    groups: &Groups,
) -> Vec<TestCase> {
    let mut out = Vec::with_capacity(sections.len());
    for t in sections {
        let mut ids = Vec::new();
        let mut ok = true;
        if let Expect::To(names) = &t.expect {
            for n in names {
                ok &= resolve_name(ctx, n, eps, groups, &mut ids);
            }
        }
        ids.sort_unstable();
        if !ok {
            continue;
        }
        let (line, col) = ctx.idx.position(t.span.start);
        out.push(TestCase {
            name: t.name.clone(),
            line,
            col,
            message: t.message.clone(),
            expect: t.expect.clone(),
            expect_endpoints: ids,
        });
    }
    out
}
