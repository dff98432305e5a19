//! The one error shape of the HTTP API: a status and `{"error": {"type", "reason",
//! "position"?}}`, with `Retry-After` for 429/503. Bad input is never a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use silt_query::QueryError;
use utoipa::ToSchema;

/// A failed request, as the caller sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub reason: String,
    /// 1-based column (search text) or byte offset (JSON body) the problem is at.
    pub position: Option<u64>,
    pub retry_after_secs: Option<u64>,
}

/// `{"error": …}` as sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable kind, e.g. `search_syntax_error`, `rate_limited`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong, for people.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            reason: reason.into(),
            position: None,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", reason)
    }

    pub fn internal(reason: impl std::fmt::Display) -> Self {
        tracing::error!(error = %reason, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            reason.to_string(),
        )
    }

    pub fn not_ready() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the server is starting: loading the catalog and replaying the WAL",
        )
        .retry_after(1)
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn at(mut self, position: Option<u64>) -> Self {
        self.position = position;
        self
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_string(),
                reason: self.reason.clone(),
                position: self.position,
            },
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        if !e.is_user_error() {
            return ApiError::internal(e);
        }
        match e {
            QueryError::Search(s) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "search_syntax_error",
                s.to_string(),
            )
            .at(Some(s.column as u64)),
            QueryError::InvalidCursor(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", e.to_string())
            }
            QueryError::DataFusion(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "sql_error", e.to_string())
            }
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"silt\""),
            );
        }
        response
    }
}

/// Reads a JSON request body, pointing at the offending byte when it does not parse.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let offset = silt_engine::parse::body::line_column_offset(body, e.line(), e.column());
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid JSON body: {e}"),
        )
        .at(offset)
    })
}

/// The body's announced `Content-Length`, refused with `too_large` when over `limit` before a
/// byte of the body is read.
pub fn check_announced_length(
    headers: &axum::http::HeaderMap,
    limit: u64,
    too_large: impl Fn() -> ApiError,
) -> Result<Option<u64>, ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit => Err(too_large()),
        _ => Ok(announced),
    }
}

/// Reads a whole body of at most `limit` bytes; more is `too_large`.
pub async fn read_limited(
    body: axum::body::Body,
    limit: u64,
    too_large: impl Fn() -> ApiError,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|e| {
            // axum wraps http-body-util's LengthLimitError, whose text is all it exposes.
            if format!("{e:?}").contains("LengthLimitError")
                || e.to_string().contains("length limit")
            {
                too_large()
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })
}
