//! Loki push API (`POST /loki/api/v1/push`): a snappy-compressed logproto.PushRequest or its
//! JSON form mapped to log records, with per-entry rejections.
//!
//! Mapping of one entry:
//! - attributes: the stream's labels, then the entry's structured metadata (which wins over a
//!   label of the same name), each group sorted by name, keys unprefixed; an empty value is the
//!   same as no label (Prometheus semantics) and is dropped;
//! - `service` ← first of `service_name`, `app`, `job`; `host` ← first of `host`, `hostname`,
//!   `instance`; `level` ← first of `level`, `detected_level`, normalised. These are looked up
//!   among the attributes above and stay attributes;
//! - `trace_id` / `span_id` ← metadata `trace_id` or `traceID` / `span_id` or `spanID`, as given;
//!   these four never become attributes;
//! - `message` ← the line; `timestamp` ← the entry's time in Unix nanoseconds.
//!
//! Strings that are not UTF-8 are repaired (U+FFFD), never rejected.

use std::num::IntErrorKind;

use prost::Message as _;
use silt_storage::record::LogRecord;

use super::ParseOptions;
use super::body::{ExpandingBody, ParsedBody, attributes_bytes};
use super::calendar::NANOS_PER_SEC;
use super::flatten::keep_last_of_each_key;
use super::level::level_from_text;

/// Labels naming the service, the host and the level, most specific first.
const SERVICE_KEYS: [&str; 3] = ["service_name", "app", "job"];
const HOST_KEYS: [&str; 3] = ["host", "hostname", "instance"];
const LEVEL_KEYS: [&str; 2] = ["level", "detected_level"];
/// Structured metadata naming the trace and span, preferred spelling first.
const TRACE_ID_KEYS: [&str; 2] = ["trace_id", "traceID"];
const SPAN_ID_KEYS: [&str; 2] = ["span_id", "spanID"];

/// A request that fails as a whole; nothing of it is kept.
#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    /// The body is not a snappy block (raw format, not framed).
    #[error("invalid snappy-compressed body: {0}")]
    Snappy(#[source] snap::Error),
    /// The snappy header announces more than the caller allows; nothing was decompressed.
    #[error(
        "snappy-compressed body would decompress to {decoded_bytes} bytes, more than the \
         {max_decoded_bytes} allowed"
    )]
    TooLarge {
        /// The size the snappy header announces.
        decoded_bytes: usize,
        /// The caller's limit.
        max_decoded_bytes: usize,
    },
    /// The decompressed body is not a logproto.PushRequest (or one of its streams does not
    /// decode; a single undecodable entry is only rejected).
    #[error("invalid Loki push protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The body is not a Loki push JSON document; the error's `line()` and `column()` locate
    /// the problem (see [`crate::body::line_column_offset`]).
    #[error("invalid Loki push JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Stream labels are copied into every entry of their stream: a small body with many
    /// entries under many labels would take too much memory.
    #[error(
        "Loki push would expand to about {estimated_bytes} bytes of records (stream labels are \
         copied into every entry), more than the {limit_bytes} bytes allowed for its size"
    )]
    ExpandsTooMuch {
        /// Estimated size of the records made so far plus those about to be made.
        estimated_bytes: u64,
        /// 256 × the decompressed body's size, within 16 MiB..=1 GiB.
        limit_bytes: u64,
    },
}

/// Parses a snappy (block format) compressed protobuf logproto.PushRequest
/// (`Content-Type: application/x-protobuf`).
///
/// Refuses, before decompressing anything, a body whose snappy header announces more than
/// `max_decoded_bytes`. Entries are rejected one by one, indexed by their 0-based position in
/// the whole request: all entries of a stream whose labels do not parse, an undecodable entry,
/// a time outside the `i64` nanosecond range. `opts` is unused: Loki times are absolute.
pub fn parse_loki_protobuf(
    body: &[u8],
    max_decoded_bytes: usize,
    _opts: &ParseOptions,
) -> Result<ParsedBody, LokiError> {
    let decoded_bytes = snap::raw::decompress_len(body).map_err(LokiError::Snappy)?;
    if decoded_bytes > max_decoded_bytes {
        return Err(LokiError::TooLarge {
            decoded_bytes,
            max_decoded_bytes,
        });
    }
    let decoded = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(LokiError::Snappy)?;
    // Streams and entries are decoded one at a time, so a body of many tiny entries never
    // exists as decoded messages all at once.
    let request = wire::PushRequest::decode(decoded.as_slice())?;
    let mut mapper = EntryMapper::for_body(decoded.len());
    for stream in request.streams {
        let stream = wire::StreamAdapter::decode(stream.as_slice())?;
        let labels = parse_labels(&text(stream.labels)).map(normalize_pairs);
        mapper.charge(&labels, stream.entries.len())?;
        for entry in stream.entries {
            let entry = wire::EntryAdapter::decode(entry.as_slice())
                .map_err(|e| format!("undecodable entry: {e}"))
                .and_then(Entry::from_wire);
            mapper.map(&labels, entry);
        }
    }
    Ok(mapper.body.finish())
}

