//! Endpoints (from `[[endpoint]]` tables and directory rows alike) and groups.
//!
//! Names are unique across both sources and across groups; every lookup value names exactly
//! one endpoint, since a lookup that could find two would have to guess.
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::diag::{did_you_mean, Severity};
use crate::config::file::{EndpointSpec, GroupSection, Loc};
use crate::config::schema::Ctx;
use crate::routes::address;
use crate::routes::delivery::{DeliverySettings, DeliverySpec};
use crate::routes::endpoint::{default_tls_profile, Endpoint, EndpointId, TlsProfile};
use crate::routes::keys::Column;
use crate::routes::table::{Directory, Group};

pub(super) struct Endpoints {
    pub endpoints: Vec<Endpoint>,
    /// The delivery keys each endpoint sets itself, by id (resolved in [`super::delivery`]).
    pub delivery: Vec<DeliverySpec>,
    pub names: FxHashMap<Box<str>, EndpointId>,
    /// Where each endpoint was defined, by id.
    pub locs: Vec<Loc>,
    pub directory: Directory,
    /// Endpoints that were reported bad: later references to them are not reported again.
    pub broken: FxHashSet<String>,
    /// False when the directory could not be read: unknown names are then not reported.
    pub complete: bool,
}

pub(super) fn build(
    ctx: &mut Ctx<'_>,
    specs: Vec<EndpointSpec>,
    tls: &FxHashMap<String, Arc<TlsProfile>>,
) -> Endpoints {
    let default_tls = tls
        .get("default")
        .cloned()
        .unwrap_or_else(|| Arc::new(default_tls_profile()));
    let mut out = Endpoints {
        endpoints: Vec::with_capacity(specs.len()),
        delivery: Vec::with_capacity(specs.len()),
        names: FxHashMap::default(),
        locs: Vec::with_capacity(specs.len()),
        directory: Directory::default(),
        broken: FxHashSet::default(),
        complete: true,
    };
    // Where each lookup value was first seen, per column, for duplicate reports.
    let mut key_seen: [FxHashMap<String, (String, Loc)>; 4] = Default::default();
    for spec in specs {
        let name = spec.name.value.clone();
        if let Some(&first) = out.names.get(name.as_str()) {
            let place = out
                .locs
                .get(first.index())
                .map(|l| ctx.place(l))
                .unwrap_or_default();
            ctx.at(
                Severity::Error,
                &spec.name.loc,
                format!("two endpoints are named `{name}` (the first at {place})"),
            );
            continue;
        }
        let address = match address::parse(spec.protocol, &spec.address.value) {
            Ok(a) => Some(a),
            Err(msg) => {
                ctx.at(
                    Severity::Error,
                    &spec.address.loc,
                    format!("bad address for endpoint `{name}`: {msg}"),
                );
                None
            }
        };
        let profile = match (&spec.tls, spec.protocol.is_tls()) {
            (Some(t), false) => {
                let tls_proto = if spec.protocol.is_itk() {
                    "itk-https"
                } else {
                    "mllps"
                };
                ctx.at(
                    Severity::Error,
                    &t.loc,
                    format!(
                        "endpoint `{name}` names TLS profile `{}` but uses {}",
                        t.value, spec.protocol
                    ),
                )
                .hint = Some(format!("use protocol {tls_proto}, or leave `tls` empty"));
                None
            }
            (Some(t), true) => {
                match tls.get(&t.value) {
                    Some(p) => Some(p.clone()),
                    None => {
                        let hint = did_you_mean(&t.value, tls.keys().map(String::as_str))
                        .or_else(|| Some("TLS profiles are defined as [tls.<name>] tables in routes.toml".to_owned()));
                        ctx.at(
                            Severity::Error,
                            &t.loc,
                            format!(
                                "endpoint `{name}` names TLS profile `{}`, which is not defined",
                                t.value
                            ),
                        )
                        .hint = hint;
                        None
                    }
                }
            }
            (None, true) => Some(default_tls.clone()),
            (None, false) => None,
        };
        if let (Some(sn), false) = (&spec.server_name, spec.protocol.is_tls()) {
            ctx.at(
                Severity::Warning,
                &sn.loc,
                format!(
                    "endpoint `{name}` uses {}, which has no TLS: its server_name is not used",
                    spec.protocol
                ),
            );
        }
        let (Some(address), true) = (address, spec.tls.is_none() || profile.is_some()) else {
            out.broken.insert(name);
            continue;
        };
        let server_name = spec.protocol.is_tls().then(|| {
            spec.server_name
                .as_ref()
                .map_or_else(|| address.host.server_name(), |s| s.value.clone())
        });
        // Bounded by the rows of one file, far below u32::MAX.
        let id = EndpointId(u32::try_from(out.endpoints.len()).unwrap_or(u32::MAX));
        let values = [
            &spec.keys.ods,
            &spec.keys.itk_address,
            &spec.keys.hl7_application,
            &spec.keys.hl7_facility,
        ];
        let columns = [
            Column::Ods,
            Column::ItkAddress,
            Column::Hl7Application,
            Column::Hl7Facility,
        ];
        for (((value, column), seen), loc) in values
            .into_iter()
            .zip(columns)
            .zip(key_seen.iter_mut())
            .zip(&spec.key_locs)
        {
            let (Some(value), Some(loc)) = (value, loc) else {
                continue;
            };
            if let Some((other, first)) = seen.get(value) {
                let place = ctx.place(first);
                let col = column.name();
                ctx.at(
                    Severity::Error,
                    loc,
                    format!("{col} `{value}` of endpoint `{name}` is also the {col} of endpoint `{other}` ({place})"),
                )
                .hint = Some("a directory lookup must find exactly one endpoint for a value".to_owned());
                continue;
            }
            seen.insert(value.clone(), (name.clone(), loc.clone()));
            if let Some(m) = out.directory.by_column.get_mut(column as usize) {
                m.insert(value.as_bytes().into(), id);
            }
        }
        if let Some(m) = out.directory.by_column.get_mut(Column::Id as usize) {
            m.insert(name.as_bytes().into(), id);
        }
        out.names.insert(name.as_str().into(), id);
        out.locs.push(spec.loc.clone());
        out.delivery.push(spec.delivery);
        out.endpoints.push(Endpoint {
            name,
            protocol: spec.protocol,
            address,
            server_name,
            tls: profile,
            prewarm: spec.prewarm,
            keys: spec.keys,
            delivery: DeliverySettings::default(),
        });
    }
    out
}

