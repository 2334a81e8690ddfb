//! Each endpoint's delivery settings: its own keys, else its group's, else `[delivery]`'s, else
//! the defaults (the cascade itself is [`DeliverySpec::resolve`], key by key).
use smallvec::SmallVec;

use super::endpoints::{Endpoints, Groups};
use crate::config::file::GroupSection;
use crate::config::schema::Ctx;
use crate::routes::delivery::{DeliverySettings, DeliverySpec, Disagreement};

pub(super) fn resolve(
    ctx: &mut Ctx<'_>,
    defaults: &DeliverySpec,
    sections: &[GroupSection],
    groups: &Groups,
    eps: &mut Endpoints,
) {
    let base = defaults.resolve(&[], &DeliverySettings::default(), &mut |_| {});
    // Each endpoint's groups that set any delivery key, in the order they are written.
    let mut member_of: Vec<SmallVec<[(&str, &DeliverySpec); 2]>> =
        vec![SmallVec::new(); eps.endpoints.len()];
    for section in sections {
        if section.delivery == DeliverySpec::default() {
            continue;
        }
        let name = section.name.get_ref().as_str();
        let Some(group) = groups.by_name.get(name).and_then(|&i| groups.groups.get(i)) else {
            continue;
        };
        for id in &group.members {
            if let Some(of) = member_of.get_mut(id.index()) {
                of.push((name, &section.delivery));
            }
        }
    }
    for ((endpoint, own), of) in eps.endpoints.iter_mut().zip(&eps.delivery).zip(&member_of) {
        let settings = own.resolve(of, &base, &mut |d| disagreement(ctx, &endpoint.name, d));
        endpoint.delivery = settings;
    }
}

/// An error at the later group's value, naming the earlier one.
fn disagreement(ctx: &mut Ctx<'_>, endpoint: &str, d: Disagreement<'_>) {
    let line = ctx.idx.line_of(d.first_at.start);
    let key = d.key;
    ctx.error(
        d.at,
        format!(
            "endpoint `{endpoint}` is in groups `{}` (line {line}) and `{}`, which set `{key}` to \
             {} and {}",
            d.first_group, d.group, d.first_value, d.value
        ),
    )
    .hint = Some(format!(
        "set `{key}` in one of the groups only, or on the endpoint itself"
    ));
}
