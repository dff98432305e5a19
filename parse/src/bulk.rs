//! Elasticsearch `_bulk` bodies: NDJSON pairs of an action/metadata line and a document line,
//! parsed into one item per action, each a record bound for an index or a per-item error.

use silt_storage::record::LogRecord;

use super::{ParseOptions, parse_ndjson_line};

/// What an item asks for. Only `index` and `create` store anything; logs are append-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    Index,
    Create,
    /// `update` and `delete`: understood, refused per item (a log is never rewritten).
    Update,
    Delete,
    /// Any other name, as sent.
    Unknown(String),
}

impl BulkAction {
    fn from_name(name: &str) -> Self {
        match name {
            "index" => BulkAction::Index,
            "create" => BulkAction::Create,
            "update" => BulkAction::Update,
            "delete" => BulkAction::Delete,
            other => BulkAction::Unknown(other.to_owned()),
        }
    }

    /// The key of this item in the response's `items`, as Elasticsearch names it.
    pub fn name(&self) -> &str {
        match self {
            BulkAction::Index => "index",
            BulkAction::Create => "create",
            BulkAction::Update => "update",
            BulkAction::Delete => "delete",
            BulkAction::Unknown(name) => name,
        }
    }

    /// `delete` is the one action without a document line.
    fn has_document(&self) -> bool {
        !matches!(self, BulkAction::Delete)
    }
}

/// Why one item was not stored: an Elasticsearch exception type and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItemError {
    /// Elasticsearch's name for the failure, e.g. `document_parsing_exception`.
    pub kind: &'static str,
    pub reason: String,
}

impl BulkItemError {
    fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

/// One action of a bulk request and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkItem {
    pub action: BulkAction,
    /// `_index` of the action line, else the index of the URL (`/{index}/_bulk`).
    pub index: Option<String>,
    /// `_id` of the action line, if it gave one.
    pub id: Option<String>,
    pub outcome: Result<LogRecord, BulkItemError>,
}

/// Parses a whole `_bulk` body. Never fails as a whole: a malformed action line, an unknown
/// action or a document that is not a JSON object is an error item, and the rest are kept.
///
/// Pairing follows Elasticsearch: every action but `delete` takes the next line as its
/// document, so a malformed action line also consumes the line after it, and a blank
/// document line is an error item. Blank lines between items are skipped; the final newline
/// may be missing. `default_index` is the `{index}` of the URL.
pub fn parse_bulk(body: &[u8], default_index: Option<&str>, opts: &ParseOptions) -> Vec<BulkItem> {
    let mut lines = body
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let mut items = Vec::new();
    while let Some(action_line) = lines.next() {
        // Blank lines between items are skipped; a blank document line is not (it would
        // shift every later pair).
        if action_line.trim_ascii().is_empty() {
            continue;
        }
        let item = match parse_action_line(action_line) {
            Ok((action, meta)) => {
                let index = meta.index.or_else(|| default_index.map(str::to_owned));
                let document = if action.has_document() {
                    lines.next()
                } else {
                    None
                };
                let outcome = item_outcome(&action, index.as_deref(), document, opts);
                BulkItem {
                    action,
                    index,
                    id: meta.id,
                    outcome,
                }
            }
            Err(error) => {
                let _document = lines.next();
                BulkItem {
                    action: BulkAction::Index,
                    index: default_index.map(str::to_owned),
                    id: None,
                    outcome: Err(error),
                }
            }
        };
        items.push(item);
    }
    items
}

/// The parts of an action's metadata that matter here; the rest (`pipeline`, `routing`, …)
/// is accepted and ignored.
#[derive(Debug, Default)]
struct ActionMeta {
    index: Option<String>,
    id: Option<String>,
}

/// An action line's metadata as read: `_index` and `_id` typed, the rest ignored. Only a JSON
/// object is metadata (a derived struct would also take an array).
struct RawMeta<'a> {
    index: Option<std::borrow::Cow<'a, str>>,
    id: Option<RawId<'a>>,
}

impl<'de> serde::Deserialize<'de> for RawMeta<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetaVisitor;
        impl<'de> serde::de::Visitor<'de> for MetaVisitor {
            type Value = RawMeta<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of action metadata")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut meta = RawMeta {
                    index: None,
                    id: None,
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "_index" => meta.index = map.next_value()?,
                        "_id" => meta.id = map.next_value()?,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(meta)
            }
        }
        deserializer.deserialize_map(MetaVisitor)
    }
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawId<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Number(serde_json::Number),
}

fn parse_action_line(line: &[u8]) -> Result<(BulkAction, ActionMeta), BulkItemError> {
    let malformed = |why: String| {
        BulkItemError::new(
            "illegal_argument_exception",
            format!("malformed action/metadata line: {why}"),
        )
    };
    let actions: std::collections::BTreeMap<std::borrow::Cow<'_, str>, RawMeta<'_>> =
        serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
    let mut entries = actions.into_iter();
    let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
        return Err(malformed(
            "expected exactly one action: index, create, update or delete".to_owned(),
        ));
    };
    let meta_fields = ActionMeta {
        index: meta.index.map(std::borrow::Cow::into_owned),
        id: meta.id.map(|id| match id {
            RawId::Text(text) => text.into_owned(),
            RawId::Number(n) => n.to_string(),
        }),
    };
    Ok((BulkAction::from_name(&name), meta_fields))
}

