//! Which NDJSON keys name which fixed column: the alias table, its priorities, and how numeric
//! level values are read under each level key.

use super::level::NumericLevel;

/// The fixed columns NDJSON aliases map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    Timestamp,
    Level,
    Message,
    Service,
    Host,
    TraceId,
    SpanId,
}

pub(super) const COLUMN_COUNT: usize = 7;
pub(super) const COLUMNS: [Column; COLUMN_COUNT] = [
    Column::Timestamp,
    Column::Level,
    Column::Message,
    Column::Service,
    Column::Host,
    Column::TraceId,
    Column::SpanId,
];

/// A key that names a fixed column: `priority` orders the aliases of one column (lower wins),
/// `numeric_level` says how a numeric level value is read (`None`: numbers are not levels here).
#[derive(Debug)]
pub(super) struct Alias {
    pub(super) key: &'static str,
    pub(super) column: Column,
    pub(super) priority: u8,
    pub(super) numeric_level: Option<NumericLevel>,
}

const fn alias(
    key: &'static str,
    column: Column,
    priority: u8,
    numeric_level: Option<NumericLevel>,
) -> Alias {
    Alias {
        key,
        column,
        priority,
        numeric_level,
    }
}

/// Every alias, in priority order per column. Keys match without regard to ASCII case, so
/// `traceId` also matches `TraceId` and `traceid`, `message` matches journald's `MESSAGE`.
pub(super) static ALIASES: [Alias; 51] = [
    alias("timestamp", Column::Timestamp, 0, None),
    alias("@timestamp", Column::Timestamp, 1, None),
    alias("ts", Column::Timestamp, 2, None),
    alias("time", Column::Timestamp, 3, None),
    alias("datetime", Column::Timestamp, 4, None),
    alias("date", Column::Timestamp, 5, None),
    alias("t", Column::Timestamp, 6, None),
    // Serilog's compact JSON, OTLP JSON, Google Cloud, journald, log4j2's JSON layout.
    alias("@t", Column::Timestamp, 7, None),
    alias("timeUnixNano", Column::Timestamp, 8, None),
    alias("eventTime", Column::Timestamp, 9, None),
    alias("__REALTIME_TIMESTAMP", Column::Timestamp, 10, None),
    alias("timeMillis", Column::Timestamp, 11, None),
    alias("level", Column::Level, 0, Some(NumericLevel::Pino)),
    alias("severity", Column::Level, 1, Some(NumericLevel::Syslog)),
    alias("lvl", Column::Level, 2, Some(NumericLevel::Pino)),
    alias("log.level", Column::Level, 3, None),
    alias("severity_text", Column::Level, 4, None),
    alias("loglevel", Column::Level, 5, None),
    alias(
        "syslog.severity",
        Column::Level,
        6,
        Some(NumericLevel::Syslog),
    ),
    alias(
        "severity_number",
        Column::Level,
        7,
        Some(NumericLevel::Otlp),
    ),
    alias("@l", Column::Level, 8, None),
    alias("severityText", Column::Level, 9, None),
    alias(
        "severityNumber",
        Column::Level,
        10,
        Some(NumericLevel::Otlp),
    ),
    // journald's syslog priority, a number written as a string.
    alias("PRIORITY", Column::Level, 11, Some(NumericLevel::Syslog)),
    alias("message", Column::Message, 0, None),
    alias("msg", Column::Message, 1, None),
    alias("log", Column::Message, 2, None),
    alias("text", Column::Message, 3, None),
    alias("body", Column::Message, 4, None),
    alias("@m", Column::Message, 5, None),
    alias("@mt", Column::Message, 6, None),
    alias("short_message", Column::Message, 7, None),
    alias("textPayload", Column::Message, 8, None),
    alias("service", Column::Service, 0, None),
    alias("service.name", Column::Service, 1, None),
    alias("service_name", Column::Service, 2, None),
    alias("app", Column::Service, 3, None),
    alias("serviceName", Column::Service, 4, None),
    alias("resource.service.name", Column::Service, 5, None),
    alias("SYSLOG_IDENTIFIER", Column::Service, 6, None),
    alias("host", Column::Host, 0, None),
    alias("hostname", Column::Host, 1, None),
    alias("host.name", Column::Host, 2, None),
    alias("host.hostname", Column::Host, 3, None),
    alias("_HOSTNAME", Column::Host, 4, None),
    alias("trace_id", Column::TraceId, 0, None),
    alias("traceId", Column::TraceId, 1, None),
    alias("trace.id", Column::TraceId, 2, None),
    alias("span_id", Column::SpanId, 0, None),
    alias("spanId", Column::SpanId, 1, None),
    alias("span.id", Column::SpanId, 2, None),
];

/// Longest alias key, in bytes.
const MAX_ALIAS_BYTES: usize = 24;

/// The aliases by key length: a look-up compares a key with the few aliases of its length only.
static ALIASES_BY_LENGTH: std::sync::LazyLock<[Vec<&'static Alias>; MAX_ALIAS_BYTES + 1]> =
    std::sync::LazyLock::new(|| {
        let mut by_length: [Vec<&'static Alias>; MAX_ALIAS_BYTES + 1] = Default::default();
        for alias in &ALIASES {
            by_length[alias.key.len()].push(alias);
        }
        by_length
    });

/// The alias a key names, whatever its ASCII case; the first in table order if several would.
pub(super) fn alias_of(key: &str) -> Option<&'static Alias> {
    ALIASES_BY_LENGTH
        .get(key.len())?
        .iter()
        .find(|alias| alias.key.eq_ignore_ascii_case(key))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_is_found_in_any_case() {
        for alias in &ALIASES {
            assert!(alias.key.len() <= MAX_ALIAS_BYTES, "{}", alias.key);
            for spelling in [
                alias.key.to_owned(),
                alias.key.to_ascii_uppercase(),
                alias.key.to_ascii_lowercase(),
            ] {
                let found = alias_of(&spelling).expect("found");
                assert!(found.key.eq_ignore_ascii_case(alias.key), "{spelling}");
            }
        }
        assert!(alias_of("metadata.region").is_none());
        assert!(alias_of("").is_none());
        assert!(alias_of(&"x".repeat(100)).is_none());
    }
}
