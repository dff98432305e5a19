//! The Silt database: the write path (parse → WAL → memtable → ack → flush → segment →
//! catalog → WAL truncated) behind one `Engine` API. Knows nothing about HTTP.

pub mod memtable;
/// The ingest parsers (their own crate, so fuzzing them does not build the query layer).
pub use silt_parse as parse;
pub mod partition;
mod read;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use silt_storage::StorageError;
use silt_storage::catalog::{Catalog, CatalogEvent, CatalogOptions, SegmentEntry, SeqRange, Tier};
use silt_storage::layout::{self, DataDir, SegmentId};
use silt_storage::lock::DataDirLock;
use silt_storage::record::LogRecord;
use silt_storage::segment::{
    SEGMENT_FORMAT_VERSION, SegmentLabels, SegmentWriter, SegmentWriterOptions,
};
use silt_storage::wal::{Wal, WalError, WalOptions};

use crate::memtable::{FrozenMemtable, Memtable};

/// The tenant used when no keys are configured.
pub const DEFAULT_TENANT: &str = "default";
/// The stream used when a request names none.
pub const DEFAULT_STREAM: &str = "default";

/// Any failure of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("{0}")]
    InvalidInput(String),
    #[error("the engine is shut down")]
    Closed,
    /// Memtables are over their limit and flushes are failing (a full disk, say): waiting for
    /// memory would wait for an operator.
    #[error(
        "memtables hold more than their limit ({limit_bytes} bytes) and cannot be flushed: {reason}"
    )]
    FlushFailing { limit_bytes: usize, reason: String },
    #[error(
        "the catalog refuses commits after a failed write it could not undo: reopen the data directory"
    )]
    CatalogFailed,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Tuning of an [`Engine`]; the defaults suit one machine with a few GiB for Silt.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub data_dir: PathBuf,
    /// A tenant's memtable is flushed once it holds this many bytes.
    pub flush_bytes: usize,
    /// … or once its oldest row is this old.
    pub flush_age: Duration,
    /// Ingest waits while all memtables together hold more than this (flushes catch up).
    pub memtable_limit_bytes: usize,
    /// An hour with fewer rows is merged into its day's (then month's) segment.
    pub partition_min_rows: usize,
    pub segment: SegmentWriterOptions,
    pub wal: WalOptions,
    pub catalog: CatalogOptions,
    /// Run a background thread that flushes on the thresholds above.
    pub background_flush: bool,
    /// Ingested rows skip the WAL: [`Engine::ingest`] returns once they are in the memtable,
    /// and they are durable only once flushed ([`Engine::flushed_seq`] says how far). For bulk
    /// loads that report success only after [`Engine::shutdown`] (`silt ingest`), where the
    /// WAL would be written, fsynced and deleted without ever being read. Rows replayed from
    /// the WAL at open are flushed first, as always.
    pub unlogged: bool,
    /// Memory budget and parallelism of queries.
    pub query: silt_query::QueryOptions,
    /// Arrival time given to ingested rows (`observed_timestamp`, nanoseconds since the epoch):
    /// the system clock, or a fixed one where a test needs byte-identical segments.
    pub clock: fn() -> i64,
}

impl EngineOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            flush_bytes: 128 << 20,
            flush_age: Duration::from_secs(300),
            // 256 MiB measured: `silt ingest` peak RSS 890 -> 730 MiB at the same speed, but
            // segments of at most ~230 k rows instead of ~310 k, and a needle search over the
            // 2 M-line benchmark read 1.6x the bytes (11 segments instead of 9).
            memtable_limit_bytes: 320 << 20,
            partition_min_rows: 10_000,
            segment: SegmentWriterOptions::default(),
            wal: WalOptions::default(),
            catalog: CatalogOptions::default(),
            background_flush: true,
            unlogged: false,
            query: silt_query::QueryOptions::default(),
            clock: now_ns,
        }
    }
}

/// What [`Engine::ingest`] acknowledged: durable in the WAL and visible in the memtable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestReceipt {
    /// `_seq` of the first row; the rows have `first_seq..first_seq + rows`.
    pub first_seq: u64,
    pub rows: u64,
    /// Arrival time given to the rows (nanoseconds since the epoch): their `observed_timestamp`,
    /// and their `timestamp` where the input had none.
    pub observed_ns: i64,
}

/// What [`Engine::open`] found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub wal_records_replayed: u64,
    pub wal_rows_replayed: u64,
    pub wal_torn_tails_cut: u64,
    pub catalog_torn_tail_bytes: u64,
    pub orphan_files_removed: u64,
}

