//! Live tail: every acknowledged ingest fanned out to WebSocket subscribers (`GET
//! /v1/logs/tail?q=…`), each filtering with its own query off the ingest path.
//!
//! The ingest path only hands the acknowledged records to a broadcast channel (nothing at all
//! when no one listens). Each subscriber's task builds the Arrow batch once (shared by all),
//! filters it with its compiled query and queues the rows for its socket. A subscriber that
//! cannot keep up loses rows, never slows ingest: it is told `{"dropped": n}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use datafusion::arrow::array::RecordBatch;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use silt_engine::IngestReceipt;
use silt_query::{BatchTerms, MemBatch, RowFilter};
use silt_storage::record::LogRecord;
use silt_storage::schema::batch_from_records;
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::keys::Role;
use crate::render;

/// Acknowledged ingests held for subscribers that are behind; older ones are dropped.
const BROADCAST_BATCHES: usize = 4096;
/// Messages queued for one subscriber's socket before its rows are dropped.
const SOCKET_QUEUE_MESSAGES: usize = 4096;
/// Live tails one server serves at once; more get 503.
const MAX_SUBSCRIBERS: usize = 1000;

/// One acknowledged ingest request (one stream of one tenant), as subscribers see it.
#[derive(Debug)]
pub struct TailBatch {
    pub tenant: String,
    stream: Arc<str>,
    records: Vec<LogRecord>,
    first_seq: u64,
    observed_ns: i64,
    /// The tenant's rows published before this batch: a subscriber that finds a gap knows how
    /// many of its tenant's rows it missed.
    rows_before: u64,
    /// The rows in the table schema (`stream` included), shared by every subscriber.
    batch: OnceLock<RecordBatch>,
    terms: OnceLock<BatchTerms>,
    /// When the rows were acknowledged (and published).
    acked: std::time::Instant,
}

impl TailBatch {
    /// The rows as an Arrow batch, built by the first subscriber that needs it.
    fn rows(&self) -> &RecordBatch {
        self.batch.get_or_init(|| {
            MemBatch {
                stream: self.stream.clone(),
                batch: batch_from_records(&self.records, self.first_seq, self.observed_ns),
            }
            .with_stream()
        })
    }

    /// The batch's index terms, collected by the first subscriber that needs them: most
    /// subscribers' filters rule most batches out on these alone.
    fn terms(&self) -> &BatchTerms {
        self.terms
            .get_or_init(|| BatchTerms::from_records(&self.records))
    }
}

/// The fan-out point between ingest and subscribers.
#[derive(Debug)]
pub struct TailHub {
    sender: broadcast::Sender<Arc<TailBatch>>,
    /// Rows published per tenant; taken with the send so gaps are exact.
    published: Mutex<HashMap<String, u64>>,
}

impl Default for TailHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BROADCAST_BATCHES).0,
            published: Mutex::new(HashMap::new()),
        }
    }
}

impl TailHub {
    /// Hands acknowledged rows to the subscribers; costs a map lookup when someone listens and
    /// nothing when no one does.
    pub fn publish(
        &self,
        tenant: &str,
        stream: String,
        records: Vec<LogRecord>,
        receipt: &IngestReceipt,
    ) {
        if self.sender.receiver_count() == 0 || records.is_empty() {
            return;
        }
        let mut published = self.published.lock().expect("tail lock");
        let counter = published.entry(tenant.to_owned()).or_default();
        let rows_before = *counter;
        *counter += records.len() as u64;
        let _ = self.sender.send(Arc::new(TailBatch {
            tenant: tenant.to_owned(),
            stream: Arc::from(stream),
            records,
            first_seq: receipt.first_seq,
            observed_ns: receipt.observed_ns,
            rows_before,
            batch: OnceLock::new(),
            terms: OnceLock::new(),
            acked: std::time::Instant::now(),
        }));
    }

