//! Sizes (`16 MiB`) and durations (`5m`) as operators write them, or as plain integers.
use std::time::Duration;

use toml::de::DeValue;

use crate::config::schema::{type_name, Ctx, Table};

/// Bytes: an integer, or a string like `512 KiB`, `16MiB`, `1 GiB`.
pub fn size(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<u64> {
    let v = t.get(key)?;
    let parsed = match v.get_ref() {
        DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
        DeValue::String(s) => parse_size(s),
        other => {
            ctx.error(
                v.span(),
                format!(
                    "`{key}` in {} must be a size, found {}",
                    t.what,
                    type_name(other)
                ),
            );
            return None;
        }
    };
    match parsed {
        Some(n) if n > 0 => Some(n),
        _ => {
            ctx.error(v.span(), format!("`{key}` in {} is not a size", t.what))
                .hint = Some("write a number of bytes, or a number and a unit: \"512 KiB\", \"16 MiB\", \"1 GiB\"".to_owned());
            None
        }
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A size as an operator would write it: `16 MiB` when it is a whole number of a unit, else
/// bytes.
pub fn show_size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// A duration: an integer number of seconds, or a string like `250ms`, `30s`, `5m`, `1h`.
pub fn duration(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<Duration> {
    let v = t.get(key)?;
    let parsed = match v.get_ref() {
        DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(Duration::from_secs),
        DeValue::String(s) => parse_duration(s),
        other => {
            ctx.error(
                v.span(),
                format!(
                    "`{key}` in {} must be a duration, found {}",
                    t.what,
                    type_name(other)
                ),
            );
            return None;
        }
    };
    match parsed {
        Some(d) if !d.is_zero() => Some(d),
        _ => {
            ctx.error(v.span(), format!("`{key}` in {} is not a duration", t.what))
                .hint = Some(
                "write a number and a unit: \"250ms\", \"30s\", \"5m\", \"1h\", \"7d\"".to_owned(),
            );
            None
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16 MiB"), Some(16 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_size("1 MB"), None);
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(show_size(16 << 20), "16 MiB");
        assert_eq!(show_size(1 << 30), "1 GiB");
        assert_eq!(show_size(1536), "1536 bytes");
        assert_eq!(show_size(3 << 10), "3 KiB");
    }
}
