//! OpenTelemetry logs over OTLP/HTTP: `POST /v1/logs` in protobuf or JSON (gzip too), answered
//! like a collector: an `ExportLogsServiceResponse`, with partial success when records were
//! rejected.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use silt_engine::parse::ParseOptions;
use silt_engine::parse::otlp::{
    OtlpError, encode_response_protobuf, parse_otlp_json, parse_otlp_protobuf, response_json,
};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::ingest::{IngestParams, IngestRequest, stream_name};

/// OTLP/HTTP logs export. Resource `service.name`/`host.name` become `service`/`host`,
/// severity the level, the body the message, trace/span ids lowercase hex; resource, scope and
/// record attributes are kept as `resource.*`, `scope.*` and `log.*`.
#[utoipa::path(post, path = "/v1/logs", tag = "protocols",
    params(IngestParams),
    request_body(content(
        (Vec<u8> = "application/x-protobuf"),
        (Object = "application/json"),
    ), description = "ExportLogsServiceRequest; `Content-Encoding: gzip|zstd` accepted"),
    responses(
        (status = 200, description = "Stored (ExportLogsServiceResponse, partial_success when records were rejected)"),
        (status = 400, description = "Undecodable request", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Neither protobuf nor JSON", body = ErrorBody),
        (status = 429, description = "Tenant over its ingest rate; see Retry-After", body = ErrorBody),
        (status = 503, description = "Overloaded or starting; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn export_logs(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let stream = stream_name(&uri, &headers)?;
    let mut request = IngestRequest::admit(&state, &headers, body).await?;
    let protobuf = request.is_protobuf("OTLP/HTTP", false)?;
    let parsed = request
        .parse(move |body| {
            let opts = ParseOptions::default();
            let parsed = if protobuf {
                parse_otlp_protobuf(body, &opts)
            } else {
                parse_otlp_json(body, &opts)
            };
            parsed.map_err(request_error)
        })
        .await?;
    let failed = parsed.failed;
    let message = match parsed.rejections.first() {
        Some(first) if failed > 0 => {
            format!(
                "{failed} log records rejected; first, #{}: {}",
                first.index, first.reason
            )
        }
        _ => String::new(),
    };
    request
        .store(&state, vec![(stream, parsed.records)], failed)
        .await?;
    Ok(if protobuf {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            encode_response_protobuf(failed, &message),
        )
            .into_response()
    } else {
        axum::Json(response_json(failed, &message)).into_response()
    })
}

/// A request that cannot be stored at all: 413 when it would expand past the limits (shared
/// attributes copied into every record), 400 when it does not decode.
fn request_error(e: OtlpError) -> ApiError {
    match e {
        OtlpError::ExpandsTooMuch { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_otlp", e.to_string()),
    }
}
