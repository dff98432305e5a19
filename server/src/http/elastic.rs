//! Elasticsearch compatibility for shippers (Filebeat, Logstash, Fluent Bit, Vector, the
//! official clients): `_bulk` ingest and the handshake calls they make before it.
//!
//! Every response of the server carries `X-Elastic-Product: Elasticsearch` (see
//! [`product_header`]); the clients refuse a server without it. Index templates, ILM policies,
//! ingest pipelines and data streams are accepted as no-ops: a stream needs no set-up.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use serde_json::json;
use silt_engine::IngestReceipt;
use silt_engine::parse::ParseOptions;
use silt_engine::parse::bulk::{BulkItem, parse_bulk};
use silt_storage::record::LogRecord;

use super::AppState;
use super::error::ApiError;
use super::ingest::IngestRequest;

/// The version `GET /` reports: what shippers check before they send.
pub const COMPATIBLE_VERSION: &str = "8.17.0";

/// The Elasticsearch routes.
pub fn routes() -> axum::Router<Arc<AppState>> {
    let no_op = || -> MethodRouter<Arc<AppState>> {
        get(setting_get)
            .head(exists)
            .put(setting_put)
            .post(setting_put)
    };
    axum::Router::new()
        .route("/", get(info).head(exists))
        .route("/_license", get(license))
        .route("/_xpack", get(xpack))
        .route("/_bulk", post(bulk).put(bulk))
        .route("/{index}/_bulk", post(bulk_into).put(bulk_into))
        .route("/_index_template/{name}", no_op())
        .route("/_template/{name}", no_op())
        .route("/_component_template/{name}", no_op())
        .route("/_ilm/policy/{name}", no_op())
        .route("/_ingest/pipeline/{name}", no_op())
        .route("/_data_stream/{name}", no_op())
}