fn item_outcome(
    action: &BulkAction,
    index: Option<&str>,
    document: Option<&[u8]>,
    opts: &ParseOptions,
) -> Result<LogRecord, BulkItemError> {
    match action {
        BulkAction::Index | BulkAction::Create => {}
        BulkAction::Update | BulkAction::Delete => {
            return Err(BulkItemError::new(
                "action_request_validation_exception",
                format!(
                    "'{}' is not supported: logs are append-only (use index or create)",
                    action.name()
                ),
            ));
        }
        BulkAction::Unknown(name) => {
            return Err(BulkItemError::new(
                "illegal_argument_exception",
                format!("unknown action '{name}': expected index, create, update or delete"),
            ));
        }
    }
    if index.is_none() {
        return Err(BulkItemError::new(
            "action_request_validation_exception",
            "index is missing: give _index in the action or use /{index}/_bulk",
        ));
    }
    let Some(document) = document.filter(|d| !d.trim_ascii().is_empty()) else {
        return Err(BulkItemError::new(
            "action_request_validation_exception",
            "the action has no document line",
        ));
    };
    parse_ndjson_line(document, opts)
        .map_err(|reason| BulkItemError::new("document_parsing_exception", reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(1_718_452_800_000_000_000)
    }

    #[test]
    fn index_and_create_pairs_become_records_with_ecs_fields_mapped() {
        let body = br#"{"index":{"_index":"web","_id":"a1"}}
{"@timestamp":"2024-06-15T12:00:00.5Z","log":{"level":"warn"},"service":{"name":"api"},"host":{"name":"h1"},"trace":{"id":"abc"},"message":"slow request","http":{"status":503}}
{"create":{}}
{"message":"second"}
"#;
        let items = parse_bulk(body, Some("default-idx"), &opts());
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].action, BulkAction::Index);
        assert_eq!(items[0].index.as_deref(), Some("web"));
        assert_eq!(items[0].id.as_deref(), Some("a1"));
        let first = items[0].outcome.as_ref().unwrap();
        assert_eq!(first.timestamp, Some(1_718_452_800_500_000_000));
        assert_eq!(first.level.as_deref(), Some("WARN"));
        assert_eq!(first.service.as_deref(), Some("api"));
        assert_eq!(first.host.as_deref(), Some("h1"));
        assert_eq!(first.trace_id.as_deref(), Some("abc"));
        assert_eq!(first.message, "slow request");
        assert_eq!(
            first.attributes,
            vec![("http.status".to_owned(), "503".to_owned())]
        );
        assert_eq!(items[1].action, BulkAction::Create);
        assert_eq!(items[1].index.as_deref(), Some("default-idx"));
        assert_eq!(items[1].outcome.as_ref().unwrap().message, "second");
    }

    #[test]
    fn bad_items_are_errors_and_the_good_ones_are_kept() {
        let body = b"{\"index\":{}}\n{\"message\":\"ok 1\"}\n\
{\"delete\":{\"_id\":\"1\"}}\n\
{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{}}\n\
{\"frobnicate\":{}}\n{\"message\":\"eaten\"}\n\
not json at all\n{\"message\":\"eaten too\"}\n\
{\"index\":{}}\n[1,2]\n\
{\"index\":{}}\n{\"message\":\"ok 2\"}\r\n\
\n\
{\"create\":{}}";
        let items = parse_bulk(body, Some("logs"), &opts());
        let summary: Vec<(&str, Result<&str, &str>)> = items
            .iter()
            .map(|item| {
                (
                    item.action.name(),
                    item.outcome
                        .as_ref()
                        .map(|r| r.message.as_str())
                        .map_err(|e| e.kind),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("index", Ok("ok 1")),
                ("delete", Err("action_request_validation_exception")),
                ("update", Err("action_request_validation_exception")),
                ("frobnicate", Err("illegal_argument_exception")),
                ("index", Err("illegal_argument_exception")),
                ("index", Err("document_parsing_exception")),
                ("index", Ok("ok 2")),
                ("create", Err("action_request_validation_exception")),
            ]
        );
    }

    #[test]
    fn a_blank_document_line_is_an_error_and_does_not_shift_the_pairs() {
        let body = b"{\"index\":{}}\n\n{\"index\":{}}\n{\"message\":\"m\"}\n";
        let items = parse_bulk(body, Some("x"), &opts());
        assert_eq!(items.len(), 2);
        assert!(items[0].outcome.is_err());
        assert_eq!(items[1].outcome.as_ref().unwrap().message, "m");
    }

    #[test]
    fn an_item_without_any_index_is_refused() {
        let items = parse_bulk(b"{\"index\":{}}\n{\"message\":\"x\"}\n", None, &opts());
        assert_eq!(
            items[0].outcome.as_ref().unwrap_err().kind,
            "action_request_validation_exception"
        );
    }

    #[test]
    fn action_lines_with_two_actions_or_bad_metadata_are_malformed() {
        for line in [
            &br#"{"index":{},"create":{}}"#[..],
            br#"{"index":[]}"#,
            br#"{"index":{"_index":5}}"#,
            br#"{}"#,
        ] {
            let mut body = line.to_vec();
            body.extend_from_slice(b"\n{\"message\":\"m\"}\n");
            let items = parse_bulk(&body, Some("x"), &opts());
            assert_eq!(items.len(), 1, "{}", String::from_utf8_lossy(line));
            assert_eq!(
                items[0].outcome.as_ref().unwrap_err().kind,
                "illegal_argument_exception"
            );
        }
    }
}
