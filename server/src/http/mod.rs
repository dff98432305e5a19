//! The HTTP API (axum): shared state, the route table (which is also the OpenAPI document),
//! health and metrics endpoints, and running the server until SIGTERM.

mod auth;
mod elastic;
pub mod error;
mod ingest;
pub mod limits;
mod loki;
pub mod metrics;
mod otlp;
mod query;
pub mod tail;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use silt_engine::Engine;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::keys::Role;
pub use auth::{Caller, KeyRing};
use error::{ApiError, ErrorBody};
use limits::Gates;
use metrics::Metrics;

/// What every handler shares.
pub struct AppState {
    pub keys: KeyRing,
    pub gates: Gates,
    /// Ingest body bytes being read and parsed, server-wide.
    pub ingest_budget: limits::ByteBudget,
    pub metrics: Metrics,
    /// Where DataFusion runs, apart from the runtime that accepts requests and acks ingests.
    pub queries: tokio::runtime::Handle,
    /// Live tail subscribers of acknowledged rows.
    pub tail: tail::TailHub,
}

impl AppState {
    pub fn new(config: Config, keys: KeyRing, queries: tokio::runtime::Handle) -> Self {
        Self {
            ingest_budget: limits::ByteBudget::new(config.ingest_inflight_bytes),
            gates: Gates::new(config),
            keys,
            metrics: Metrics::new(),
            queries,
            tail: tail::TailHub::default(),
        }
    }

    /// The engine, once the catalog is loaded and the WAL replayed.
    pub fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        self.metrics
            .engine
            .engine
            .get()
            .ok_or_else(ApiError::not_ready)
    }

    /// Hands over the opened engine: from now on `/health` is 200.
    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.metrics.engine.engine.set(engine);
    }

    /// The engine if it has been opened (shutdown flushes it; nothing to do otherwise).
    pub fn opened_engine(&self) -> Option<Arc<Engine>> {
        self.metrics.engine.engine.get().cloned()
    }

    /// Stores one stream's records for `tenant` as one fsynced WAL record, then hands them to
    /// live tail. Blocks until durable: call it off the async runtime.
    pub fn append_blocking(
        &self,
        engine: &Engine,
        tenant: &str,
        stream: String,
        records: Vec<silt_storage::record::LogRecord>,
    ) -> Result<silt_engine::IngestReceipt, silt_engine::EngineError> {
        let receipt = engine.ingest(tenant, &stream, &records)?;
        self.tail.publish(tenant, stream, records, &receipt);
        Ok(receipt)
    }

    fn authorize(&self, headers: &axum::http::HeaderMap, role: Role) -> Result<Caller, ApiError> {
        self.keys.authorize(headers, role)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Silt",
        description = "Log database: ingest, search, aggregate and SQL over logs kept in Parquet."
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecurityAddon)
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The route table and the OpenAPI document built from the same handlers.
pub fn router(state: Arc<AppState>) -> axum::Router {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics_text))
        .routes(routes!(ingest::ingest))
        .routes(routes!(tail::tail))
        .routes(routes!(otlp::export_logs))
        .routes(routes!(loki::push))
        .routes(routes!(query::search_post, query::search_get))
        .routes(routes!(query::aggregate))
        .routes(routes!(query::sql))
        .routes(routes!(openapi_json))
        .split_for_parts();
    let api = Arc::new(api);
    router
        .merge(elastic::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::Extension(api))
        // Bodies are read and limited by the handlers themselves (413 with a JSON error).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(elastic::product_header))
}

/// Answers 200 once the catalog is loaded and the WAL replayed, 503 before.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Serving"), (status = 503, description = "Starting", body = ErrorBody)))]
async fn health(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    state.engine()?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// Like `/health`, and 503 while ingest is refused because memtables are over budget.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "Ready for traffic"), (status = 503, description = "Starting or over budget", body = ErrorBody)))]
async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let engine = state.engine()?;
    if engine.over_memory_budget() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "memtables are over their budget; flushes are catching up",
        )
        .retry_after(1));
    }
    if let Some(error) = engine.last_flush_error() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "flush_failing",
            format!("the latest flush failed: {error}"),
        ));
    }
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// Prometheus / OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server")))]
async fn openapi_json(
    axum::Extension(api): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json((*api).clone())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} (see /v1/openapi.json)", uri.path()),
    )
}

/// Binds `listen` with `TCP_NODELAY` on every accepted connection.
pub async fn bind(listen: &str) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let keys = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            keys.keys.reload_if_changed();
        }
    });
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let (began_tx, mut began_rx) = tokio::sync::watch::channel(false);
    let graceful = async move {
        shutdown.await;
        let _ = began_tx.send(true);
    };
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(graceful)
        .into_future();
    // In-flight requests get SHUTDOWN_GRACE to finish; a stalled client cannot hold the
    // final flush back for longer.
    let deadline = async move {
        if began_rx.wait_for(|began| *began).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(
            "requests still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        ),
    }
    Ok(())
}

/// How long in-flight requests may run on after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
