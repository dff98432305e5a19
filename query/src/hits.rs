//! Search: hits ordered by (timestamp, _seq), newest or oldest first, read segment by segment
//! from the best end and stopped once no further segment can beat the hits held; cursors page on.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::{Schema, TimestampNanosecondType, UInt64Type};
use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use roaring::RoaringBitmap;
use silt_storage::catalog::SegmentEntry;
use silt_storage::schema::{SEQ, TIMESTAMP};
use silt_storage::segment::SegmentReader;

use crate::QueryError;
use crate::pruning::{IndexPredicate, TimeRange, candidate_blocks};
use crate::search::{self, STREAM};
use crate::snapshot::{
    SegmentOpener, TableSnapshot, is_narrow, sql_file_schema, sql_schema, table_schema,
};

/// Rows a search may scan for its total before reporting a lower bound instead.
pub const DEFAULT_COUNT_BUDGET_ROWS: u64 = 20_000_000;

/// One page of a search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub time: TimeRange,
    pub limit: usize,
    pub cursor: Option<String>,
    pub order: SortOrder,
    pub count_budget_rows: u64,
}

/// The order of hits: by `(timestamp, _seq)`, descending or ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

impl SortOrder {
    /// Maps `(timestamp, _seq)` to a rank where larger comes first. Bitwise NOT reverses the
    /// order of both types without overflow and is its own inverse, so it also maps back.
    fn rank(self, timestamp: i64, seq: u64) -> (i64, u64) {
        match self {
            SortOrder::NewestFirst => (timestamp, seq),
            SortOrder::OldestFirst => (!timestamp, !seq),
        }
    }

    /// The best rank any row of a segment can have, then the worst.
    fn segment_ranks(self, entry: &SegmentEntry) -> ((i64, u64), i64) {
        match self {
            SortOrder::NewestFirst => ((entry.max_timestamp, entry.seq.last), entry.min_timestamp),
            SortOrder::OldestFirst => (
                (!entry.min_timestamp, !entry.seq.first),
                !entry.max_timestamp,
            ),
        }
    }
}

impl SearchRequest {
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            time: TimeRange::ALL,
            limit: 100,
            cursor: None,
            order: SortOrder::NewestFirst,
            count_budget_rows: DEFAULT_COUNT_BUDGET_ROWS,
        }
    }
}

/// What a search read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Segments of the tenant, and those whose blocks were read.
    pub segments_total: usize,
    pub segments_scanned: usize,
    /// Posting blocks (pages) in the segments considered, and those read.
    pub blocks_total: u64,
    pub blocks_scanned: u64,
    pub rows_scanned: u64,
    pub memtable_rows: u64,
    pub bytes_read: u64,
}

/// Hits newest first (in the `logs` table schema), the number of matches and where to go on.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub hits: RecordBatch,
    /// Matching rows in the time range (all pages); a lower bound when `total_exact` is false.
    pub total: u64,
    pub total_exact: bool,
    pub next_cursor: Option<String>,
    pub stats: SearchStats,
}

/// Position after the last hit of a page: `(timestamp, _seq)` plus the snapshot's `_seq` mark,
/// so later pages ignore rows ingested after the first, and the order it pages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: i64,
    pub seq: u64,
    pub mark: u64,
    pub order: SortOrder,
}

impl Cursor {
    /// `v1.<timestamp>.<seq>.<mark>`, with `.asc` appended for oldest-first pages.
    pub fn encode(&self) -> String {
        let suffix = match self.order {
            SortOrder::NewestFirst => "",
            SortOrder::OldestFirst => ".asc",
        };
        format!("v1.{}.{}.{}{suffix}", self.timestamp, self.seq, self.mark)
    }

    pub fn decode(text: &str) -> Result<Self, QueryError> {
        let bad = || QueryError::InvalidCursor(text.chars().take(80).collect());
        let mut parts = text.strip_prefix("v1.").ok_or_else(bad)?.split('.');
        let mut cursor = Cursor {
            timestamp: parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?,
            seq: parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?,
            mark: parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?,
            order: SortOrder::NewestFirst,
        };
        match parts.next() {
            None => {}
            Some("asc") => cursor.order = SortOrder::OldestFirst,
            Some(_) => return Err(bad()),
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(cursor)
    }

    /// The cursor's rank (see [`SortOrder::rank`]).
    fn rank(&self) -> (i64, u64) {
        self.order.rank(self.timestamp, self.seq)
    }
}

/// Where a candidate hit lives until the final fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// A row of a batch already read in full (memtable, or a segment with few candidates).
    Held { batch: usize, row: usize },
    /// A row of a segment, fetched in full only if it makes the page.
    Segment { segment: usize, row: u64 },
}