/// Parses the JSON form (`Content-Type: application/json`):
/// `{"streams":[{"stream":{"label":"v"},"values":[["<unix ns>","line"],["<unix ns>","line",{"meta":"v"}]]}]}`.
///
/// The time is a decimal string (an integer JSON number is also taken). A document that does
/// not have this shape down to the `values` arrays fails as a whole; otherwise entries are
/// rejected one by one as in [`parse_loki_protobuf`], and also an entry that is not an array
/// of 2 or 3 elements of the right types, and all entries of a stream whose labels are not an
/// object of strings (numbers allowed).
pub fn parse_loki_json(body: &[u8], _opts: &ParseOptions) -> Result<ParsedBody, LokiError> {
    let request: json::PushRequest = serde_json::from_slice(body)?;
    let mut mapper = EntryMapper::for_body(body.len());
    for stream in request.streams {
        let labels = json::labels(stream.stream).map(normalize_pairs);
        mapper.charge(&labels, stream.values.len())?;
        for entry in stream.values {
            mapper.map(&labels, json::entry(entry));
        }
    }
    Ok(mapper.body.finish())
}

/// One entry before mapping.
struct Entry {
    timestamp: Option<i64>,
    line: String,
    /// Structured metadata, names unique, sorted, empty values dropped.
    metadata: Vec<(String, String)>,
}

impl Entry {
    fn from_wire(entry: wire::EntryAdapter) -> Result<Entry, String> {
        let timestamp = entry.timestamp.map(timestamp_nanos).transpose()?;
        let metadata = entry
            .structured_metadata
            .into_iter()
            .map(|pair| (text(pair.name), text(pair.value)))
            .collect();
        Ok(Entry {
            timestamp,
            line: text(entry.line),
            metadata: normalize_pairs(metadata),
        })
    }
}

/// A google.protobuf.Timestamp in Unix nanoseconds, if it fits an `i64`.
fn timestamp_nanos(timestamp: wire::Timestamp) -> Result<i64, String> {
    if !(0..NANOS_PER_SEC).contains(&i64::from(timestamp.nanos)) {
        return Err(format!(
            "timestamp nanos {} is outside 0..=999999999",
            timestamp.nanos
        ));
    }
    timestamp
        .seconds
        .checked_mul(NANOS_PER_SEC)
        .and_then(|ns| ns.checked_add(i64::from(timestamp.nanos)))
        .ok_or_else(|| {
            format!(
                "timestamp {} s is outside the years 1677-2262 Silt stores",
                timestamp.seconds
            )
        })
}

/// Turns entries into [`LogRecord`]s, numbering them across the whole request.
struct EntryMapper {
    body: ExpandingBody,
}

impl EntryMapper {
    fn for_body(body_len: usize) -> Self {
        EntryMapper {
            body: ExpandingBody::for_body(body_len),
        }
    }

    /// Counts `entries` entries carrying `labels` against the size limit, before mapping them.
    fn charge(
        &mut self,
        labels: &Result<Vec<(String, String)>, String>,
        entries: usize,
    ) -> Result<(), LokiError> {
        let label_bytes = labels
            .as_deref()
            .map_or(0, |labels| attributes_bytes(labels));
        self.body
            .charge(label_bytes, entries as u64)
            .map_err(|over| LokiError::ExpandsTooMuch {
                estimated_bytes: over.estimated_bytes,
                limit_bytes: over.limit_bytes,
            })
    }

    /// Maps one entry of a stream; a stream whose labels did not parse rejects all its entries.
    fn map(
        &mut self,
        labels: &Result<Vec<(String, String)>, String>,
        entry: Result<Entry, String>,
    ) {
        let record = match labels {
            Ok(labels) => entry.map(|entry| map_entry(labels, entry)),
            Err(reason) => Err(reason.clone()),
        };
        self.body.push(record);
    }
}

