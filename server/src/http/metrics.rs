//! Prometheus metrics: counters and histograms the handlers update, plus a collector that
//! reads the engine's own figures (WAL fsyncs, flushes, segments, memtables) at scrape time.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use silt_engine::Engine;
use silt_storage::wal::FSYNC_LATENCY_BOUNDS;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub tenant: String,
    /// `ingest_rate`, `memory`, `concurrent_queries`.
    pub limit: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// `search`, `aggregate`, `sql`.
    pub endpoint: String,
}

/// Everything `/metrics` reports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub ingest_lines: Family<TenantLabel, Counter>,
    pub ingest_bytes: Family<TenantLabel, Counter>,
    pub ingest_rejected_lines: Family<TenantLabel, Counter>,
    pub ingest_ack_seconds: Histogram,
    pub query_seconds: Family<EndpointLabel, Histogram>,
    pub limited: Family<LimitLabel, Counter>,
    pub tail_subscribers: Gauge,
    pub tail_rows_sent: Counter,
    pub tail_rows_dropped: Counter,
    pub tail_delivery_seconds: Histogram,
    pub engine: Arc<EngineCollector>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("silt");
        let ingest_lines = Family::<TenantLabel, Counter>::default();
        registry.register(
            "ingest_lines",
            "Log lines acknowledged (durable in the WAL)",
            ingest_lines.clone(),
        );
        let ingest_bytes = Family::<TenantLabel, Counter>::default();
        registry.register(
            "ingest_bytes",
            "Request body bytes of acknowledged ingests, after decompression",
            ingest_bytes.clone(),
        );
        let ingest_rejected_lines = Family::<TenantLabel, Counter>::default();
        registry.register(
            "ingest_rejected_lines",
            "Lines rejected as malformed",
            ingest_rejected_lines.clone(),
        );
        let ingest_ack_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "ingest_ack_seconds",
            "Time from a complete ingest request to its acknowledgement",
            ingest_ack_seconds.clone(),
        );
        let query_seconds = Family::<EndpointLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "query_seconds",
            "Latency of queries by endpoint",
            query_seconds.clone(),
        );
        let limited = Family::<LimitLabel, Counter>::default();
        registry.register(
            "limited_requests",
            "Requests refused by a tenant limit (429) or the memory budget (503)",
            limited.clone(),
        );
        let tail_subscribers = Gauge::default();
        registry.register(
            "tail_subscribers",
            "Live tail WebSocket subscribers connected",
            tail_subscribers.clone(),
        );
        let tail_rows_sent = Counter::default();
        registry.register(
            "tail_rows_sent",
            "Rows queued to live tail subscribers",
            tail_rows_sent.clone(),
        );
        let tail_rows_dropped = Counter::default();
        registry.register(
            "tail_rows_dropped",
            "Rows live tail subscribers missed because they fell behind (reported to them as dropped)",
            tail_rows_dropped.clone(),
        );
        let tail_delivery_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "tail_delivery_seconds",
            "Time from an ingest's acknowledgement to its matching rows being queued to a subscriber's socket",
            tail_delivery_seconds.clone(),
        );
        let engine = Arc::new(EngineCollector::default());
        registry.register_collector(Box::new(engine.clone()));
        Self {
            registry,
            ingest_lines,
            ingest_bytes,
            ingest_rejected_lines,
            ingest_ack_seconds,
            query_seconds,
            limited,
            tail_subscribers,
            tail_rows_sent,
            tail_rows_dropped,
            tail_delivery_seconds,
            engine,
        }
    }

    pub fn limited(&self, tenant: &str, limit: &str) {
        self.limited
            .get_or_create(&LimitLabel {
                tenant: tenant.to_string(),
                limit: limit.to_string(),
            })
            .inc();
    }

    pub fn observe_query(&self, endpoint: &str, seconds: f64) {
        self.query_seconds
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_string(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Reads the engine's figures at scrape time (nothing while it is still opening).
#[derive(Default)]
pub struct EngineCollector {
    pub engine: OnceLock<Arc<Engine>>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineCollector")
            .field("open", &self.engine.get().is_some())
            .finish()
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(engine) = self.engine.get() else {
            return Ok(());
        };
        let metrics = engine.metrics();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        for (name, help, value) in [
            (
                "flushes",
                "Memtable flushes to segments",
                load(&metrics.flushes),
            ),
            (
                "flush_errors",
                "Failed memtable flushes",
                load(&metrics.flush_errors),
            ),
            (
                "segments_written",
                "Segments written",
                load(&metrics.segments_written),
            ),
            (
                "segment_written_bytes",
                "Bytes of segments written",
                load(&metrics.segment_bytes_written),
            ),
            (
                "wal_fsyncs",
                "WAL fsyncs (files and directories)",
                engine.wal_fsyncs(),
            ),
        ] {
            ConstCounter::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }

        let latency = engine.wal_fsync_latency();
        let buckets: Vec<(f64, u64)> = FSYNC_LATENCY_BOUNDS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(latency.buckets)
            .collect();
        encoder
            .encode_descriptor(
                "wal_fsync_seconds",
                "Latency of the group-commit WAL fsyncs that acknowledge ingests",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                latency.sum_seconds,
                latency.count(),
                &buckets,
                None,
            )?;

        ConstGauge::new(engine.memtable_bytes() as i64).encode(encoder.encode_descriptor(
            "memtable_bytes",
            "Bytes held by memtables (acknowledged, not yet in segments)",
            None,
            MetricType::Gauge,
        )?)?;

        let catalog = engine.catalog().state();
        let per_tenant: Vec<(TenantLabel, i64, i64)> = catalog
            .tenants
            .keys()
            .map(|tenant| {
                let segments = catalog.tenant_segments(tenant);
                let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
                let label = TenantLabel {
                    tenant: tenant.clone(),
                };
                (label, segments.len() as i64, bytes as i64)
            })
            .collect();
        for (name, help, pick) in [
            (
                "segments",
                "Segments in the catalog",
                (|t: &(TenantLabel, i64, i64)| t.1) as fn(&(TenantLabel, i64, i64)) -> i64,
            ),
            (
                "segment_bytes",
                "Bytes of the segments in the catalog",
                |t| t.2,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for tenant in &per_tenant {
                ConstGauge::new(pick(tenant)).encode(family.encode_family(&tenant.0)?)?;
            }
        }
        Ok(())
    }
}