/// `(rank of timestamp, rank of _seq, where)`: see [`SortOrder::rank`].
type Key = (i64, u64, Source);

/// The filter a search applies to each row: query, time range and snapshot mark.
pub(crate) fn search_filter(query: &Expr, time: TimeRange, mark: Option<u64>) -> Expr {
    let mut filter = query.clone();
    let ts = |v: i64| {
        lit(ScalarValue::TimestampNanosecond(
            Some(v),
            Some("UTC".into()),
        ))
    };
    if time.min != i64::MIN {
        filter = filter.and(col(TIMESTAMP).gt_eq(ts(time.min)));
    }
    if time.max != i64::MAX {
        filter = filter.and(col(TIMESTAMP).lt_eq(ts(time.max)));
    }
    if let Some(mark) = mark {
        filter = filter.and(col(SEQ).lt_eq(lit(mark)));
    }
    filter
}

/// The rows of a segment that a read of `blocks` returns, in order.
fn block_row_ranges(reader: &SegmentReader, blocks: Option<&RoaringBitmap>) -> Vec<Range<u64>> {
    match blocks {
        None => vec![0..reader.num_rows()],
        Some(blocks) => {
            let mut out: Vec<Range<u64>> = Vec::new();
            for b in blocks {
                let r = reader.block_rows(b);
                match out.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ if r.is_empty() => {}
                    _ => out.push(r),
                }
            }
            out
        }
    }
}

/// One planning context for every search: building a session per call costs milliseconds.
pub(crate) static PLANNER: std::sync::LazyLock<SessionContext> =
    std::sync::LazyLock::new(SessionContext::new);

struct Projected {
    schema: Arc<Schema>,
    /// Segment columns to read (the projection without `stream`).
    file_columns: Vec<String>,
    has_stream: bool,
    predicate: Arc<dyn PhysicalExpr>,
    /// The part of the filter that reads only narrow columns, checked first when the filter
    /// also reads wide ones: the wide columns are then read only for the rows that pass it.
    prefilter: Option<Box<Projected>>,
}

/// The filter's projection, and its narrow conjuncts as a prefilter when there are some besides
/// the time range and the snapshot mark (those alone pass nearly every row of a block).
fn project(filter: &Expr) -> Result<Projected, QueryError> {
    let mut projected = project_columns(filter, table_schema())?;
    let conjuncts = datafusion::logical_expr::utils::split_conjunction(filter);
    let (narrow, wide): (Vec<&Expr>, Vec<&Expr>) =
        conjuncts.into_iter().partition(|e| is_narrow(e));
    let selective = narrow.iter().any(|e| {
        e.column_refs()
            .iter()
            .any(|c| c.name != TIMESTAMP && c.name != SEQ)
    });
    if selective && !wide.is_empty() {
        let narrow_filter =
            datafusion::logical_expr::utils::conjunction(narrow.into_iter().cloned())
                .expect("at least one narrow conjunct");
        // Read with the SQL schema's types: level, service and host as dictionaries, decoded
        // straight from their dictionary pages instead of into a string a row.
        projected.prefilter = Some(Box::new(project_columns(&narrow_filter, sql_schema())?));
    }
    Ok(projected)
}

fn project_columns(filter: &Expr, full: Arc<Schema>) -> Result<Projected, QueryError> {
    let mut names: Vec<String> = filter
        .column_refs()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.extend([TIMESTAMP.to_string(), SEQ.to_string()]);
    let indices: Vec<usize> = (0..full.fields().len())
        .filter(|&i| names.contains(full.field(i).name()))
        .collect();
    let schema = Arc::new(full.project(&indices)?);
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    let predicate = PLANNER.create_physical_expr(filter.clone(), &df_schema)?;
    let file_columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n != STREAM)
        .collect();
    let has_stream = schema.field_with_name(STREAM).is_ok();
    Ok(Projected {
        schema,
        file_columns,
        has_stream,
        predicate,
        prefilter: None,
    })
}

