//! Segments are plain Parquet: the real DuckDB and pyarrow Python packages read them
//! (`scripts/check_parquet.py`). `scripts/test` installs both; `SILT_PYTHON` names the interpreter.

use std::path::PathBuf;
use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::compute::concat_batches;
use arrow::datatypes::UInt64Type;
use silt_storage::schema::log_schema;
use silt_storage::segment::{SegmentCompression, SegmentReader, SegmentWriterOptions};

use crate::common::*;

#[tokio::test(flavor = "current_thread")]
async fn duckdb_and_pyarrow_read_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut segments = Vec::new();
    for (i, (n, compression)) in [
        (3000, SegmentCompression::default()),
        (700, SegmentCompression::Lz4),
    ]
    .into_iter()
    .enumerate()
    {
        let sub = dir.path().join(format!("d{i}"));
        let options = SegmentWriterOptions {
            compression,
            ..small_options()
        };
        let written = write_segment(&sub, &records(100 + i as u64, n), options);
        let reader = SegmentReader::open_local(&written.path).await.unwrap();
        let rows = concat_batches(&log_schema(), &reader.read(None, None).await.unwrap()).unwrap();
        let seq = rows
            .column_by_name("_seq")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let message = rows.column_by_name("message").unwrap().as_string::<i32>();
        let service = rows.column_by_name("service").unwrap().as_string::<i32>();
        let attrs = rows.column_by_name("attributes").unwrap().as_map();
        let sample: Vec<_> = (0..rows.num_rows())
            .step_by(97)
            .map(|r| {
                let entries = attrs.value(r);
                let keys = entries.column(0).as_string::<i32>();
                let values = entries.column(1).as_string::<i32>();
                let user = (0..keys.len())
                    .find(|&k| keys.value(k) == "user.id")
                    .map(|k| values.value(k));
                serde_json::json!({
                    "seq": seq.value(r),
                    "message": message.value(r),
                    "service": service.is_valid(r).then(|| service.value(r)),
                    "user_id": user,
                })
            })
            .collect();
        segments.push(serde_json::json!({
            "path": written.path,
            "rows": written.rows,
            "min_timestamp": written.min_timestamp,
            "max_timestamp": written.max_timestamp,
            "seq_sum": seq.values().iter().sum::<u64>(),
            "sample": sample,
        }));
    }
    let expected = dir.path().join("expected.json");
    std::fs::write(
        &expected,
        serde_json::json!({ "segments": segments }).to_string(),
    )
    .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_parquet.py");
    let python = std::env::var("SILT_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .arg(&script)
        .arg(&expected)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{python} {} failed (scripts/test installs duckdb and pyarrow):\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
