//! Whole request bodies of the ingest API: a JSON document (`{"logs": [...]}` or an array),
//! NDJSON or text, chosen by media type, parsed into records plus per-item rejections.

use silt_storage::record::LogRecord;

use super::{InputFormat, LineParser, ParseOptions, detect_format, parse_ndjson_line};

/// Rejections listed one by one; the rest are only counted.
pub const MAX_LISTED_REJECTIONS: usize = 100;

/// The body's shape, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `{"logs": [{…}, …]}` or `[{…}, …]`: one event per element.
    JsonDocument,
    Lines(InputFormat),
    /// No media type: NDJSON or text, guessed from the first lines.
    Detect,
}

impl BodyKind {
    /// The kind for a `Content-Type` value (parameters such as `charset` ignored), or `None`
    /// for a type the API does not take.
    pub fn from_media_type(content_type: Option<&str>) -> Option<BodyKind> {
        Some(match media_type_essence(content_type).as_str() {
            "application/json" => BodyKind::JsonDocument,
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => BodyKind::Lines(InputFormat::Ndjson),
            "text/plain" => BodyKind::Lines(InputFormat::Text),
            // What `curl --data-binary @file` sends unless told otherwise: the body is the
            // file, not a form.
            "" | "application/octet-stream" | "application/x-www-form-urlencoded" => {
                BodyKind::Detect
            }
            _ => return None,
        })
    }
}

/// The records made from a request may take about this many times the (decompressed) body's
/// size (tiny records under many shared attributes legitimately reach ~100×)...
const EXPANSION_FACTOR: u64 = 256;
/// ...but always at least this much...
const MIN_EXPANSION_LIMIT_BYTES: u64 = 16 << 20;
/// ...and never more than this.
const MAX_EXPANSION_LIMIT_BYTES: u64 = 1 << 30;
/// Estimated size of a record before its strings' contents.
const RECORD_OVERHEAD_BYTES: u64 = size_of::<LogRecord>() as u64;
/// Estimated size of an attribute before its key and value contents.
const ATTRIBUTE_OVERHEAD_BYTES: u64 = size_of::<(String, String)>() as u64;

/// The memory the records of one request may take, for formats whose shared fields (OTLP
/// resource attributes, Loki stream labels) are copied into every record: a small body must not
/// expand into gigabytes. Charged before any copy is made.
#[derive(Debug)]
struct ExpansionBudget {
    spent_bytes: u64,
    limit_bytes: u64,
}

/// What [`ExpansionBudget::charge`] refuses: the estimate so far and the limit.
#[derive(Debug)]
pub(crate) struct OverBudget {
    pub(crate) estimated_bytes: u64,
    pub(crate) limit_bytes: u64,
}

impl ExpansionBudget {
    /// 256 × the body's size, within 16 MiB..=1 GiB.
    fn for_body(body_len: usize) -> Self {
        ExpansionBudget {
            spent_bytes: 0,
            limit_bytes: (body_len as u64)
                .saturating_mul(EXPANSION_FACTOR)
                .clamp(MIN_EXPANSION_LIMIT_BYTES, MAX_EXPANSION_LIMIT_BYTES),
        }
    }

    /// Counts `records` records, each carrying a copy of `shared_bytes` of shared fields.
    fn charge(&mut self, shared_bytes: u64, records: u64) -> Result<(), OverBudget> {
        let per_record = RECORD_OVERHEAD_BYTES.saturating_add(shared_bytes);
        self.spent_bytes = self
            .spent_bytes
            .saturating_add(per_record.saturating_mul(records));
        if self.spent_bytes > self.limit_bytes {
            return Err(OverBudget {
                estimated_bytes: self.spent_bytes,
                limit_bytes: self.limit_bytes,
            });
        }
        Ok(())
    }
}

/// The records of a body whose shared fields (OTLP resource and scope, Loki stream labels) are
/// copied into every record: numbers the events across the whole body, keeps the records and
/// the rejections, and charges the copies to the body's [`ExpansionBudget`].
#[derive(Debug)]
pub(crate) struct ExpandingBody {
    parsed: ParsedBody,
    next_index: u64,
    budget: ExpansionBudget,
}

impl ExpandingBody {
    pub(crate) fn for_body(body_len: usize) -> Self {
        ExpandingBody {
            parsed: ParsedBody::default(),
            next_index: 0,
            budget: ExpansionBudget::for_body(body_len),
        }
    }

