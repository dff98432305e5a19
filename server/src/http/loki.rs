//! Loki's push API, `POST /loki/api/v1/push`, as Promtail, Grafana Alloy and the Loki
//! clients send it: snappy-compressed protobuf, or JSON.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use silt_engine::parse::ParseOptions;
use silt_engine::parse::loki::{LokiError, parse_loki_json, parse_loki_protobuf};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::ingest::{IngestParams, IngestRequest, stream_name};

/// Loki push. Labels become attributes (`service_name`, `app` or `job` also the service),
/// structured metadata is kept, each entry's line is the message. 204 when every entry was
/// stored; like Loki, 400 naming the rejected entries when some were not (the others are
/// stored).
#[utoipa::path(post, path = "/loki/api/v1/push", tag = "protocols",
    params(IngestParams),
    request_body(content(
        (Vec<u8> = "application/x-protobuf"),
        (Object = "application/json"),
    ), description = "logproto.PushRequest, snappy-compressed; or the JSON push form"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Undecodable request, or some entries rejected (the rest stored)", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Neither protobuf nor JSON", body = ErrorBody),
        (status = 429, description = "Tenant over its ingest rate; see Retry-After", body = ErrorBody),
        (status = 503, description = "Overloaded or starting; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn push(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let stream = stream_name(&uri, &headers)?;
    let mut request = IngestRequest::admit(&state, &headers, body).await?;
    // The protobuf form is always snappy inside; some clients also say so in the header.
    request.ignore_encoding("snappy");
    let protobuf = request.is_protobuf("a Loki push", true)?;
    let limit = request.max_body_bytes() as usize;
    let parsed = request
        .parse(move |body| {
            let opts = ParseOptions::default();
            let parsed = if protobuf {
                parse_loki_protobuf(body, limit, &opts)
            } else {
                parse_loki_json(body, &opts)
            };
            parsed.map_err(request_error)
        })
        .await?;
    let failed = parsed.failed;
    let first = parsed.rejections.first().cloned();
    let receipts = request
        .store(&state, vec![(stream, parsed.records)], failed)
        .await?;
    match first {
        Some(first) if failed > 0 => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "entries_rejected",
            format!(
                "{} entries stored, {failed} rejected; first, entry {}: {}",
                receipts.iter().map(|r| r.rows).sum::<u64>(),
                first.index,
                first.reason
            ),
        )),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A push that cannot be stored at all: 413 when it decompresses or expands past the limits,
/// 400 when it does not decode.
fn request_error(e: LokiError) -> ApiError {
    match e {
        LokiError::TooLarge { .. } | LokiError::ExpandsTooMuch { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_push", e.to_string()),
    }
}