/// Adds `X-Elastic-Product: Elasticsearch` to a response.
pub async fn product_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// `GET /`: the cluster identity and version, as the clients' product check expects.
async fn info(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.keys.authenticate(&headers)?;
    // Clients of the next major announce it (`compatible-with=9`) and expect to hear it back.
    let version = match asked_compatibility(&headers) {
        Some(9) => "9.1.0",
        _ => COMPATIBLE_VERSION,
    };
    Ok(es_json(
        &headers,
        StatusCode::OK,
        &json!({
            "name": "silt",
            "cluster_name": "silt",
            "cluster_uuid": "silt",
            "version": {
                "number": version,
                "build_flavor": "default",
                "build_type": "silt",
                "build_hash": env!("CARGO_PKG_VERSION"),
                "build_date": "2026-01-01T00:00:00.000Z",
                "build_snapshot": false,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "You Know, for Search"
        }),
    ))
}

/// `GET /_license`: an active basic license (Beats refuse to start without one).
async fn license(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.keys.authenticate(&headers)?;
    Ok(es_json(
        &headers,
        StatusCode::OK,
        &json!({
            "license": {
                "status": "active",
                "uid": "silt",
                "type": "basic",
                "issue_date": "2026-01-01T00:00:00.000Z",
                "issue_date_in_millis": 1_767_225_600_000_u64,
                "max_nodes": 1000,
                "max_resource_units": null,
                "issued_to": "silt",
                "issuer": "silt",
                "start_date_in_millis": -1
            }
        }),
    ))
}

/// `GET /_xpack`: no X-Pack features (Logstash asks).
async fn xpack(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.keys.authenticate(&headers)?;
    Ok(es_json(
        &headers,
        StatusCode::OK,
        &json!({
            "build": {"hash": "silt", "date": "2026-01-01T00:00:00.000Z"},
            "license": {"uid": "silt", "type": "basic", "mode": "basic", "status": "active"},
            "features": {}
        }),
    ))
}

/// `HEAD /` (the clients' ping), and `HEAD` of a template, policy, pipeline or data stream:
/// it exists (so agents skip installing it).
async fn exists(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state.keys.authenticate(&headers)?;
    Ok(StatusCode::OK)
}

/// `GET` of a template, policy, pipeline or data stream: an empty one under the asked name.
async fn setting_get(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.keys.authenticate(&headers)?;
    let path = uri.path();
    let body = if path.starts_with("/_index_template/") {
        json!({"index_templates": [{"name": name, "index_template": {"index_patterns": [format!("{name}*")], "composed_of": []}}]})
    } else if path.starts_with("/_component_template/") {
        json!({"component_templates": [{"name": name, "component_template": {"template": {}}}]})
    } else if path.starts_with("/_data_stream/") {
        json!({"data_streams": [{"name": name, "timestamp_field": {"name": "@timestamp"}, "indices": [], "generation": 1, "status": "GREEN", "template": name}]})
    } else if path.starts_with("/_ilm/policy/") {
        json!({ name: {"version": 1, "modified_date": "2026-01-01T00:00:00.000Z", "policy": {"phases": {}}} })
    } else {
        // Legacy templates and ingest pipelines are keyed by name.
        json!({ name: {} })
    };
    Ok(es_json(&headers, StatusCode::OK, &body))
}

/// `PUT`/`POST` of a template, policy, pipeline or data stream: acknowledged, nothing kept.
async fn setting_put(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.keys.authenticate(&headers)?;
    tracing::debug!(
        name,
        "acknowledged an Elasticsearch set-up call (a no-op here)"
    );
    Ok(es_json(
        &headers,
        StatusCode::OK,
        &json!({"acknowledged": true}),
    ))
}

async fn bulk(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    bulk_request(state, headers, None, body).await
}

async fn bulk_into(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    bulk_request(state, headers, Some(index), body).await
}

/// `POST /_bulk`, `POST /{index}/_bulk`: `index`/`create` actions store their document in the
/// stream named by the index; every other item gets its own error and the rest are kept.
async fn bulk_request(
    state: Arc<AppState>,
    headers: HeaderMap,
    default_index: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut request = IngestRequest::admit(&state, &headers, body).await?;
    let grouped = request
        .parse(move |body| {
            let items = parse_bulk(body, default_index.as_deref(), &ParseOptions::default());
            Ok(group_by_stream(items))
        })
        .await?;
    let Grouped {
        heads,
        outcomes,
        batches,
        failed,
    } = grouped;
    // Every group has at least one record, so the results line up with the groups.
    let stored = request.store_each(&state, batches, failed).await?;
    let failed = failed
        + outcomes
            .iter()
            .filter(|o| matches!(o, Ok((group, _)) if stored[*group].is_err()))
            .count() as u64;
    let receipts: Vec<Result<&IngestReceipt, ItemFailure>> = stored
        .iter()
        .map(|r| {
            r.as_ref()
                .map_err(|e| (e.status.as_u16(), e.kind, e.reason.clone()))
        })
        .collect();
    let outcomes = outcomes.into_iter().map(|outcome| {
        outcome.and_then(|(group, position)| {
            receipts[group]
                .clone()
                .map(|receipt| receipt.first_seq + position as u64)
        })
    });
    let items: Vec<ResponseItem> = outcomes
        .zip(heads)
        .map(|(outcome, (action, index, id))| {
            let detail = match outcome {
                Ok(seq) => ItemDetail {
                    index,
                    id: Some(id.unwrap_or_else(|| seq.to_string())),
                    version: Some(1),
                    result: Some("created"),
                    shards: Some(Shards {
                        total: 1,
                        successful: 1,
                        failed: 0,
                    }),
                    seq_no: Some(seq),
                    primary_term: Some(1),
                    status: 201,
                    error: None,
                },
                Err((status, kind, reason)) => ItemDetail {
                    index,
                    id,
                    version: None,
                    result: None,
                    shards: None,
                    seq_no: None,
                    primary_term: None,
                    status,
                    error: Some(ItemError { kind, reason }),
                },
            };
            ResponseItem { action, detail }
        })
        .collect();
    Ok(es_json(
        &headers,
        StatusCode::OK,
        &BulkResponse {
            took: started.elapsed().as_millis() as u64,
            errors: failed > 0,
            items,
        },
    ))
}

/// Distinct indexes one `_bulk` request may write; items for more get a per-item error.
const MAX_INDEXES_PER_BULK: usize = 64;

/// Where an item's record went: (stream group, position in the group).
type StoredAt = (usize, usize);

/// A parsed `_bulk` request with its records grouped by stream (first-seen order).
struct Grouped {
    /// Per item: action name, index, id.
    heads: Vec<(String, Option<String>, Option<String>)>,
    outcomes: Vec<Result<StoredAt, ItemFailure>>,
    batches: Vec<(String, Vec<LogRecord>)>,
    failed: u64,
}

fn group_by_stream(items: Vec<BulkItem>) -> Grouped {
    let mut grouped = Grouped {
        heads: Vec::with_capacity(items.len()),
        outcomes: Vec::with_capacity(items.len()),
        batches: Vec::new(),
        failed: 0,
    };
    let mut groups: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for BulkItem {
        action,
        index,
        id,
        outcome,
    } in items
    {
        let stored = outcome
            .map_err(|e| (400, e.kind, e.reason))
            .and_then(|record| {
                let stream = index.clone().unwrap_or_default();
                let group = match groups.get(&stream) {
                    Some(&group) => group,
                    None => {
                        silt_storage::layout::validate_name("index", &stream)
                            .map_err(|e| (400, "invalid_index_name_exception", e.to_string()))?;
                        if grouped.batches.len() == MAX_INDEXES_PER_BULK {
                            return Err((
                                400,
                                "illegal_argument_exception",
                                format!(
                                    "one bulk request may write at most {MAX_INDEXES_PER_BULK} indexes; split it"
                                ),
                            ));
                        }
                        groups.insert(stream.clone(), grouped.batches.len());
                        grouped.batches.push((stream, Vec::new()));
                        grouped.batches.len() - 1
                    }
                };
                let batch = &mut grouped.batches[group].1;
                batch.push(record);
                Ok((group, batch.len() - 1))
            });
        if stored.is_err() {
            grouped.failed += 1;
        }
        grouped.heads.push((action.name().to_owned(), index, id));
        grouped.outcomes.push(stored);
    }
    grouped
}
/// Why an item was not stored: status, Elasticsearch exception type, reason.
type ItemFailure = (u16, &'static str, String);

/// The answer of `_bulk`, in Elasticsearch's shape.
#[derive(Serialize)]
struct BulkResponse {
    took: u64,
    errors: bool,
    items: Vec<ResponseItem>,
}

/// `{"<action>": {…}}`.
struct ResponseItem {
    action: String,
    detail: ItemDetail,
}

impl Serialize for ResponseItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.action, &self.detail)?;
        map.end()
    }
}

