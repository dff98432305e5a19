//! NDJSON lines: one JSON object per line, its known field aliases lifted into the fixed
//! columns (timestamp and level values converted) and every other leaf kept as an attribute.

use silt_storage::record::LogRecord;

use super::ParseOptions;
use super::aliases::{Alias, COLUMN_COUNT, COLUMNS, Column};
use super::flatten::{Field, FieldKey, JsonValue, flatten_json_object};
use super::level::{NumericLevel, level_from_number, level_from_text, scan_line_level};
use super::timestamp::{epoch_ns_from_float, epoch_ns_from_integer, parse_timestamp_str};

/// Parses one NDJSON line (one JSON object).
///
/// Nested objects are flattened with dotted keys (`metadata.region`), an empty nested object is
/// kept as `{}`, arrays are kept as their compact JSON text, other non-string values as their
/// JSON text, and `null` values are dropped (they carry nothing to store). A repeated key keeps
/// its last value. Invalid UTF-8 is replaced before parsing, never rejected.
///
/// Columns are filled from the first alias, in the priority order of the alias table, whose value is
/// usable: a string for message, service, host and ids; a timestamp string or epoch number for
/// the timestamp; a string or in-range number for the level. Values that are not used, such as
/// an unparsable timestamp, stay in the attributes under their key.
pub fn parse_ndjson_line(line: &[u8], opts: &ParseOptions) -> Result<LogRecord, String> {
    let text = match std::str::from_utf8(line) {
        Ok(valid) => std::borrow::Cow::Borrowed(valid),
        Err(_) => String::from_utf8_lossy(line),
    };
    match flatten_json_object(&text) {
        Ok(Some(fields)) => Ok(build_record(fields, opts)),
        Ok(None) => Err("expected a JSON object".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// The best alias found so far for one column.
#[derive(Debug, Clone, Copy)]
struct Pick {
    field_index: usize,
    priority: u8,
}

fn build_record(fields: Vec<Field>, opts: &ParseOptions) -> LogRecord {
    let mut picks: [Option<Pick>; COLUMN_COUNT] = [None; COLUMN_COUNT];
    let mut timestamp = None;
    let mut level: Option<String> = None;
    for (field_index, field) in fields.iter().enumerate() {
        let FieldKey::Alias(
            &Alias {
                column,
                priority,
                numeric_level,
                ..
            },
            _,
        ) = field.key
        else {
            continue;
        };
        let slot = &mut picks[column as usize];
        if slot.is_some_and(|pick| pick.priority <= priority) {
            continue;
        }
        let usable = match column {
            Column::Timestamp => match timestamp_of(&field.value, opts) {
                Some(ns) => {
                    timestamp = Some(ns);
                    true
                }
                None => false,
            },
            Column::Level => match level_of(&field.value, numeric_level) {
                Some(word) => {
                    level = Some(word);
                    true
                }
                None => false,
            },
            _ => matches!(field.value, JsonValue::Str(_)),
        };
        if usable {
            *slot = Some(Pick {
                field_index,
                priority,
            });
        }
    }

    let lifted = picks.iter().filter(|pick| pick.is_some()).count();
    let mut record = LogRecord {
        timestamp,
        level,
        attributes: Vec::with_capacity(fields.len().saturating_sub(lifted)),
        ..LogRecord::default()
    };
    for (index, field) in fields.into_iter().enumerate() {
        let column = COLUMNS
            .into_iter()
            .find(|&c| picks[c as usize].is_some_and(|pick| pick.field_index == index));
        let target = match (column, field.value) {
            // Already converted above.
            (Some(Column::Timestamp | Column::Level), _) => continue,
            (Some(Column::Message), JsonValue::Str(mut s)) => {
                // Docker's json-file `log` ends every line with its newline.
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                record.message = s;
                continue;
            }
            (Some(Column::Service), JsonValue::Str(s)) => (&mut record.service, s),
            (Some(Column::Host), JsonValue::Str(s)) => (&mut record.host, s),
            (Some(Column::TraceId), JsonValue::Str(s)) => (&mut record.trace_id, s),
            (Some(Column::SpanId), JsonValue::Str(s)) => (&mut record.span_id, s),
            (_, value) => {
                record
                    .attributes
                    .push((field.key.into_string(), value.into_text()));
                continue;
            }
        };
        *target.0 = Some(target.1);
    }
    if record.level.is_none() {
        // A JSON envelope around a text line (Docker, journald): the line's level word counts.
        record.level = scan_line_level(record.message.as_bytes(), None).map(str::to_owned);
    }
    record
}

fn timestamp_of(value: &JsonValue, opts: &ParseOptions) -> Option<i64> {
    match value {
        JsonValue::Str(s) => parse_timestamp_str(s, opts),
        JsonValue::Int(n) => epoch_ns_from_integer(i128::from(*n)),
        JsonValue::UInt(n) => epoch_ns_from_integer(i128::from(*n)),
        JsonValue::Float(f) => epoch_ns_from_float(*f),
        JsonValue::Bool(_) | JsonValue::Raw(_) => None,
    }
}

fn level_of(value: &JsonValue, numeric: Option<NumericLevel>) -> Option<String> {
    match value {
        JsonValue::Str(s) => match (s.trim().parse::<i64>(), numeric) {
            // A number written as a string (journald's `PRIORITY`).
            (Ok(n), Some(kind)) => level_from_number(n, kind).map(str::to_owned),
            _ => level_from_text(s),
        },
        JsonValue::Int(n) => level_from_number(*n, numeric?).map(str::to_owned),
        JsonValue::UInt(n) => {
            level_from_number(i64::try_from(*n).ok()?, numeric?).map(str::to_owned)
        }
        JsonValue::Float(_) | JsonValue::Bool(_) | JsonValue::Raw(_) => None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(1_718_452_800_000_000_000)
    }

    fn parse(line: &str) -> LogRecord {
        parse_ndjson_line(line.as_bytes(), &opts()).unwrap()
    }

    fn attrs(record: &LogRecord) -> Vec<(&str, &str)> {
        record
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// 2024-01-02T03:04:05Z.
    const NS: i64 = 1_704_164_645_000_000_000;

    #[test]
    fn known_fields_fill_columns() {
        let record = parse(
            r#"{"ts":"2024-01-02T03:04:05Z","lvl":"warning","msg":"hi","service":"api","hostname":"h1","traceId":"t1","span.id":"s1","user":"bob"}"#,
        );
        assert_eq!(record.timestamp, Some(NS));
        assert_eq!(record.level.as_deref(), Some("WARN"));
        assert_eq!(record.message, "hi");
        assert_eq!(record.service.as_deref(), Some("api"));
        assert_eq!(record.host.as_deref(), Some("h1"));
        assert_eq!(record.trace_id.as_deref(), Some("t1"));
        assert_eq!(record.span_id.as_deref(), Some("s1"));
        assert_eq!(attrs(&record), [("user", "bob")]);
    }

    #[test]
    fn timestamp_aliases_and_values() {
        for line in [
            r#"{"timestamp":"2024-01-02T03:04:05Z"}"#,
            r#"{"@timestamp":"2024-01-02T05:04:05+02:00"}"#,
            r#"{"time":"2024-01-02 03:04:05"}"#,
            r#"{"datetime":"2024-01-02 03:04:05.000"}"#,
            r#"{"date":"2024-01-02T03:04:05"}"#,
            r#"{"t":1704164645}"#,
            r#"{"ts":1704164645000}"#,
            r#"{"ts":1704164645000000}"#,
            r#"{"ts":1704164645000000000}"#,
            r#"{"ts":1704164645.0}"#,
            r#"{"ts":"1704164645"}"#,
        ] {
            let record = parse(line);
            assert_eq!(record.timestamp, Some(NS), "{line}");
            assert!(record.attributes.is_empty(), "{line}");
        }
        assert_eq!(
            parse(r#"{"ts":1704164645.25}"#).timestamp,
            Some(NS + 250_000_000)
        );
        assert_eq!(
            parse(r#"{"ts":"2024-01-02 03:04:05,5"}"#).timestamp,
            Some(NS + 500_000_000)
        );
        assert_eq!(
            parse(r#"{"date":"2024-01-02"}"#).timestamp,
            Some(1_704_153_600_000_000_000)
        );
    }

    #[test]
    fn unparsable_timestamps_stay_as_attributes() {
        let record = parse(r#"{"timestamp":"yesterday","t":"x","ts":12345,"msg":"m"}"#);
        assert_eq!(record.timestamp, None);
        assert_eq!(
            attrs(&record),
            [("timestamp", "yesterday"), ("t", "x"), ("ts", "12345")]
        );
        // A later alias that parses is used.
        let record = parse(r#"{"timestamp":"soon","time":"2024-01-02T03:04:05Z"}"#);
        assert_eq!(record.timestamp, Some(NS));
        assert_eq!(attrs(&record), [("timestamp", "soon")]);
        assert_eq!(
            parse(r#"{"ts":"observed","observed_timestamp":1704164645}"#).timestamp,
            None
        );
    }

    #[test]
    fn first_alias_wins_others_become_attributes() {
        let record = parse(r#"{"msg":"second","message":"first","host":"a","hostname":"b"}"#);
        assert_eq!(record.message, "first");
        assert_eq!(record.host.as_deref(), Some("a"));
        assert_eq!(attrs(&record), [("msg", "second"), ("hostname", "b")]);
        let record = parse(r#"{"time":"2024-01-02T03:04:05Z","timestamp":"2024-01-02T03:04:06Z"}"#);
        assert_eq!(record.timestamp, Some(NS + 1_000_000_000));
        assert_eq!(attrs(&record), [("time", "2024-01-02T03:04:05Z")]);
    }

    #[test]
    fn level_aliases_and_values() {
        assert_eq!(parse(r#"{"level":"INFO"}"#).level.as_deref(), Some("INFO"));
        assert_eq!(
            parse(r#"{"severity":"Error"}"#).level.as_deref(),
            Some("ERROR")
        );
        assert_eq!(
            parse(r#"{"log.level":"debug"}"#).level.as_deref(),
            Some("DEBUG")
        );
        assert_eq!(
            parse(r#"{"log":{"level":"crit"}}"#).level.as_deref(),
            Some("FATAL")
        );
        assert_eq!(
            parse(r#"{"severity_text":"WARN"}"#).level.as_deref(),
            Some("WARN")
        );
        assert_eq!(
            parse(r#"{"loglevel":"trace"}"#).level.as_deref(),
            Some("TRACE")
        );
        assert_eq!(
            parse(r#"{"level":" audit "}"#).level.as_deref(),
            Some("audit")
        );
        assert_eq!(parse(r#"{"severity":3}"#).level.as_deref(), Some("ERROR"));
        assert_eq!(
            parse(r#"{"syslog":{"severity":4}}"#).level.as_deref(),
            Some("WARN")
        );
        assert_eq!(parse(r#"{"level":30}"#).level.as_deref(), Some("INFO"));
        assert_eq!(
            parse(r#"{"severity_number":17}"#).level.as_deref(),
            Some("ERROR")
        );
        let record = parse(r#"{"level":35,"severity":"warn"}"#);
        assert_eq!(record.level.as_deref(), Some("WARN"));
        assert_eq!(attrs(&record), [("level", "35")]);
        // GELF: syslog severities under `level`.
        assert_eq!(parse(r#"{"level":3}"#).level.as_deref(), Some("ERROR"));
        assert_eq!(parse(r#"{"level":6}"#).level.as_deref(), Some("INFO"));
        let record = parse(r#"{"loglevel":12}"#);
        assert_eq!(
            (record.level.as_deref(), attrs(&record)),
            (None, vec![("loglevel", "12")])
        );
    }

    /// Shapes of common shippers and libraries: Docker json-file, journald, GELF, Serilog CLEF,
    /// OTLP-like flat JSON, Google Cloud.
    #[test]
    fn other_producers() {
        let docker = parse(
            r#"{"log":"2019-03-05 10:00:00 ERROR boom\r\n","stream":"stderr","time":"2019-03-05T10:00:00.5Z"}"#,
        );
        assert_eq!(docker.message, "2019-03-05 10:00:00 ERROR boom");
        assert_eq!(docker.level.as_deref(), Some("ERROR"), "from the line");
        assert_eq!(attrs(&docker), [("stream", "stderr")]);
        let journald = parse(
            r#"{"__REALTIME_TIMESTAMP":"1704164645000000","PRIORITY":"4","_HOSTNAME":"h1","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Invalid user x","_PID":"42"}"#,
        );
        assert_eq!(journald.timestamp, Some(NS));
        assert_eq!(journald.level.as_deref(), Some("WARN"));
        assert_eq!(journald.host.as_deref(), Some("h1"));
        assert_eq!(journald.service.as_deref(), Some("sshd"));
        assert_eq!(journald.message, "Invalid user x");
        assert_eq!(attrs(&journald), [("_PID", "42")]);
        let gelf = parse(
            r#"{"version":"1.1","host":"h4","short_message":"disk full","timestamp":1704164645.5,"level":3,"_user":"u1"}"#,
        );
        assert_eq!(gelf.timestamp, Some(NS + 500_000_000));
        assert_eq!(gelf.level.as_deref(), Some("ERROR"));
        assert_eq!(gelf.message, "disk full");
        let clef = parse(
            r#"{"@t":"2024-01-02T03:04:05Z","@mt":"user {User}","@l":"Warning","User":"bob"}"#,
        );
        assert_eq!(clef.timestamp, Some(NS));
        assert_eq!(clef.level.as_deref(), Some("WARN"));
        assert_eq!(clef.message, "user {User}");
        let otel = parse(
            r#"{"Timestamp":"1704164645000000000","SeverityText":"INFO","Body":"flat","TraceId":"5b8e","SpanId":"eee1","Resource":{"service.name":"svc"}}"#,
        );
        assert_eq!(otel.timestamp, Some(NS));
        assert_eq!(otel.level.as_deref(), Some("INFO"));
        assert_eq!(otel.message, "flat");
        assert_eq!(otel.trace_id.as_deref(), Some("5b8e"));
        assert_eq!(otel.span_id.as_deref(), Some("eee1"));
        assert_eq!(otel.service.as_deref(), Some("svc"));
        let gcp =
            parse(r#"{"eventTime":"2024-01-02T03:04:05Z","severity":"ERROR","textPayload":"x"}"#);
        assert_eq!((gcp.timestamp, gcp.message.as_str()), (Some(NS), "x"));
        // Without a level field, a level word in the message counts as in a text line; an
        // ordinary word does not.
        assert_eq!(
            parse(r#"{"msg":"WARN low disk"}"#).level.as_deref(),
            Some("WARN")
        );
        assert_eq!(parse(r#"{"msg":"an error here"}"#).level, None);
    }

    #[test]
    fn message_service_host_and_ids() {
        for key in ["message", "msg", "log", "text", "body"] {
            assert_eq!(parse(&format!(r#"{{"{key}":"m"}}"#)).message, "m", "{key}");
        }
        let record = parse(r#"{"body":{"a":1}}"#);
        assert_eq!(
            (record.message.as_str(), attrs(&record)),
            ("", vec![("body.a", "1")])
        );
        for key in ["service", "service_name", "app"] {
            assert_eq!(
                parse(&format!(r#"{{"{key}":"s"}}"#)).service.as_deref(),
                Some("s")
            );
        }
        assert_eq!(
            parse(r#"{"service":{"name":"s"}}"#).service.as_deref(),
            Some("s")
        );
        assert_eq!(
            parse(r#"{"service.name":"s"}"#).service.as_deref(),
            Some("s")
        );
        assert_eq!(
            parse(r#"{"host":{"name":"a","ip":"1.2.3.4"}}"#)
                .host
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            parse(r#"{"host":{"hostname":"b"}}"#).host.as_deref(),
            Some("b")
        );
        for key in ["trace_id", "traceId", "traceid"] {
            assert_eq!(
                parse(&format!(r#"{{"{key}":"t"}}"#)).trace_id.as_deref(),
                Some("t")
            );
        }
        assert_eq!(
            parse(r#"{"trace":{"id":"t"}}"#).trace_id.as_deref(),
            Some("t")
        );
        assert_eq!(parse(r#"{"spanId":"s"}"#).span_id.as_deref(), Some("s"));
        assert_eq!(parse(r#"{"span_id":"s"}"#).span_id.as_deref(), Some("s"));
        let record = parse(r#"{"host":42,"component":"c"}"#);
        assert_eq!(record.host, None);
        assert_eq!(attrs(&record), [("host", "42"), ("component", "c")]);
    }

    #[test]
    fn flattening_and_value_text() {
        let record = parse(
            r#"{"metadata":{"region":"eu","zone":{"id":3}},"tags":["a", 1, {"b":null}],"n":1.5,"big":1e300,"neg":-7,"ok":true,"gone":null,"empty":{},"list":[]}"#,
        );
        assert_eq!(
            attrs(&record),
            [
                ("metadata.region", "eu"),
                ("metadata.zone.id", "3"),
                ("tags", r#"["a",1,{"b":null}]"#),
                ("n", "1.5"),
                ("big", "1e+300"),
                ("neg", "-7"),
                ("ok", "true"),
                ("empty", "{}"),
                ("list", "[]"),
            ]
        );
        assert_eq!(record.message, "");
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let record = parse(r#"{"a":1,"b":2,"a":3,"msg":"x","msg":"y"}"#);
        assert_eq!(record.message, "y");
        assert_eq!(attrs(&record), [("b", "2"), ("a", "3")]);
        let record = parse(r#"{"a.b":1,"a":{"b":2}}"#);
        assert_eq!(attrs(&record), [("a.b", "2")]);
        let many: Vec<String> = (0..100).map(|i| format!(r#""k{}":{i}"#, i % 40)).collect();
        let record = parse(&format!("{{{}}}", many.join(",")));
        assert_eq!(record.attributes.len(), 40);
        assert_eq!(record.attributes[0], ("k20".to_owned(), "60".to_owned()));
        assert_eq!(record.attributes[39], ("k19".to_owned(), "99".to_owned()));
    }

    #[test]
    fn rejected_lines() {
        for line in ["42", "\"text\"", "[1,{\"a\":2}]", "null", "true"] {
            assert_eq!(
                parse_ndjson_line(line.as_bytes(), &opts()).unwrap_err(),
                "expected a JSON object"
            );
        }
        let err = parse_ndjson_line(b"{\"a\":", &opts()).unwrap_err();
        assert!(err.contains("column 5"), "{err}");
        let err = parse_ndjson_line(b"{\"a\":1} x", &opts()).unwrap_err();
        assert!(err.starts_with("trailing characters"), "{err}");
        let err = parse_ndjson_line(b"not json", &opts()).unwrap_err();
        assert!(err.contains("line 1 column 2"), "{err}");
        let deep = "[".repeat(10_000);
        assert!(parse_ndjson_line(format!("{{\"a\":{deep}").as_bytes(), &opts()).is_err());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let record = parse_ndjson_line(b"{\"msg\":\"caf\xc3\",\"k\xff\":1}", &opts()).unwrap();
        assert_eq!(record.message, "caf\u{FFFD}");
        assert_eq!(attrs(&record), [("k\u{FFFD}", "1")]);
    }
}
