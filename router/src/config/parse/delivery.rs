//! The delivery keys of `[delivery]`, `[[group]]` and `[[endpoint]]` tables.
use std::time::Duration;

use toml::Spanned;

use super::units;
use crate::config::schema::{Ctx, Table};
use crate::routes::delivery::{DeliverySpec, ReadKey, MAX_COUNT};

/// Reads whichever delivery keys `t` sets (unknown keys are the caller's to reject).
pub fn spec(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> DeliverySpec {
    DeliverySpec::read(&mut Reader { ctx, t })
}

struct Reader<'c, 'x, 't, 'a, 'b> {
    ctx: &'c mut Ctx<'x>,
    t: &'t Table<'a, 'b>,
}

impl ReadKey for Reader<'_, '_, '_, '_, '_> {
    fn duration(&mut self, key: &'static str) -> Option<Spanned<Duration>> {
        let span = self.t.get(key).map(|v| v.span()).unwrap_or_default();
        units::duration(self.ctx, self.t, key).map(|d| Spanned::new(span, d))
    }

    fn count(&mut self, key: &'static str) -> Option<Spanned<u32>> {
        self.t
            .int(self.ctx, key, 1, MAX_COUNT)
            .and_then(|n| Some(Spanned::new(n.span(), u32::try_from(*n.get_ref()).ok()?)))
    }
}
