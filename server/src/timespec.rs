//! Times and durations as users write them: `15m`, `1h`, RFC 3339, bare dates, epoch
//! numbers of any unit. Shared by the CLI flags and the HTTP API's time ranges.

use anyhow::{Context, bail};

/// Parses `15m`, `1h`, `7d`, `30s`, `2w`, `500ms` into nanoseconds.
pub fn parse_duration(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .with_context(|| format!("invalid duration '{text}' (e.g. 15m, 1h, 7d)"))?;
    let unit_ns: i64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => bail!("invalid duration '{text}': unit must be ms, s, m, h, d or w"),
    };
    n.checked_mul(unit_ns)
        .with_context(|| format!("duration '{text}' is too long"))
}

/// Parses a point in time: RFC 3339, `YYYY-MM-DD[ HH:MM:SS[.fff]]` (UTC), or an epoch number
/// whose magnitude says its unit (seconds, ms, µs or ns).
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return t.timestamp_nanos_opt().context("time out of range");
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return t
                .and_utc()
                .timestamp_nanos_opt()
                .context("time out of range");
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_nanos_opt()
            .context("time out of range");
    }
    if let Ok(n) = text.parse::<i64>() {
        let abs = n.unsigned_abs();
        return Ok(match abs {
            0..=99_999_999_999 => n.saturating_mul(1_000_000_000),
            100_000_000_000..=99_999_999_999_999 => n.saturating_mul(1_000_000),
            100_000_000_000_000..=99_999_999_999_999_999 => n.saturating_mul(1_000),
            _ => n,
        });
    }
    bail!(
        "invalid time '{text}' (use RFC 3339 like 2026-11-22T10:00:00Z, a date, or epoch seconds)"
    )
}