fn map_entry(labels: &[(String, String)], entry: Entry) -> LogRecord {
    let mut trace_ids: [Option<String>; 2] = [None, None];
    let mut span_ids: [Option<String>; 2] = [None, None];
    let mut attributes = Vec::with_capacity(labels.len() + entry.metadata.len());
    attributes.extend_from_slice(labels);
    for (name, value) in entry.metadata {
        if let Some(i) = TRACE_ID_KEYS.iter().position(|k| *k == name) {
            trace_ids[i] = Some(value);
        } else if let Some(i) = SPAN_ID_KEYS.iter().position(|k| *k == name) {
            span_ids[i] = Some(value);
        } else {
            attributes.push((name, value));
        }
    }
    keep_last_of_each_key(&mut attributes, |(key, _)| key.as_str());
    let first_of = |keys: &[&str]| {
        keys.iter().find_map(|key| {
            attributes
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        })
    };
    let service = first_of(&SERVICE_KEYS).map(str::to_owned);
    let host = first_of(&HOST_KEYS).map(str::to_owned);
    let level = first_of(&LEVEL_KEYS).and_then(level_from_text);
    let [trace_id, trace_id_fallback] = trace_ids;
    let [span_id, span_id_fallback] = span_ids;
    LogRecord {
        timestamp: entry.timestamp,
        level,
        service,
        host,
        trace_id: trace_id.or(trace_id_fallback),
        span_id: span_id.or(span_id_fallback),
        message: entry.line,
        attributes,
    }
}

/// Drops empty values, keeps the last of each name, sorts by name.
fn normalize_pairs(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.retain(|(_, value)| !value.is_empty());
    keep_last_of_each_key(&mut pairs, |(key, _)| key.as_str());
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

/// Parses a stream's labels as Prometheus writes them: `{name="value", ...}`, possibly `{}`.
///
/// Names are `[A-Za-z_][A-Za-z0-9_]*` or double-quoted; values are double-quoted with Go
/// escapes (`\"`, `\\`, `\n`, `\t`, `\xHH`, `\u00e9`, ...) or backquoted raw strings. A
/// trailing comma is allowed. The error says what was expected and at which byte.
fn parse_labels(selector: &str) -> Result<Vec<(String, String)>, String> {
    let mut cursor = LabelCursor {
        bytes: selector.as_bytes(),
        pos: 0,
    };
    cursor.skip_space();
    cursor.expect(b'{', "expected '{'")?;
    let mut labels = Vec::new();
    loop {
        cursor.skip_space();
        if cursor.eat(b'}') {
            break;
        }
        let name = cursor.label_name()?;
        cursor.skip_space();
        cursor.expect(b'=', "expected '=' after the label name")?;
        cursor.skip_space();
        let value = cursor.quoted("expected a quoted label value")?;
        labels.push((name, value));
        cursor.skip_space();
        if !cursor.eat(b',') {
            cursor.expect(b'}', "expected ',' or '}'")?;
            break;
        }
    }
    cursor.skip_space();
    if cursor.pos != cursor.bytes.len() {
        return Err(cursor.error("unexpected text after '}'"));
    }
    Ok(labels)
}

struct LabelCursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl LabelCursor<'_> {
    fn error(&self, what: &str) -> String {
        format!("invalid stream labels: {what} at byte {}", self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn label_name(&mut self) -> Result<String, String> {
        if self.peek() == Some(b'"') {
            return self.quoted("expected a label name");
        }
        let start = self.pos;
        if !self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            return Err(self.error("expected a label name"));
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }

    /// A `"..."` string with Go escapes or a `` `...` `` raw string.
    fn quoted(&mut self, what: &str) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'`')) => q,
            _ => return Err(self.error(what)),
        };
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            if c == b'\\' && quote == b'"' {
                self.escape(&mut value)?;
            } else {
                value.push(c);
            }
        }
        Ok(String::from_utf8(value)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// The escape after a backslash, appended to `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' => Some(c),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        match c {
            b'x' => {
                let byte = self.digits(2, 16)?;
                out.push(byte as u8);
            }
            b'0'..=b'7' => {
                self.pos -= 1;
                let byte = self.digits(3, 8)?;
                let byte =
                    u8::try_from(byte).map_err(|_| self.error("octal escape above \\377"))?;
                out.push(byte);
            }
            b'u' | b'U' => {
                let count = if c == b'u' { 4 } else { 8 };
                let code = self.digits(count, 16)?;
                let ch =
                    char::from_u32(code).ok_or_else(|| self.error("invalid Unicode escape"))?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return Err(self.error("unknown escape")),
        }
        Ok(())
    }

    /// Exactly `count` digits in `radix`.
    fn digits(&mut self, count: usize, radix: u32) -> Result<u32, String> {
        let mut value = 0u32;
        for _ in 0..count {
            let digit = self
                .peek()
                .and_then(|c| char::from(c).to_digit(radix))
                .ok_or_else(|| self.error("malformed escape"))?;
            value = value * radix + digit;
            self.pos += 1;
        }
        Ok(value)
    }
}

