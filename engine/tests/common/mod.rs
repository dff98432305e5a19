//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test binary uses a subset

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use silt_storage::catalog::Catalog;
use silt_storage::layout::DataDir;
use silt_storage::segment::{SegmentFile, SegmentReader};

/// Every row in `tenant`'s segments, read through the catalog: `_seq` → message. Fails on a
/// duplicate `_seq` or a segment whose row count differs from its catalog entry.
pub fn segment_rows(dir: &Path, tenant: &str) -> BTreeMap<u64, String> {
    let data = DataDir::new(dir);
    let state = Catalog::read_only(&data.catalog_dir()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut out = BTreeMap::new();
    for entry in state.tenant_segments(tenant) {
        let file = SegmentFile::open_local(&data.root().join(&entry.location)).unwrap();
        let reader = rt
            .block_on(SegmentReader::open_verified(
                file,
                Some(entry.page_index_crc32c),
            ))
            .unwrap();
        assert_eq!(reader.num_rows(), entry.rows);
        let batches: Vec<RecordBatch> = rt
            .block_on(reader.read(Some(&["_seq", "message"]), None))
            .unwrap();
        for b in batches {
            let seq = b
                .column_by_name("_seq")
                .unwrap()
                .as_primitive::<UInt64Type>();
            let msg = b.column_by_name("message").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                assert!(
                    out.insert(seq.value(i), msg.value(i).to_string()).is_none(),
                    "_seq {} twice",
                    seq.value(i)
                );
            }
        }
    }
    out
}
