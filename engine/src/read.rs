//! The read side of the engine: consistent snapshots of a tenant (catalog segments plus
//! memtable, never a row twice) and the search, aggregate and SQL calls over them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool};
use silt_query::{
    AggregateRequest, Bucket, MemBatch, QueryError, QueryOptions, SearchRequest, SearchResult,
    SegmentOpener, TableSnapshot,
};
use silt_storage::StorageError;
use silt_storage::catalog::{SegmentEntry, Tier};
use silt_storage::segment::{SegmentFile, SegmentReader};

use crate::Engine;

/// Opens local-tier segments once and keeps their readers (footer, page index, directory).
#[derive(Debug)]
pub(crate) struct SegmentCache {
    root: PathBuf,
    readers: Mutex<HashMap<String, Arc<SegmentReader>>>,
}

impl SegmentCache {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            readers: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl SegmentOpener for SegmentCache {
    async fn open(&self, entry: &SegmentEntry) -> Result<Arc<SegmentReader>, StorageError> {
        if let Some(reader) = self
            .readers
            .lock()
            .expect("segment cache lock")
            .get(&entry.id)
        {
            return Ok(reader.clone());
        }
        if entry.tier != Tier::Local {
            return Err(StorageError::corrupt(
                &entry.location,
                "segment is in the object tier, which this build cannot read",
            ));
        }
        let file = SegmentFile::open_local(&self.root.join(&entry.location))?;
        let reader =
            Arc::new(SegmentReader::open_verified(file, Some(entry.page_index_crc32c)).await?);
        self.readers
            .lock()
            .expect("segment cache lock")
            .insert(entry.id.clone(), reader.clone());
        Ok(reader)
    }
}

/// Shared by every query of an engine: the memory budget DataFusion draws from.
pub(crate) struct QueryShared {
    pub(crate) options: QueryOptions,
    pub(crate) pool: Arc<dyn MemoryPool>,
}

impl QueryShared {
    pub(crate) fn new(options: QueryOptions) -> Self {
        let pool: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(options.memory_limit_bytes));
        Self { options, pool }
    }
}

impl Engine {
    /// Everything of `tenant` a query can see right now: catalog segments and memtable rows,
    /// taken together so that no row is in both and none is missing. An unknown tenant has
    /// no rows.
    pub fn snapshot(&self, tenant: &str) -> TableSnapshot {
        let shared = &self.shared;
        let tenant_state = shared.known_tenant(tenant);
        let (memtable, catalog, max_seq) = match &tenant_state {
            Some(t) => {
                // The catalog is read under the memtable lock: a flush commits its segments
                // before it drops the frozen memtable, so a frozen memtable whose rows are
                // already in the catalog is skipped here.
                let memory = t.memory.lock().expect("memtable lock");
                let catalog = shared.catalog.state();
                let flushed = catalog.flushed_seq(tenant);
                let mut batches = Vec::new();
                for frozen in &memory.frozen {
                    if flushed.is_some_and(|f| frozen.seq.1 <= f) {
                        continue;
                    }
                    for ((stream, _), hour) in &frozen.hours {
                        let stream: Arc<str> = stream.as_str().into();
                        batches.extend(hour.batches.iter().map(|b| MemBatch {
                            stream: stream.clone(),
                            batch: b.clone(),
                        }));
                    }
                }
                for ((stream, _), hour) in &memory.active.hours {
                    let stream: Arc<str> = stream.as_str().into();
                    batches.extend(hour.snapshot().into_iter().map(|b| MemBatch {
                        stream: stream.clone(),
                        batch: b,
                    }));
                }
                let next = t.wal.next_seq();
                (batches, catalog, next.checked_sub(1))
            }
            None => {
                let catalog = shared.catalog.state();
                let max = catalog.flushed_seq(tenant);
                (Vec::new(), catalog, max)
            }
        };
        let segments: Vec<SegmentEntry> = catalog
            .tenant_segments(tenant)
            .into_iter()
            .cloned()
            .collect();
        TableSnapshot {
            tenant: tenant.to_string(),
            segments,
            memtable,
            opener: self.segment_cache.clone(),
            max_seq,
        }
    }

    /// One page of hits, newest first (see [`silt_query::search`]).
    pub async fn search(
        &self,
        tenant: &str,
        request: &SearchRequest,
    ) -> Result<SearchResult, QueryError> {
        silt_query::search(&self.snapshot(tenant), request).await
    }

    /// Bucketed counts or metrics (see [`silt_query::aggregate`]).
    pub async fn aggregate(
        &self,
        tenant: &str,
        request: &AggregateRequest,
    ) -> Result<Vec<Bucket>, QueryError> {
        let ctx = self.query_session(tenant)?;
        silt_query::aggregate(&ctx, request).await
    }

    /// One SQL statement over the tenant's `logs` table.
    pub async fn sql(&self, tenant: &str, text: &str) -> Result<Vec<RecordBatch>, QueryError> {
        let ctx = self.query_session(tenant)?;
        silt_query::sql(&ctx, text).await
    }

    /// A DataFusion session over the tenant's current snapshot, under the engine's memory budget.
    pub fn query_session(
        &self,
        tenant: &str,
    ) -> Result<datafusion::prelude::SessionContext, QueryError> {
        let snapshot = Arc::new(self.snapshot(tenant));
        silt_query::session(snapshot, &self.query.options, Some(self.query.pool.clone()))
    }
}