fn add_stream(
    batch: RecordBatch,
    stream: &str,
    schema: &Arc<Schema>,
) -> Result<RecordBatch, QueryError> {
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(datafusion::arrow::array::StringArray::from(
        vec![stream; batch.num_rows()],
    )));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn evaluate(
    predicate: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> Result<Vec<usize>, QueryError> {
    let value = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let mask = value.as_boolean();
    Ok((0..mask.len())
        .filter(|&i| mask.is_valid(i) && mask.value(i))
        .collect())
}

struct TopK {
    limit: usize,
    order: SortOrder,
    heap: BinaryHeap<Reverse<Key>>,
    cursor: Option<Cursor>,
}

impl TopK {
    /// Offers a matching row by its `(timestamp, _seq)`.
    fn offer(&mut self, timestamp: i64, seq: u64, source: Source) {
        let (t, s) = self.order.rank(timestamp, seq);
        let key = (t, s, source);
        if self.cursor.is_some_and(|c| (t, s) >= c.rank()) || self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(key));
        } else if self.heap.peek().is_some_and(|Reverse(min)| key > *min) {
            self.heap.pop();
            self.heap.push(Reverse(key));
        }
    }

    /// The timestamp rank a new hit must reach, once the page is full.
    fn floor(&self) -> Option<i64> {
        (self.heap.len() == self.limit)
            .then(|| self.heap.peek().map(|Reverse(k)| k.0))
            .flatten()
    }
}

