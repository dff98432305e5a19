//! Corpus generators shared by the storage tests.

use std::path::Path;

use arrow::array::RecordBatch;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use silt_storage::layout::{DataDir, SegmentId};
use silt_storage::record::LogRecord;
use silt_storage::schema::batch_from_records;
use silt_storage::segment::{SegmentLabels, SegmentWriter, SegmentWriterOptions, WrittenSegment};

pub const WORDS: &[&str] = &[
    "connection",
    "refused",
    "timeout",
    "user",
    "login",
    "failed",
    "GET",
    "POST",
    "/api/v1/orders",
    "cache",
    "miss",
    "hit",
    "retrying",
    "Ärger",
    "naïve",
    "ok",
    "done",
    "started",
    "shutdown",
    "payment",
];

/// `n` realistic-ish records with random order, ids, attributes and some nulls.
pub fn records(seed: u64, n: usize) -> Vec<LogRecord> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let words: Vec<String> = (0..rng.random_range(1..8))
                .map(|_| match rng.random_range(0..10) {
                    0 => format!("req-{:08x}", rng.random::<u32>()),
                    1 => format!("{}ms", rng.random_range(0..500)),
                    2 => format!(
                        "10.0.{}.{}",
                        rng.random_range(0..4),
                        rng.random_range(0..255)
                    ),
                    _ => WORDS[rng.random_range(0..WORDS.len())].to_string(),
                })
                .collect();
            let mut attributes = vec![(
                "user.id".to_string(),
                format!("u-{}", rng.random_range(0..50)),
            )];
            if rng.random_bool(0.3) {
                attributes.push((
                    "http.status".to_string(),
                    rng.random_range(200..504).to_string(),
                ));
            }
            LogRecord {
                // Unsorted on purpose, with ties: the writer must order the rows itself.
                timestamp: Some(
                    1_700_000_000_000_000_000 + rng.random_range(0..3_600i64) * 1_000_000_000,
                ),
                level: rng
                    .random_bool(0.9)
                    .then(|| ["INFO", "WARN", "ERROR", "DEBUG", "audit"][i % 5].to_string()),
                service: rng
                    .random_bool(0.95)
                    .then(|| format!("svc-{}", rng.random_range(0..5))),
                host: Some(format!("web-{}", rng.random_range(0..3))),
                trace_id: rng
                    .random_bool(0.5)
                    .then(|| format!("{:032x}", rng.random::<u128>())),
                span_id: rng
                    .random_bool(0.5)
                    .then(|| format!("{:016x}", rng.random::<u64>())),
                message: words.join(" "),
                attributes,
            }
        })
        .collect()
}

pub fn batch(records: &[LogRecord]) -> RecordBatch {
    batch_from_records(records, 1, 1_700_000_000_000_000_000)
}

pub fn labels() -> SegmentLabels {
    SegmentLabels {
        tenant: "acme".into(),
        stream: "default".into(),
        partition: "2023-11-14T22".into(),
    }
}

/// Writes `records` as one segment under `dir` with `options`, pushed as up to three batches
/// (the last first), so the writer merges batches out of order as a memtable flush does.
pub fn write_segment(
    dir: &Path,
    records: &[LogRecord],
    options: SegmentWriterOptions,
) -> WrittenSegment {
    let path =
        DataDir::new(dir).segment_path("acme", "default", "2023-11-14T22", SegmentId::generate(1));
    let mut writer = SegmentWriter::new(path, labels(), options);
    let all = batch(records);
    let cut = [
        0,
        all.num_rows() / 3,
        all.num_rows() * 2 / 3,
        all.num_rows(),
    ];
    for part in cut.windows(2).rev() {
        writer.push(all.slice(part[0], part[1] - part[0])).unwrap();
    }
    writer.finish().unwrap()
}

pub fn small_options() -> SegmentWriterOptions {
    SegmentWriterOptions {
        row_group_rows: 512,
        block_rows: 64,
        ..Default::default()
    }
}