/// Counters since open.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    pub rows_ingested: AtomicU64,
    pub requests_ingested: AtomicU64,
    pub flushes: AtomicU64,
    pub segments_written: AtomicU64,
    pub segment_bytes_written: AtomicU64,
    pub flush_errors: AtomicU64,
}

struct TenantMemory {
    active: Memtable,
    /// Memtables being flushed, oldest first: readable until the catalog holds their rows.
    frozen: std::collections::VecDeque<Arc<FrozenMemtable>>,
}

struct Tenant {
    name: String,
    wal: Wal,
    memory: Mutex<TenantMemory>,
    /// One flush at a time per tenant, so catalog commits follow `_seq` order.
    flushing: Mutex<()>,
    /// How the tenant's flushes are failing, if they are.
    retry: Mutex<FlushRetry>,
}

/// Consecutive failed flushes of a tenant, when the next may be tried, and the last error.
#[derive(Default)]
struct FlushRetry {
    failures: u32,
    not_before: Option<Instant>,
    error: Option<String>,
}

/// Background flushes of a tenant that failed (a full disk, say) are retried after this,
/// doubling with each failure up to [`MAX_FLUSH_RETRY`], instead of every half second.
const FIRST_FLUSH_RETRY: Duration = Duration::from_millis(500);
const MAX_FLUSH_RETRY: Duration = Duration::from_secs(30);

struct Shared {
    options: EngineOptions,
    dir: DataDir,
    catalog: Catalog,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    metrics: EngineMetrics,
    /// Wakes the flusher (new rows) and waiting ingesters (memory freed).
    wake: Condvar,
    wake_lock: Mutex<()>,
    stopping: AtomicBool,
    last_flush_error: Mutex<Option<String>>,
}