/// Runs one page of a search over `snapshot`.
pub async fn search(
    snapshot: &TableSnapshot,
    request: &SearchRequest,
) -> Result<SearchResult, QueryError> {
    let query = search::parse(&request.query)?;
    let query_expr = search::to_expr(&query);
    let cursor = request.cursor.as_deref().map(Cursor::decode).transpose()?;
    if cursor.is_some_and(|c| c.order != request.order) {
        return Err(QueryError::InvalidRequest(
            "the cursor belongs to a search in the other sort order".into(),
        ));
    }
    let mark = cursor.map(|c| c.mark).or(snapshot.max_seq);
    let filter = search_filter(&query_expr, request.time, mark);
    let projected = Arc::new(project(&filter)?);
    let index = Arc::new(IndexPredicate::from_expr(&query_expr));
    let mut stats = SearchStats {
        segments_total: snapshot.segments.len(),
        ..Default::default()
    };
    let order = request.order;
    let mut top = TopK {
        limit: request.limit,
        order,
        heap: BinaryHeap::new(),
        cursor,
    };
    let mut total = 0u64;
    let mut total_exact = true;

    // Memtable rows: all candidates.
    // Batches read in full: the memtable's first, then one-pass segment reads.
    let mut held: Vec<RecordBatch> = Vec::with_capacity(snapshot.memtable.len());
    for (i, mem) in snapshot.memtable.iter().enumerate() {
        let full = mem.with_stream();
        let batch = full.project(&projected_indices(&projected.schema))?;
        stats.memtable_rows += batch.num_rows() as u64;
        let matches = evaluate(&projected.predicate, &batch)?;
        total += matches.len() as u64;
        let (ts, seq) = key_columns(&batch);
        for row in matches {
            top.offer(
                ts.value(row),
                seq.value(row),
                Source::Held { batch: i, row },
            );
        }
        held.push(full);
    }

    // Segments, best first.
    let mut segment_order: Vec<usize> = (0..snapshot.segments.len())
        .filter(|&i| {
            let e = &snapshot.segments[i];
            request.time.overlaps(e.min_timestamp, e.max_timestamp)
                && mark.is_none_or(|m| e.seq.first <= m)
        })
        .collect();
    segment_order.sort_by_key(|&i| Reverse(order.segment_ranks(&snapshot.segments[i]).0));
    let mut readers: BTreeMap<usize, SegmentReader> = BTreeMap::new();
    let ctx = ScanContext {
        opener: snapshot.opener.clone(),
        time: request.time,
        index,
        projected: projected.clone(),
    };
    let mut pending = segment_order.into_iter().peekable();
    while pending.peek().is_some() {
        // Up to SEGMENT_PARALLELISM segments at a time, each still needed for the page (or
        // for the count, within its budget).
        let mut wave = Vec::with_capacity(SEGMENT_PARALLELISM);
        while wave.len() < SEGMENT_PARALLELISM {
            let Some(i) = pending.next() else { break };
            let entry = &snapshot.segments[i];
            let ((best, _), worst) = order.segment_ranks(entry);
            let needed_for_hits = top.floor().is_none_or(|floor| best >= floor)
                && cursor.is_none_or(|c| worst <= c.rank().0);
            if !needed_for_hits && stats.rows_scanned >= request.count_budget_rows {
                total_exact = false;
                continue;
            }
            wave.push(on_own_task(scan_segment(ctx.clone(), i, entry.clone())));
        }
        for scan in futures::future::try_join_all(wave).await? {
            stats.blocks_total += scan.blocks_total;
            if scan.blocks_scanned == 0 {
                stats.bytes_read += scan.reader.bytes_read();
                continue;
            }
            stats.segments_scanned += 1;
            stats.blocks_scanned += scan.blocks_scanned;
            stats.rows_scanned += scan.rows_scanned;
            total += scan.total;
            for (ts, seq, source) in scan.matches {
                top.offer(ts, seq, source);
            }
            readers.insert(scan.segment, scan.reader);
        }
    }
    // Fetch the winning rows.
    let mut keys: Vec<Key> = top.heap.into_iter().map(|Reverse(k)| k).collect();
    keys.sort_by(|a, b| b.cmp(a));
    let mut sources: Vec<RecordBatch> = held;
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(keys.len());
    let mut fetched: BTreeMap<usize, (usize, Vec<u64>)> = BTreeMap::new();
    for &(_, _, source) in &keys {
        if let Source::Segment { segment, row } = source {
            fetched
                .entry(segment)
                .or_insert((0, Vec::new()))
                .1
                .push(row);
        }
    }
    let reads = fetched.iter_mut().map(|(segment, (_, rows))| {
        rows.sort_unstable();
        rows.dedup();
        let reader = readers[segment].clone();
        let rows = rows.clone();
        on_own_task(async move {
            let batches = reader.read_rows(&rows).await?;
            let merged = datafusion::arrow::compute::concat_batches(
                &silt_storage::schema::log_schema(),
                &batches,
            )?;
            if merged.num_rows() != rows.len() {
                return Err(QueryError::Internal("hit rows not re-read".into()));
            }
            Ok(merged)
        })
    });
    let merged = futures::future::try_join_all(reads).await?;
    for ((segment, (first_batch, _)), merged) in fetched.iter_mut().zip(merged) {
        *first_batch = sources.len();
        let stream = &snapshot.segments[*segment].stream;
        sources.push(add_stream(merged, stream, &table_schema())?);
    }
    for &(_, _, source) in &keys {
        match source {
            Source::Held { batch, row } => picks.push((batch, row)),
            Source::Segment { segment, row } => {
                let (batch, rows) = &fetched[&segment];
                let position = rows
                    .binary_search(&row)
                    .map_err(|_| QueryError::Internal("hit row not re-read".into()))?;
                picks.push((*batch, position));
            }
        }
    }
    stats.bytes_read += readers.values().map(SegmentReader::bytes_read).sum::<u64>();
    let refs: Vec<&RecordBatch> = sources.iter().collect();
    let hits = if picks.is_empty() {
        RecordBatch::new_empty(table_schema())
    } else {
        interleave_record_batch(&refs, &picks)?
    };
    let next_cursor = match (keys.last(), mark) {
        (Some(&(t, s, _)), Some(mark)) if keys.len() == request.limit => {
            let (timestamp, seq) = order.rank(t, s);
            Some(
                Cursor {
                    timestamp,
                    seq,
                    mark,
                    order,
                }
                .encode(),
            )
        }
        _ => None,
    };
    Ok(SearchResult {
        hits,
        total,
        total_exact,
        next_cursor,
        stats,
    })
}

/// Segments scanned at once: the machines Silt runs on have few cores, and each scan decodes.
const SEGMENT_PARALLELISM: usize = 2;

/// Runs `work` on a task of its own when a Tokio runtime is there, so segments decode on
/// several cores (futures joined in one task would take turns on one); inline otherwise.
async fn on_own_task<T: Send + 'static>(
    work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn(work)
            .await
            .map_err(|e| QueryError::Internal(format!("segment scan task failed: {e}")))?,
        Err(_) => work.await,
    }
}

/// What every segment scan of one search shares.
#[derive(Clone)]
struct ScanContext {
    opener: Arc<dyn SegmentOpener>,
    time: TimeRange,
    index: Arc<IndexPredicate>,
    projected: Arc<Projected>,
}

/// What one segment's scan found: candidate hits (rows matching the filter) and its costs.
struct SegmentScan {
    segment: usize,
    reader: SegmentReader,
    blocks_total: u64,
    blocks_scanned: u64,
    rows_scanned: u64,
    total: u64,
    matches: Vec<Key>,
}

