//! Wall-clock times as the wire formats write them, in UTC. The codecs read no clock; the
//! router reads it here and hands them the text.
use std::time::{SystemTime, UNIX_EPOCH};

/// Calendar fields of a UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

fn civil(now: SystemTime) -> Civil {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}

/// `YYYYMMDDHHMMSS+0000`: HL7's DTM.
pub fn hl7_timestamp(now: SystemTime) -> String {
    let c = civil(now);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ`: xs:dateTime, as ITK and WS-Security write it.
pub fn xml_datetime(now: SystemTime) -> String {
    let c = civil(now);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `2026-11-25T12:33:27.123456789Z` from Unix nanoseconds, for stored times shown to people.
pub fn rfc3339_nanos(unix_nanos: u64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_nanos(unix_nanos);
    let c = civil(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        unix_nanos % 1_000_000_000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats() {
        assert_eq!(hl7_timestamp(at(0)), "19700101000000+0000");
        assert_eq!(hl7_timestamp(at(1_795_599_015)), "20261125093015+0000");
        assert_eq!(hl7_timestamp(at(951_782_400)), "20000229000000+0000");
        assert_eq!(xml_datetime(at(1_795_599_015)), "2026-11-25T09:30:15Z");
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 12:34:56.5 UTC (leap day of a century leap year).
        assert_eq!(
            rfc3339_nanos(951_827_696_500_000_000),
            "2000-02-29T12:34:56.500000000Z"
        );
        assert_eq!(
            rfc3339_nanos(1_735_689_599_000_000_000),
            "2024-12-31T23:59:59.000000000Z"
        );
    }
}
