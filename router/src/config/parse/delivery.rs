//! The delivery keys of `[delivery]`, `[[group]]` and `[[endpoint]]` tables.
use std::time::Duration;

use codecs::hl7v2::FieldPath;
use toml::Spanned;

use super::units;
use crate::config::schema::{Ctx, Table};
use crate::routes::delivery::{DeliverySpec, OrderBy, ReadKey, MAX_COUNT, MAX_PARALLEL};

/// Reads whichever delivery keys `t` sets (unknown keys are the caller's to reject).
pub fn spec(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> DeliverySpec {
    DeliverySpec::read(&mut Reader { ctx, t })
}

struct Reader<'c, 'x, 't, 'a, 'b> {
    ctx: &'c mut Ctx<'x>,
    t: &'t Table<'a, 'b>,
}

impl Reader<'_, '_, '_, '_, '_> {
    /// An integer from 1 to `max`.
    fn up_to(&mut self, key: &'static str, max: i64) -> Option<Spanned<u32>> {
        self.t
            .int(self.ctx, key, 1, max)
            .and_then(|n| Some(Spanned::new(n.span(), u32::try_from(*n.get_ref()).ok()?)))
    }
}

impl ReadKey for Reader<'_, '_, '_, '_, '_> {
    fn duration(&mut self, key: &'static str) -> Option<Spanned<Duration>> {
        let span = self.t.get(key).map(|v| v.span()).unwrap_or_default();
        units::duration(self.ctx, self.t, key).map(|d| Spanned::new(span, d))
    }

    fn count(&mut self, key: &'static str) -> Option<Spanned<u32>> {
        self.up_to(key, MAX_COUNT)
    }

    fn parallel(&mut self, key: &'static str) -> Option<Spanned<u32>> {
        self.up_to(key, MAX_PARALLEL)
    }

    fn order(&mut self, key: &'static str) -> Option<Spanned<OrderBy>> {
        let written = self.t.str(self.ctx, key)?;
        let order = match written.get_ref().as_str() {
            "endpoint" => Some(OrderBy::Endpoint),
            "PID-3" => Some(OrderBy::Patient),
            path => FieldPath::parse(path).ok().map(OrderBy::Field),
        };
        if order.is_none() {
            self.ctx
                .error(
                    written.span(),
                    format!(
                        "`{key}` in {} is neither \"endpoint\" nor a field path",
                        self.t.what
                    ),
                )
                .hint = Some(
                "\"PID-3\" (one patient's messages in order, the default), \"endpoint\" \
                 (strict order) or another field path such as \"PV1-19\""
                    .to_owned(),
            );
        }
        order.map(|o| Spanned::new(written.span(), o))
    }
}