/// An open data directory: the write path and the catalog.
pub struct Engine {
    shared: Arc<Shared>,
    segment_cache: Arc<read::SegmentCache>,
    query: read::QueryShared,
    flusher: Option<JoinHandle<()>>,
    _lock: DataDirLock,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Engine {
    /// Locks the data directory (creating it), loads the catalog, removes files no catalog
    /// entry names (segments of a flush interrupted before its commit), and replays every
    /// tenant's WAL from the first row not yet in a segment.
    pub fn open(options: EngineOptions) -> Result<(Self, OpenReport)> {
        let lock = DataDirLock::acquire(&options.data_dir)?;
        let dir = DataDir::new(&options.data_dir);
        let (catalog, catalog_report) = Catalog::open(&dir.catalog_dir(), options.catalog.clone())?;
        let mut report = OpenReport {
            catalog_torn_tail_bytes: catalog_report.torn_tail_bytes,
            ..Default::default()
        };
        report.orphan_files_removed = remove_orphans(&dir, &catalog)?;

        let shared = Arc::new(Shared {
            options,
            dir,
            catalog,
            tenants: RwLock::new(HashMap::new()),
            metrics: EngineMetrics::default(),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            stopping: AtomicBool::new(false),
            last_flush_error: Mutex::new(None),
        });
        let mut names: Vec<String> = shared.catalog.state().tenants.keys().cloned().collect();
        if let Ok(entries) = std::fs::read_dir(shared.dir.root().join("wal")) {
            names.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string)),
            );
        }
        names.sort();
        names.dedup();
        for name in names {
            if layout::validate_name("tenant", &name).is_err() {
                tracing::warn!(tenant = %name, "ignoring wal directory with an invalid tenant name");
                continue;
            }
            shared.open_tenant(&name, &mut report)?;
        }
        let flusher = if shared.options.background_flush {
            let s = shared.clone();
            let thread = std::thread::Builder::new()
                .name("silt-flush".into())
                .spawn(move || s.flush_loop());
            Some(thread.map_err(|e| StorageError::io("silt-flush", "start thread", e))?)
        } else {
            None
        };
        let segment_cache = Arc::new(read::SegmentCache::new(shared.dir.root().to_path_buf()));
        let query = read::QueryShared::new(shared.options.query.clone());
        Ok((
            Self {
                shared,
                segment_cache,
                query,
                flusher,
                _lock: lock,
            },
            report,
        ))
    }

    pub fn data_dir(&self) -> &Path {
        self.shared.dir.root()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    pub fn metrics(&self) -> &EngineMetrics {
        &self.shared.metrics
    }

    /// WAL fsyncs of all tenants since open.
    pub fn wal_fsyncs(&self) -> u64 {
        self.shared
            .tenants
            .read()
            .expect("tenants lock")
            .values()
            .map(|t| t.wal.fsync_count())
            .sum()
    }

    /// Latency of the WAL fsyncs that acknowledged ingests, all tenants together.
    pub fn wal_fsync_latency(&self) -> silt_storage::wal::FsyncLatencySnapshot {
        let mut total = silt_storage::wal::FsyncLatencySnapshot::default();
        for t in self.shared.tenant_list() {
            total.add(&t.wal.fsync_latency());
        }
        total
    }

    /// Bytes held by all memtables (active and being flushed).
    pub fn memtable_bytes(&self) -> usize {
        self.shared.memtable_bytes()
    }

    /// Whether memtables hold more than `memtable_limit_bytes`: an ingest now would wait for
    /// flushes to catch up. Servers answer "busy" instead of queueing without bound.
    pub fn over_memory_budget(&self) -> bool {
        self.shared.memtable_bytes() > self.shared.options.memtable_limit_bytes
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.shared.options
    }

    /// The last error of a background flush, if the latest attempt failed.
    pub fn last_flush_error(&self) -> Option<String> {
        self.shared
            .last_flush_error
            .lock()
            .expect("flush error lock")
            .clone()
    }

    /// Appends the rows of one request to the tenant's WAL as one record, adds them to the
    /// memtable, and returns once the record is fsynced. All or nothing. With
    /// [`EngineOptions::unlogged`], returns once the rows are in the memtable.
    pub fn ingest(
        &self,
        tenant: &str,
        stream: &str,
        records: &[LogRecord],
    ) -> Result<IngestReceipt> {
        if self.shared.stopping.load(Ordering::Relaxed) {
            return Err(EngineError::Closed);
        }
        layout::validate_name("tenant", tenant)?;
        layout::validate_name("stream", stream)?;
        self.shared.wait_for_memory()?;
        let t = self.shared.tenant(tenant)?;
        let observed = (self.shared.options.clock)();
        let (ticket, first_seq, should_flush) = {
            let mut memory = t.memory.lock().expect("memtable lock");
            let ticket = if self.shared.options.unlogged {
                None
            } else {
                Some(t.wal.append(stream, records, observed)?)
            };
            let first_seq = match ticket {
                Some(ticket) => ticket.first_seq(),
                None => t.wal.reserve(records.len())?,
            };
            memory.active.insert(stream, records, first_seq, observed);
            let should_flush = memory.active.bytes() >= self.shared.options.flush_bytes;
            (ticket, first_seq, should_flush)
        };
        if let Some(ticket) = ticket {
            t.wal.wait_durable(ticket)?;
        }
        self.shared
            .metrics
            .rows_ingested
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.shared
            .metrics
            .requests_ingested
            .fetch_add(1, Ordering::Relaxed);
        if should_flush {
            self.shared.wake.notify_all();
        }
        Ok(IngestReceipt {
            first_seq,
            rows: records.len() as u64,
            observed_ns: observed,
        })
    }

    /// The last `_seq` of `tenant` that is in segments, if any is.
    pub fn flushed_seq(&self, tenant: &str) -> Option<u64> {
        self.shared.catalog.state().flushed_seq(tenant)
    }

    /// Flushes every tenant's memtable to segments now and truncates the WALs.
    pub fn flush_all(&self) -> Result<()> {
        let tenants = self.shared.tenant_list();
        for t in tenants {
            let result = self.shared.flush_tenant(&t);
            self.shared.note_flush(&t, &result);
            result?;
        }
        Ok(())
    }

    /// Rows of `tenant` acknowledged but not yet in a segment.
    pub fn memtable_rows(&self, tenant: &str) -> usize {
        let Some(t) = self.shared.known_tenant(tenant) else {
            return 0;
        };
        let memory = t.memory.lock().expect("memtable lock");
        memory.active.rows() + memory.frozen.iter().map(|f| f.rows).sum::<usize>()
    }

    /// Stops the flusher, flushes everything and releases the data directory.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_flusher();
        self.flush_all()
    }

    fn stop_flusher(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Without shutdown() the memtables stay in the WAL; nothing acknowledged is lost.
        self.stop_flusher();
    }
}

impl Shared {
    /// Every open tenant, taken out of the map so its lock is not held while they are used.
    fn tenant_list(&self) -> Vec<Arc<Tenant>> {
        self.tenants
            .read()
            .expect("tenants lock")
            .values()
            .cloned()
            .collect()
    }

