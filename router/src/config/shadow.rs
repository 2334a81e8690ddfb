//! The "can never match" warning: a route that an earlier route always takes first.
//!
//! Rule `a` shadows a later rule `b` when `a` always decides (no `continue`, no lookup that can
//! miss), accepts every message kind `b` does, and each condition of `a` is implied by `b`'s
//! condition on the same key ([`Pattern::implies`], conservative: a `false` only means "not
//! proven"). Comparing every pair of 10,000 rules would be 50 million checks, so the candidates
//! for `a` are taken from the rule index: a rule anchored on an exact value can shadow `b` only
//! if `b` tests that same value, so `b`'s own exact values find them; rules on the scan list are
//! few and are all checked. At most `MAX_CANDIDATES` earlier rules are checked per rule, so a
//! file with thousands of rules on one shared value still loads in linear time: the warning is
//! a help, never a promise that every unreachable route is found.
use super::schema::Ctx;
use crate::routes::index::{Index, KindIndex};
use crate::routes::keys::{Key, MessageKind};
use crate::routes::pattern::Pattern;
use crate::routes::table::{Action, Cond, Rule, Target};

/// Most earlier rules checked against each rule, so that a reload stays fast on any file.
const MAX_CANDIDATES: usize = 2_000;

fn always_decides(a: &Rule) -> bool {
    !a.cont
        && match &a.action {
            Action::To(t) => t.iter().all(|t| matches!(t, Target::Endpoint(_))),
            Action::Reject(_) | Action::Drop => true,
        }
}

fn universal(p: &Pattern) -> bool {
    p.is_universal()
}

/// Whether every message `b` holds for makes `a`'s conditions hold.
fn covers(a: &Rule, b: &Rule, keys: &[Key]) -> bool {
    if a.kind.is_some() && a.kind != b.kind {
        return false;
    }
    a.conds.iter().all(|ca: &Cond| {
        let multi = keys.get(usize::from(ca.key.0)).is_some_and(Key::is_multi);
        match b.conds.iter().find(|cb| cb.key == ca.key) {
            Some(cb) => cb.pattern.implies(&ca.pattern, multi),
            None => universal(&ca.pattern),
        }
    })
}

/// Earlier rules that might cover `b`, from one kind's index; ascending, possibly repeated.
fn candidates(ki: &KindIndex, b: &Rule, below: u32, out: &mut Vec<u32>) {
    out.extend(
        ki.scan
            .iter()
            .copied()
            .take_while(|&r| r < below)
            .take(MAX_CANDIDATES),
    );
    for c in b.conds.iter() {
        // An anchored rule that covers `b` accepts every value `b` does, so it is filed under
        // `b`'s first exact value (or a prefix of it), or under the same glob prefix.
        let Some(mut anchors) = c.pattern.anchors() else {
            continue;
        };
        let Some((_, first)) = anchors.next() else {
            continue;
        };
        if let Some(k) = ki.keys.iter().find(|k| k.key == c.key) {
            k.probe(first, |list| {
                out.extend(
                    list.iter()
                        .copied()
                        .take_while(|&r| r < below)
                        .take(MAX_CANDIDATES),
                )
            });
        }
    }
}

pub(crate) fn warn(ctx: &mut Ctx<'_>, rules: &[Rule], keys: &[Key], index: &Index) {
    let mut cands = Vec::new();
    for (j, b) in rules.iter().enumerate() {
        let below = u32::try_from(j).unwrap_or(u32::MAX);
        cands.clear();
        match b.kind {
            Some(MessageKind::Hl7v2) => candidates(&index.hl7, b, below, &mut cands),
            Some(MessageKind::Itk) => candidates(&index.itk, b, below, &mut cands),
            // A rule for both kinds is covered only by one for both kinds, which sits on both
            // scan lists; one list is enough.
            None => candidates(&index.hl7, b, below, &mut cands),
        }
        cands.sort_unstable();
        cands.dedup();
        // Thousands of rules on one shared value would make this quadratic; the earliest
        // candidates are kept, which is where broad rules sit in a sensible file.
        cands.truncate(MAX_CANDIDATES);
        if !b.complete {
            continue;
        }
        let shadow = cands
            .iter()
            .filter_map(|&i| rules.get(i as usize))
            .find(|a| a.complete && always_decides(a) && covers(a, b, keys));
        if let Some(a) = shadow {
            ctx.warning(
                b.span.clone(),
                format!(
                    "route `{}` can never match: route `{}` (line {}) takes every message it would",
                    b.name, a.name, a.line
                ),
            )
            .hint = Some(format!(
                "move `{}` above `{}`, or narrow `{}`",
                b.name, a.name, a.name
            ));
        }
    }
}
