//! The `logs` table provider: one tenant's segments (pruned by time and the term index, read
//! by DataFusion's Parquet scan through Silt's checked readers) plus its memtable batches.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::projection::{ProjectionExec, make_with_child};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_datasource::TableSchema;
use roaring::RoaringBitmap;
use silt_storage::segment::SegmentReader;

use crate::access_plan::segment_access_plan;
use crate::pruning::{IndexPredicate, TimeRange, candidate_blocks};
use crate::search::STREAM;
use crate::shredded::ShreddedAttributesAdapterFactory;
use crate::snapshot::{TableSnapshot, is_narrow, is_narrow_column, sql_file_schema, sql_schema};

/// One tenant's `logs` table over a snapshot.
#[derive(Debug)]
pub struct LogsTable {
    snapshot: Arc<TableSnapshot>,
}

impl LogsTable {
    pub fn new(snapshot: Arc<TableSnapshot>) -> Self {
        Self { snapshot }
    }
}

/// The reader of a segment attached to its `PartitionedFile`.
#[derive(Debug, Clone)]
struct SegmentHandle(SegmentReader);

/// Hands DataFusion Silt's own reader for each segment: metadata already validated (with the
/// page index), every data read checked against the stripe checksums.
#[derive(Debug)]
struct SegmentReaderFactory;

impl ParquetFileReaderFactory for SegmentReaderFactory {
    fn create_reader(
        &self,
        _partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        _metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        match file.extension::<SegmentHandle>() {
            Some(handle) => Ok(Box::new(handle.0.file().clone())),
            None => {
                datafusion::common::internal_err!("segment {} has no reader attached", file.path())
            }
        }
    }
}

/// What the scan pruned before reading, shown by `EXPLAIN` and `EXPLAIN ANALYZE`.
#[derive(Debug, Default, Clone)]
struct PruneReport {
    segments_total: usize,
    segments_pruned_by_time: usize,
    segments_pruned_by_index: usize,
    blocks_total: u64,
    blocks_selected: u64,
    memtable_rows: usize,
}

#[async_trait]
impl TableProvider for LogsTable {
    fn schema(&self) -> SchemaRef {
        sql_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune segments, blocks and pages; DataFusion re-applies them to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = sql_schema();
        // The file columns of the SQL schema, handed to the Parquet reader so it decodes the
        // keyword columns as dictionaries and views directly.
        let file_schema = sql_file_schema();
        let time = TimeRange::from_filters(filters);
        let index = IndexPredicate::from_filters(filters);
        let mut report = PruneReport {
            segments_total: self.snapshot.segments.len(),
            ..Default::default()
        };
        let mut files = Vec::new();
        let mut readers = Vec::new();
        let mut entries: Vec<_> = self.snapshot.segments.iter().collect();
        // Newest first: a LIMIT without ORDER BY sees rows of recent segments (within one, the
        // first service's cluster), and TopK fills sooner.
        entries.sort_by_key(|e| std::cmp::Reverse(e.max_timestamp));
        for entry in entries {
            if !time.overlaps(entry.min_timestamp, entry.max_timestamp) {
                report.segments_pruned_by_time += 1;
                continue;
            }
            let reader = self
                .snapshot
                .opener
                .open(entry)
                .await
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?
                .for_query();
            let posting_blocks = reader.directory().posting_blocks();
            report.blocks_total += u64::from(posting_blocks);
            let blocks = candidate_blocks(&reader, &index, time)
                .await
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            if blocks.as_ref().is_some_and(RoaringBitmap::is_empty) {
                report.segments_pruned_by_index += 1;
                continue;
            }
            report.blocks_selected += blocks
                .as_ref()
                .map_or(u64::from(posting_blocks), RoaringBitmap::len);
            let mut file = PartitionedFile::new(entry.location.clone(), entry.bytes)
                .with_arrow_schema(reader.with_shred_fields(file_schema.clone()))
                .with_partition_values(vec![ScalarValue::Utf8(Some(entry.stream.clone()))])
                .with_extension(SegmentHandle(reader.clone()));
            if let Some(blocks) = &blocks {
                file = file.with_extension(segment_access_plan(&reader, blocks));
            }
            files.push(file);
            readers.push(reader);
        }

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            let table_schema = TableSchema::builder(file_schema.clone())
                .with_table_partition_cols(vec![Arc::new(Field::new(
                    STREAM,
                    datafusion::arrow::datatypes::DataType::Utf8,
                    false,
                ))])
                .build();
            // Late materialisation: filter columns are decoded first, the rest only for the
            // rows that pass (most log filters keep a small fraction). Not worth it when every
            // column read is narrow: decoding them all beats building row selections.
            let narrow_only = projection
                .is_some_and(|p| p.iter().all(|&i| is_narrow_column(schema.field(i).name())))
                && filters.iter().all(is_narrow);
            let mut source = ParquetSource::new(table_schema)
                .with_parquet_file_reader_factory(Arc::new(SegmentReaderFactory))
                .with_enable_page_index(true)
                .with_pushdown_filters(!narrow_only)
                .with_reorder_filters(true);
            if let Some(predicate) = conjunction(filters.iter().cloned()) {
                let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
            }
            let partitions = state.config().target_partitions().max(1);
            let mut groups: Vec<Vec<PartitionedFile>> =
                vec![Vec::new(); partitions.min(files.len())];
            for (i, file) in files.into_iter().enumerate() {
                let n = groups.len();
                groups[i % n].push(file);
            }
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                    .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                    .with_projection_indices(projection.cloned())?
                    .with_expr_adapter(Some(Arc::new(ShreddedAttributesAdapterFactory)))
                    .with_limit(limit)
                    .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        let mem: Vec<_> = self
            .snapshot
            .memtable
            .iter()
            .map(|m| m.with_stream_for_sql())
            .collect();
        report.memtable_rows = mem.iter().map(|b| b.num_rows()).sum();
        if !mem.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[mem],
                schema.clone(),
                projection.cloned(),
            )?);
        }
        let child: Arc<dyn ExecutionPlan> = if inputs.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            Arc::new(EmptyExec::new(projected))
        } else {
            UnionExec::try_new(inputs)?
        };
        Ok(Arc::new(LogsScanExec {
            child,
            report,
            readers: Arc::new(readers),
        }))
    }
}

