//! `POST /v1/logs/ingest`: a JSON `{"logs": […]}` document, NDJSON or text lines, optionally
//! gzip/zstd-compressed, answered 202 once the request is one fsynced WAL record.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use silt_engine::parse::ParseOptions;
use silt_engine::parse::body::{BodyKind, ParsedBody, media_type_essence, parse_body};
use silt_engine::{DEFAULT_STREAM, Engine, EngineError, IngestReceipt};
use silt_storage::record::LogRecord;
use tokio::sync::OwnedSemaphorePermit;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody, check_announced_length, read_limited};
use super::limits::TenantGate;
use super::metrics::TenantLabel;
use super::{AppState, Caller};
use crate::keys::Role;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// Stream the rows go to (also `X-Silt-Stream`); default `default`.
    stream: Option<String>,
    /// Zone of timestamps written without one (also `X-Silt-Utc-Offset`): `Z`, `UTC` or an
    /// offset such as `+02:00` or `-0530`; default UTC.
    utc_offset: Option<String>,
}

/// The JSON form of a request: each element is one log event, as in NDJSON. (Documentation
/// only: `silt_parse::body` reads it.)
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IngestBody {
    #[schema(value_type = Vec<Object>)]
    logs: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Rows acknowledged: durable in the WAL and visible to queries.
    ingested: u64,
    /// Lines or elements rejected as malformed (the others are kept).
    failed: u64,
    /// The first rejections: 0-based element index (JSON) or line index (NDJSON/text).
    errors: Vec<IngestItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestItemError {
    index: u64,
    error: String,
}

/// Ingest logs. One request is one atomic, durable unit: acknowledged rows survive a crash,
/// and a request is never partly present.
#[utoipa::path(post, path = "/v1/logs/ingest", tag = "logs",
    params(IngestParams,
        ("X-Silt-Stream" = Option<String>, Header, description = "Stream the rows go to"),
        ("X-Silt-Utc-Offset" = Option<String>, Header, description = "Zone of timestamps written without one")),
    request_body(content(
        (IngestBody = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/plain"),
    ), description = "`{\"logs\": [...]}`, NDJSON, or plain-text lines; `Content-Encoding: gzip|zstd` accepted"),
    responses(
        (status = 202, description = "Durable in the WAL", body = IngestResponse),
        (status = 400, description = "Unreadable body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Key without the ingest role", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Unsupported content type or encoding", body = ErrorBody),
        (status = 429, description = "Tenant over its ingest rate; see Retry-After", body = ErrorBody),
        (status = 503, description = "Starting, or memtables over budget; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let params = ingest_params(&uri)?;
    let stream = stream_of(&params, &headers)?;
    let opts = parse_options(&params, &headers)?;
    let mut request = IngestRequest::admit(&state, &headers, body).await?;
    let content_type = request.content_type.clone();
    let parsed = request
        .parse(move |body| parse(body, content_type.as_deref(), &opts))
        .await?;
    let errors: Vec<IngestItemError> = parsed
        .rejections
        .into_iter()
        .map(|r| IngestItemError {
            index: r.index,
            error: r.reason,
        })
        .collect();
    let failed = parsed.failed;
    let receipts = request
        .store(&state, vec![(stream, parsed.records)], failed)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(IngestResponse {
            ingested: receipts.iter().map(|r| r.rows).sum(),
            failed,
            errors,
        }),
    ))
}

/// An ingest request past the gates every protocol shares: an ingest key, the tenant's rate,
/// the memory budget and the body limit. Holds its share of the in-flight byte budget.
pub(super) struct IngestRequest {
    engine: Arc<Engine>,
    pub caller: Caller,
    gate: Arc<TenantGate>,
    raw: Option<Bytes>,
    encoding: Option<String>,
    /// `Content-Type`, lowercased.
    pub content_type: Option<String>,
    /// Decompressed body size, once parsed.
    bytes: u64,
    started: Instant,
    _in_flight: OwnedSemaphorePermit,
}

impl IngestRequest {
    /// Authorizes, applies the tenant's limits and reads the (still encoded) body.
    pub(super) async fn admit(
        state: &AppState,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Self, ApiError> {
        let engine = state.engine()?.clone();
        let caller = state.authorize(headers, Role::Ingest)?;
        let gate = state.gates.tenant(&caller.tenant);
        let max_body = gate.limits.max_body_bytes;
        if engine.over_memory_budget() {
            state.metrics.limited(&caller.tenant, "memory");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "memtables are over their budget while flushes catch up; retry shortly",
            )
            .retry_after(1));
        }
        gate.check_ingest()
            .map_err(|t| throttled(state, &caller, &gate, t))?;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body over {max_body} bytes (limits.max_body_bytes); split it"),
            )
        };
        let announced = check_announced_length(headers, max_body, too_large)?;
        // Bodies being read and parsed hold their size from a server-wide budget, so that many
        // large requests at once get 503 instead of taking all the memory.
        let in_flight = state
            .ingest_budget
            .try_reserve(announced.unwrap_or(max_body))
            .ok_or_else(|| {
                state.metrics.limited(&caller.tenant, "memory");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "too many ingest bytes in flight on this server; retry shortly",
                )
                .retry_after(1)
            })?;
        let raw = read_limited(body, max_body, too_large).await?;
        let encoding = header_str(headers, header::CONTENT_ENCODING)?.map(str::to_ascii_lowercase);
        let content_type = header_str(headers, header::CONTENT_TYPE)?.map(str::to_ascii_lowercase);
        Ok(Self {
            engine,
            caller,
            gate,
            raw: Some(raw),
            encoding,
            content_type,
            bytes: 0,
            started: Instant::now(),
            _in_flight: in_flight,
        })
    }

    /// Leaves a `Content-Encoding` of `name` to the parser (Loki's snappy protobuf).
    pub(super) fn ignore_encoding(&mut self, name: &str) {
        if self.encoding.as_deref().map(str::trim) == Some(name) {
            self.encoding = None;
        }
    }

    /// Whether the body is protobuf (else JSON), from its `Content-Type`; a request without
    /// one is protobuf when `untyped_is_protobuf`, else refused. `protocol` names the API in
    /// the 415 of any other type.
    pub(super) fn is_protobuf(
        &self,
        protocol: &str,
        untyped_is_protobuf: bool,
    ) -> Result<bool, ApiError> {
        match media_type_essence(self.content_type.as_deref()).as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(true),
            "" if untyped_is_protobuf => Ok(true),
            "application/json" => Ok(false),
            other => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type '{other}' is not {protocol} (application/x-protobuf or application/json)"
                ),
            )),
        }
    }

    /// The tenant's body limit.
    pub(super) fn max_body_bytes(&self) -> u64 {
        self.gate.limits.max_body_bytes
    }

    /// Undoes `Content-Encoding` and runs `parse` on the body, off the async runtime.
    pub(super) async fn parse<T: Send + 'static>(
        &mut self,
        parse: impl FnOnce(&[u8]) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let raw = self.raw.take().unwrap_or_default();
        let encoding = self.encoding.clone();
        let limit = self.max_body_bytes();
        let (parsed, bytes) = tokio::task::spawn_blocking(move || {
            let body = decode(&raw, encoding.as_deref(), limit)?;
            parse(&body).map(|parsed| (parsed, body.len() as u64))
        })
        .await
        .map_err(ApiError::internal)??;
        self.bytes = bytes;
        Ok(parsed)
    }

    /// Stores each stream's records as one fsynced WAL record, counts them, and hands them to
    /// live tail. `failed` counts the items the parser rejected. Returns one receipt per
    /// non-empty stream, in order; the first stream that cannot be stored is the error.
    pub(super) async fn store(
        self,
        state: &Arc<AppState>,
        batches: Vec<(String, Vec<LogRecord>)>,
        failed: u64,
    ) -> Result<Vec<IngestReceipt>, ApiError> {
        self.store_each(state, batches, failed)
            .await?
            .into_iter()
            .collect()
    }

    /// Like [`store`](Self::store), with one result per non-empty stream: a request spanning
    /// several streams is one WAL record per stream, so some may be stored and others not.
    /// The outer error is a refusal of the whole request (rate limit) before anything is
    /// stored; after a stream fails, the ones after it are not attempted (same error).
    pub(super) async fn store_each(
        self,
        state: &Arc<AppState>,
        batches: Vec<(String, Vec<LogRecord>)>,
        failed: u64,
    ) -> Result<Vec<Result<IngestReceipt, ApiError>>, ApiError> {
        let label = TenantLabel {
            tenant: self.caller.tenant.clone(),
        };
        state
            .metrics
            .ingest_rejected_lines
            .get_or_create(&label)
            .inc_by(failed);
        let rows: u64 = batches
            .iter()
            .map(|(_, records)| records.len() as u64)
            .sum();
        if rows == 0 {
            let _ = self.gate.admit_ingest(failed, self.bytes);
            return Ok(Vec::new());
        }
        self.gate
            .admit_ingest(rows + failed, self.bytes)
            .map_err(|t| throttled(state, &self.caller, &self.gate, t))?;
        let mut results = Vec::with_capacity(batches.len());
        let mut stored_rows = 0;
        let mut failure: Option<(StatusCode, &'static str, String)> = None;
        for (stream, records) in batches {
            if records.is_empty() {
                continue;
            }
            if let Some((status, kind, reason)) = &failure {
                results.push(Err(ApiError::new(
                    *status,
                    kind,
                    format!("not attempted: {reason}"),
                )));
                continue;
            }
            let engine = self.engine.clone();
            let tenant = self.caller.tenant.clone();
            let shared = state.clone();
            let result = tokio::task::spawn_blocking(move || {
                shared.append_blocking(&engine, &tenant, stream, records)
            })
            .await
            .map_err(ApiError::internal)
            .and_then(|r| r.map_err(engine_error));
            match &result {
                Ok(receipt) => stored_rows += receipt.rows,
                Err(e) => failure = Some((e.status, e.kind, e.reason.clone())),
            }
            results.push(result);
        }
        state
            .metrics
            .ingest_lines
            .get_or_create(&label)
            .inc_by(stored_rows);
        state
            .metrics
            .ingest_bytes
            .get_or_create(&label)
            .inc_by(self.bytes);
        state
            .metrics
            .ingest_ack_seconds
            .observe(self.started.elapsed().as_secs_f64());
        Ok(results)
    }
}