/// Bytes as a string, invalid UTF-8 replaced by U+FFFD.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The JSON push body.
mod json {
    use serde::Deserialize;
    use serde_json::Value;

    use super::{Entry, IntErrorKind, normalize_pairs};

    #[derive(Deserialize)]
    pub(super) struct PushRequest {
        #[serde(default, deserialize_with = "null_as_default")]
        pub streams: Vec<Stream>,
    }

    #[derive(Deserialize)]
    pub(super) struct Stream {
        /// The labels object; checked per stream so that a bad one only rejects its entries.
        #[serde(default)]
        pub stream: Value,
        #[serde(default, deserialize_with = "null_as_default")]
        pub values: Vec<Value>,
    }

    fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
    }

    /// The labels of a stream: an object of strings (numbers as their text); absent is none.
    pub(super) fn labels(stream: Value) -> Result<Vec<(String, String)>, String> {
        match stream {
            Value::Null => Ok(Vec::new()),
            Value::Object(map) => map
                .into_iter()
                .map(|(name, value)| match value {
                    Value::String(s) => Ok((name, s)),
                    Value::Number(n) => Ok((name, n.to_string())),
                    _ => Err("stream label values must be strings".to_owned()),
                })
                .collect(),
            _ => Err("stream labels must be a JSON object".to_owned()),
        }
    }

    /// `["<unix ns>", "line"]` or `["<unix ns>", "line", {"name": "value", ...}]`.
    pub(super) fn entry(value: Value) -> Result<Entry, String> {
        let Value::Array(items) = value else {
            return Err(
                "entry must be an array [timestamp, line] or [timestamp, line, metadata]"
                    .to_owned(),
            );
        };
        if !(2..=3).contains(&items.len()) {
            return Err(format!(
                "entry has {} elements, expected 2 or 3",
                items.len()
            ));
        }
        let mut items = items.into_iter();
        let timestamp = match items.next() {
            Some(Value::String(s)) => match s.parse::<i64>() {
                Ok(ns) => ns,
                Err(e)
                    if matches!(
                        e.kind(),
                        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
                    ) =>
                {
                    return Err(
                        "entry timestamp is outside the years 1677-2262 Silt stores".to_owned()
                    );
                }
                Err(_) => {
                    return Err(
                        "entry timestamp must be a decimal string of Unix nanoseconds".to_owned(),
                    );
                }
            },
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                "entry timestamp must be an integer number of Unix nanoseconds".to_owned()
            })?,
            _ => {
                return Err(
                    "entry timestamp must be a decimal string of Unix nanoseconds".to_owned(),
                );
            }
        };
        let Some(Value::String(line)) = items.next() else {
            return Err("entry line must be a string".to_owned());
        };
        let metadata = match items.next() {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => {
                let mut metadata = Vec::with_capacity(map.len());
                for (name, value) in map {
                    match value {
                        Value::String(s) => metadata.push((name, s)),
                        Value::Number(n) => metadata.push((name, n.to_string())),
                        Value::Bool(b) => metadata.push((name, b.to_string())),
                        Value::Null => {}
                        Value::Array(_) | Value::Object(_) => {
                            return Err("structured metadata values must be strings".to_owned());
                        }
                    }
                }
                metadata
            }
            Some(_) => return Err("structured metadata must be a JSON object".to_owned()),
        };
        Ok(Entry {
            timestamp: Some(timestamp),
            line,
            metadata: normalize_pairs(metadata),
        })
    }
}

