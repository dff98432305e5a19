//! Frozen segments, one per index version: `tests/fixtures/segment_v1/` (format 1, index 1),
//! `tests/fixtures/segment_v1_index_v2/` (format 1, index 2, seeded fingerprints) and
//! `tests/fixtures/segment_v1_index_v3/` (format 1, index 3, Golomb-Rice fingerprint sets) and
//! `tests/fixtures/segment_v2_index_v3/` (format 2, shredded attributes).
//! Each was written once by its version and kept; it must read the same forever.
//! `SILT_WRITE_FIXTURES=1` recreates the current version's (only when a version changes, into a
//! new directory).

use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::compute::concat_batches;
use silt_storage::index::Term;
use silt_storage::schema::log_schema;
use silt_storage::segment::{SegmentReader, SegmentWriter};

use crate::common::*;

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture this build writes.
const CURRENT: &str = "segment_v2_index_v3";

fn probe_terms() -> Vec<Term> {
    vec![
        Term::message_token("timeout"),
        Term::message_token("ärger"),
        Term::keyword("service", "svc-2"),
        Term::keyword("host", "web-1"),
        Term::attribute("user.id", "u-10"),
        Term::keyword("level", "error"),
        // Rare terms, found through fingerprints.
        Term::message_token("117"),
        Term::message_token("499"),
        Term::attribute("http.status", "418"),
        Term::keyword("trace_id", "no-such-trace"),
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn issue_2_segment_v1_fixture_still_reads() {
    check_fixture("segment_v1", 1).await;
}

#[tokio::test(flavor = "current_thread")]
async fn segment_index_v2_fixture_still_reads() {
    check_fixture("segment_v1_index_v2", 2).await;
}

#[tokio::test(flavor = "current_thread")]
async fn segment_index_v3_fixture_still_reads() {
    check_fixture("segment_v1_index_v3", 3).await;
}

#[tokio::test(flavor = "current_thread")]
async fn segment_v2_fixture_with_shredded_attributes_still_reads() {
    check_fixture("segment_v2_index_v3", 3).await;
    let segment = fixture_dir("segment_v2_index_v3").join("segment.parquet");
    let reader = SegmentReader::open_local(&segment).await.unwrap();
    assert_eq!(reader.footer().format_version, 2);
    assert_eq!(reader.shredded_keys(), ["user.id", "http.status"]);
}

/// The attributes of every 50th row, as `[[key, value], …]` lists.
fn sampled_attributes(rows: &arrow::array::RecordBatch) -> serde_json::Value {
    let attributes = rows.column_by_name("attributes").unwrap().as_map();
    (0..rows.num_rows())
        .step_by(50)
        .map(|row| {
            let entries = attributes.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            (0..keys.len())
                .map(|i| serde_json::json!([keys.value(i), values.value(i)]))
                .collect::<Vec<_>>()
                .into()
        })
        .collect::<Vec<serde_json::Value>>()
        .into()
}

async fn check_fixture(name: &str, index_version: u16) {
    let segment = fixture_dir(name).join("segment.parquet");
    let expected_path = fixture_dir(name).join("expected.json");
    if std::env::var_os("SILT_WRITE_FIXTURES").is_some() && name == CURRENT {
        std::fs::create_dir_all(fixture_dir(name)).unwrap();
        let mut writer = SegmentWriter::new(&segment, labels(), small_options());
        writer.push(batch(&records(2024, 700))).unwrap();
        let written = writer.finish().unwrap();
        let reader = SegmentReader::open_local(&segment).await.unwrap();
        let mut postings = serde_json::Map::new();
        for term in probe_terms() {
            let p = reader.lookup(&term).await.unwrap();
            postings.insert(
                String::from_utf8_lossy(term.as_bytes()).replace('\0', "="),
                p.iter().collect::<Vec<_>>().into(),
            );
        }
        let rows = concat_batches(&log_schema(), &reader.read(None, None).await.unwrap()).unwrap();
        let messages = rows.column_by_name("message").unwrap().as_string::<i32>();
        let expected = serde_json::json!({
            "rows": written.rows,
            "blake3": blake3::Hash::from(written.blake3).to_hex().to_string(),
            "first_message": messages.value(0),
            "last_message": messages.value(messages.len() - 1),
            "attributes_every_50th_row": sampled_attributes(&rows),
            "postings": postings,
        });
        std::fs::write(
            &expected_path,
            serde_json::to_string_pretty(&expected).unwrap(),
        )
        .unwrap();
    }
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&expected_path).unwrap()).unwrap();
    let reader = SegmentReader::open_local(&segment).await.unwrap();
    assert_eq!(reader.footer().index_version, index_version);
    assert_eq!(reader.directory().version, index_version);
    assert_eq!(reader.num_rows(), expected["rows"].as_u64().unwrap());
    let verify = reader.verify().await.unwrap();
    assert_eq!(
        blake3::Hash::from(verify.blake3).to_hex().as_str(),
        expected["blake3"].as_str().unwrap()
    );
    // Each fixture answers the probes of its time (the v1 one has fewer).
    let mut checked = 0;
    for term in probe_terms() {
        let key = String::from_utf8_lossy(term.as_bytes()).replace('\0', "=");
        let Some(want) = expected["postings"].get(&key) else {
            continue;
        };
        checked += 1;
        let want: Vec<u32> = serde_json::from_value(want.clone()).unwrap();
        let got: Vec<u32> = reader.lookup(&term).await.unwrap().iter().collect();
        assert_eq!(got, want, "{key}");
    }
    assert_eq!(checked, expected["postings"].as_object().unwrap().len());
    let rows = concat_batches(&log_schema(), &reader.read(None, None).await.unwrap()).unwrap();
    let messages = rows.column_by_name("message").unwrap().as_string::<i32>();
    assert_eq!(
        messages.value(0),
        expected["first_message"].as_str().unwrap()
    );
    assert_eq!(
        messages.value(messages.len() - 1),
        expected["last_message"].as_str().unwrap()
    );
    // Fixtures since format 2 also pin the attributes as read back.
    if let Some(want) = expected.get("attributes_every_50th_row") {
        assert_eq!(&sampled_attributes(&rows), want);
    }
}