    /// A new subscription to everything published from now on, with the count of `tenant`'s
    /// rows published before it (taken together, so a lag before the first batch is seen).
    pub fn subscribe(&self, tenant: &str) -> (broadcast::Receiver<Arc<TailBatch>>, u64) {
        let published = self.published.lock().expect("tail lock");
        let receiver = self.sender.subscribe();
        (receiver, published.get(tenant).copied().unwrap_or(0))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TailParams {
    /// Search-language query; rows that match are sent. Empty or absent: every row.
    q: Option<String>,
}

/// Live tail over WebSocket. Each matching row acknowledged after the subscription is sent
/// as one JSON text message (the shape of a search hit). When the client falls behind, rows
/// are dropped and `{"dropped": n}` says how many.
#[utoipa::path(get, path = "/v1/logs/tail", tag = "logs",
    params(TailParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Bad query, or not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn tail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<TailParams>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    state.engine()?;
    let caller = state.authorize(&headers, Role::Read)?;
    let filter = RowFilter::new(params.q.as_deref().unwrap_or(""))?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::bad_request(format!(
            "live tail is a WebSocket endpoint ({e}); connect with a WebSocket client, e.g. `silt tail`"
        ))
    })?;
    if state.tail.sender.receiver_count() >= MAX_SUBSCRIBERS {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("this server already serves {MAX_SUBSCRIBERS} live tails"),
        )
        .retry_after(5));
    }
    let (receiver, published_before) = state.tail.subscribe(&caller.tenant);
    let queries = state.queries.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        // Filtering runs on the query runtime: many subscribers never compete with acks.
        state.metrics.tail_subscribers.inc();
        let _ = queries
            .spawn(subscriber(
                socket,
                (receiver, published_before),
                caller.tenant,
                filter,
                state.clone(),
            ))
            .await;
        state.metrics.tail_subscribers.dec();
    }))
}

/// One subscriber: filters what is published and feeds its socket until either side closes.
async fn subscriber(
    socket: WebSocket,
    (mut published, published_before): (broadcast::Receiver<Arc<TailBatch>>, u64),
    tenant: String,
    filter: RowFilter,
    state: Arc<AppState>,
) {
    let (mut sink, mut incoming) = socket.split();
    let (queue, mut queued) = mpsc::channel::<Message>(SOCKET_QUEUE_MESSAGES);
    let writer = tokio::spawn(async move {
        while let Some(message) = queued.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut outbox = Outbox {
        queue,
        dropped: 0,
        closed: false,
        state,
    };
    let mut expected_rows_before = published_before;
    // Sends a pending dropped notice even when nothing more is published.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !outbox.closed {
        tokio::select! {
            _ = tick.tick() => {}
            received = published.recv() => match received {
                Ok(batch) => {
                    if batch.tenant != tenant {
                        continue;
                    }
                    if batch.rows_before > expected_rows_before {
                        outbox.drop_rows(batch.rows_before - expected_rows_before);
                    }
                    expected_rows_before = batch.rows_before + batch.records.len() as u64;
                    if filter.uses_terms() && !filter.may_match(batch.terms()) {
                        continue;
                    }
                    match filter.matching(batch.rows()) {
                        Ok(Some(rows)) => {
                            for row in 0..rows.num_rows() {
                                let object = render::row_object(&rows, row, true);
                                let text = serde_json::Value::Object(object).to_string();
                                outbox.push(Message::Text(Utf8Bytes::from(text)));
                            }
                            outbox
                                .state
                                .metrics
                                .tail_delivery_seconds
                                .observe(batch.acked.elapsed().as_secs_f64());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "live tail filter failed");
                            outbox.push(error_message(&format!("filter failed: {e}")));
                            break;
                        }
                    }
                }
                // Behind by more than the broadcast holds: the next batch's `rows_before`
                // tells how many rows of this tenant were missed.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            message = incoming.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
        outbox.flush_dropped();
    }
    drop(outbox);
    let _ = writer.await;
}

/// The socket's queue and the rows that did not fit in it.
struct Outbox {
    queue: mpsc::Sender<Message>,
    dropped: u64,
    closed: bool,
    state: Arc<AppState>,
}

impl Outbox {
    fn push(&mut self, message: Message) {
        self.flush_dropped();
        if self.dropped > 0 {
            self.drop_rows(1);
            return;
        }
        match self.queue.try_send(message) {
            Ok(()) => {
                self.state.metrics.tail_rows_sent.inc();
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.drop_rows(1),
            Err(mpsc::error::TrySendError::Closed(_)) => self.closed = true,
        }
    }

    fn drop_rows(&mut self, rows: u64) {
        self.dropped += rows;
        self.state.metrics.tail_rows_dropped.inc_by(rows);
    }

    /// Queues the `{"dropped": n}` notice once there is room for it.
    fn flush_dropped(&mut self) {
        if self.dropped == 0 {
            return;
        }
        let notice = serde_json::json!({ "dropped": self.dropped }).to_string();
        match self.queue.try_send(Message::Text(Utf8Bytes::from(notice))) {
            Ok(()) => self.dropped = 0,
            Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => self.closed = true,
        }
    }
}

fn error_message(reason: &str) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::json!({ "error": { "type": "tail_error", "reason": reason } }).to_string(),
    ))
}
