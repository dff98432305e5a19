//! DataFusion's own Parquet scan reads Silt segments, and an access plan built from the term
//! index makes it read only the candidate rows.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::concat_batches;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use silt_query::access_plan::segment_access_plan;
use silt_storage::index::Term;
use silt_storage::layout::{DataDir, SegmentId};
use silt_storage::record::LogRecord;
use silt_storage::schema::{batch_from_records, log_schema};
use silt_storage::segment::{SegmentLabels, SegmentReader, SegmentWriter, SegmentWriterOptions};

async fn scan(
    path: &std::path::Path,
    plan: Option<datafusion::datasource::physical_plan::parquet::ParquetAccessPlan>,
) -> RecordBatch {
    let ctx = SessionContext::new();
    let size = std::fs::metadata(path).unwrap().len();
    let mut file = PartitionedFile::new(
        path.to_string_lossy().trim_start_matches('/').to_string(),
        size,
    );
    if let Some(plan) = plan {
        file = file.with_extension(plan);
    }
    let source = Arc::new(ParquetSource::new(log_schema()));
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
        .with_file(file)
        .build();
    let exec = DataSourceExec::from_data_source(config);
    let batches = collect(exec, ctx.task_ctx()).await.unwrap();
    concat_batches(&log_schema(), &batches).unwrap()
}

#[tokio::test]
async fn datafusion_reads_segments_and_honours_index_access_plans() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<LogRecord> = (0..20_000)
        .map(|i| LogRecord {
            timestamp: Some(1_700_000_000_000_000_000 + i * 1_000_000),
            service: Some(if i % 997 == 0 {
                "rare-svc".into()
            } else {
                format!("svc-{}", i % 5)
            }),
            message: format!("request {i} handled in {}ms", i % 300),
            ..Default::default()
        })
        .collect();
    let path = DataDir::new(dir.path()).segment_path("t", "s", "p", SegmentId::generate(0));
    let mut writer = SegmentWriter::new(
        &path,
        SegmentLabels::default(),
        SegmentWriterOptions {
            row_group_rows: 4096,
            block_rows: 256,
            ..Default::default()
        },
    );
    writer.push(batch_from_records(&records, 0, 0)).unwrap();
    writer.finish().unwrap();

    let all = scan(&path, None).await;
    assert_eq!(all.num_rows(), records.len());

    let reader = SegmentReader::open_local(&path).await.unwrap();
    let blocks = reader
        .lookup(&Term::keyword("service", "rare-svc"))
        .await
        .unwrap();
    let plan = segment_access_plan(&reader, &blocks);
    let some = scan(&path, Some(plan)).await;
    let services = some.column_by_name("service").unwrap().as_string::<i32>();
    let hits = services.iter().filter(|s| *s == Some("rare-svc")).count();
    assert_eq!(
        hits,
        records
            .iter()
            .filter(|r| r.service.as_deref() == Some("rare-svc"))
            .count()
    );
    assert_eq!(
        some.num_rows(),
        blocks.len() as usize * 256,
        "exactly the posting blocks are read"
    );
    assert!(
        some.num_rows() * 3 < all.num_rows(),
        "21 of 79 blocks hold a hit: the scan skips the rest"
    );
}