fn throttled(
    state: &AppState,
    caller: &Caller,
    gate: &TenantGate,
    t: super::limits::Throttled,
) -> ApiError {
    state.metrics.limited(&caller.tenant, "ingest_rate");
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "tenant '{}' is over its ingest rate ({} lines/s, {} bytes/s)",
            caller.tenant, gate.limits.ingest_lines_per_second, gate.limits.ingest_bytes_per_second
        ),
    )
    .retry_after(t.retry_after_secs)
}

pub(super) fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::InvalidInput(reason) => ApiError::bad_request(reason),
        EngineError::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
        .retry_after(5),
        EngineError::Storage(s) if s.kind == silt_storage::ErrorKind::InvalidInput => {
            ApiError::bad_request(s.to_string())
        }
        other => {
            tracing::error!(error = %other, "ingest failed; nothing of this request was acknowledged");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_error",
                format!("not acknowledged: {other}"),
            )
        }
    }
}

pub(super) fn header_str(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<&str>, ApiError> {
    headers
        .get(&name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("header {name} is not ASCII")))
        })
        .transpose()
}

fn ingest_params(uri: &Uri) -> Result<IngestParams, ApiError> {
    Ok(axum::extract::Query::<IngestParams>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?
        .0)
}

pub(super) fn stream_name(uri: &Uri, headers: &HeaderMap) -> Result<String, ApiError> {
    stream_of(&ingest_params(uri)?, headers)
}

