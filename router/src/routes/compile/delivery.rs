//! Each endpoint's delivery settings: its own keys, else its group's, else `[delivery]`'s, else
//! the defaults (see [`crate::routes::delivery`]).
use std::time::Duration;

use toml::Spanned;

use super::endpoints::{Endpoints, Groups};
use crate::routes::delivery::{DeliverySettings, DeliverySpec};
use crate::routes::file::GroupSection;
use crate::routes::walk::Ctx;

/// A value a group gives its members, with the group that gave it.
struct FromGroup<'a, T> {
    value: &'a Spanned<T>,
    group: &'a str,
}

/// What the groups give one endpoint, key by key (the first group to set a key).
struct Inherited<'a> {
    retry_for: Option<FromGroup<'a, Duration>>,
    max_attempts: Option<FromGroup<'a, u32>>,
    queue_limit: Option<FromGroup<'a, u32>>,
    stuck_after: Option<FromGroup<'a, Duration>>,
    alert_queue_depth: Option<FromGroup<'a, u32>>,
    alert_circuit_open: Option<FromGroup<'a, Duration>>,
    alert_dead_letters_per_hour: Option<FromGroup<'a, u32>>,
}

pub(super) fn resolve(
    ctx: &mut Ctx<'_>,
    defaults: &DeliverySpec,
    sections: &[GroupSection],
    groups: &Groups,
    eps: &mut Endpoints,
) {
    let base = DeliverySettings {
        retry_for: value(&defaults.retry_for).unwrap_or(DeliverySettings::default().retry_for),
        max_attempts: value(&defaults.max_attempts).or(DeliverySettings::default().max_attempts),
        queue_limit: value(&defaults.queue_limit)
            .unwrap_or(DeliverySettings::default().queue_limit),
        stuck_after: value(&defaults.stuck_after)
            .unwrap_or(DeliverySettings::default().stuck_after),
        alert_queue_depth: value(&defaults.alert_queue_depth),
        alert_circuit_open: value(&defaults.alert_circuit_open),
        alert_dead_letters_per_hour: value(&defaults.alert_dead_letters_per_hour),
    };
    let mut inherited: Vec<Inherited<'_>> = (0..eps.endpoints.len())
        .map(|_| Inherited {
            retry_for: None,
            max_attempts: None,
            queue_limit: None,
            stuck_after: None,
            alert_queue_depth: None,
            alert_circuit_open: None,
            alert_dead_letters_per_hour: None,
        })
        .collect();
    for section in sections {
        let spec = &section.delivery;
        if *spec == DeliverySpec::default() {
            continue;
        }
        let name = section.name.get_ref().as_str();
        let Some(group) = groups.by_name.get(name).and_then(|&i| groups.groups.get(i)) else {
            continue;
        };
        for id in &group.members {
            let own = eps.delivery.get(id.index());
            let Some(slot) = inherited.get_mut(id.index()) else {
                continue;
            };
            let endpoint = eps
                .endpoints
                .get(id.index())
                .map_or("", |e| e.name.as_str());
            let sets = |key: fn(&DeliverySpec) -> bool| own.is_some_and(key);
            inherit(
                ctx,
                "retry_for",
                &mut slot.retry_for,
                &spec.retry_for,
                name,
                endpoint,
                sets(|s| s.retry_for.is_some()),
                |d| format!("{d:?}"),
            );
            inherit(
                ctx,
                "max_attempts",
                &mut slot.max_attempts,
                &spec.max_attempts,
                name,
                endpoint,
                sets(|s| s.max_attempts.is_some()),
                |n| n.to_string(),
            );
            inherit(
                ctx,
                "queue_limit",
                &mut slot.queue_limit,
                &spec.queue_limit,
                name,
                endpoint,
                sets(|s| s.queue_limit.is_some()),
                |n| n.to_string(),
            );
            inherit(
                ctx,
                "stuck_after",
                &mut slot.stuck_after,
                &spec.stuck_after,
                name,
                endpoint,
                sets(|s| s.stuck_after.is_some()),
                |d| format!("{d:?}"),
            );
            inherit(
                ctx,
                "alert_queue_depth",
                &mut slot.alert_queue_depth,
                &spec.alert_queue_depth,
                name,
                endpoint,
                sets(|s| s.alert_queue_depth.is_some()),
                |n| n.to_string(),
            );
            inherit(
                ctx,
                "alert_circuit_open",
                &mut slot.alert_circuit_open,
                &spec.alert_circuit_open,
                name,
                endpoint,
                sets(|s| s.alert_circuit_open.is_some()),
                |d| format!("{d:?}"),
            );
            inherit(
                ctx,
                "alert_dead_letters_per_hour",
                &mut slot.alert_dead_letters_per_hour,
                &spec.alert_dead_letters_per_hour,
                name,
                endpoint,
                sets(|s| s.alert_dead_letters_per_hour.is_some()),
                |n| n.to_string(),
            );
        }
    }
    for ((endpoint, own), from_groups) in
        eps.endpoints.iter_mut().zip(&eps.delivery).zip(&inherited)
    {
        endpoint.delivery = DeliverySettings {
            retry_for: value(&own.retry_for)
                .or(group(&from_groups.retry_for))
                .unwrap_or(base.retry_for),
            max_attempts: value(&own.max_attempts)
                .or(group(&from_groups.max_attempts))
                .or(base.max_attempts),
            queue_limit: value(&own.queue_limit)
                .or(group(&from_groups.queue_limit))
                .unwrap_or(base.queue_limit),
            stuck_after: value(&own.stuck_after)
                .or(group(&from_groups.stuck_after))
                .unwrap_or(base.stuck_after),
            alert_queue_depth: value(&own.alert_queue_depth)
                .or(group(&from_groups.alert_queue_depth))
                .or(base.alert_queue_depth),
            alert_circuit_open: value(&own.alert_circuit_open)
                .or(group(&from_groups.alert_circuit_open))
                .or(base.alert_circuit_open),
            alert_dead_letters_per_hour: value(&own.alert_dead_letters_per_hour)
                .or(group(&from_groups.alert_dead_letters_per_hour))
                .or(base.alert_dead_letters_per_hour),
        };
    }
}