/// The logproto messages as sent on the wire, field numbers from grafana/loki
/// `pkg/push/push.proto` and google/protobuf/timestamp.proto. Only the fields Silt reads are
/// declared; prost skips others (`PushRequest.format = 2`, `StreamAdapter.hash = 3`,
/// `EntryAdapter.parsed = 4`).
///
/// Strings are declared as bytes (same wire type) so that invalid UTF-8 is repaired instead of
/// failing the decode; repeated streams and entries are kept as raw bytes (same wire type
/// again) and decoded one by one.
mod wire {
    /// logproto.PushRequest.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct PushRequest {
        /// `repeated StreamAdapter streams = 1`, each still encoded.
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub streams: Vec<Vec<u8>>,
    }

    /// logproto.StreamAdapter.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct StreamAdapter {
        /// `string labels = 1`: Prometheus label-set text.
        #[prost(bytes = "vec", tag = "1")]
        pub labels: Vec<u8>,
        /// `repeated EntryAdapter entries = 2`, each still encoded.
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub entries: Vec<Vec<u8>>,
    }

    /// logproto.EntryAdapter.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(bytes = "vec", tag = "2")]
        pub line: Vec<u8>,
        /// `repeated LabelPairAdapter structuredMetadata = 3`.
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    /// logproto.LabelPairAdapter.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct LabelPairAdapter {
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// google.protobuf.Timestamp.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(1_718_452_800_000_000_000)
    }

    const MAX_DECODED: usize = 1 << 20;

    fn entry(seconds: i64, nanos: i32, line: &str, metadata: &[(&str, &str)]) -> Vec<u8> {
        wire::EntryAdapter {
            timestamp: Some(wire::Timestamp { seconds, nanos }),
            line: line.into(),
            structured_metadata: metadata
                .iter()
                .map(|(name, value)| wire::LabelPairAdapter {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    fn push_request(streams: Vec<(&str, Vec<Vec<u8>>)>) -> Vec<u8> {
        let request = wire::PushRequest {
            streams: streams
                .into_iter()
                .map(|(labels, entries)| {
                    wire::StreamAdapter {
                        labels: labels.into(),
                        entries,
                    }
                    .encode_to_vec()
                })
                .collect(),
        };
        snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap()
    }

    fn attributes(record: &LogRecord) -> Vec<(&str, &str)> {
        record
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn protobuf_snappy_round_trip() {
        let body = push_request(vec![
            (
                r#"{job="varlogs", host="web-1", level="warn", filename="/var/log/syslog"}"#,
                vec![
                    entry(1_718_452_800, 123, "first line", &[]),
                    entry(
                        1_718_452_801,
                        0,
                        "second line",
                        &[
                            ("trace_id", "0242ac120002"),
                            ("spanID", "beef"),
                            ("user", "u1"),
                            ("level", "error"),
                        ],
                    ),
                ],
            ),
            (r#"{app="api"}"#, vec![entry(0, 0, "", &[])]),
        ]);
        let parsed = parse_loki_protobuf(&body, MAX_DECODED, &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (3, 0));
        let r = &parsed.records[0];
        assert_eq!(r.timestamp, Some(1_718_452_800_000_000_123));
        assert_eq!(r.message, "first line");
        assert_eq!(r.service.as_deref(), Some("varlogs"));
        assert_eq!(r.host.as_deref(), Some("web-1"));
        assert_eq!(r.level.as_deref(), Some("WARN"));
        assert_eq!((r.trace_id.as_deref(), r.span_id.as_deref()), (None, None));
        assert_eq!(
            attributes(r),
            [
                ("filename", "/var/log/syslog"),
                ("host", "web-1"),
                ("job", "varlogs"),
                ("level", "warn"),
            ]
        );
        let r = &parsed.records[1];
        assert_eq!(
            r.level.as_deref(),
            Some("ERROR"),
            "metadata wins over the label"
        );
        assert_eq!(r.trace_id.as_deref(), Some("0242ac120002"));
        assert_eq!(r.span_id.as_deref(), Some("beef"));
        assert_eq!(
            attributes(r),
            [
                ("filename", "/var/log/syslog"),
                ("host", "web-1"),
                ("job", "varlogs"),
                ("level", "error"),
                ("user", "u1"),
            ]
        );
        let r = &parsed.records[2];
        assert_eq!((r.timestamp, r.service.as_deref()), (Some(0), Some("api")));
    }

    /// The example of the Loki HTTP API reference (`POST /loki/api/v1/push`), with structured
    /// metadata as in its second example.
    #[test]
    fn json_example_from_the_loki_docs() {
        let body = br#"{"streams": [{ "stream": { "foo": "bar2" }, "values": [ [ "1570818238000000000", "fizzbuzz" ] ] }]}"#;
        let parsed = parse_loki_json(body, &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (1, 0));
        let r = &parsed.records[0];
        assert_eq!(r.timestamp, Some(1_570_818_238_000_000_000));
        assert_eq!(r.message, "fizzbuzz");
        assert_eq!(attributes(r), [("foo", "bar2")]);
        assert_eq!((&r.service, &r.host, &r.level), (&None, &None, &None));

        let body = br#"{"streams": [{"stream": {"service_name": "cart", "app": "shop", "instance": "10.0.0.1:80"},
            "values": [["1570818238000000001", "hello", {"trace_id": "0242ac120002", "user_id": "superUser123", "detected_level": "Information"}]]}]}"#;
        let r = &parse_loki_json(body, &opts()).unwrap().records[0];
        assert_eq!(r.service.as_deref(), Some("cart"));
        assert_eq!(r.host.as_deref(), Some("10.0.0.1:80"));
        assert_eq!(r.level.as_deref(), Some("INFO"));
        assert_eq!(r.trace_id.as_deref(), Some("0242ac120002"));
        assert_eq!(
            attributes(r),
            [
                ("app", "shop"),
                ("instance", "10.0.0.1:80"),
                ("service_name", "cart"),
                ("detected_level", "Information"),
                ("user_id", "superUser123"),
            ]
        );
    }

    #[test]
    fn label_strings_with_escapes() {
        let labels = parse_labels(
            "  {job=\"a \\\"quoted\\\" \\\\ back\\nslash\", _x1 = `raw \\n`,\n\t\"dotted.name\"=\"\\u00e9\\x41\\101\\t\",}  ",
        )
        .unwrap();
        assert_eq!(
            labels,
            [
                ("job".to_owned(), "a \"quoted\" \\ back\nslash".to_owned()),
                ("_x1".to_owned(), "raw \\n".to_owned()),
                ("dotted.name".to_owned(), "\u{e9}AA\t".to_owned()),
            ]
        );
        assert_eq!(parse_labels("{}").unwrap(), []);
        assert_eq!(
            parse_labels(r#"{a="\xff"}"#).unwrap(),
            [("a".to_owned(), "\u{fffd}".to_owned())]
        );
        for (bad, reason) in [
            ("", "expected '{' at byte 0"),
            (r#"job="x""#, "expected '{' at byte 0"),
            (
                r#"{job!="x"}"#,
                "expected '=' after the label name at byte 4",
            ),
            (r#"{job=~"x"}"#, "expected a quoted label value at byte 5"),
            (r#"{job=x}"#, "expected a quoted label value at byte 5"),
            (r#"{job="x" app="y"}"#, "expected ',' or '}' at byte 9"),
            (r#"{job="x"#, "unterminated string at byte 7"),
            (r#"{job="\q"}"#, "unknown escape at byte 8"),
            (r#"{job="\u12"}"#, "malformed escape at byte 10"),
            (r#"{job="\ud800"}"#, "invalid Unicode escape at byte 12"),
            (r#"{job="\400"}"#, "octal escape above \\377 at byte 10"),
            (r#"{1job="x"}"#, "expected a label name at byte 1"),
            (r#"{job="x"} extra"#, "unexpected text after '}' at byte 10"),
            ("{job=\"x\\", "unterminated string at byte 8"),
        ] {
            assert_eq!(
                parse_labels(bad),
                Err(format!("invalid stream labels: {reason}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_stream_with_bad_labels_rejects_all_its_entries() {
        let body = push_request(vec![
            (r#"{job="ok"}"#, vec![entry(1, 0, "a", &[])]),
            (
                r#"{job="broken}"#,
                vec![entry(2, 0, "b", &[]), entry(3, 0, "c", &[])],
            ),
            (r#"{job="ok"}"#, vec![entry(4, 0, "d", &[])]),
        ]);
        let parsed = parse_loki_protobuf(&body, MAX_DECODED, &opts()).unwrap();
        let lines: Vec<&str> = parsed.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(lines, ["a", "d"]);
        assert_eq!(parsed.failed, 2);
        assert_eq!(
            parsed
                .rejections
                .iter()
                .map(|r| r.index)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            parsed.rejections[0].reason,
            "invalid stream labels: unterminated string at byte 13"
        );

        let body = br#"{"streams": [{"stream": {"a": "x"}, "values": [["1", "a"]]},
            {"stream": {"a": ["x"]}, "values": [["2", "b"], ["3", "c"]]},
            {"stream": "a=x", "values": [["4", "d"]]},
            {"values": [["5", "e"]]}]}"#;
        let parsed = parse_loki_json(body, &opts()).unwrap();
        let lines: Vec<&str> = parsed.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(lines, ["a", "e"]);
        let reasons: Vec<(u64, &str)> = parsed
            .rejections
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "stream label values must be strings"),
                (2, "stream label values must be strings"),
                (3, "stream labels must be a JSON object"),
            ]
        );
    }

    #[test]
    fn bad_json_entries_are_rejected_alone() {
        let body = br#"{"streams": [
            {"stream": {"job": "j"}, "values": [
              ["1", "ok"],
              ["1", "two", {}, "four"],
              ["x1", "bad time"],
              ["99999999999999999999", "overflow"],
              [1, "number time"],
              ["2"],
              "not an array",
              ["3", 42],
              ["4", "nested", {"a": {"b": "c"}}],
              ["5", "meta", {"n": 1, "b": true, "z": null, "e": ""}],
              ["-6", "negative"],
              [1.5, "float time"]
            ]},
            {"stream": {"job": "k"}, "values": [["7", "last"]]}
        ]}"#;
        let parsed = parse_loki_json(body, &opts()).unwrap();
        let kept: Vec<(&str, Option<i64>)> = parsed
            .records
            .iter()
            .map(|r| (r.message.as_str(), r.timestamp))
            .collect();
        assert_eq!(
            kept,
            [
                ("ok", Some(1)),
                ("number time", Some(1)),
                ("meta", Some(5)),
                ("negative", Some(-6)),
                ("last", Some(7)),
            ]
        );
        assert_eq!(
            attributes(&parsed.records[2]),
            [("job", "j"), ("b", "true"), ("n", "1")]
        );
        let reasons: Vec<(u64, &str)> = parsed
            .rejections
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "entry has 4 elements, expected 2 or 3"),
                (
                    2,
                    "entry timestamp must be a decimal string of Unix nanoseconds"
                ),
                (
                    3,
                    "entry timestamp is outside the years 1677-2262 Silt stores"
                ),
                (5, "entry has 1 elements, expected 2 or 3"),
                (
                    6,
                    "entry must be an array [timestamp, line] or [timestamp, line, metadata]"
                ),
                (7, "entry line must be a string"),
                (8, "structured metadata values must be strings"),
                (
                    11,
                    "entry timestamp must be an integer number of Unix nanoseconds"
                ),
            ]
        );
        assert_eq!(parsed.failed, 8);
    }

    #[test]
    fn protobuf_timestamps_out_of_range_are_rejected() {
        let body = push_request(vec![(
            r#"{job="j"}"#,
            vec![
                entry(i64::MAX / 1_000_000_000 + 1, 0, "too late", &[]),
                entry(1, -1, "negative nanos", &[]),
                entry(1, 1_000_000_000, "too many nanos", &[]),
                entry(-1, 999_999_999, "just before 1970", &[]),
                wire::EntryAdapter {
                    timestamp: None,
                    line: b"no time".to_vec(),
                    structured_metadata: vec![],
                }
                .encode_to_vec(),
                vec![0x12, 0x07, b'x'],
            ],
        )]);
        let parsed = parse_loki_protobuf(&body, MAX_DECODED, &opts()).unwrap();
        let kept: Vec<(&str, Option<i64>)> = parsed
            .records
            .iter()
            .map(|r| (r.message.as_str(), r.timestamp))
            .collect();
        assert_eq!(kept, [("just before 1970", Some(-1)), ("no time", None)]);
        let indexes: Vec<u64> = parsed.rejections.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [0, 1, 2, 5]);
        assert!(parsed.rejections[0].reason.contains("outside the years"));
        assert!(parsed.rejections[1].reason.contains("nanos -1"));
        assert!(
            parsed.rejections[3]
                .reason
                .starts_with("undecodable entry: ")
        );
    }

    #[test]
    fn service_host_level_and_ids_precedence() {
        let record = |labels: &str, metadata: &[(&str, &str)]| {
            let body = push_request(vec![(labels, vec![entry(1, 0, "x", metadata)])]);
            parse_loki_protobuf(&body, MAX_DECODED, &opts())
                .unwrap()
                .records
                .remove(0)
        };
        let r = record(r#"{job="j", app="a", hostname="h2", instance="i"}"#, &[]);
        assert_eq!(
            (r.service.as_deref(), r.host.as_deref()),
            (Some("a"), Some("h2"))
        );
        let r = record(
            r#"{job="j", service_name="", host="h"}"#,
            &[("app", "from-meta")],
        );
        assert_eq!(
            r.service.as_deref(),
            Some("from-meta"),
            "empty labels are absent"
        );
        assert_eq!(
            attributes(&r),
            [("host", "h"), ("job", "j"), ("app", "from-meta")]
        );
        let r = record(r#"{detected_level="debug"}"#, &[("level", " ")]);
        assert_eq!(r.level, None, "a blank level wins and is no level");
        let r = record(
            r#"{detected_level="dbg"}"#,
            &[("traceID", "T2"), ("trace_id", "T1"), ("span_id", "")],
        );
        assert_eq!(r.level.as_deref(), Some("DEBUG"));
        assert_eq!(
            (r.trace_id.as_deref(), r.span_id.as_deref()),
            (Some("T1"), None)
        );
        assert_eq!(attributes(&r), [("detected_level", "dbg")]);
        let r = record(r#"{a="1", a="2"}"#, &[("b", "x"), ("b", "y"), ("a", "3")]);
        assert_eq!(attributes(&r), [("a", "3"), ("b", "y")]);
    }

    #[test]
    fn snappy_bomb_is_refused_before_decompressing() {
        // A header announcing 1 GiB followed by a few bytes: decompressing would fail, so the
        // TooLarge error shows the size was checked first.
        let mut body = Vec::new();
        let mut len = 1usize << 30;
        while len >= 0x80 {
            body.push((len as u8) | 0x80);
            len >>= 7;
        }
        body.push(len as u8);
        body.extend_from_slice(b"\x00x");
        match parse_loki_protobuf(&body, MAX_DECODED, &opts()) {
            Err(LokiError::TooLarge {
                decoded_bytes,
                max_decoded_bytes,
            }) => assert_eq!((decoded_bytes, max_decoded_bytes), (1 << 30, MAX_DECODED)),
            other => panic!("{other:?}"),
        }
        // A real body one byte over the limit.
        let body = push_request(vec![(r#"{a="b"}"#, vec![entry(1, 0, "line", &[])])]);
        let decoded = snap::raw::decompress_len(&body).unwrap();
        assert!(matches!(
            parse_loki_protobuf(&body, decoded - 1, &opts()),
            Err(LokiError::TooLarge { .. })
        ));
        assert!(parse_loki_protobuf(&body, decoded, &opts()).is_ok());
    }

    #[test]
    fn garbage_fails_the_whole_request() {
        for body in [&b""[..], b"\xff\xff\xff\xff\xff\xff", b"\x05\x00ab"] {
            let err = parse_loki_protobuf(body, MAX_DECODED, &opts()).unwrap_err();
            assert!(matches!(err, LokiError::Snappy(_)), "{body:?}: {err}");
        }
        let not_protobuf = snap::raw::Encoder::new()
            .compress_vec(b"\x0a\x09abc")
            .unwrap();
        let err = parse_loki_protobuf(&not_protobuf, MAX_DECODED, &opts()).unwrap_err();
        assert!(matches!(err, LokiError::Protobuf(_)), "{err}");
        let bad_stream = wire::PushRequest {
            streams: vec![vec![0x12, 0x05]],
        }
        .encode_to_vec();
        let bad_stream = snap::raw::Encoder::new().compress_vec(&bad_stream).unwrap();
        assert!(matches!(
            parse_loki_protobuf(&bad_stream, MAX_DECODED, &opts()),
            Err(LokiError::Protobuf(_))
        ));
        let empty = snap::raw::Encoder::new().compress_vec(b"").unwrap();
        let parsed = parse_loki_protobuf(&empty, MAX_DECODED, &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (0, 0));

        for body in [
            &b"not json"[..],
            br#"{"streams": {}}"#,
            br#"{"streams": [{"values": {}}]}"#,
            br#"{"streams": [5]}"#,
        ] {
            let err = parse_loki_json(body, &opts()).unwrap_err();
            assert!(matches!(err, LokiError::Json(_)), "{err}");
        }
        let err = parse_loki_json(b"{\"streams\": [\n  {\"values\": 5}]}", &opts()).unwrap_err();
        let LokiError::Json(e) = &err else {
            panic!("{err}")
        };
        assert_eq!((e.line(), e.column()), (2, 14), "{err}");
        assert_eq!(parse_loki_json(b"{}", &opts()).unwrap().records.len(), 0);
    }

    #[test]
    fn deep_json_is_refused_without_overflowing_the_stack() {
        let deep = format!(
            r#"{{"streams":[{{"stream":{}1{},"values":[]}}]}}"#,
            r#"{"a":"#.repeat(10_000),
            "}".repeat(10_000)
        );
        let err = parse_loki_json(deep.as_bytes(), &opts()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let deep = format!(
            r#"{{"streams":[{{"values":[["1","x",{}1{}]]}}]}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse_loki_json(deep.as_bytes(), &opts()).is_err());
    }

    #[test]
    fn labels_copied_into_too_many_entries_are_refused() {
        let labels = format!(
            "{{{}}}",
            (0..200)
                .map(|i| format!("l{i}=\"{}\"", "v".repeat(1000)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let entries = vec![Vec::new(); 2000];
        let body = push_request(vec![(&labels, entries)]);
        let err = parse_loki_protobuf(&body, 64 << 20, &opts()).unwrap_err();
        assert!(matches!(err, LokiError::ExpandsTooMuch { .. }), "{err}");

        let values = vec![r#"["1",""]"#; 2000].join(",");
        let stream = (0..200)
            .map(|i| format!("\"l{i}\":\"{}\"", "v".repeat(1000)))
            .collect::<Vec<_>>()
            .join(",");
        let body = format!(r#"{{"streams":[{{"stream":{{{stream}}},"values":[{values}]}}]}}"#);
        let err = parse_loki_json(body.as_bytes(), &opts()).unwrap_err();
        assert!(matches!(err, LokiError::ExpandsTooMuch { .. }), "{err}");
    }
}