/// The stream: `X-Silt-Stream`, else `?stream=`, else the default.
fn stream_of(params: &IngestParams, headers: &HeaderMap) -> Result<String, ApiError> {
    let stream = match (
        header_str(headers, header::HeaderName::from_static("x-silt-stream"))?,
        &params.stream,
    ) {
        (Some(h), _) => h.to_string(),
        (None, Some(q)) => q.clone(),
        (None, None) => DEFAULT_STREAM.to_string(),
    };
    silt_storage::layout::validate_name("stream", &stream)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(stream)
}

/// Undoes `Content-Encoding`, refusing output over `limit` bytes (a decompression bomb is a
/// 413 like any other oversized body).
pub(super) fn decode(raw: &[u8], encoding: Option<&str>, limit: u64) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let result = match encoding.map(str::trim) {
        None | Some("") | Some("identity") => return Ok(raw.to_vec()),
        Some("gzip") | Some("x-gzip") => flate2::read::MultiGzDecoder::new(raw)
            .take(limit + 1)
            .read_to_end(&mut out),
        Some("zstd") => zstd::stream::read::Decoder::new(raw)
            .and_then(|d| d.take(limit + 1).read_to_end(&mut out)),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding '{other}' is not supported (gzip, zstd)"),
            ));
        }
    };
    result.map_err(|e| {
        ApiError::bad_request(format!(
            "cannot decompress the body ({}): {e}",
            encoding.unwrap_or_default()
        ))
    })?;
    if out.len() as u64 > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("decompressed body over {limit} bytes (limits.max_body_bytes); split it"),
        ));
    }
    Ok(out)
}

/// Parse options of a request: the zone of timestamps without one, from `X-Silt-Utc-Offset` or
/// `?utc_offset=`.
fn parse_options(params: &IngestParams, headers: &HeaderMap) -> Result<ParseOptions, ApiError> {
    let header = header_str(
        headers,
        header::HeaderName::from_static("x-silt-utc-offset"),
    )?;
    let mut opts = ParseOptions::default();
    if let Some(text) = header.or(params.utc_offset.as_deref()) {
        opts.default_offset_secs = silt_engine::parse::parse_utc_offset(text)
            .map_err(|e| ApiError::bad_request(format!("utc offset: {e}")))?;
    }
    Ok(opts)
}

/// Parses the decompressed body by its media type.
fn parse(
    body: &[u8],
    content_type: Option<&str>,
    opts: &ParseOptions,
) -> Result<ParsedBody, ApiError> {
    let Some(kind) = BodyKind::from_media_type(content_type) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type '{}' is not supported (application/json, application/x-ndjson, text/plain)",
                content_type.unwrap_or_default()
            ),
        ));
    };
    parse_body(body, kind, opts).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()).at(e.offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_bodies_decode_and_bombs_are_refused() {
        let text = b"hello world\n".repeat(1000);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &text).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(decode(&gz, Some("gzip"), 1 << 20).unwrap(), text);
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(decode(&zs, Some("zstd"), 1 << 20).unwrap(), text);
        assert_eq!(
            decode(&zs, Some("zstd"), 100).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            decode(b"garbage", Some("gzip"), 100).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode(b"x", Some("br"), 100).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