    /// See [`ExpansionBudget::charge`]; called before the records are mapped.
    pub(crate) fn charge(&mut self, shared_bytes: u64, records: u64) -> Result<(), OverBudget> {
        self.budget.charge(shared_bytes, records)
    }

    /// The next event of the body: kept, or rejected under its index.
    pub(crate) fn push(&mut self, record: Result<LogRecord, String>) {
        let index = self.next_index;
        self.next_index += 1;
        match record {
            Ok(record) => self.parsed.records.push(record),
            Err(reason) => self.parsed.reject(index, reason),
        }
    }

    pub(crate) fn finish(self) -> ParsedBody {
        self.parsed
    }
}

/// Estimated bytes of a copy of `attributes`.
pub(crate) fn attributes_bytes(attributes: &[(String, String)]) -> u64 {
    attributes
        .iter()
        .map(|(key, value)| (key.len() + value.len()) as u64 + ATTRIBUTE_OVERHEAD_BYTES)
        .sum()
}

/// The type of a `Content-Type` value without its parameters, lowercased (`""` when absent):
/// `Application/JSON; charset=utf-8` → `application/json`.
pub fn media_type_essence(content_type: Option<&str>) -> String {
    content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// One rejected event: its 0-based element (JSON) or line (NDJSON, text) index and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: u64,
    pub reason: String,
}

/// The records of a body and what was rejected.
#[derive(Debug, Default)]
pub struct ParsedBody {
    pub records: Vec<LogRecord>,
    /// Every rejected event.
    pub failed: u64,
    /// The first [`MAX_LISTED_REJECTIONS`] of them.
    pub rejections: Vec<Rejection>,
}

impl ParsedBody {
    pub fn reject(&mut self, index: u64, reason: String) {
        self.failed += 1;
        if self.rejections.len() < MAX_LISTED_REJECTIONS {
            self.rejections.push(Rejection { index, reason });
        }
    }
}

/// A JSON document that does not parse at all (nothing of it is kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON body: {message}")]
pub struct BodyError {
    pub message: String,
    /// 0-based byte offset of the problem, when known.
    pub offset: Option<u64>,
}

/// Parses a whole body. Events that are malformed are rejected one by one and the others
/// kept; only a JSON document that is not JSON fails as a whole (also an untyped body that
/// starts like a JSON array).
pub fn parse_body(
    body: &[u8],
    kind: BodyKind,
    opts: &ParseOptions,
) -> Result<ParsedBody, BodyError> {
    let format = match kind {
        BodyKind::JsonDocument => return parse_json_document(body, opts),
        BodyKind::Lines(format) => format,
        // A JSON array of events (`[` then `{` or `]`) is never read as lines.
        BodyKind::Detect if looks_like_json_array(body) => {
            return parse_json_document(body, opts).map_err(|mut e| {
                e.message.push_str(
                    " (read as a JSON array of events because the body starts like one; \
                     send Content-Type: text/plain or application/x-ndjson to read it as lines)",
                );
                e
            });
        }
        BodyKind::Detect => detect_format(body),
    };
    let mut parsed = ParsedBody::default();
    let mut parser = LineParser::new(format, opts.clone());
    let mut results = parser.feed(body);
    results.extend(parser.finish());
    parsed.records.reserve(results.len());
    for result in results {
        match result {
            Ok(record) => parsed.records.push(record),
            Err(e) => parsed.reject(e.line.saturating_sub(1), e.reason),
        }
    }
    Ok(parsed)
}

#[derive(serde::Deserialize)]
struct LogsDocument {
    logs: Vec<serde_json::Value>,
}

fn parse_json_document(body: &[u8], opts: &ParseOptions) -> Result<ParsedBody, BodyError> {
    let (body, skipped) = without_bom(body);
    let invalid = |e| invalid_json(body, skipped, e);
    let logs = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<serde_json::Value>>(body).map_err(invalid)?,
        _ => {
            serde_json::from_slice::<LogsDocument>(body)
                .map_err(invalid)?
                .logs
        }
    };
    let mut parsed = ParsedBody::default();
    parsed.records.reserve(logs.len());
    let mut line = Vec::new();
    for (index, value) in logs.into_iter().enumerate() {
        match event_record(&value, &mut line, opts) {
            Ok(record) => parsed.records.push(record),
            Err(reason) => parsed.reject(index as u64, reason),
        }
    }
    Ok(parsed)
}

/// One element of a JSON document as a record, read like an NDJSON line (`line` is scratch).
fn event_record(
    value: &serde_json::Value,
    line: &mut Vec<u8>,
    opts: &ParseOptions,
) -> Result<LogRecord, String> {
    if !value.is_object() {
        return Err("expected a JSON object".to_string());
    }
    line.clear();
    serde_json::to_writer(&mut *line, value).expect("a JSON value serialises");
    parse_ndjson_line(line, opts)
}

