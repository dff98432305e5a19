//! OTLP/HTTP logs: an ExportLogsServiceRequest in binary protobuf or OTLP/JSON mapped to log
//! records with per-record rejections, and the ExportLogsServiceResponse to send back.
//!
//! Mapping of one log record:
//! - `service`, `host` ← resource attributes `service.name`, `host.name` (not kept as attributes);
//! - `level` ← `severity_text` when it is a known level word, else `severity_number` (1–24),
//!   else the trimmed `severity_text` as given, else none; whichever of the two severity fields
//!   the level was not taken from is kept as `log.severity_text` / `log.severity_number` when set;
//! - `timestamp` ← `time_unix_nano`, else `observed_time_unix_nano`; 0 means unknown;
//! - `message` ← the body: a string as is, bytes as base64, anything else as compact JSON;
//! - `trace_id`, `span_id` ← lowercase hex; empty or all-zero ids are none;
//! - attributes: `resource.<key>`, `scope.name`, `scope.version`, `scope.<key>`, `log.<key>`,
//!   `log.event_name`; values rendered like the body; empty values dropped; last key wins.
//!
//! Strings that are not UTF-8 are repaired (U+FFFD), never rejected.

use base64::Engine as _;
use prost::Message as _;
use silt_storage::record::{LogRecord, level_from_otlp_severity, normalize_level};

use super::ParseOptions;
use super::body::{ExpandingBody, ParsedBody, attributes_bytes};
use super::flatten::keep_last_of_each_key;
use super::level::level_from_text;

/// OTLP trace ids are 16 bytes, span ids 8.
const TRACE_ID_BYTES: usize = 16;
const SPAN_ID_BYTES: usize = 8;
/// Resource attributes that become record fields instead of attributes.
const SERVICE_NAME_KEY: &str = "service.name";
const HOST_NAME_KEY: &str = "host.name";

/// A request that fails as a whole; nothing of it is kept.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The body is not an ExportLogsServiceRequest in binary protobuf (or one of its resource or
    /// scope entries is not decodable; a single undecodable log record is only rejected).
    #[error("invalid OTLP protobuf request: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The body is not an ExportLogsServiceRequest in OTLP/JSON; the error's `line()` and
    /// `column()` locate the problem (see [`crate::body::line_column_offset`]).
    #[error("invalid OTLP JSON request: {0}")]
    Json(#[from] serde_json::Error),
    /// Resource and scope attributes are copied into every record of their scope: a small body
    /// with many records under many shared attributes would take too much memory.
    #[error(
        "OTLP request would expand to about {estimated_bytes} bytes of records (resource and \
         scope attributes are copied into every log record), more than the {limit_bytes} bytes \
         allowed for its size"
    )]
    ExpandsTooMuch {
        /// Estimated size of the records made so far plus those about to be made.
        estimated_bytes: u64,
        /// 256 × the body's size, within 16 MiB..=1 GiB.
        limit_bytes: u64,
    },
}

/// Parses a binary protobuf ExportLogsServiceRequest (`Content-Type: application/x-protobuf`).
///
/// Records that cannot be stored (an undecodable record, a time past year 2262, an id of the
/// wrong length) are rejected one by one, indexed by their 0-based position in the whole
/// request; the others are kept. `opts` is unused: OTLP times are absolute.
pub fn parse_otlp_protobuf(body: &[u8], _opts: &ParseOptions) -> Result<ParsedBody, OtlpError> {
    // Entries are decoded level by level and records one at a time, so a body of many tiny
    // records never exists as decoded messages all at once.
    let request = wire::ExportLogsServiceRequest::decode(body)?;
    let mut mapper = RecordMapper::for_body(body.len());
    for resource_logs in request.resource_logs {
        let resource_logs = wire::ResourceLogs::decode(resource_logs.as_slice())?;
        let resource = SharedFields::of_resource(resource_logs.resource.unwrap_or_default());
        let resource_bytes = resource.estimated_bytes();
        for scope_logs in resource_logs.scope_logs {
            let scope_logs = wire::ScopeLogs::decode(scope_logs.as_slice())?;
            let scope = scope_attributes(scope_logs.scope.unwrap_or_default());
            let shared_bytes = resource_bytes + attributes_bytes(&scope);
            mapper.charge(shared_bytes, scope_logs.log_records.len())?;
            let shared = resource.with_scope(scope);
            for record in scope_logs.log_records {
                let record = wire::LogRecord::decode(record.as_slice())
                    .map_err(|e| format!("undecodable log record: {e}"));
                mapper.map(&shared, record);
            }
        }
    }
    Ok(mapper.body.finish())
}

/// Parses an OTLP/JSON ExportLogsServiceRequest (`Content-Type: application/json`).
///
/// Field names in lowerCamelCase or as in the .proto; 64-bit integers as numbers or decimal
/// strings; `severityNumber` as a number or an enum name; `traceId`/`spanId` as hex in either
/// case; `bytesValue` as base64; unknown fields ignored, `null` taken as absent. A document that
/// does not have this shape fails as a whole; records are rejected as in
/// [`parse_otlp_protobuf`], and also for a `traceId`/`spanId` that is not hex.
pub fn parse_otlp_json(body: &[u8], _opts: &ParseOptions) -> Result<ParsedBody, OtlpError> {
    let request: json::Request = serde_json::from_slice(body)?;
    let mut mapper = RecordMapper::for_body(body.len());
    for resource_logs in request.resource_logs {
        let resource = SharedFields::of_resource(resource_logs.resource.unwrap_or_default().into());
        let resource_bytes = resource.estimated_bytes();
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_attributes(scope_logs.scope.unwrap_or_default().into());
            let shared_bytes = resource_bytes + attributes_bytes(&scope);
            mapper.charge(shared_bytes, scope_logs.log_records.len())?;
            let shared = resource.with_scope(scope);
            for record in scope_logs.log_records {
                mapper.map(&shared, record.into_wire());
            }
        }
    }
    Ok(mapper.body.finish())
}

/// The binary protobuf ExportLogsServiceResponse: empty (full success) when `rejected` is 0,
/// else with `partial_success` = {`rejected_log_records`, `error_message`}.
pub fn encode_response_protobuf(rejected: u64, error_message: &str) -> Vec<u8> {
    let partial_success = (rejected > 0).then(|| wire::ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: error_message.to_owned(),
    });
    wire::ExportLogsServiceResponse { partial_success }.encode_to_vec()
}

