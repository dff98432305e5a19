//! The read endpoints: search, aggregate and SQL. Each query runs on the query runtime under
//! its tenant's limits (concurrency, timeout, rows); SQL results stream as JSON, CSV or Arrow.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use silt_query::{AggregateRequest, Metric, SearchRequest, SortOrder, TimeRange};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody, check_announced_length, parse_json, read_limited};
use super::{AppState, Caller};
use crate::keys::Role;
use crate::render;
use crate::timespec::{parse_duration, parse_time};

/// Largest body of a search, aggregate or SQL request.
pub const MAX_QUERY_BODY_BYTES: usize = 1 << 20;

/// Reads a query's JSON body, refusing more than [`MAX_QUERY_BODY_BYTES`] with 413.
async fn read_query_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("query bodies are limited to {MAX_QUERY_BODY_BYTES} bytes"),
        )
    };
    let limit = MAX_QUERY_BODY_BYTES as u64;
    check_announced_length(headers, limit, too_large)?;
    read_limited(body, limit, too_large).await
}

/// A time range: `{"from", "to"}` (RFC 3339, a date, or epoch s/ms/µs/ns; `to` exclusive) or
/// `{"last": "1h"}`. Absent means all time.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeBody {
    #[schema(value_type = Option<String>, example = "2026-11-22T10:00:00Z")]
    from: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    to: Option<serde_json::Value>,
    #[schema(example = "1h")]
    last: Option<String>,
}

impl TimeRangeBody {
    fn resolve(&self) -> Result<TimeRange, ApiError> {
        let point = |v: &serde_json::Value, name: &str| -> Result<i64, ApiError> {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "time_range.{name} must be a string or a number"
                    )));
                }
            };
            parse_time(&text)
                .map_err(|e| ApiError::bad_request(format!("time_range.{name}: {e:#}")))
        };
        if let Some(last) = &self.last {
            if self.from.is_some() || self.to.is_some() {
                return Err(ApiError::bad_request(
                    "time_range: give either `last` or `from`/`to`",
                ));
            }
            let span = parse_duration(last)
                .map_err(|e| ApiError::bad_request(format!("time_range.last: {e:#}")))?;
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            return Ok(TimeRange::from_bounds(Some(now.saturating_sub(span)), None));
        }
        let from = self.from.as_ref().map(|v| point(v, "from")).transpose()?;
        let to = self.to.as_ref().map(|v| point(v, "to")).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(ApiError::bad_request(
                "time_range.from must be before time_range.to",
            ));
        }
        Ok(TimeRange::from_bounds(from, to))
    }
}

fn resolve_range(range: &Option<TimeRangeBody>) -> Result<TimeRange, ApiError> {
    range
        .as_ref()
        .map_or(Ok(TimeRange::ALL), TimeRangeBody::resolve)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// Search language (docs/search.md); empty or `*` matches everything.
    #[serde(default)]
    #[schema(example = "level:ERROR service:payment timeout")]
    query: String,
    time_range: Option<TimeRangeBody>,
    /// Hits per page (default 100, at most `limits.max_search_limit`, 10,000 by default).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `desc` (newest first, the default; also `timestamp:desc`) or `asc` (oldest first).
    sort: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Search language query.
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// e.g. `15m`, `1h`, `7d`.
    last: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    sort: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Matching rows, newest first: `timestamp` (RFC 3339), `level`, `service`, `host`,
    /// `trace_id`, `span_id`, `message`, `attributes`, `stream`, `_seq`.
    #[schema(value_type = Vec<Object>)]
    hits: Vec<serde_json::Value>,
    /// Matches in the whole time range (a lower bound when `total_exact` is false).
    total: u64,
    total_exact: bool,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
    stats: SearchStatsBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchStatsBody {
    /// Segments read, of `segments_total`.
    segments: usize,
    segments_total: usize,
    blocks_read: u64,
    rows_scanned: u64,
    bytes_read: u64,
    took_ms: f64,
}

/// Search logs (newest first, with an exact total and a cursor).
#[utoipa::path(post, path = "/v1/logs/search", tag = "logs", request_body = SearchBody,
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, description = "Bad query (with `position`), time range or cursor", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "Too many concurrent queries of this tenant", body = ErrorBody),
        (status = 504, description = "Query timeout", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn search_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SearchResponse>, ApiError> {
    let caller = state.authorize(&headers, Role::Read)?;
    let body: SearchBody = parse_json(&read_query_body(&headers, body).await?)?;
    let time = resolve_range(&body.time_range)?;
    search(
        &state,
        &caller,
        body.query,
        time,
        body.limit,
        body.cursor,
        body.sort,
    )
    .await
}

/// Search logs with query parameters (`q`, `from`, `to`, `last`, `limit`, `cursor`).
#[utoipa::path(get, path = "/v1/logs/search", tag = "logs", params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn search_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<SearchResponse>, ApiError> {
    let caller = state.authorize(&headers, Role::Read)?;
    let params = axum::extract::Query::<SearchParams>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?
        .0;
    let range = TimeRangeBody {
        from: params.from.map(serde_json::Value::String),
        to: params.to.map(serde_json::Value::String),
        last: params.last,
    };
    let time = range.resolve()?;
    search(
        &state,
        &caller,
        params.q.unwrap_or_default(),
        time,
        params.limit,
        params.cursor,
        params.sort,
    )
    .await
}

