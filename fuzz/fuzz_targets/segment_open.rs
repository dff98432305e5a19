//! Arbitrary bytes as a whole segment file: footer, key-value metadata, index directory, blocks
//! and rows, shredded attributes folded back. Seed the corpus with real segments
//! (`storage/tests/fixtures/segment_v1`, `storage/tests/fixtures/segment_v2_index_v3`).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use silt_storage::index::Term;
use silt_storage::segment::{SegmentFile, SegmentReader};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let store = Arc::new(InMemory::new());
        let path = Path::from("fuzz.parquet");
        store.put(&path, PutPayload::from(bytes::Bytes::copy_from_slice(data))).await.unwrap();
        let Ok(file) = SegmentFile::open_object(store as Arc<dyn ObjectStore>, path).await else { return };
        let Ok(reader) = SegmentReader::open(file).await else { return };
        let _ = reader.lookup(&Term::message_token("error")).await;
        let _ = reader.lookup_prefix(&Term::prefix("service", b"a")).await;
        let _ = reader.read(None, None).await;
    });
});