/// The OTLP/JSON ExportLogsServiceResponse: `{}` when `rejected` is 0, else
/// `{"partialSuccess":{"rejectedLogRecords":"<n>","errorMessage":"..."}}`. The count is an int64,
/// which the protobuf JSON mapping writes as a decimal string; an empty message is omitted.
pub fn response_json(rejected: u64, error_message: &str) -> serde_json::Value {
    if rejected == 0 {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    let mut partial_success = serde_json::Map::new();
    let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
    partial_success.insert("rejectedLogRecords".into(), rejected.to_string().into());
    if !error_message.is_empty() {
        partial_success.insert("errorMessage".into(), error_message.into());
    }
    serde_json::json!({ "partialSuccess": partial_success })
}

/// Turns decoded records into [`LogRecord`]s, numbering them across the whole request.
struct RecordMapper {
    body: ExpandingBody,
}

impl RecordMapper {
    fn for_body(body_len: usize) -> Self {
        RecordMapper {
            body: ExpandingBody::for_body(body_len),
        }
    }

    /// Counts a scope of `records` records, each with a copy of `shared_bytes` of shared fields,
    /// against the size limit before any copy is made. An empty scope counts as one record: the
    /// shared fields are still copied once for it.
    fn charge(&mut self, shared_bytes: u64, records: usize) -> Result<(), OtlpError> {
        self.body
            .charge(shared_bytes, records.max(1) as u64)
            .map_err(|over| OtlpError::ExpandsTooMuch {
                estimated_bytes: over.estimated_bytes,
                limit_bytes: over.limit_bytes,
            })
    }

    fn map(&mut self, shared: &SharedFields, record: Result<wire::LogRecord, String>) {
        self.body
            .push(record.and_then(|record| map_record(shared, record)));
    }
}

/// What every record of one scope shares.
#[derive(Debug, Clone, Default)]
struct SharedFields {
    service: Option<String>,
    host: Option<String>,
    /// `resource.*` and `scope.*` attributes, keys unique.
    attributes: Vec<(String, String)>,
}

impl SharedFields {
    fn of_resource(resource: wire::Resource) -> Self {
        let mut shared = SharedFields::default();
        for attribute in resource.attributes {
            let key = text(attribute.key);
            let Some(value) = attribute.value.and_then(any_value_text) else {
                continue;
            };
            match key.as_str() {
                SERVICE_NAME_KEY => shared.service = Some(value).filter(|v| !v.is_empty()),
                HOST_NAME_KEY => shared.host = Some(value).filter(|v| !v.is_empty()),
                _ => shared.attributes.push((format!("resource.{key}"), value)),
            }
        }
        shared
    }

    /// Estimated bytes of one copy of these fields.
    fn estimated_bytes(&self) -> u64 {
        let field_bytes = |field: &Option<String>| field.as_ref().map_or(0, |s| s.len() as u64);
        field_bytes(&self.service) + field_bytes(&self.host) + attributes_bytes(&self.attributes)
    }

    /// These resource fields with the `scope.*` attributes of one scope added.
    fn with_scope(&self, scope_attributes: Vec<(String, String)>) -> Self {
        let mut shared = self.clone();
        shared.attributes.extend(scope_attributes);
        keep_last_of_each_key(&mut shared.attributes, |(key, _)| key.as_str());
        shared
    }
}

/// `scope.name`, `scope.version` and `scope.<key>` attributes.
fn scope_attributes(scope: wire::InstrumentationScope) -> Vec<(String, String)> {
    let mut attributes = Vec::with_capacity(scope.attributes.len() + 2);
    for (key, value) in [("scope.name", scope.name), ("scope.version", scope.version)] {
        if !value.is_empty() {
            attributes.push((key.to_owned(), text(value)));
        }
    }
    push_attributes(&mut attributes, "scope.", scope.attributes);
    attributes
}

fn map_record(shared: &SharedFields, record: wire::LogRecord) -> Result<LogRecord, String> {
    let timestamp = record_timestamp(record.time_unix_nano, record.observed_time_unix_nano)?;
    let trace_id = hex_id(&record.trace_id, TRACE_ID_BYTES, "trace_id")?;
    let span_id = hex_id(&record.span_id, SPAN_ID_BYTES, "span_id")?;

    let mut own = Vec::with_capacity(record.attributes.len() + 2);
    push_attributes(&mut own, "log.", record.attributes);
    if !record.event_name.is_empty() {
        own.push(("log.event_name".to_owned(), text(record.event_name)));
    }
    let severity_text = text(record.severity_text);
    let severity_number = record.severity_number;
    let level = if let Some(level) = normalize_level(severity_text.trim()) {
        if severity_number != 0 {
            own.push((
                "log.severity_number".to_owned(),
                severity_number.to_string(),
            ));
        }
        Some(level.to_owned())
    } else if let Some(level) = level_from_otlp_severity(severity_number) {
        if !severity_text.trim().is_empty() {
            own.push(("log.severity_text".to_owned(), severity_text));
        }
        Some(level.to_owned())
    } else {
        if severity_number != 0 {
            own.push((
                "log.severity_number".to_owned(),
                severity_number.to_string(),
            ));
        }
        level_from_text(&severity_text)
    };
    keep_last_of_each_key(&mut own, |(key, _)| key.as_str());

    // `resource.` / `scope.` keys cannot collide with `log.` keys: no de-duplication across.
    let mut attributes = Vec::with_capacity(shared.attributes.len() + own.len());
    attributes.extend_from_slice(&shared.attributes);
    attributes.extend(own);
    Ok(LogRecord {
        timestamp,
        level,
        service: shared.service.clone(),
        host: shared.host.clone(),
        trace_id,
        span_id,
        message: record.body.and_then(any_value_text).unwrap_or_default(),
        attributes,
    })
}

/// The event time, else the observed time; 0 is "unknown".
fn record_timestamp(
    time_unix_nano: u64,
    observed_time_unix_nano: u64,
) -> Result<Option<i64>, String> {
    let (nanos, field) = if time_unix_nano != 0 {
        (time_unix_nano, "time_unix_nano")
    } else {
        (observed_time_unix_nano, "observed_time_unix_nano")
    };
    if nanos == 0 {
        return Ok(None);
    }
    i64::try_from(nanos)
        .map(Some)
        .map_err(|_| format!("{field} {nanos} is after 2262-04-11, the latest time Silt stores"))
}

/// A trace or span id as lowercase hex; `None` when empty or all zeros (both mean "no id").
fn hex_id(id: &[u8], expected_bytes: usize, field: &str) -> Result<Option<String>, String> {
    if id.is_empty() {
        return Ok(None);
    }
    if id.len() != expected_bytes {
        return Err(format!(
            "{field} is {} bytes long, expected {expected_bytes}",
            id.len()
        ));
    }
    if id.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(id.len() * 2);
    for &b in id {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    Ok(Some(hex))
}

/// Hex in either case to bytes; `None` for an odd length or a non-hex character.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let hex = hex.as_bytes();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Appends `prefix` + key → value text for each attribute with a value.
fn push_attributes(out: &mut Vec<(String, String)>, prefix: &str, attributes: Vec<wire::KeyValue>) {
    for attribute in attributes {
        if let Some(value) = attribute.value.and_then(any_value_text) {
            out.push((format!("{prefix}{}", text(attribute.key)), value));
        }
    }
}

/// An attribute value or body as text: a string as is, bytes as base64, a number or boolean as
/// its JSON text (non-finite doubles as `NaN`, `Infinity`, `-Infinity`), an array or key-value
/// list as compact JSON; `None` for an empty value.
fn any_value_text(value: wire::AnyValue) -> Option<String> {
    use wire::any_value::Value;
    Some(match value.value? {
        Value::StringValue(s) => text(s),
        // A Profiling-only dictionary reference: the spec says to treat it as absent.
        Value::StringValueStrindex(_) => return None,
        Value::BytesValue(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Value::DoubleValue(d) => double_text(d),
        other => {
            let mut json = String::new();
            write_json(&mut json, Some(&other));
            json
        }
    })
}

/// A double as JSON number text; non-finite values as the protobuf JSON mapping's words.
fn double_text(d: f64) -> String {
    match serde_json::Number::from_f64(d) {
        Some(number) => number.to_string(),
        None if d.is_nan() => "NaN".to_owned(),
        None if d > 0.0 => "Infinity".to_owned(),
        None => "-Infinity".to_owned(),
    }
}

/// Writes a value as compact JSON: an empty value as `null`, bytes as a base64 string,
/// key-value lists as objects in their order.
fn write_json(out: &mut String, value: Option<&wire::any_value::Value>) {
    use wire::any_value::Value;
    match value {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_string(out, &String::from_utf8_lossy(s)),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(n)) => out.push_str(&n.to_string()),
        Some(Value::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(number) => out.push_str(&number.to_string()),
            None => write_json_string(out, &double_text(*d)),
        },
        Some(Value::BytesValue(bytes)) => {
            write_json_string(
                out,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item.value.as_ref());
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => {
            out.push('{');
            for (i, pair) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, &String::from_utf8_lossy(&pair.key));
                out.push(':');
                write_json(out, pair.value.as_ref().and_then(|v| v.value.as_ref()));
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Bytes as a string, invalid UTF-8 replaced by U+FFFD.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The OTLP messages as sent on the wire, field numbers from opentelemetry-proto
/// (`collector/logs/v1/logs_service.proto`, `logs/v1/logs.proto`, `common/v1/common.proto`,
/// `resource/v1/resource.proto`). Only the fields Silt reads are declared; prost skips others.
///
/// Strings are declared as bytes (same wire type) so that invalid UTF-8 is repaired instead of
/// failing the decode. Repeated messages above the log record are kept as raw bytes (same wire
/// type again) and decoded one by one.
mod wire {
    /// ExportLogsServiceRequest.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ExportLogsServiceRequest {
        /// `repeated ResourceLogs resource_logs = 1`, each still encoded.
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub resource_logs: Vec<Vec<u8>>,
    }

    /// ResourceLogs; `schema_url = 3` not read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ResourceLogs {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// `repeated ScopeLogs scope_logs = 2`, each still encoded.
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub scope_logs: Vec<Vec<u8>>,
    }

    /// Resource; `dropped_attributes_count = 2`, `entity_refs = 3` not read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    /// ScopeLogs; `schema_url = 3` not read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ScopeLogs {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        /// `repeated LogRecord log_records = 2`, each still encoded.
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub log_records: Vec<Vec<u8>>,
    }

    /// InstrumentationScope; `dropped_attributes_count = 4` not read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct InstrumentationScope {
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub version: Vec<u8>,
        #[prost(message, repeated, tag = "3")]
        pub attributes: Vec<KeyValue>,
    }

    /// LogRecord; `dropped_attributes_count = 7`, `flags = 8` not read, 4 is reserved.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct LogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        /// The `SeverityNumber` enum, an int32 on the wire.
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        #[prost(bytes = "vec", tag = "3")]
        pub severity_text: Vec<u8>,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
        #[prost(bytes = "vec", tag = "9")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "10")]
        pub span_id: Vec<u8>,
        #[prost(fixed64, tag = "11")]
        pub observed_time_unix_nano: u64,
        #[prost(bytes = "vec", tag = "12")]
        pub event_name: Vec<u8>,
    }

    /// AnyValue: a oneof, `None` when empty.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct AnyValue {
        #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
        pub value: Option<any_value::Value>,
    }

    pub(super) mod any_value {
        /// The `value` oneof of AnyValue; variants named as the .proto fields.
        #[allow(clippy::enum_variant_names)]
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub(in super::super) enum Value {
            #[prost(bytes = "vec", tag = "1")]
            StringValue(Vec<u8>),
            #[prost(bool, tag = "2")]
            BoolValue(bool),
            #[prost(int64, tag = "3")]
            IntValue(i64),
            #[prost(double, tag = "4")]
            DoubleValue(f64),
            #[prost(message, tag = "5")]
            ArrayValue(super::ArrayValue),
            #[prost(message, tag = "6")]
            KvlistValue(super::KeyValueList),
            #[prost(bytes = "vec", tag = "7")]
            BytesValue(Vec<u8>),
            /// Profiling signal only; treated as absent.
            #[prost(int32, tag = "8")]
            StringValueStrindex(i32),
        }
    }

    /// ArrayValue.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ArrayValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }

    /// KeyValueList.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct KeyValueList {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<KeyValue>,
    }

    /// KeyValue; `key_strindex = 3` (Profiling only) not read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct KeyValue {
        #[prost(bytes = "vec", tag = "1")]
        pub key: Vec<u8>,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// ExportLogsServiceResponse.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ExportLogsServiceResponse {
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<ExportLogsPartialSuccess>,
    }

    /// ExportLogsPartialSuccess.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ExportLogsPartialSuccess {
        #[prost(int64, tag = "1")]
        pub rejected_log_records: i64,
        #[prost(string, tag = "2")]
        pub error_message: String,
    }
}