fn value<T: Copy>(v: &Option<Spanned<T>>) -> Option<T> {
    v.as_ref().map(|v| *v.get_ref())
}

fn group<T: Copy>(g: &Option<FromGroup<'_, T>>) -> Option<T> {
    g.as_ref().map(|g| *g.value.get_ref())
}

/// Takes `offered` (group `group`'s value of `key`) for `endpoint` unless it sets the key
/// itself; a different value from an earlier group is an error at the later one.
#[allow(clippy::too_many_arguments)]
fn inherit<'a, T: PartialEq>(
    ctx: &mut Ctx<'_>,
    key: &str,
    slot: &mut Option<FromGroup<'a, T>>,
    offered: &'a Option<Spanned<T>>,
    group: &'a str,
    endpoint: &str,
    endpoint_sets_it: bool,
    show: fn(&T) -> String,
) {
    let Some(offered) = offered else {
        return;
    };
    if endpoint_sets_it {
        return;
    }
    match slot {
        None => {
            *slot = Some(FromGroup {
                value: offered,
                group,
            })
        }
        Some(first) if first.value.get_ref() != offered.get_ref() => {
            let line = ctx.idx.line_of(first.value.span().start);
            ctx.error(
                offered.span(),
                format!(
                    "endpoint `{endpoint}` is in groups `{}` (line {line}) and `{group}`, which set \
                     `{key}` to {} and {}",
                    first.group,
                    show(first.value.get_ref()),
                    show(offered.get_ref())
                ),
            )
            .hint = Some(format!(
                "set `{key}` in one of the groups only, or on the endpoint itself"
            ));
        }
        Some(_) => {}
    }
}