/// `doc` without a leading UTF-8 byte-order mark (Windows tools write one; it is not JSON), and
/// how many bytes that was, so that error offsets still count it.
fn without_bom(doc: &[u8]) -> (&[u8], usize) {
    match doc.strip_prefix(super::UTF8_BOM) {
        Some(rest) => (rest, super::UTF8_BOM.len()),
        None => (doc, 0),
    }
}

/// A JSON error in `doc` (which starts `skipped` bytes into its input) as a [`BodyError`].
fn invalid_json(doc: &[u8], skipped: usize, e: serde_json::Error) -> BodyError {
    BodyError {
        offset: line_column_offset(doc, e.line(), e.column()).map(|o| o + skipped as u64),
        message: e.to_string(),
    }
}

/// A JSON document that is an array (of events, or empty), by [`looks_like_json_document`].
fn looks_like_json_array(head: &[u8]) -> bool {
    let (head, _) = without_bom(head);
    head.trim_ascii_start().first() == Some(&b'[') && looks_like_json_document(head)
}

/// Whether the start of a file is a JSON document rather than NDJSON or text: an array of
/// objects (`[` followed by `{` or `]`), or an object spread over lines (`{` alone on its first
/// line, as `jq .` prints). Apache's `[Sun Dec 04 …]` lines stay text.
pub fn looks_like_json_document(head: &[u8]) -> bool {
    let (head, _) = without_bom(head);
    let mut rest = head.trim_ascii_start();
    match rest.first() {
        Some(b'[') => {
            rest = rest[1..].trim_ascii_start();
            matches!(rest.first(), Some(b'{' | b']'))
        }
        Some(b'{') => {
            let first_line = rest.split(|&c| c == b'\n').next().unwrap_or(rest);
            first_line.trim_ascii() == b"{"
        }
        _ => false,
    }
}

/// The events of a JSON document file: an array of objects, or objects one after another,
/// pretty-printed or not. `on_event` gets each event's 0-based index and its record or why it
/// was rejected; a document that stops being JSON fails as a whole from there (the events
/// before it have been handed out).
pub fn parse_json_events(
    doc: &[u8],
    opts: &ParseOptions,
    mut on_event: impl FnMut(u64, Result<LogRecord, String>),
) -> Result<(), BodyError> {
    let (doc, bom) = without_bom(doc);
    let invalid = |e| invalid_json(doc, bom, e);
    let mut line = Vec::new();
    let mut event = |index: u64, value: serde_json::Value| {
        on_event(index, event_record(&value, &mut line, opts));
    };
    if doc.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let values: Vec<serde_json::Value> = serde_json::from_slice(doc).map_err(invalid)?;
        for (index, value) in values.into_iter().enumerate() {
            event(index as u64, value);
        }
        return Ok(());
    }
    let values = serde_json::Deserializer::from_slice(doc).into_iter::<serde_json::Value>();
    for (index, value) in values.enumerate() {
        event(index as u64, value.map_err(invalid)?);
    }
    Ok(())
}