pub(super) struct Groups {
    pub groups: Vec<Group>,
    pub by_name: FxHashMap<String, usize>,
}

pub(super) fn groups(ctx: &mut Ctx<'_>, sections: &[GroupSection], eps: &Endpoints) -> Groups {
    let mut out = Groups {
        groups: Vec::with_capacity(sections.len()),
        by_name: FxHashMap::default(),
    };
    let group_names: Vec<&str> = sections.iter().map(|g| g.name.get_ref().as_str()).collect();
    let mut first_line: FxHashMap<&str, u32> = FxHashMap::default();
    for g in sections {
        let name = g.name.get_ref();
        let line = ctx.idx.line_of(g.name.span().start);
        if let Some(first) = first_line.get(name.as_str()) {
            ctx.error(
                g.name.span(),
                format!("two groups are named `{name}` (the first on line {first})"),
            );
            continue;
        }
        first_line.insert(name, line);
        if let Some(&id) = eps.names.get(name.as_str()) {
            let place = eps
                .locs
                .get(id.index())
                .map(|l| ctx.place(l))
                .unwrap_or_default();
            ctx.error(
                g.name.span(),
                format!("group `{name}` has the name of an endpoint ({place}); `to` could not tell them apart"),
            );
            continue;
        }
        let mut members = Vec::with_capacity(g.members.len());
        for m in &g.members {
            let member = m.get_ref();
            match eps.names.get(member.as_str()) {
                Some(&id) if members.contains(&id) => {
                    ctx.warning(
                        m.span(),
                        format!("`{member}` is listed twice in group `{name}`"),
                    );
                }
                Some(&id) => members.push(id),
                None if eps.broken.contains(member) || !eps.complete => {}
                None if group_names.contains(&member.as_str()) => {
                    ctx.error(
                        m.span(),
                        format!(
                            "group `{name}` lists group `{member}`; groups hold endpoints only"
                        ),
                    )
                    .hint = Some(format!(
                        "list the endpoints of `{member}` here, or name both groups in `to`"
                    ));
                }
                None => {
                    let hint = did_you_mean(member, eps.names.keys().map(|k| &**k));
                    ctx.error(
                        m.span(),
                        format!("group `{name}` lists `{member}`, which is not an endpoint"),
                    )
                    .hint = hint;
                }
            }
        }
        out.by_name.insert(name.clone(), out.groups.len());
        out.groups.push(Group {
            name: name.clone(),
            members,
        });
    }
    out
}
