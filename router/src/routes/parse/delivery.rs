//! The delivery keys of `[delivery]`, `[[group]]` and `[[endpoint]]` tables.
use toml::Spanned;

use super::units;
use crate::routes::delivery::{DeliverySpec, MAX_COUNT};
use crate::routes::walk::{Ctx, Table};

/// Reads whichever delivery keys `t` sets (unknown keys are the caller's to reject).
pub fn spec(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> DeliverySpec {
    let span = |key: &str| t.get(key).map(|v| v.span()).unwrap_or_default();
    let count = |ctx: &mut Ctx<'_>, key: &str| {
        t.int(ctx, key, 1, MAX_COUNT)
            .and_then(|n| Some(Spanned::new(n.span(), u32::try_from(*n.get_ref()).ok()?)))
    };
    DeliverySpec {
        retry_for: units::duration(ctx, t, "retry_for").map(|d| Spanned::new(span("retry_for"), d)),
        max_attempts: count(ctx, "max_attempts"),
        queue_limit: count(ctx, "queue_limit"),
        stuck_after: units::duration(ctx, t, "stuck_after")
            .map(|d| Spanned::new(span("stuck_after"), d)),
        alert_queue_depth: count(ctx, "alert_queue_depth"),
        alert_circuit_open: units::duration(ctx, t, "alert_circuit_open")
            .map(|d| Spanned::new(span("alert_circuit_open"), d)),
        alert_dead_letters_per_hour: count(ctx, "alert_dead_letters_per_hour"),
    }
}