/// The scan of `logs`: its child reads segments and memtable; this node reports pruning.
#[derive(Debug)]
pub struct LogsScanExec {
    child: Arc<dyn ExecutionPlan>,
    report: PruneReport,
    readers: Arc<Vec<SegmentReader>>,
}

impl LogsScanExec {
    /// Bytes this scan's segment readers have fetched so far.
    pub fn bytes_read(&self) -> u64 {
        self.readers.iter().map(SegmentReader::bytes_read).sum()
    }
}

impl DisplayAs for LogsScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let r = &self.report;
        write!(
            f,
            "LogsScanExec: segments={}/{} (pruned: {} by time, {} by index), blocks={}/{}, memtable_rows={}",
            r.segments_total - r.segments_pruned_by_time - r.segments_pruned_by_index,
            r.segments_total,
            r.segments_pruned_by_time,
            r.segments_pruned_by_index,
            r.blocks_selected,
            r.blocks_total,
            r.memtable_rows
        )
    }
}

impl ExecutionPlan for LogsScanExec {
    fn name(&self) -> &str {
        "LogsScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.child.properties()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> Result<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.child]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let child = children.pop().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("LogsScanExec needs a child".into())
        })?;
        Ok(Arc::new(LogsScanExec {
            child,
            report: self.report.clone(),
            readers: self.readers.clone(),
        }))
    }

    // Takes a projection above it down to its inputs, the Parquet scan absorbing it: DataFusion
    // stops at a node that does not, and the scan would then decode whole columns for
    // `attributes['k']`, where a segment's shredded key is a column of its own.
    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let child = match self.child.downcast_ref::<UnionExec>() {
            Some(union) => {
                let inputs = union
                    .inputs()
                    .iter()
                    .map(|input| make_with_child(projection, input))
                    .collect::<Result<Vec<_>>>()?;
                UnionExec::try_new(inputs)?
            }
            None => make_with_child(projection, &self.child)?,
        };
        Ok(Some(Arc::new(LogsScanExec {
            child,
            report: self.report.clone(),
            readers: self.readers.clone(),
        })))
    }

    // Passes TopK's dynamic filter (the post-optimization phase) to the Parquet scan, so
    // ORDER BY timestamp DESC LIMIT n skips row groups that cannot make the top n. Static
    // filters already reached the scan through the table provider.
    fn gather_filters_for_pushdown(
        &self,
        phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<FilterDescription> {
        match phase {
            FilterPushdownPhase::Post => {
                FilterDescription::from_children(parent_filters, &self.children())
            }
            FilterPushdownPhase::Pre => Ok(FilterDescription::all_unsupported(
                &parent_filters,
                &self.children(),
            )),
        }
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.child.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        let set = ExecutionPlanMetricsSet::new();
        let r = &self.report;
        MetricBuilder::new(&set)
            .global_counter("segments_pruned_by_time")
            .add(r.segments_pruned_by_time);
        MetricBuilder::new(&set)
            .global_counter("segments_pruned_by_index")
            .add(r.segments_pruned_by_index);
        MetricBuilder::new(&set)
            .global_counter("blocks_pruned")
            .add((r.blocks_total - r.blocks_selected) as usize);
        MetricBuilder::new(&set)
            .global_counter("segment_bytes_read")
            .add(self.bytes_read() as usize);
        Some(set.clone_inner())
    }
}
