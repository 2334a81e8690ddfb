//! Command-line quantities: durations (`60s`, `500ms`, `2m`) and rates (`3200`, `3.2k`).

/// Parses `1500ms`, `60s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (write 60s, 500ms, 2m)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("not a duration: {text:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(v * scale))
}

/// Parses a rate in messages per second: `3200`, `3.2k`, `50k`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1000.0),
        None => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a rate: {text:?} (write 3200 or 3.2k)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("a rate must be above zero: {text:?}"));
    }
    Ok(v * scale)
}

/// Parses a fraction: `0.05` or `5%`.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a fraction: {text:?} (write 0.05 or 5%)"))?;
    let v = v * scale;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!(
            "a fraction is between 0 and 1 (0 % and 100 %): {text:?}"
        ));
    }
    Ok(v)
}

/// Parses a range of durations, `5s-20s`, into a [`Span`].
pub fn parse_span(text: &str) -> Result<crate::soak::flap::Span, String> {
    let (min, max) = text
        .split_once('-')
        .ok_or_else(|| format!("not a range: {text:?} (write 5s-20s)"))?;
    let (min, max) = (parse_duration(min)?, parse_duration(max)?);
    if min > max {
        return Err(format!("{text:?}: the shorter duration comes first"));
    }
    Ok(crate::soak::flap::Span { min, max })
}

/// `850us`, `1.25ms`, `2.0s`: a latency in microseconds as a person reads it.
pub fn fmt_us(us: u64) -> String {
    if us < 1000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1000.0)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_rate("3200"), Ok(3200.0));
        assert_eq!(parse_rate("3.2k"), Ok(3200.0));
        assert!(parse_rate("0").is_err());
        assert_eq!(fmt_us(170), "170us");
        assert_eq!(fmt_us(1250), "1.25ms");
        assert_eq!(parse_fraction("0.05"), Ok(0.05));
        assert_eq!(parse_fraction("5%"), Ok(0.05));
        assert!(parse_fraction("105%").is_err() && parse_fraction("-0.1").is_err());
        let span = parse_span("5s-20s").unwrap();
        assert_eq!(
            (span.min, span.max),
            (Duration::from_secs(5), Duration::from_secs(20))
        );
        assert!(parse_span("20s-5s").is_err() && parse_span("5s").is_err());
    }
}