    /// An open tenant, without opening it.
    fn known_tenant(&self, name: &str) -> Option<Arc<Tenant>> {
        self.tenants
            .read()
            .expect("tenants lock")
            .get(name)
            .cloned()
    }

    fn tenant(&self, name: &str) -> Result<Arc<Tenant>> {
        if let Some(t) = self.known_tenant(name) {
            return Ok(t);
        }
        let mut report = OpenReport::default();
        self.open_tenant(name, &mut report)
    }

    /// Opens a tenant's WAL and replays it into a fresh memtable.
    fn open_tenant(&self, name: &str, report: &mut OpenReport) -> Result<Arc<Tenant>> {
        let mut tenants = self.tenants.write().expect("tenants lock");
        if let Some(t) = tenants.get(name) {
            return Ok(t.clone());
        }
        let from_seq = self.catalog.state().flushed_seq(name).map_or(0, |s| s + 1);
        let (wal, replay) = Wal::open(&self.dir.wal_dir(name), from_seq, self.options.wal.clone())?;
        let mut active = Memtable::default();
        for record in &replay.records {
            // Rows below from_seq are already in segments.
            let skip = from_seq.saturating_sub(record.first_seq) as usize;
            if skip < record.rows.len() {
                let first = record.first_seq + skip as u64;
                active.insert(
                    &record.stream,
                    &record.rows[skip..],
                    first,
                    record.observed_timestamp_ns,
                );
                report.wal_rows_replayed += (record.rows.len() - skip) as u64;
            }
        }
        report.wal_records_replayed += replay.records.len() as u64;
        report.wal_torn_tails_cut += replay.torn_tails_cut;
        if replay.torn_tails_cut > 0 {
            tracing::warn!(
                tenant = name,
                bytes = replay.torn_tail_bytes,
                "cut torn tail of wal"
            );
        }
        let tenant = Arc::new(Tenant {
            name: name.to_string(),
            wal,
            memory: Mutex::new(TenantMemory {
                active,
                frozen: Default::default(),
            }),
            flushing: Mutex::new(()),
            retry: Mutex::new(FlushRetry::default()),
        });
        tenants.insert(name.to_string(), tenant.clone());
        Ok(tenant)
    }

    fn memtable_bytes(&self) -> usize {
        let tenants = self.tenant_list();
        tenants
            .iter()
            .map(|t| {
                let m = t.memory.lock().expect("memtable lock");
                m.active.bytes() + m.frozen.iter().map(|f| f.bytes).sum::<usize>()
            })
            .sum()
    }

    /// Blocks while memtables exceed their limit and a flusher can free memory; fails at once
    /// while a tenant's flushes are failing (they may not free anything before an operator).
    fn wait_for_memory(&self) -> Result<()> {
        if !self.options.background_flush {
            return Ok(());
        }
        let waiting = Instant::now();
        let mut guard = self.wake_lock.lock().expect("wake lock");
        while self.memtable_bytes() > self.options.memtable_limit_bytes
            && !self.stopping.load(Ordering::Relaxed)
        {
            let failing = self
                .tenant_list()
                .iter()
                .find_map(|t| t.retry.lock().expect("retry lock").error.clone());
            if let Some(reason) = failing {
                self.wake.notify_all();
                return Err(EngineError::FlushFailing {
                    limit_bytes: self.options.memtable_limit_bytes,
                    reason,
                });
            }
            self.wake.notify_all();
            guard = self
                .wake
                .wait_timeout(guard, Duration::from_millis(50))
                .expect("wake lock")
                .0;
        }
        if waiting.elapsed() > Duration::from_millis(5) {
            tracing::debug!(
                ms = waiting.elapsed().as_millis() as u64,
                "ingest waited for memtable memory"
            );
        }
        Ok(())
    }

