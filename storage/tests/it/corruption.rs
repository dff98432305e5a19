//! Damaged segments: every flipped byte and every truncation gives a clean error naming the
//! file, or (where the byte does not matter) exactly the right rows and postings. Never a panic.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use roaring::RoaringBitmap;
use silt_storage::index::Term;
use silt_storage::schema::log_schema;
use silt_storage::segment::{SegmentFile, SegmentReader};

use crate::common::*;

struct Outcome {
    rows: Option<RecordBatch>,
    postings: Vec<Option<RoaringBitmap>>,
    /// Whether reading the whole dictionary succeeded.
    all_terms_ok: bool,
    open_error: Option<String>,
}

fn probe_terms() -> Vec<Term> {
    vec![
        Term::message_token("timeout"),
        Term::keyword("service", "svc-1"),
        Term::attribute("user.id", "u-3"),
        Term::keyword("level", "error"),
    ]
}

/// Opens `bytes` as a segment object (checking the page index against `page_index_crc32c`, as
/// catalog-backed opens do) and reads everything a query could.
async fn probe(bytes: Bytes, page_index_crc32c: Option<u32>) -> Outcome {
    let store = Arc::new(InMemory::new());
    let path = ObjectPath::from("seg.parquet");
    store.put(&path, PutPayload::from(bytes)).await.unwrap();
    let file = SegmentFile::open_object(store as Arc<dyn ObjectStore>, path)
        .await
        .unwrap();
    let reader = match SegmentReader::open_verified(file, page_index_crc32c).await {
        Ok(r) => r,
        Err(e) => {
            assert!(
                e.to_string().contains("seg.parquet"),
                "error must name the file: {e}"
            );
            return Outcome {
                rows: None,
                postings: vec![],
                all_terms_ok: false,
                open_error: Some(e.to_string()),
            };
        }
    };
    let rows = match reader.read(None, None).await {
        Ok(b) => Some(concat_batches(&log_schema(), &b).unwrap()),
        Err(e) => {
            assert!(
                e.to_string().contains("seg.parquet"),
                "error must name the file: {e}"
            );
            None
        }
    };
    let mut postings = Vec::new();
    for term in probe_terms() {
        postings.push(reader.lookup(&term).await.ok());
    }
    // Reads and checks every term block and fingerprint partition.
    let all_terms_ok = reader.verify().await.is_ok();
    Outcome {
        rows,
        postings,
        all_terms_ok,
        open_error: None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_flipped_byte_is_an_error_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_segment(dir.path(), &records(3, 600), small_options());
    let original = Bytes::from(std::fs::read(&written.path).unwrap());
    let crc = Some(written.page_index_crc32c);
    let good = probe(original.clone(), crc).await;
    let good_rows = good.rows.clone().unwrap();
    assert!(
        good.postings
            .iter()
            .all(|p| p.as_ref().is_some_and(|p| !p.is_empty()))
    );

    let index_start = written.index_offset as usize;
    let index_end = index_start + written.index.total_bytes as usize;
    let len = original.len();
    // Every byte of the index directory and of the page index and footer; a sample of the
    // term blocks and row groups (their checksums are tested byte by byte elsewhere).
    let directory_end = index_start + written.index.directory_bytes as usize;
    let positions = (0..index_start)
        .step_by(37)
        .chain(index_start..directory_end)
        .chain((directory_end..index_end).step_by(5))
        .chain(index_end..len);
    for at in positions {
        let mut damaged = original.to_vec();
        damaged[at] ^= 0x5a;
        let outcome = probe(Bytes::from(damaged), crc).await;
        if outcome.open_error.is_some() {
            continue;
        }
        if at < directory_end {
            assert!(
                outcome.rows.is_none(),
                "byte {at} of the row groups or directory: damage not detected"
            );
        } else if at < index_end {
            assert!(
                !outcome.all_terms_ok,
                "byte {at} of the term blocks: damage not detected"
            );
        }
        if let Some(rows) = &outcome.rows {
            assert_eq!(rows, &good_rows, "byte {at}: rows changed without an error");
        }
        for (got, want) in outcome.postings.iter().zip(&good.postings) {
            if let Some(got) = got {
                assert_eq!(
                    Some(got),
                    want.as_ref(),
                    "byte {at}: postings changed without an error"
                );
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn truncated_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_segment(dir.path(), &records(4, 800), small_options());
    let original = std::fs::read(&written.path).unwrap();
    for len in (0..original.len())
        .step_by(97)
        .chain([original.len() - 1, original.len() - 8])
    {
        let outcome = probe(Bytes::copy_from_slice(&original[..len]), None).await;
        let err = outcome
            .open_error
            .unwrap_or_else(|| panic!("truncated to {len} bytes but opened"));
        assert!(err.contains("corrupt"), "{err}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn checksum_errors_say_which_section() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_segment(dir.path(), &records(5, 800), small_options());
    let original = std::fs::read(&written.path).unwrap();

    let mut damaged = original.clone();
    damaged[written.index_offset as usize + 30] ^= 1; // inside the directory header
    let err = probe(Bytes::from(damaged), None).await.open_error.unwrap();
    assert!(err.contains("index directory checksum mismatch"), "{err}");

    let mut damaged = original.clone();
    let page_index = written.index_offset as usize + written.index.total_bytes as usize + 2;
    damaged[page_index] ^= 1; // inside the page index
    let err = probe(Bytes::from(damaged), Some(written.page_index_crc32c))
        .await
        .open_error
        .unwrap();
    // Either Parquet's decoder or the page index checksum refuses it, naming the file.
    assert!(
        err.contains("corrupt segment") && err.contains("seg.parquet"),
        "{err}"
    );

    let mut damaged = original.clone();
    damaged[100] ^= 1; // inside the first column chunk
    let outcome = probe(Bytes::from(damaged), None).await;
    assert!(outcome.open_error.is_none());
    assert!(
        outcome.rows.is_none(),
        "a damaged data page must not be decoded"
    );

    let mut damaged = original.clone();
    let last = written.index_offset as usize + written.index.total_bytes as usize - 3;
    damaged[last] ^= 1; // inside the last term block
    let outcome = probe(Bytes::from(damaged), None).await;
    assert!(outcome.open_error.is_none());
    assert!(
        !outcome.all_terms_ok,
        "the damaged block must fail when read"
    );
}