/// Byte offset (0-based) of a 1-based line/column as serde_json reports them.
pub fn line_column_offset(body: &[u8], line: usize, column: usize) -> Option<u64> {
    if line == 0 {
        return None;
    }
    let mut start = 0usize;
    for _ in 1..line {
        start += body.get(start..)?.iter().position(|&b| b == b'\n')? + 1;
    }
    Some((start + column.saturating_sub(1)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8], content_type: &str) -> Result<ParsedBody, BodyError> {
        let kind = BodyKind::from_media_type(Some(content_type)).expect("known type");
        parse_body(body, kind, &ParseOptions::default())
    }

    #[test]
    fn json_document_files() {
        assert!(looks_like_json_document(b"\xEF\xBB\xBF [\n  {\"a\": 1}"));
        assert!(looks_like_json_document(b"[]"));
        assert!(looks_like_json_document(b"{\n  \"a\": 1\n}\n{\n"));
        assert!(!looks_like_json_document(b"{\"a\": 1}\n{\"a\": 2}\n"));
        assert!(!looks_like_json_document(
            b"[Sun Dec 04 04:47:44 2005] [notice] x"
        ));
        assert!(!looks_like_json_document(b"[10.30 16:49:06] chrome.exe"));
        assert!(!looks_like_json_document(b"plain text"));

        let opts = ParseOptions::utc_at(0);
        let collect = |doc: &[u8]| {
            let mut events = Vec::new();
            let outcome = parse_json_events(doc, &opts, |i, r| {
                events.push((i, r.map(|record| record.message)));
            });
            (outcome.map_err(|e| e.offset), events)
        };
        let (outcome, events) = collect(b"\xEF\xBB\xBF[{\"msg\":\"a\"}, 5, {\"msg\":\"b\"}]");
        assert_eq!(outcome, Ok(()));
        assert_eq!(
            events,
            [
                (0, Ok("a".to_string())),
                (1, Err("expected a JSON object".to_string())),
                (2, Ok("b".to_string()))
            ]
        );
        let pretty = b"{\n  \"msg\": \"a\"\n}\n{\n  \"msg\": \"b\",\n  \"level\": \"warn\"\n}\n";
        let (outcome, events) = collect(pretty);
        assert_eq!(outcome, Ok(()));
        assert_eq!(events, [(0, Ok("a".to_string())), (1, Ok("b".to_string()))]);
        let (outcome, _) = collect(b"\xEF\xBB\xBF[{\"msg\": }]");
        assert_eq!(
            outcome,
            Err(Some(12)),
            "a file offset, the byte-order mark counted"
        );
        // Broken after the first object: that one is kept, the error says where.
        let (outcome, events) = collect(b"{\"msg\":\"a\"}\n{\"msg\": }");
        assert_eq!(
            outcome,
            Err(Some(20)),
            "the closing brace where a value belongs"
        );
        assert_eq!(events, [(0, Ok("a".to_string()))]);
    }

    #[test]
    fn json_ndjson_and_text_bodies_parse_with_per_item_rejections() {
        let json = br#"{"logs":[{"message":"a","level":"error"}, 5, {"message":"b"}]}"#;
        let p = parse(json, "application/json").unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!((p.failed, p.rejections[0].index), (1, 1));
        let p = parse(br#"[{"message":"a"}]"#, "application/json; charset=utf-8").unwrap();
        assert_eq!(p.records[0].message, "a");

        let ndjson = b"{\"message\":\"a\"}\nnot json\n\n{\"message\":\"c\"}";
        let p = parse(ndjson, "application/x-ndjson; charset=utf-8").unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.rejections[0].index, 1);

        let p = parse(b"one\ntwo\n", "text/plain").unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!(BodyKind::from_media_type(Some("image/png")), None);
        assert_eq!(BodyKind::from_media_type(None), Some(BodyKind::Detect));
    }

    #[test]
    fn untyped_bodies_are_detected_as_curl_sends_them() {
        // `curl --data-binary @file` says application/x-www-form-urlencoded.
        let form = "application/x-www-form-urlencoded";
        let p = parse(b"{\"message\":\"a\"}\n{\"message\":\"b\"}\n", form).unwrap();
        assert_eq!(p.records[1].message, "b");
        let p = parse(b"2026-12-07 10:00:00 ERROR disk\n", form).unwrap();
        assert_eq!(p.records[0].level.as_deref(), Some("ERROR"));
        // A JSON array is events, not lines; with a byte-order mark too.
        let p = parse(
            b"\xEF\xBB\xBF[\n  {\"message\": \"a\"},\n  {\"message\": \"b\"}\n]\n",
            form,
        )
        .unwrap();
        assert_eq!(p.records.len(), 2);
        let err = parse(b"\xEF\xBB\xBF[{\"message\": }]", "application/octet-stream").unwrap_err();
        assert_eq!(err.offset, Some(16), "the byte-order mark counted");
        assert!(
            err.to_string().contains("Content-Type: text/plain"),
            "{err}"
        );
        let p = parse(b"[Sun Dec 04 04:47:44 2005] [notice] up\n", form).unwrap();
        assert_eq!(
            p.records[0].message,
            "[Sun Dec 04 04:47:44 2005] [notice] up"
        );
    }

    #[test]
    fn a_broken_document_points_at_the_byte() {
        let err = parse(b"{\"logs\": [\n  {\"a\": }]}", "application/json").unwrap_err();
        assert_eq!(err.offset, Some(19), "{err}");
        assert!(parse(b"{\"records\": []}", "application/json").is_err());
    }

    #[test]
    fn only_the_first_rejections_are_listed() {
        let body = "x\n".repeat(150);
        let p = parse(body.as_bytes(), "application/x-ndjson").unwrap();
        assert_eq!((p.failed, p.rejections.len()), (150, MAX_LISTED_REJECTIONS));
    }
}