async fn search(
    state: &AppState,
    caller: &Caller,
    query: String,
    time: TimeRange,
    limit: Option<usize>,
    cursor: Option<String>,
    sort: Option<String>,
) -> Result<Json<SearchResponse>, ApiError> {
    let order = match sort.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("desc") | Some("timestamp:desc") | Some("-timestamp") => SortOrder::NewestFirst,
        Some("asc") | Some("timestamp:asc") | Some("timestamp") | Some("+timestamp") => {
            SortOrder::OldestFirst
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort '{other}' is not supported: `desc` (newest first, the default) or `asc`"
            )));
        }
    };
    let gate = state.gates.tenant(&caller.tenant);
    let max = gate.limits.max_search_limit;
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {max}"
        )));
    }
    let engine = state.engine()?.clone();
    let tenant = caller.tenant.clone();
    let mut request = SearchRequest::new(query);
    request.time = time;
    request.limit = limit;
    request.cursor = cursor;
    request.order = order;
    let started = Instant::now();
    let result = run_query(state, caller, "search", async move {
        engine
            .search(&tenant, &request)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    let hits = (0..result.hits.num_rows())
        .map(|r| serde_json::Value::Object(render::row_object(&result.hits, r, true)))
        .collect();
    Ok(Json(SearchResponse {
        hits,
        total: result.total,
        total_exact: result.total_exact,
        next_cursor: result.next_cursor,
        stats: SearchStatsBody {
            segments: result.stats.segments_scanned,
            segments_total: result.stats.segments_total,
            blocks_read: result.stats.blocks_scanned,
            rows_scanned: result.stats.rows_scanned,
            bytes_read: result.stats.bytes_read,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateBody {
    /// Which rows count (search language); empty = all.
    #[serde(default)]
    query: String,
    time_range: Option<TimeRangeBody>,
    /// `level`, `service`, `host`, `stream`, `attributes.<key>` …
    group_by: Option<String>,
    /// Time bucket width, e.g. `1m`, `1h`.
    #[schema(example = "1m")]
    interval: Option<String>,
    /// `count` (default), `avg:<attribute>`, `p50:<attribute>`, `p90:…`, `p95:…`, `p99:…`.
    metric: Option<String>,
    /// Keep only the `top` groups with the most rows.
    top: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateResponse {
    /// One per (time bucket, group): `time` (RFC 3339, with `interval`), `group` (with
    /// `group_by`; null for rows without the field), `count`, `value` (metrics other than count).
    #[schema(value_type = Vec<Object>)]
    buckets: Vec<serde_json::Value>,
    took_ms: f64,
}

/// Counts or metrics per time bucket and/or group.
#[utoipa::path(post, path = "/v1/logs/aggregate", tag = "logs", request_body = AggregateBody,
    responses((status = 200, body = AggregateResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn aggregate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AggregateResponse>, ApiError> {
    let caller = state.authorize(&headers, Role::Read)?;
    let body: AggregateBody = parse_json(&read_query_body(&headers, body).await?)?;
    let interval_ns = body
        .interval
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("interval: {e:#}")))?;
    if interval_ns.is_some_and(|i| i <= 0) {
        return Err(ApiError::bad_request("interval must be positive"));
    }
    let request = AggregateRequest {
        query: body.query,
        time: resolve_range(&body.time_range)?,
        group_by: body.group_by.clone(),
        interval_ns,
        metric: Metric::parse(body.metric.as_deref().unwrap_or("count"))?,
        top: body.top,
    };
    let engine = state.engine()?.clone();
    let tenant = caller.tenant.clone();
    let started = Instant::now();
    let buckets = run_query(&state, &caller, "aggregate", async move {
        engine
            .aggregate(&tenant, &request)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    let buckets = buckets
        .into_iter()
        .map(|b| {
            let mut out = serde_json::Map::new();
            if let Some(t) = b.time {
                out.insert("time".into(), crate::cli::format::timestamp(t).into());
            }
            if body.group_by.is_some() {
                out.insert(
                    "group".into(),
                    b.group.map_or(serde_json::Value::Null, Into::into),
                );
            }
            out.insert("count".into(), b.count.into());
            if let Some(v) = b.value {
                out.insert(
                    "value".into(),
                    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
                );
            }
            serde_json::Value::Object(out)
        })
        .collect();
    Ok(Json(AggregateResponse {
        buckets,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    /// One SQL statement over the table `logs`.
    #[schema(example = "SELECT level, count(*) FROM logs GROUP BY level")]
    query: String,
}

/// The JSON answer of `/v1/sql` (CSV and Arrow IPC on request).
#[derive(Debug, Serialize, ToSchema)]
pub struct SqlResponse {
    /// `{"name", "type"}` per column.
    #[schema(value_type = Vec<Object>)]
    columns: Vec<serde_json::Value>,
    /// Rows as arrays in column order; numbers as numbers, timestamps as RFC 3339.
    #[schema(value_type = Vec<Vec<Object>>)]
    rows: Vec<serde_json::Value>,
    /// True when the result was cut at `limits.max_result_rows`.
    truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlFormat {
    Json,
    Csv,
    Arrow,
}

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

fn sql_format(headers: &HeaderMap) -> Result<SqlFormat, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(SqlFormat::Json);
    };
    for choice in accept.split(',') {
        match choice.split(';').next().unwrap_or("").trim() {
            "application/json" | "*/*" | "application/*" | "" => return Ok(SqlFormat::Json),
            "text/csv" | "text/*" => return Ok(SqlFormat::Csv),
            ARROW_STREAM => return Ok(SqlFormat::Arrow),
            _ => {}
        }
    }
    Err(ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        format!("cannot answer in '{accept}' (application/json, text/csv, {ARROW_STREAM})"),
    ))
}

/// Run one SQL statement over the tenant's `logs` table; the result streams.
#[utoipa::path(post, path = "/v1/sql", tag = "sql", request_body = SqlBody,
    responses(
        (status = 200, description = "JSON (default), CSV (`Accept: text/csv`) or Arrow IPC stream (`Accept: application/vnd.apache.arrow.stream`)",
            content((SqlResponse = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.apache.arrow.stream"))),
        (status = 400, description = "SQL that does not plan or run", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 406, body = ErrorBody), (status = 429, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn sql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = state.authorize(&headers, Role::Read)?;
    let format = sql_format(&headers)?;
    let body: SqlBody = parse_json(&read_query_body(&headers, body).await?)?;
    let engine = state.engine()?.clone();
    let max_rows = state.gates.tenant(&caller.tenant).limits.max_result_rows;
    let (permit, timeout) = admit_query(&state, &caller)?;
    let tenant = caller.tenant.clone();
    let started = Instant::now();
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let metrics_state = Arc::clone(&state);
    // Plans and executes on the query runtime; reports planning (or the first batch's) error
    // first, then sends the encoded chunks. The time limit counts the query's own work, not
    // the time a slow client takes to read. A client that goes away closes the channel (or,
    // before the first chunk, drops the guard below), which stops the query.
    let task = state.queries.spawn(async move {
        let _permit = permit;
        let mut budget = timeout;
        let timed = |started: Instant, budget: &mut std::time::Duration| {
            *budget = budget.saturating_sub(started.elapsed());
        };
        let t0 = Instant::now();
        let planned = tokio::time::timeout(budget, async {
            let ctx = engine.query_session(&tenant)?;
            let frame = silt_query::plan_sql(&ctx, &body.query).await?;
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let mut stream = frame.execute_stream().await?;
            let first = stream.next().await.transpose()?;
            Ok::<_, silt_query::QueryError>((schema, first, stream))
        })
        .await;
        timed(t0, &mut budget);
        let (schema, first, mut stream) = match planned {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                let _ = head_tx.send(Err(ApiError::from(e)));
                return;
            }
            Err(_) => {
                let _ = head_tx.send(Err(timed_out(timeout)));
                return;
            }
        };
        if head_tx.send(Ok(())).is_err() {
            return;
        }
        let mut encoder = SqlEncoder::new(format, schema, max_rows);
        let mut next = first;
        loop {
            let Some(batch) = next else {
                let _ = chunk_tx.send(encoder.finish(None)).await;
                break;
            };
            let chunk = match encoder.batch(&batch) {
                Ok(c) => c,
                Err(e) => {
                    let _ = chunk_tx.send(Err(e)).await;
                    break;
                }
            };
            if !chunk.is_empty() && chunk_tx.send(Ok(chunk)).await.is_err() {
                break;
            }
            if encoder.truncated {
                let _ = chunk_tx.send(encoder.finish(None)).await;
                break;
            }
            let t0 = Instant::now();
            let polled = tokio::time::timeout(budget, stream.next()).await;
            timed(t0, &mut budget);
            next = match polled {
                Ok(Some(Ok(batch))) => Some(batch),
                Ok(None) => None,
                Ok(Some(Err(e))) => {
                    let error = ApiError::from(silt_query::QueryError::from(e));
                    let _ = chunk_tx.send(encoder.finish(Some(error))).await;
                    break;
                }
                Err(_) => {
                    tracing::warn!("sql query timed out after {timeout:?} of work");
                    let _ = chunk_tx
                        .send(encoder.finish(Some(timed_out(timeout))))
                        .await;
                    break;
                }
            };
        }
        metrics_state
            .metrics
            .observe_query("sql", started.elapsed().as_secs_f64());
    });
    let abort = AbortOnDrop(Some(task.abort_handle()));
    match head_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        // The task ended without a word: it panicked.
        Err(_) => return Err(ApiError::internal("the query task failed")),
    }
    // From here the body's channel stops the query when the client goes away.
    abort.disarm();
    let body = Body::from_stream(futures::stream::unfold(chunk_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let content_type = match format {
        SqlFormat::Json => "application/json",
        SqlFormat::Csv => "text/csv; charset=utf-8",
        SqlFormat::Arrow => ARROW_STREAM,
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::HeaderName::from_static("x-silt-max-rows"),
                max_rows.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

/// Turns batches into the bytes of one answer format, counting rows against the cap.
struct SqlEncoder {
    format: SqlFormat,
    schema: SchemaRef,
    max_rows: u64,
    rows: u64,
    truncated: bool,
    started: bool,
    arrow: Option<datafusion::arrow::ipc::writer::StreamWriter<Vec<u8>>>,
}

impl SqlEncoder {
    fn new(format: SqlFormat, schema: SchemaRef, max_rows: u64) -> Self {
        Self {
            format,
            schema,
            max_rows,
            rows: 0,
            truncated: false,
            started: false,
            arrow: None,
        }
    }

    fn head(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        match self.format {
            SqlFormat::Json => {
                out.extend_from_slice(b"{\"columns\":");
                serde_json::to_writer(&mut *out, &render::columns_json(&self.schema))?;
                out.extend_from_slice(b",\"rows\":[");
            }
            SqlFormat::Csv => render::write_csv_header(out, &self.schema)?,
            SqlFormat::Arrow => {
                self.arrow = Some(
                    datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &self.schema)
                        .map_err(std::io::Error::other)?,
                );
            }
        }
        Ok(())
    }

    fn batch(&mut self, batch: &RecordBatch) -> std::io::Result<Bytes> {
        let mut out = Vec::new();
        self.head(&mut out)?;
        let room = self.max_rows.saturating_sub(self.rows);
        let batch = if (batch.num_rows() as u64) > room {
            self.truncated = true;
            batch.slice(0, room as usize)
        } else {
            batch.clone()
        };
        match self.format {
            SqlFormat::Json => {
                for row in 0..batch.num_rows() {
                    if self.rows + row as u64 > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &render::row_array(&batch, row))?;
                }
            }
            SqlFormat::Csv => render::write_csv_rows(&mut out, &batch)?,
            SqlFormat::Arrow => {
                let writer = self.arrow.as_mut().expect("arrow writer");
                writer.write(&batch).map_err(std::io::Error::other)?;
                out.append(writer.get_mut());
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(Bytes::from(out))
    }

    /// The end of the answer. JSON says whether it was cut (or what failed mid-way); CSV and
    /// Arrow cannot, so a cut or failed result ends the transfer with an error instead of
    /// looking complete.
    fn finish(&mut self, error: Option<ApiError>) -> Result<Bytes, std::io::Error> {
        let mut out = Vec::new();
        self.head(&mut out)?;
        match self.format {
            SqlFormat::Json => {
                out.extend_from_slice(b"]");
                out.extend_from_slice(format!(",\"truncated\":{}", self.truncated).as_bytes());
                if let Some(e) = error {
                    out.extend_from_slice(b",");
                    let body = serde_json::to_string(&e.body())?;
                    out.extend_from_slice(&body.as_bytes()[1..body.len() - 1]);
                }
                out.extend_from_slice(b"}\n");
            }
            SqlFormat::Csv | SqlFormat::Arrow => {
                if let Some(e) = error {
                    return Err(std::io::Error::other(e.reason));
                }
                if self.truncated {
                    return Err(std::io::Error::other(format!(
                        "result over {} rows (limits.max_result_rows)",
                        self.max_rows
                    )));
                }
                if let Some(mut writer) = self.arrow.take() {
                    writer.finish().map_err(std::io::Error::other)?;
                    out.append(writer.get_mut());
                }
            }
        }
        Ok(Bytes::from(out))
    }
}

/// A query slot of the caller's tenant and its time limit; 429 when every slot is taken.
fn admit_query(
    state: &AppState,
    caller: &Caller,
) -> Result<(tokio::sync::OwnedSemaphorePermit, std::time::Duration), ApiError> {
    let gate = state.gates.tenant(&caller.tenant);
    let Some(permit) = gate.try_query() else {
        state.metrics.limited(&caller.tenant, "concurrent_queries");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_queries",
            format!(
                "tenant '{}' already runs {} queries (limits.max_concurrent_queries)",
                caller.tenant, gate.limits.max_concurrent_queries
            ),
        )
        .retry_after(1));
    };
    Ok((permit, gate.limits.query_timeout()))
}

fn timed_out(timeout: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!(
            "query cancelled after {:.1} s (limits.query_timeout_seconds)",
            timeout.as_secs_f64()
        ),
    )
}

/// Aborts the query task when the request that waits for it goes away.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl AbortOnDrop {
    /// The task outlives the request from here on (it stops by itself).
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// Runs `query` on the query runtime within the tenant's concurrency and time limits.
async fn run_query<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    endpoint: &'static str,
    query: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    let (permit, timeout) = admit_query(state, caller)?;
    let started = Instant::now();
    let task = state.queries.spawn(async move {
        let _permit = permit;
        tokio::time::timeout(timeout, query).await
    });
    let _abort = AbortOnDrop(Some(task.abort_handle()));
    let result = task.await.map_err(ApiError::internal)?;
    state
        .metrics
        .observe_query(endpoint, started.elapsed().as_secs_f64());
    result.map_err(|_| timed_out(timeout))?
}
