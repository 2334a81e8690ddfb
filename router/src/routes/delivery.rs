//! Delivery settings: how long and how often a message may fail before it is dead-lettered, how
//! many messages an endpoint may have queued, and when a waiting message is worth a log line.
//!
//! Written in `[delivery]` (for every endpoint), in a `[[group]]` (for its members) or in an
//! `[[endpoint]]`; each key is taken from the most specific place that sets it: the endpoint,
//! else its group, else `[delivery]`, else the built-in default. Two groups of one endpoint
//! that set the same key differently are an error, unless the endpoint sets it itself.
use std::time::Duration;

use toml::Spanned;

/// Every delivery key, once: how it is written (`duration`, `count`, `parallel`, `order`, read by
/// [`ReadKey`]), what it holds once resolved, and its default. From this one list come the
/// accepted key names ([`KEYS`]), the settings as written ([`DeliverySpec`]) and resolved
/// ([`DeliverySettings`]), and the cascade between them ([`DeliverySpec::resolve`]), so a new
/// key is one entry here (and its meaning in docs/routes.md).
macro_rules! delivery_keys {
    ($( $(#[$doc:meta])* $key:ident: $kind:ident $written:ty => $resolved:ty = $default:expr; )*) => {
        /// The keys, as every table that may hold them accepts them.
        pub const KEYS: &[&str] = &[$(stringify!($key)),*];

        /// One endpoint's settings, every key resolved.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct DeliverySettings {
            $( $(#[$doc])* pub $key: $resolved, )*
        }

        impl Default for DeliverySettings {
            fn default() -> Self {
                DeliverySettings { $( $key: $default, )* }
            }
        }

        /// The settings as written in one table; `None` where a key is not set there (it
        /// inherits).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct DeliverySpec {
            $( pub $key: Option<Spanned<$written>>, )*
        }

        impl DeliverySpec {
            /// Reads whichever delivery keys a table sets.
            pub fn read(table: &mut impl ReadKey) -> DeliverySpec {
                DeliverySpec { $( $key: table.$kind(stringify!($key)), )* }
            }

            /// These settings (an endpoint's own), else for each key the first of `groups` (in
            /// the order they are written) that sets it, else `base`. A later group that sets a
            /// key the endpoint leaves to its groups to a different value goes to `disagree`.
            pub fn resolve<'a>(
                &'a self,
                groups: &[(&'a str, &'a DeliverySpec)],
                base: &DeliverySettings,
                disagree: &mut dyn FnMut(Disagreement<'a>),
            ) -> DeliverySettings {
                DeliverySettings {
                    $( $key: pick(
                        stringify!($key),
                        &self.$key,
                        groups.iter().map(|&(name, spec)| (name, &spec.$key)),
                        disagree,
                    )
                    .map(<$resolved>::from)
                    .unwrap_or(base.$key), )*
                }
            }
        }
    };
}

delivery_keys! {
    /// How long after its first failure a message may keep failing before it is dead-lettered.
    retry_for: duration Duration => Duration = Duration::from_secs(24 * 3600);
    /// Failed attempts after which a message is dead-lettered; `None`: only time counts.
    max_attempts: count u32 => Option<u32> = None;
    /// Messages accepted for the endpoint and not yet done; past it, senders are held back.
    queue_limit: count u32 => u32 = 10_000;
    /// Age of the endpoint's oldest message past which it is logged as stuck (once).
    stuck_after: duration Duration => Duration = Duration::from_secs(300);
    /// Alert (one warning, and one notice when it clears) when more messages than this are
    /// queued for the endpoint; `None`: no such alert.
    alert_queue_depth: count u32 => Option<u32> = None;
    /// Alert when the endpoint's circuit has been open this long.
    alert_circuit_open: duration Duration => Option<Duration> = None;
    /// Alert when more of the endpoint's messages than this were dead-lettered in the last hour.
    alert_dead_letters_per_hour: count u32 => Option<u32> = None;
    /// Messages sent on one connection and not yet acknowledged (HL7v2 over MLLP pipelines
    /// them); 1 keeps the endpoint's strict order whatever `order_by` says.
    max_in_flight: parallel u32 => u32 = 1;
    /// Connections to the endpoint, each with its own share of the order keys.
    connections: parallel u32 => u32 = 1;
    /// What two messages must share to keep their order: one patient, by default.
    order_by: order OrderBy => OrderBy = OrderBy::Patient;
}

/// Which messages of an endpoint keep their order among themselves (messages that differ in it
/// may overtake each other once more than one is in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderBy {
    /// Every message of the endpoint: strict order.
    Endpoint,
    /// One patient's: PID-3 for HL7v2, the tracking id for ITK.
    Patient,
    /// Those with the same value at this HL7v2 field path (ITK: the tracking id).
    Field(codecs::hl7v2::FieldPath),
}

/// Largest `max_in_flight` and `connections`: past any endpoint's use, and it bounds what one
/// endpoint's worker holds open.
pub const MAX_PARALLEL: i64 = 256;

/// How a table's delivery keys are read, by the kind of value each holds (the parser's side:
/// units, bounds and `file:line:col` errors).
pub trait ReadKey {
    fn duration(&mut self, key: &'static str) -> Option<Spanned<Duration>>;
    fn count(&mut self, key: &'static str) -> Option<Spanned<u32>>;
    /// A count from 1 to [`MAX_PARALLEL`].
    fn parallel(&mut self, key: &'static str) -> Option<Spanned<u32>>;
    fn order(&mut self, key: &'static str) -> Option<Spanned<OrderBy>>;
}

/// Two groups of one endpoint that set a key to different values (the endpoint not setting it).
#[derive(Debug)]
pub struct Disagreement<'a> {
    pub key: &'static str,
    /// The first group to set it, where, and to what.
    pub first_group: &'a str,
    pub first_at: std::ops::Range<usize>,
    pub first_value: String,
    /// The later group, where, and to what.
    pub group: &'a str,
    pub at: std::ops::Range<usize>,
    pub value: String,
}

/// `own` if set, else the first group's value; reports each later group that disagrees.
fn pick<'a, T: Copy + PartialEq + std::fmt::Debug + 'a>(
    key: &'static str,
    own: &Option<Spanned<T>>,
    groups: impl Iterator<Item = (&'a str, &'a Option<Spanned<T>>)>,
    disagree: &mut dyn FnMut(Disagreement<'a>),
) -> Option<T> {
    if let Some(own) = own {
        return Some(*own.get_ref());
    }
    let mut first: Option<(&'a str, &'a Spanned<T>)> = None;
    for (group, offered) in groups {
        let Some(offered) = offered else {
            continue;
        };
        match first {
            None => first = Some((group, offered)),
            Some((first_group, first_value)) if first_value.get_ref() != offered.get_ref() => {
                disagree(Disagreement {
                    key,
                    first_group,
                    first_at: first_value.span(),
                    first_value: format!("{:?}", first_value.get_ref()),
                    group,
                    at: offered.span(),
                    value: format!("{:?}", offered.get_ref()),
                })
            }
            Some(_) => {}
        }
    }
    first.map(|(_, v)| *v.get_ref())
}

/// Largest `queue_limit` (and `max_attempts`): well past any sensible value, well inside u32.
pub const MAX_COUNT: i64 = 100_000_000;