#[derive(Serialize)]
struct ItemDetail {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<String>,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    shards: Option<Shards>,
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    seq_no: Option<u64>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    primary_term: Option<u32>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError>,
}

#[derive(Serialize)]
struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

#[derive(Serialize)]
struct ItemError {
    #[serde(rename = "type")]
    kind: &'static str,
    reason: String,
}

/// A JSON response in the media type the client asked for: the versioned
/// `application/vnd.elasticsearch+json; compatible-with=N` when it sent one, else plain JSON.
fn es_json(request: &HeaderMap, status: StatusCode, body: &impl Serialize) -> Response {
    let content_type = match asked_compatibility(request) {
        Some(version) => format!("application/vnd.elasticsearch+json; compatible-with={version}"),
        None => "application/json".to_owned(),
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The `compatible-with` version the request's `Accept` or `Content-Type` names.
fn asked_compatibility(request: &HeaderMap) -> Option<u8> {
    [header::ACCEPT, header::CONTENT_TYPE]
        .iter()
        .filter_map(|name| request.get(name)?.to_str().ok())
        .find_map(compatible_with)
}

/// The `compatible-with` version of an `application/vnd.elasticsearch+…` media type.
fn compatible_with(media_type: &str) -> Option<u8> {
    let lower = media_type.to_ascii_lowercase();
    if !lower.contains("application/vnd.elasticsearch+") {
        return None;
    }
    let (_, rest) = lower.split_once("compatible-with=")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_with_reads_the_versioned_media_types() {
        assert_eq!(
            compatible_with("application/vnd.elasticsearch+json; compatible-with=8"),
            Some(8)
        );
        assert_eq!(
            compatible_with("application/vnd.elasticsearch+x-ndjson;compatible-with=9"),
            Some(9)
        );
        assert_eq!(compatible_with("application/json"), None);
    }
}