    fn flush_loop(&self) {
        let mut guard = self.wake_lock.lock().expect("wake lock");
        while !self.stopping.load(Ordering::Relaxed) {
            guard = self
                .wake
                .wait_timeout(guard, Duration::from_millis(500))
                .expect("wake lock")
                .0;
            drop(guard);
            let tenants = self.tenant_list();
            // When the memtables still filling (not those being flushed) hold more than half the
            // memory limit, the largest is flushed even below its own threshold.
            let active: Vec<usize> = tenants
                .iter()
                .map(|t| t.memory.lock().expect("memtable lock").active.bytes())
                .collect();
            let largest = (active.iter().sum::<usize>() > self.options.memtable_limit_bytes / 2)
                .then(|| {
                    active
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, b)| **b)
                        .map(|(i, _)| tenants[i].clone())
                })
                .flatten();
            for t in tenants {
                let due = {
                    let m = t.memory.lock().expect("memtable lock");
                    // Due too: a failed WAL (a full disk, say), which accepts appends again
                    // once its rows are in segments, and memtables a failed flush left
                    // queued, though nothing new arrives (ingest fails while they wait).
                    t.wal.is_failed()
                        || !m.frozen.is_empty()
                        || (!m.active.is_empty()
                            && (m.active.bytes() >= self.options.flush_bytes
                                || m.active.age() >= self.options.flush_age
                                || largest.as_ref().is_some_and(|l| Arc::ptr_eq(l, &t))))
                };
                let waiting = {
                    let retry = t.retry.lock().expect("retry lock");
                    retry.not_before.is_some_and(|at| Instant::now() < at)
                };
                if due && !waiting && !self.stopping.load(Ordering::Relaxed) {
                    let result = self.flush_tenant(&t);
                    self.note_flush(&t, &result);
                }
            }
            self.wake.notify_all();
            guard = self.wake_lock.lock().expect("wake lock");
        }
    }

    /// Keeps how a flush of `t` went: its failures and retry delay (0.5 s doubling to 30 s),
    /// and the last error, which stays until no tenant's flushes are failing.
    fn note_flush(&self, t: &Tenant, result: &Result<()>) {
        match result {
            Ok(()) => {
                *t.retry.lock().expect("retry lock") = FlushRetry::default();
                let failing = self
                    .tenant_list()
                    .iter()
                    .any(|o| o.retry.lock().expect("retry lock").failures > 0);
                if !failing {
                    *self.last_flush_error.lock().expect("flush error lock") = None;
                }
            }
            Err(e) => {
                self.metrics.flush_errors.fetch_add(1, Ordering::Relaxed);
                let mut retry = t.retry.lock().expect("retry lock");
                let delay = FIRST_FLUSH_RETRY
                    .saturating_mul(1 << retry.failures.min(16))
                    .min(MAX_FLUSH_RETRY);
                retry.failures = retry.failures.saturating_add(1);
                retry.not_before = Some(Instant::now() + delay);
                retry.error = Some(e.to_string());
                drop(retry);
                tracing::error!(tenant = %t.name, error = %e, retry_in_ms = delay.as_millis() as u64, unlogged = self.options.unlogged, "flush failed; rows stay in the memtable (and in the wal unless unlogged)");
                *self.last_flush_error.lock().expect("flush error lock") = Some(e.to_string());
            }
        }
    }

    /// Writes the tenant's memtable as segments, commits them to the catalog in one event,
    /// then truncates the WAL below them. A failure leaves the rows queued in memory (and in
    /// the WAL); the next flush retries them first.
    fn flush_tenant(&self, tenant: &Tenant) -> Result<()> {
        let _one_at_a_time = tenant.flushing.lock().expect("flush lock");
        let queue: Vec<Arc<FrozenMemtable>> = {
            let mut memory = tenant.memory.lock().expect("memtable lock");
            if let Some(frozen) = std::mem::take(&mut memory.active).freeze() {
                memory.frozen.push_back(Arc::new(frozen));
            }
            memory.frozen.iter().cloned().collect()
        };
        for frozen in queue {
            self.write_frozen(tenant, &frozen)?;
            let mut memory = tenant.memory.lock().expect("memtable lock");
            let done = memory.frozen.pop_front();
            debug_assert!(done.is_some_and(|d| Arc::ptr_eq(&d, &frozen)));
        }
        if tenant.wal.is_failed() {
            // Every row appended before the failure is in segments once the memtable is empty,
            // and appends wait for the memtable lock: the WAL can start over.
            let memory = tenant.memory.lock().expect("memtable lock");
            if memory.active.is_empty() && memory.frozen.is_empty() {
                tenant.wal.restart_after_failure()?;
            }
        }
        Ok(())
    }

    fn write_frozen(&self, tenant: &Tenant, frozen: &FrozenMemtable) -> Result<()> {
        if self.catalog.is_failed() {
            // Segments written now could not be committed, and would stay on disk until the
            // next open: do not write them.
            return Err(EngineError::CatalogFailed);
        }
        let started = Instant::now();
        let plan = partition::plan(&frozen.hours, self.options.partition_min_rows);
        let mut entries = Vec::with_capacity(plan.len());
        let mut written_paths = Vec::new();
        let mut result = Ok(());
        for segment in &plan {
            match self.write_segment(&tenant.name, segment) {
                Ok((entry, path)) => {
                    entries.push(entry);
                    written_paths.push(path);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            let wal_seq = SeqRange {
                first: frozen.seq.0,
                last: frozen.seq.1,
            };
            let event = CatalogEvent::SegmentsAdded {
                segments: entries.clone(),
                wal_seq,
            };
            let committing = Instant::now();
            result = self
                .catalog
                .commit(&tenant.name, event, now_ns())
                .map(|_| ())
                .map_err(EngineError::from);
            tracing::debug!(
                ms = committing.elapsed().as_millis() as u64,
                "catalog commit"
            );
        }
        if let Err(e) = result {
            // Unless the catalog cannot say whether the event is in (then the next open keeps
            // the files or deletes them as orphans), they belong to no one.
            if !self.catalog.is_failed() {
                for path in written_paths {
                    let _ = std::fs::remove_file(path);
                }
            }
            return Err(e);
        }
        tracing::debug!(
            tenant = %tenant.name,
            rows = frozen.rows,
            bytes = frozen.bytes,
            segments = entries.len(),
            ms = started.elapsed().as_millis() as u64,
            "memtable flushed"
        );
        self.metrics.flushes.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .segments_written
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        self.metrics.segment_bytes_written.fetch_add(
            entries.iter().map(|e| e.bytes).sum::<u64>(),
            Ordering::Relaxed,
        );
        // The rows are in segments now: a WAL that cannot be truncated (a full disk may refuse
        // its next file) only keeps rows that replay skips. Failing here would write them
        // again, as rows with the same `_seq` in two segments.
        if let Err(e) = tenant.wal.truncate_before(frozen.seq.1 + 1) {
            tracing::warn!(tenant = %tenant.name, error = %e, "cannot truncate the wal after a flush; replay skips what is in segments");
        }
        Ok(())
    }

    fn write_segment(
        &self,
        tenant: &str,
        segment: &partition::PlannedSegment,
    ) -> Result<(SegmentEntry, PathBuf)> {
        let id = SegmentId::generate((now_ns() / 1_000_000) as u64);
        let path = self
            .dir
            .segment_path(tenant, &segment.stream, &segment.partition, id);
        let labels = SegmentLabels {
            tenant: tenant.to_string(),
            stream: segment.stream.clone(),
            partition: segment.partition.clone(),
        };
        let mut writer = SegmentWriter::new(&path, labels, self.options.segment.clone());
        for batch in &segment.batches {
            writer.push(batch.clone())?;
        }
        let written = writer.finish()?;
        let location = path
            .strip_prefix(self.dir.root())
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let entry = SegmentEntry {
            id: id.to_string(),
            tenant: tenant.to_string(),
            stream: segment.stream.clone(),
            partition: segment.partition.clone(),
            min_timestamp: written.min_timestamp,
            max_timestamp: written.max_timestamp,
            rows: written.rows,
            bytes: written.bytes,
            blake3: blake3::Hash::from(written.blake3).to_hex().to_string(),
            page_index_crc32c: written.page_index_crc32c,
            tier: Tier::Local,
            location,
            format_version: SEGMENT_FORMAT_VERSION,
            seq: SeqRange {
                first: written.min_seq,
                last: written.max_seq,
            },
            created_at: now_ns(),
        };
        Ok((entry, path))
    }
}

/// Deletes segment files under the data directory that the catalog does not name, and
/// half-written temp files. Runs only while holding the data directory lock.
fn remove_orphans(dir: &DataDir, catalog: &Catalog) -> Result<u64> {
    let state = catalog.state();
    let known: std::collections::HashSet<PathBuf> = state
        .segments
        .values()
        .filter(|s| s.tier == Tier::Local)
        .map(|s| dir.root().join(&s.location))
        .collect();
    let mut removed = 0;
    let mut stack = vec![dir.segments_dir()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_temp = name.starts_with(layout::TEMP_PREFIX);
            let is_segment = name.ends_with(&format!(".{}", layout::SEGMENT_EXTENSION));
            if is_temp || (is_segment && !known.contains(&path)) {
                tracing::warn!(file = %path.display(), "removing segment file the catalog does not name");
                std::fs::remove_file(&path)
                    .map_err(|e| StorageError::path_io(&path, "remove orphan segment", e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