/// Reads the filter columns of a segment's candidate blocks (index ∩ time) and filters them;
/// the hits that make the page are fetched in full afterwards.
async fn scan_segment(
    ctx: ScanContext,
    i: usize,
    entry: SegmentEntry,
) -> Result<SegmentScan, QueryError> {
    let reader = ctx.opener.open(&entry).await?.for_query();
    let posting_blocks = u64::from(reader.directory().posting_blocks());
    let mut scan = SegmentScan {
        segment: i,
        reader,
        blocks_total: posting_blocks,
        blocks_scanned: 0,
        rows_scanned: 0,
        total: 0,
        matches: Vec::new(),
    };
    let reader = &scan.reader;
    let blocks = candidate_blocks(reader, &ctx.index, ctx.time).await?;
    if blocks.as_ref().is_some_and(RoaringBitmap::is_empty) {
        return Ok(scan);
    }
    scan.blocks_scanned = blocks.as_ref().map_or(posting_blocks, RoaringBitmap::len);
    let columns: Vec<&str> = ctx
        .projected
        .file_columns
        .iter()
        .map(String::as_str)
        .collect();
    let ranges = block_row_ranges(reader, blocks.as_ref());
    scan.rows_scanned = ranges.iter().map(|r| r.end - r.start).sum();
    // The segment row of each row read, in order: every row of the candidate blocks, or the
    // rows that passed the narrow conditions.
    type RowIds = Box<dyn Iterator<Item = u64> + Send>;
    let (batches, mut rows): (Vec<RecordBatch>, RowIds) = match &ctx.projected.prefilter {
        None => (
            reader
                .read(Some(columns.as_slice()), blocks.as_ref())
                .await?,
            Box::new(ranges.into_iter().flatten()),
        ),
        Some(pre) => {
            // Narrow columns of every candidate row, then the whole projection of the rows
            // that pass them: pages of wide columns without such a row are never read.
            let narrow: Vec<&str> = pre.file_columns.iter().map(String::as_str).collect();
            let mut rows = ranges.iter().flat_map(|r| r.clone());
            let mut passing = Vec::new();
            let read = reader.read_as(sql_file_schema(), Some(narrow.as_slice()), blocks.as_ref());
            for batch in read.await? {
                let batch = if pre.has_stream {
                    add_stream(batch, &entry.stream, &pre.schema)?
                } else {
                    batch
                };
                let ids: Vec<u64> = rows.by_ref().take(batch.num_rows()).collect();
                passing.extend(
                    evaluate(&pre.predicate, &batch)?
                        .into_iter()
                        .map(|i| ids[i]),
                );
            }
            if passing.is_empty() {
                return Ok(scan);
            }
            let batches = reader
                .read_rows_of(Some(columns.as_slice()), &passing)
                .await?;
            (batches, Box::new(passing.into_iter()))
        }
    };
    for batch in batches {
        let batch = if ctx.projected.has_stream {
            add_stream(batch, &entry.stream, &ctx.projected.schema)?
        } else {
            batch
        };
        let matches = evaluate(&ctx.projected.predicate, &batch)?;
        scan.total += matches.len() as u64;
        let row_ids: Vec<u64> = rows.by_ref().take(batch.num_rows()).collect();
        let (ts, seq) = key_columns(&batch);
        scan.matches.extend(matches.into_iter().map(|row| {
            (
                ts.value(row),
                seq.value(row),
                Source::Segment {
                    segment: i,
                    row: row_ids[row],
                },
            )
        }));
    }
    Ok(scan)
}

fn projected_indices(schema: &Schema) -> Vec<usize> {
    let full = table_schema();
    schema
        .fields()
        .iter()
        .map(|f| {
            full.index_of(f.name())
                .expect("projection of the table schema")
        })
        .collect()
}

fn key_columns(
    batch: &RecordBatch,
) -> (
    &datafusion::arrow::array::PrimitiveArray<TimestampNanosecondType>,
    &datafusion::arrow::array::PrimitiveArray<UInt64Type>,
) {
    let ts = batch
        .column_by_name(TIMESTAMP)
        .expect("timestamp is projected")
        .as_primitive::<TimestampNanosecondType>();
    let seq = batch
        .column_by_name(SEQ)
        .expect("_seq is projected")
        .as_primitive::<UInt64Type>();
    (ts, seq)
}