/// OTLP/JSON: the protobuf JSON mapping of the same messages, with OTLP's hex trace/span ids.
/// Deserialised into shapes close to [`wire`] so both encodings share one mapping.
mod json {
    use std::fmt;

    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
    use serde::Deserialize;
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Unexpected, Visitor};

    use super::{decode_hex, wire};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Request {
        #[serde(default, alias = "resource_logs", deserialize_with = "null_as_default")]
        pub resource_logs: Vec<ResourceLogs>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct ResourceLogs {
        pub resource: Option<Resource>,
        #[serde(default, alias = "scope_logs", deserialize_with = "null_as_default")]
        pub scope_logs: Vec<ScopeLogs>,
    }

    #[derive(Default, Deserialize)]
    pub(super) struct Resource {
        #[serde(default, deserialize_with = "null_as_default")]
        attributes: Vec<KeyValue>,
    }

    impl From<Resource> for wire::Resource {
        fn from(resource: Resource) -> Self {
            wire::Resource {
                attributes: resource.attributes.into_iter().map(Into::into).collect(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct ScopeLogs {
        pub scope: Option<Scope>,
        #[serde(default, alias = "log_records", deserialize_with = "null_as_default")]
        pub log_records: Vec<LogRecord>,
    }

    #[derive(Default, Deserialize)]
    pub(super) struct Scope {
        name: Option<String>,
        version: Option<String>,
        #[serde(default, deserialize_with = "null_as_default")]
        attributes: Vec<KeyValue>,
    }

    impl From<Scope> for wire::InstrumentationScope {
        fn from(scope: Scope) -> Self {
            wire::InstrumentationScope {
                name: scope.name.unwrap_or_default().into_bytes(),
                version: scope.version.unwrap_or_default().into_bytes(),
                attributes: scope.attributes.into_iter().map(Into::into).collect(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct LogRecord {
        #[serde(alias = "time_unix_nano")]
        time_unix_nano: Option<Uint64>,
        #[serde(alias = "observed_time_unix_nano")]
        observed_time_unix_nano: Option<Uint64>,
        #[serde(alias = "severity_number")]
        severity_number: Option<SeverityNumber>,
        #[serde(alias = "severity_text")]
        severity_text: Option<String>,
        body: Option<AnyValue>,
        #[serde(default, deserialize_with = "null_as_default")]
        attributes: Vec<KeyValue>,
        #[serde(alias = "trace_id")]
        trace_id: Option<String>,
        #[serde(alias = "span_id")]
        span_id: Option<String>,
        #[serde(alias = "event_name")]
        event_name: Option<String>,
    }

    impl LogRecord {
        /// The record as decoded from protobuf; `Err` for an id that is not hex.
        pub(super) fn into_wire(self) -> Result<wire::LogRecord, String> {
            let id = |hex: Option<String>, field: &str| match hex.as_deref() {
                None | Some("") => Ok(Vec::new()),
                Some(hex) => decode_hex(hex).ok_or_else(|| format!("{field} is not a hex string")),
            };
            Ok(wire::LogRecord {
                time_unix_nano: self.time_unix_nano.map_or(0, |n| n.0),
                severity_number: self.severity_number.map_or(0, |n| n.0),
                severity_text: self.severity_text.unwrap_or_default().into_bytes(),
                body: self.body.map(|v| v.0),
                attributes: self.attributes.into_iter().map(Into::into).collect(),
                trace_id: id(self.trace_id, "traceId")?,
                span_id: id(self.span_id, "spanId")?,
                observed_time_unix_nano: self.observed_time_unix_nano.map_or(0, |n| n.0),
                event_name: self.event_name.unwrap_or_default().into_bytes(),
            })
        }
    }

    #[derive(Deserialize)]
    struct KeyValue {
        key: Option<String>,
        value: Option<AnyValue>,
    }

    impl From<KeyValue> for wire::KeyValue {
        fn from(pair: KeyValue) -> Self {
            wire::KeyValue {
                key: pair.key.unwrap_or_default().into_bytes(),
                value: pair.value.map(|v| v.0),
            }
        }
    }

    #[derive(Deserialize)]
    struct ArrayValue {
        #[serde(default, deserialize_with = "null_as_default")]
        values: Vec<AnyValue>,
    }

    #[derive(Deserialize)]
    struct KeyValueList {
        #[serde(default, deserialize_with = "null_as_default")]
        values: Vec<KeyValue>,
    }

    /// An AnyValue object, read straight into the wire form. When several of its oneof fields
    /// are set the last one wins, as when protobuf merges.
    struct AnyValue(wire::AnyValue);

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "camelCase")]
    enum AnyValueField {
        #[serde(alias = "string_value")]
        StringValue,
        #[serde(alias = "bool_value")]
        BoolValue,
        #[serde(alias = "int_value")]
        IntValue,
        #[serde(alias = "double_value")]
        DoubleValue,
        #[serde(alias = "array_value")]
        ArrayValue,
        #[serde(alias = "kvlist_value")]
        KvlistValue,
        #[serde(alias = "bytes_value")]
        BytesValue,
        #[serde(other)]
        Other,
    }

    impl<'de> Deserialize<'de> for AnyValue {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(AnyValueVisitor)
        }
    }

    struct AnyValueVisitor;

    impl<'de> Visitor<'de> for AnyValueVisitor {
        type Value = AnyValue;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an OTLP AnyValue object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
            use wire::any_value::Value;
            let mut value = None;
            while let Some(field) = map.next_key::<AnyValueField>()? {
                let next = match field {
                    AnyValueField::StringValue => map
                        .next_value::<Option<String>>()?
                        .map(|s| Value::StringValue(s.into_bytes())),
                    AnyValueField::BoolValue => {
                        map.next_value::<Option<bool>>()?.map(Value::BoolValue)
                    }
                    AnyValueField::IntValue => map
                        .next_value::<Option<Int64>>()?
                        .map(|n| Value::IntValue(n.0)),
                    AnyValueField::DoubleValue => map
                        .next_value::<Option<Double>>()?
                        .map(|d| Value::DoubleValue(d.0)),
                    AnyValueField::ArrayValue => map.next_value::<Option<ArrayValue>>()?.map(|a| {
                        Value::ArrayValue(wire::ArrayValue {
                            values: a.values.into_iter().map(|v| v.0).collect(),
                        })
                    }),
                    AnyValueField::KvlistValue => {
                        map.next_value::<Option<KeyValueList>>()?.map(|l| {
                            Value::KvlistValue(wire::KeyValueList {
                                values: l.values.into_iter().map(Into::into).collect(),
                            })
                        })
                    }
                    AnyValueField::BytesValue => map
                        .next_value::<Option<Bytes>>()?
                        .map(|b| Value::BytesValue(b.0)),
                    AnyValueField::Other => {
                        map.next_value::<IgnoredAny>()?;
                        None
                    }
                };
                if next.is_some() {
                    value = next;
                }
            }
            Ok(AnyValue(wire::AnyValue { value }))
        }
    }

    /// `null` read as the field's default, as the protobuf JSON mapping wants.
    fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
    }

    /// An integer given as a JSON number (integral) or a decimal string.
    struct IntegerVisitor;

    impl Visitor<'_> for IntegerVisitor {
        type Value = i128;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a decimal string")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
            Ok(i128::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
            Ok(i128::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
            // Integral and well inside i128; the range of the target type is checked later.
            if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e30 {
                Ok(v as i128)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
            v.parse()
                .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
        }
    }

    fn integer_in_range<T: TryFrom<i128>, E: de::Error>(n: i128, kind: &str) -> Result<T, E> {
        T::try_from(n).map_err(|_| E::custom(format!("{n} is out of range for {kind}")))
    }

    /// A `fixed64`/`uint64` field.
    struct Uint64(u64);

    impl<'de> Deserialize<'de> for Uint64 {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let n = deserializer.deserialize_any(IntegerVisitor)?;
            integer_in_range(n, "uint64").map(Uint64)
        }
    }

    /// An `int64` field.
    struct Int64(i64);

    impl<'de> Deserialize<'de> for Int64 {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let n = deserializer.deserialize_any(IntegerVisitor)?;
            integer_in_range(n, "int64").map(Int64)
        }
    }

    /// `severityNumber`: the enum's number, or its name (`SEVERITY_NUMBER_ERROR`; OTLP/JSON
    /// senders must send numbers, but names are the standard protobuf JSON mapping). An unknown
    /// name reads as 0, unspecified.
    struct SeverityNumber(i32);

    impl<'de> Deserialize<'de> for SeverityNumber {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(SeverityVisitor)
        }
    }

    struct SeverityVisitor;

    impl Visitor<'_> for SeverityVisitor {
        type Value = SeverityNumber;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a severity number or SEVERITY_NUMBER_* name")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<SeverityNumber, E> {
            integer_in_range(i128::from(v), "severityNumber").map(SeverityNumber)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<SeverityNumber, E> {
            integer_in_range(i128::from(v), "severityNumber").map(SeverityNumber)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<SeverityNumber, E> {
            integer_in_range(IntegerVisitor.visit_f64(v)?, "severityNumber").map(SeverityNumber)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<SeverityNumber, E> {
            if let Ok(n) = v.parse::<i32>() {
                return Ok(SeverityNumber(n));
            }
            Ok(SeverityNumber(severity_number_of_name(v).unwrap_or(0)))
        }
    }

    /// `SEVERITY_NUMBER_TRACE` = 1 … `SEVERITY_NUMBER_FATAL4` = 24.
    pub(super) fn severity_number_of_name(name: &str) -> Option<i32> {
        let rest = name.strip_prefix("SEVERITY_NUMBER_")?;
        if rest == "UNSPECIFIED" {
            return Some(0);
        }
        let digits_at = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (group, step) = rest.split_at(digits_at);
        let step: i32 = match step {
            "" => 1,
            "2" => 2,
            "3" => 3,
            "4" => 4,
            _ => return None,
        };
        let group = silt_storage::record::LEVELS
            .iter()
            .position(|g| *g == group)? as i32;
        Some(group * 4 + step)
    }

    /// A `double`: a JSON number, a numeric string, or `NaN` / `Infinity` / `-Infinity`.
    struct Double(f64);

    impl<'de> Deserialize<'de> for Double {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(DoubleVisitor)
        }
    }

    struct DoubleVisitor;

    impl Visitor<'_> for DoubleVisitor {
        type Value = Double;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, a numeric string, NaN, Infinity or -Infinity")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Double, E> {
            Ok(Double(v as f64))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Double, E> {
            Ok(Double(v as f64))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Double, E> {
            Ok(Double(v))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Double, E> {
            match v {
                "NaN" => Ok(Double(f64::NAN)),
                "Infinity" => Ok(Double(f64::INFINITY)),
                "-Infinity" => Ok(Double(f64::NEG_INFINITY)),
                _ => v
                    .parse()
                    .map(Double)
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }

    /// A `bytes` field: base64, standard or URL-safe alphabet, padded or not.
    struct Bytes(Vec<u8>);

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_str(BytesVisitor)
        }
    }

    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a base64 string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
            let engine = if v.contains(['-', '_']) {
                URL_SAFE_PAD_INDIFFERENT
            } else {
                STANDARD_PAD_INDIFFERENT
            };
            engine
                .decode(v)
                .map(Bytes)
                .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wire::any_value::Value;
    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(1_718_452_800_000_000_000)
    }

    fn string(s: &str) -> Option<wire::AnyValue> {
        Some(wire::AnyValue {
            value: Some(Value::StringValue(s.into())),
        })
    }

    fn kv(key: &str, value: Option<Value>) -> wire::KeyValue {
        wire::KeyValue {
            key: key.into(),
            value: Some(wire::AnyValue { value }),
        }
    }

    /// The records of one scope.
    type ScopeRecords = (wire::InstrumentationScope, Vec<wire::LogRecord>);

    /// Encodes one request: resources of scopes of records.
    fn encode_request(resources: Vec<(wire::Resource, Vec<ScopeRecords>)>) -> Vec<u8> {
        let resource_logs = resources
            .into_iter()
            .map(|(resource, scopes)| {
                wire::ResourceLogs {
                    resource: Some(resource),
                    scope_logs: scopes
                        .into_iter()
                        .map(|(scope, records)| {
                            wire::ScopeLogs {
                                scope: Some(scope),
                                log_records: records.iter().map(|r| r.encode_to_vec()).collect(),
                            }
                            .encode_to_vec()
                        })
                        .collect(),
                }
                .encode_to_vec()
            })
            .collect();
        wire::ExportLogsServiceRequest { resource_logs }.encode_to_vec()
    }

    fn one_record(record: wire::LogRecord) -> Vec<u8> {
        encode_request(vec![(
            wire::Resource::default(),
            vec![(wire::InstrumentationScope::default(), vec![record])],
        )])
    }

    fn parse_one(record: wire::LogRecord) -> LogRecord {
        let parsed = parse_otlp_protobuf(&one_record(record), &opts()).unwrap();
        assert_eq!(parsed.failed, 0, "{:?}", parsed.rejections);
        parsed.records.into_iter().next().unwrap()
    }

    fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a str> {
        record
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn assert_unique_keys(record: &LogRecord) {
        let mut keys: Vec<&str> = record.attributes.iter().map(|(k, _)| k.as_str()).collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "{:?}", record.attributes);
    }

    #[test]
    fn protobuf_request_round_trip() {
        let resource = wire::Resource {
            attributes: vec![
                kv("service.name", Some(Value::StringValue("checkout".into()))),
                kv("host.name", Some(Value::StringValue("web-1".into()))),
                kv("k8s.pod.name", Some(Value::StringValue("pod-7".into()))),
            ],
        };
        let scope = wire::InstrumentationScope {
            name: "io.lib".into(),
            version: "1.2".into(),
            attributes: vec![kv("team", Some(Value::StringValue("core".into())))],
        };
        let record = wire::LogRecord {
            time_unix_nano: 1_718_452_800_123_456_789,
            observed_time_unix_nano: 1_718_452_801_000_000_000,
            severity_number: 17,
            severity_text: "Error".into(),
            body: string("payment failed"),
            attributes: vec![
                kv("http.status", Some(Value::IntValue(502))),
                kv("retry", Some(Value::BoolValue(true))),
            ],
            trace_id: (1..=16).collect(),
            span_id: vec![0xAB; 8],
            event_name: "payment.failed".into(),
        };
        let body = encode_request(vec![(resource, vec![(scope, vec![record])])]);
        let parsed = parse_otlp_protobuf(&body, &opts()).unwrap();
        assert_eq!(parsed.failed, 0);
        let r = &parsed.records[0];
        assert_eq!(r.timestamp, Some(1_718_452_800_123_456_789));
        assert_eq!(r.level.as_deref(), Some("ERROR"));
        assert_eq!(r.service.as_deref(), Some("checkout"));
        assert_eq!(r.host.as_deref(), Some("web-1"));
        assert_eq!(
            r.trace_id.as_deref(),
            Some("0102030405060708090a0b0c0d0e0f10")
        );
        assert_eq!(r.span_id.as_deref(), Some("abababababababab"));
        assert_eq!(r.message, "payment failed");
        let attributes: Vec<(&str, &str)> = r
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attributes,
            [
                ("resource.k8s.pod.name", "pod-7"),
                ("scope.name", "io.lib"),
                ("scope.version", "1.2"),
                ("scope.team", "core"),
                ("log.http.status", "502"),
                ("log.retry", "true"),
                ("log.event_name", "payment.failed"),
                ("log.severity_number", "17"),
            ]
        );
    }

    /// opentelemetry-proto examples/logs.json (main branch).
    const SPEC_EXAMPLE: &str = r#"{
      "resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeLogs": [{
          "scope": {
            "name": "my.library", "version": "1.0.0",
            "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]
          },
          "logRecords": [{
            "timeUnixNano": "1544712660300000000",
            "observedTimeUnixNano": "1544712660300000000",
            "severityNumber": 10,
            "severityText": "Information",
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "body": {"stringValue": "Example log record"},
            "attributes": [
              {"key": "string.attribute", "value": {"stringValue": "some string"}},
              {"key": "boolean.attribute", "value": {"boolValue": true}},
              {"key": "int.attribute", "value": {"intValue": "10"}},
              {"key": "double.attribute", "value": {"doubleValue": 637.704}},
              {"key": "array.attribute", "value": {"arrayValue": {"values": [{"stringValue": "many"}, {"stringValue": "values"}]}}},
              {"key": "map.attribute", "value": {"kvlistValue": {"values": [{"key": "some.map.key", "value": {"stringValue": "some value"}}]}}}
            ]
          }]
        }]
      }]
    }"#;

    #[test]
    fn json_spec_example() {
        let parsed = parse_otlp_json(SPEC_EXAMPLE.as_bytes(), &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (1, 0));
        let r = &parsed.records[0];
        assert_eq!(r.timestamp, Some(1_544_712_660_300_000_000));
        assert_eq!(r.level.as_deref(), Some("INFO"));
        assert_eq!(r.service.as_deref(), Some("my.service"));
        assert_eq!(r.host, None);
        assert_eq!(
            r.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(r.span_id.as_deref(), Some("eee19b7ec3c1b174"));
        assert_eq!(r.message, "Example log record");
        let attributes: Vec<(&str, &str)> = r
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attributes,
            [
                ("scope.name", "my.library"),
                ("scope.version", "1.0.0"),
                ("scope.my.scope.attribute", "some scope attribute"),
                ("log.string.attribute", "some string"),
                ("log.boolean.attribute", "true"),
                ("log.int.attribute", "10"),
                ("log.double.attribute", "637.704"),
                ("log.array.attribute", r#"["many","values"]"#),
                ("log.map.attribute", r#"{"some.map.key":"some value"}"#),
                ("log.severity_number", "10"),
            ]
        );
    }

    #[test]
    fn json_and_protobuf_agree() {
        let json = parse_otlp_json(SPEC_EXAMPLE.as_bytes(), &opts()).unwrap();
        let record = wire::LogRecord {
            time_unix_nano: 1_544_712_660_300_000_000,
            observed_time_unix_nano: 1_544_712_660_300_000_000,
            severity_number: 10,
            severity_text: "Information".into(),
            body: string("Example log record"),
            attributes: vec![
                kv(
                    "string.attribute",
                    Some(Value::StringValue("some string".into())),
                ),
                kv("boolean.attribute", Some(Value::BoolValue(true))),
                kv("int.attribute", Some(Value::IntValue(10))),
                kv("double.attribute", Some(Value::DoubleValue(637.704))),
                kv(
                    "array.attribute",
                    Some(Value::ArrayValue(wire::ArrayValue {
                        values: vec![string("many").unwrap(), string("values").unwrap()],
                    })),
                ),
                kv(
                    "map.attribute",
                    Some(Value::KvlistValue(wire::KeyValueList {
                        values: vec![kv(
                            "some.map.key",
                            Some(Value::StringValue("some value".into())),
                        )],
                    })),
                ),
            ],
            trace_id: decode_hex("5B8EFFF798038103D269B633813FC60C").unwrap(),
            span_id: decode_hex("EEE19B7EC3C1B174").unwrap(),
            event_name: Vec::new(),
        };
        let resource = wire::Resource {
            attributes: vec![kv(
                "service.name",
                Some(Value::StringValue("my.service".into())),
            )],
        };
        let scope = wire::InstrumentationScope {
            name: "my.library".into(),
            version: "1.0.0".into(),
            attributes: vec![kv(
                "my.scope.attribute",
                Some(Value::StringValue("some scope attribute".into())),
            )],
        };
        let body = encode_request(vec![(resource, vec![(scope, vec![record])])]);
        let protobuf = parse_otlp_protobuf(&body, &opts()).unwrap();
        assert_eq!(json.records, protobuf.records);
    }

    #[test]
    fn level_from_text_then_number_then_raw_text() {
        let level = |text: &str, number: i32| {
            let r = parse_one(wire::LogRecord {
                severity_text: text.into(),
                severity_number: number,
                ..Default::default()
            });
            (
                r.level.clone(),
                attribute(&r, "log.severity_text").map(str::to_owned),
                attribute(&r, "log.severity_number").map(str::to_owned),
            )
        };
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(level("warning", 0), (s("WARN"), None, None));
        assert_eq!(level(" Error ", 9), (s("ERROR"), None, s("9")));
        assert_eq!(level("E", 17), (s("ERROR"), s("E"), None));
        assert_eq!(level("", 21), (s("FATAL"), None, None));
        assert_eq!(level("audit", 0), (s("audit"), None, None));
        assert_eq!(level("audit", 99), (s("audit"), None, s("99")));
        assert_eq!(level("", 0), (None, None, None));
        assert_eq!(level("  ", -3), (None, None, s("-3")));
    }

    #[test]
    fn timestamp_prefers_event_time_and_rejects_out_of_range() {
        let at = |time, observed| {
            one_record(wire::LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: observed,
                ..Default::default()
            })
        };
        let ts = |time, observed| parse_otlp_protobuf(&at(time, observed), &opts()).unwrap();
        assert_eq!(ts(5, 7).records[0].timestamp, Some(5));
        assert_eq!(ts(0, 7).records[0].timestamp, Some(7));
        assert_eq!(ts(0, 0).records[0].timestamp, None);
        let parsed = ts(u64::MAX, 7);
        assert_eq!((parsed.records.len(), parsed.failed), (0, 1));
        assert!(
            parsed.rejections[0].reason.contains("time_unix_nano"),
            "{:?}",
            parsed.rejections
        );
        let parsed = ts(0, i64::MAX as u64 + 1);
        assert!(
            parsed.rejections[0]
                .reason
                .contains("observed_time_unix_nano")
        );
        assert_eq!(ts(i64::MAX as u64, 0).records[0].timestamp, Some(i64::MAX));
    }

    #[test]
    fn body_and_attribute_values_render_as_text_or_compact_json() {
        let body = |value: Option<Value>| {
            parse_one(wire::LogRecord {
                body: Some(wire::AnyValue { value }),
                ..Default::default()
            })
            .message
        };
        assert_eq!(
            body(Some(Value::StringValue("a \"b\"\n".into()))),
            "a \"b\"\n"
        );
        assert_eq!(body(Some(Value::IntValue(-4))), "-4");
        assert_eq!(body(Some(Value::DoubleValue(1.5))), "1.5");
        assert_eq!(body(Some(Value::DoubleValue(f64::NAN))), "NaN");
        assert_eq!(
            body(Some(Value::DoubleValue(f64::NEG_INFINITY))),
            "-Infinity"
        );
        assert_eq!(body(Some(Value::BoolValue(false))), "false");
        assert_eq!(body(Some(Value::BytesValue(b"hi!".to_vec()))), "aGkh");
        assert_eq!(body(Some(Value::StringValueStrindex(3))), "");
        assert_eq!(body(None), "");
        let nested = Value::KvlistValue(wire::KeyValueList {
            values: vec![
                kv("msg", Some(Value::StringValue("x\u{1}\"".into()))),
                kv("n", Some(Value::DoubleValue(f64::INFINITY))),
                kv("empty", None),
                kv(
                    "list",
                    Some(Value::ArrayValue(wire::ArrayValue {
                        values: vec![
                            wire::AnyValue {
                                value: Some(Value::BytesValue(vec![0xff])),
                            },
                            wire::AnyValue::default(),
                            wire::AnyValue {
                                value: Some(Value::KvlistValue(wire::KeyValueList::default())),
                            },
                        ],
                    })),
                ),
            ],
        });
        let expected = r#"{"msg":"x\u0001\"","n":"Infinity","empty":null,"list":["/w==",null,{}]}"#;
        assert_eq!(body(Some(nested.clone())), expected);
        serde_json::from_str::<serde_json::Value>(expected).unwrap();
        let r = parse_one(wire::LogRecord {
            attributes: vec![kv("obj", Some(nested)), kv("none", None)],
            ..Default::default()
        });
        assert_eq!(r.message, "");
        assert_eq!(r.attributes, [("log.obj".to_owned(), expected.to_owned())]);
    }

    #[test]
    fn trace_and_span_ids() {
        let ids = |trace_id: Vec<u8>, span_id: Vec<u8>| {
            parse_otlp_protobuf(
                &one_record(wire::LogRecord {
                    trace_id,
                    span_id,
                    ..Default::default()
                }),
                &opts(),
            )
            .unwrap()
        };
        let p = ids(vec![0; 16], vec![0; 8]);
        assert_eq!(
            (p.records[0].trace_id.clone(), p.records[0].span_id.clone()),
            (None, None)
        );
        let p = ids(vec![], vec![]);
        assert_eq!(
            (p.records[0].trace_id.clone(), p.records[0].span_id.clone()),
            (None, None)
        );
        let p = ids(vec![0xFF; 16], vec![]);
        assert_eq!(
            p.records[0].trace_id.as_deref(),
            Some("ffffffffffffffffffffffffffffffff")
        );
        let p = ids(vec![1; 15], vec![]);
        assert_eq!(p.failed, 1);
        assert_eq!(
            p.rejections[0].reason,
            "trace_id is 15 bytes long, expected 16"
        );
        let p = ids(vec![1; 16], vec![1; 16]);
        assert_eq!(
            p.rejections[0].reason,
            "span_id is 16 bytes long, expected 8"
        );
    }

    #[test]
    fn json_ids_are_hex_in_either_case() {
        let record = |trace: &str, span: &str| {
            let body = format!(
                r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"traceId":"{trace}","spanId":"{span}"}}]}}]}}]}}"#
            );
            parse_otlp_json(body.as_bytes(), &opts()).unwrap()
        };
        let p = record("5b8EFFF798038103D269B633813FC60C", "");
        assert_eq!(
            p.records[0].trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(p.records[0].span_id, None);
        let p = record("XB8EFFF798038103D269B633813FC60C", "");
        assert_eq!(p.rejections[0].reason, "traceId is not a hex string");
        let p = record("", "EEE19B7EC3C1B17");
        assert_eq!(p.rejections[0].reason, "spanId is not a hex string");
        let p = record("", "EEE19B7EC3C1B1");
        assert_eq!(
            p.rejections[0].reason,
            "span_id is 7 bytes long, expected 8"
        );
        // Base64, as the plain protobuf JSON mapping would send it, is not hex.
        let p = record("W47/95gDgQPSabYzgT/GDA==", "");
        assert_eq!(p.failed, 1);
    }

    #[test]
    fn attribute_keys_are_prefixed_unique_and_last_wins() {
        let resource = wire::Resource {
            attributes: vec![
                kv("service.name", Some(Value::StringValue("first".into()))),
                kv("region", Some(Value::StringValue("eu".into()))),
                kv("service.name", Some(Value::IntValue(7))),
                kv("region", Some(Value::StringValue("us".into()))),
                kv("host.name", Some(Value::StringValue(String::new().into()))),
            ],
        };
        let scope = wire::InstrumentationScope {
            name: "lib".into(),
            version: Vec::new(),
            attributes: vec![kv("name", Some(Value::StringValue("override".into())))],
        };
        let mut attributes = vec![kv(
            "event_name",
            Some(Value::StringValue("from attr".into())),
        )];
        for i in 0..40 {
            attributes.push(kv(&format!("k{}", i % 20), Some(Value::IntValue(i))));
        }
        let record = wire::LogRecord {
            attributes,
            event_name: "from field".into(),
            severity_text: "INFO".into(),
            ..Default::default()
        };
        let body = encode_request(vec![(resource, vec![(scope, vec![record])])]);
        let r = &parse_otlp_protobuf(&body, &opts()).unwrap().records[0];
        assert_unique_keys(r);
        assert_eq!(r.service.as_deref(), Some("7"));
        assert_eq!(r.host, None, "an empty host.name is no host");
        assert_eq!(attribute(r, "resource.region"), Some("us"));
        assert_eq!(attribute(r, "resource.service.name"), None);
        assert_eq!(attribute(r, "resource.host.name"), None);
        assert_eq!(attribute(r, "scope.name"), Some("override"));
        assert_eq!(attribute(r, "scope.version"), None);
        assert_eq!(attribute(r, "log.event_name"), Some("from field"));
        assert_eq!(attribute(r, "log.k3"), Some("23"));
        assert_eq!(r.attributes.len(), 1 + 1 + 1 + 20);
        // The last occurrence's position: `log.k0`..`log.k19` in order after `log.event_name`.
        assert_eq!(r.attributes[2].0, "log.k0");
        assert_eq!(r.attributes[22].0, "log.event_name");
    }

    #[test]
    fn rejections_are_indexed_across_the_whole_request() {
        let good = || wire::LogRecord {
            body: string("ok"),
            ..Default::default()
        };
        let bad = || wire::LogRecord {
            span_id: vec![1; 3],
            ..Default::default()
        };
        let scope = wire::InstrumentationScope::default;
        let body = encode_request(vec![
            (
                wire::Resource::default(),
                vec![(scope(), vec![good(), bad()]), (scope(), vec![good()])],
            ),
            (
                wire::Resource::default(),
                vec![(scope(), vec![bad(), good()])],
            ),
        ]);
        let parsed = parse_otlp_protobuf(&body, &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (3, 2));
        let indexes: Vec<u64> = parsed.rejections.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [1, 3]);
    }

    #[test]
    fn an_undecodable_record_is_rejected_alone() {
        let good = wire::LogRecord {
            body: string("ok"),
            ..Default::default()
        }
        .encode_to_vec();
        let scope_logs = wire::ScopeLogs {
            scope: None,
            // Field 5 (body) claims 9 bytes and has 1; then a valid record.
            log_records: vec![vec![0x2a, 0x09, 0x0a], good],
        };
        let resource_logs = wire::ResourceLogs {
            resource: None,
            scope_logs: vec![scope_logs.encode_to_vec()],
        };
        let body = wire::ExportLogsServiceRequest {
            resource_logs: vec![resource_logs.encode_to_vec()],
        }
        .encode_to_vec();
        let parsed = parse_otlp_protobuf(&body, &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (1, 1));
        assert_eq!(parsed.rejections[0].index, 0);
        assert!(
            parsed.rejections[0]
                .reason
                .starts_with("undecodable log record: ")
        );
    }

    #[test]
    fn invalid_utf8_is_repaired() {
        let r = parse_one(wire::LogRecord {
            body: Some(wire::AnyValue {
                value: Some(Value::StringValue(b"caf\xe9".to_vec())),
            }),
            severity_text: b"\xffwarn".to_vec(),
            ..Default::default()
        });
        assert_eq!(r.message, "caf\u{fffd}");
        assert_eq!(r.level.as_deref(), Some("\u{fffd}warn"));
    }

    #[test]
    fn garbage_fails_the_whole_request() {
        for body in [
            &b"\xff\xff\xff\xff"[..],
            b"\x0a\x05ab",
            b"\x0b",
            b"{\"resourceLogs\":[]}",
        ] {
            let err = parse_otlp_protobuf(body, &opts()).unwrap_err();
            assert!(matches!(err, OtlpError::Protobuf(_)), "{body:?}: {err}");
        }
        // A resource entry that does not decode fails the request: its records cannot be counted.
        let body = wire::ExportLogsServiceRequest {
            resource_logs: vec![vec![0x12, 0x05]],
        }
        .encode_to_vec();
        assert!(parse_otlp_protobuf(&body, &opts()).is_err());
        let parsed = parse_otlp_protobuf(b"", &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (0, 0));

        let err =
            parse_otlp_json(b"{\"resourceLogs\": [\n {\"scopeLogs\": 5}]}", &opts()).unwrap_err();
        let OtlpError::Json(e) = &err else {
            panic!("{err}")
        };
        assert_eq!((e.line(), e.column()), (2, 16), "{err}");
        for body in [
            &b"not json"[..],
            b"",
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"12x"}]}]}]}"#,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":1.5}}]}]}]}"#,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"bytesValue":"!!"}}]}]}]}"#,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"text"}]}]}]}"#,
        ] {
            assert!(
                parse_otlp_json(body, &opts()).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_accepts_proto_names_strings_for_numbers_enum_names_and_nulls() {
        let body = br#"{
          "resource_logs": [{
            "resource": {"attributes": [{"key": "host.name", "value": {"string_value": "h1"}}], "droppedAttributesCount": 2},
            "scope_logs": [{
              "scope": null,
              "schemaUrl": "https://example.com",
              "log_records": [
                {"time_unix_nano": 1718452800000000000, "severity_number": "SEVERITY_NUMBER_WARN3",
                 "body": {"kvlist_value": {"values": [{"key": "a", "value": {"int_value": 5, "future": [1]}}]}},
                 "attributes": [{"key": "d", "value": {"double_value": "NaN"}},
                                {"key": "b", "value": {"bytes_value": "_-8"}},
                                {"key": "n", "value": null},
                                {"key": "s", "value": {"stringValue": null}}],
                 "event_name": "ev", "flags": 1, "futureField": {"x": [1, 2]}},
                {"observedTimeUnixNano": 1.7184528e18, "severityNumber": "17", "body": null, "attributes": null},
                {"severityNumber": "SEVERITY_NUMBER_NOPE", "severityText": null}
              ]
            }]
          }]
        }"#;
        let parsed = parse_otlp_json(body, &opts()).unwrap();
        assert_eq!((parsed.records.len(), parsed.failed), (3, 0));
        let r = &parsed.records[0];
        assert_eq!(r.timestamp, Some(1_718_452_800_000_000_000));
        assert_eq!(r.level.as_deref(), Some("WARN"));
        assert_eq!(r.host.as_deref(), Some("h1"));
        assert_eq!(r.message, r#"{"a":5}"#);
        assert_eq!(attribute(r, "log.d"), Some("NaN"));
        assert_eq!(attribute(r, "log.b"), Some("/+8="));
        assert_eq!(attribute(r, "log.n"), None);
        assert_eq!(attribute(r, "log.s"), None);
        assert_eq!(attribute(r, "log.event_name"), Some("ev"));
        let r = &parsed.records[1];
        assert_eq!(r.timestamp, Some(1_718_452_800_000_000_000));
        assert_eq!(r.level.as_deref(), Some("ERROR"));
        assert_eq!(parsed.records[2].level, None);
        assert_eq!(
            json::severity_number_of_name("SEVERITY_NUMBER_FATAL4"),
            Some(24)
        );
        assert_eq!(
            json::severity_number_of_name("SEVERITY_NUMBER_TRACE"),
            Some(1)
        );
        assert_eq!(json::severity_number_of_name("SEVERITY_NUMBER_INFO5"), None);
        assert_eq!(
            json::severity_number_of_name("SEVERITY_NUMBER_UNSPECIFIED"),
            Some(0)
        );
        let parsed = parse_otlp_json(b"{}", &opts()).unwrap();
        assert_eq!(parsed.records.len(), 0);
        let parsed = parse_otlp_json(br#"{"resourceLogs": null}"#, &opts()).unwrap();
        assert_eq!(parsed.records.len(), 0);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        // Protobuf: a record whose body is an AnyValue array 10k levels deep, written by hand
        // (back to front) because encoding it with prost would itself recurse 10k deep. prost
        // stops at its recursion limit, so only that record is rejected.
        fn push_reversed_header(reversed: &mut Vec<u8>, tag: u8) {
            let mut len = reversed.len();
            let mut varint = Vec::new();
            loop {
                let low = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    varint.push(low);
                    break;
                }
                varint.push(low | 0x80);
            }
            reversed.extend(varint.iter().rev());
            reversed.push(tag);
        }
        let mut reversed = Vec::new();
        for _ in 0..10_000 {
            push_reversed_header(&mut reversed, 0x0a); // ArrayValue.values = 1
            push_reversed_header(&mut reversed, 0x2a); // AnyValue.array_value = 5
        }
        push_reversed_header(&mut reversed, 0x2a); // LogRecord.body = 5
        reversed.reverse();
        let record_bytes = reversed;
        assert!(wire::LogRecord::decode(record_bytes.as_slice()).is_err());
        let scope_logs = wire::ScopeLogs {
            scope: None,
            log_records: vec![record_bytes],
        };
        let request = wire::ExportLogsServiceRequest {
            resource_logs: vec![
                wire::ResourceLogs {
                    resource: None,
                    scope_logs: vec![scope_logs.encode_to_vec()],
                }
                .encode_to_vec(),
            ],
        };
        let parsed = parse_otlp_protobuf(&request.encode_to_vec(), &opts()).unwrap();
        assert_eq!(parsed.failed, 1);
        assert!(
            parsed.rejections[0].reason.contains("recursion limit"),
            "{:?}",
            parsed.rejections
        );

        // JSON: 10k nested arrays and 10k nested AnyValues; serde_json stops at 128 levels.
        let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_otlp_json(deep_array.as_bytes(), &opts()).is_err());
        let deep_value = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}1{}}}]}}]}}]}}"#,
            r#"{"arrayValue":{"values":["#.repeat(10_000),
            "]}}".repeat(10_000)
        );
        let err = parse_otlp_json(deep_value.as_bytes(), &opts()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // Nesting within the limit is fine.
        let nested = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}{{"intValue":1}}{}}}]}}]}}]}}"#,
            r#"{"arrayValue":{"values":["#.repeat(30),
            "]}}".repeat(30)
        );
        let parsed = parse_otlp_json(nested.as_bytes(), &opts()).unwrap();
        assert_eq!(
            parsed.records[0].message,
            format!("{}1{}", "[".repeat(30), "]".repeat(30))
        );
    }

    #[test]
    fn shared_attributes_copied_into_too_many_records_are_refused() {
        let resource = wire::Resource {
            attributes: (0..200)
                .map(|i| {
                    kv(
                        &format!("attribute.{i}"),
                        Some(Value::StringValue(vec![b'v'; 1000])),
                    )
                })
                .collect(),
        };
        let records = vec![wire::LogRecord::default(); 2000];
        let body = encode_request(vec![(
            resource,
            vec![(wire::InstrumentationScope::default(), records)],
        )]);
        assert!(body.len() < 1 << 20);
        let err = parse_otlp_protobuf(&body, &opts()).unwrap_err();
        assert!(matches!(err, OtlpError::ExpandsTooMuch { .. }), "{err}");
    }

    #[test]
    fn a_collector_batch_of_tiny_records_under_a_heavy_resource_is_accepted() {
        let resource = wire::Resource {
            attributes: (0..30)
                .map(|i| {
                    kv(
                        &format!("k8s.attribute.{i}"),
                        Some(Value::StringValue(vec![b'v'; 80])),
                    )
                })
                .collect(),
        };
        let record = wire::LogRecord {
            time_unix_nano: 1_718_452_800_000_000_000,
            body: string("GET /health 200"),
            ..Default::default()
        };
        let body = encode_request(vec![(
            resource,
            vec![(wire::InstrumentationScope::default(), vec![record; 8192])],
        )]);
        let parsed = parse_otlp_protobuf(&body, &opts()).unwrap();
        assert_eq!(parsed.records.len(), 8192);
        assert_eq!(parsed.records[8191].attributes.len(), 30);
    }

    #[test]
    fn shared_attributes_copied_into_many_empty_scopes_are_refused() {
        let resource = wire::Resource {
            attributes: vec![kv("big", Some(Value::StringValue(vec![b'v'; 200_000])))],
        };
        let scopes = vec![(wire::InstrumentationScope::default(), Vec::new()); 1000];
        let body = encode_request(vec![(resource, scopes)]);
        let err = parse_otlp_protobuf(&body, &opts()).unwrap_err();
        assert!(matches!(err, OtlpError::ExpandsTooMuch { .. }), "{err}");
        let service = wire::Resource {
            attributes: vec![kv(
                "service.name",
                Some(Value::StringValue(vec![b's'; 200_000])),
            )],
        };
        let records = vec![wire::LogRecord::default(); 1000];
        let body = encode_request(vec![(
            service,
            vec![(wire::InstrumentationScope::default(), records)],
        )]);
        let err = parse_otlp_protobuf(&body, &opts()).unwrap_err();
        assert!(matches!(err, OtlpError::ExpandsTooMuch { .. }), "{err}");
    }

    #[test]
    fn responses_round_trip() {
        assert!(encode_response_protobuf(0, "ignored").is_empty());
        let bytes = encode_response_protobuf(3, "3 records had bad trace ids");
        let decoded = wire::ExportLogsServiceResponse::decode(bytes.as_slice()).unwrap();
        let partial = decoded.partial_success.unwrap();
        assert_eq!(partial.rejected_log_records, 3);
        assert_eq!(partial.error_message, "3 records had bad trace ids");
        let decoded = wire::ExportLogsServiceResponse::decode(
            encode_response_protobuf(u64::MAX, "").as_slice(),
        )
        .unwrap();
        assert_eq!(
            decoded.partial_success.unwrap().rejected_log_records,
            i64::MAX
        );

        assert_eq!(response_json(0, "x").to_string(), "{}");
        assert_eq!(
            response_json(2, "bad"),
            serde_json::json!({"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "bad"}})
        );
        assert_eq!(
            response_json(1, "")["partialSuccess"],
            serde_json::json!({"rejectedLogRecords": "1"})
        );
    }
}
