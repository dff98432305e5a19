//! Measures the embedded index against the segment on a realistic corpus, for several posting
//! granularities: `cargo run --release -p silt-benches --bin index-size [LINES] [BLOCK_ROWS...]`.
//! The figures in docs/format.md ("Posting granularity") come from this tool.

use std::time::Instant;

use silt_benches::{CorpusGenerator, to_ndjson};
use silt_storage::index::Term;
use silt_storage::schema::batch_from_records;
use silt_storage::segment::{SegmentLabels, SegmentReader, SegmentWriter, SegmentWriterOptions};

const HOUR_NS: i64 = 3_600_000_000_000;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let lines = args.first().copied().unwrap_or(2_000_000);
    let granularities: Vec<u32> = if args.len() > 1 {
        args[1..].iter().map(|&b| b as u32).collect()
    } else {
        vec![256, 1024, 4096]
    };
    // Two hours of logs: two hourly partitions, as the engine would write them.
    let records: Vec<_> = CorpusGenerator::new(42, lines, 7200).collect();
    let raw_bytes: u64 = records.iter().map(|r| to_ndjson(r).len() as u64 + 1).sum();
    let needle_trace = records[records.len() / 3].trace_id.clone().unwrap();
    println!(
        "corpus: {lines} lines, {raw_bytes} bytes NDJSON ({} bytes/line)",
        raw_bytes / lines.max(1)
    );
    let dir = tempfile_dir();
    println!(
        "{:>10} {:>12} {:>12} {:>7} {:>10} {:>9} {:>10} {:>14} {:>9}",
        "block_rows",
        "file_bytes",
        "index_bytes",
        "index%",
        "terms",
        "raw/disk",
        "write_s",
        "trace_lookup_B",
        "needle_rows"
    );
    for &block_rows in &granularities {
        let mut file_bytes = 0;
        let mut index_bytes = 0;
        let mut terms = 0;
        let mut lookup_bytes = 0;
        let mut needle_rows = 0;
        let mut by_kind = std::collections::BTreeMap::<String, (u64, u64)>::new();
        let started = Instant::now();
        let mut paths = Vec::new();
        for (p, chunk) in records
            .chunk_by(|a, b| a.timestamp.unwrap() / HOUR_NS == b.timestamp.unwrap() / HOUR_NS)
            .enumerate()
        {
            let path = dir.join(format!("seg-{block_rows}-{p}.parquet"));
            let options = SegmentWriterOptions {
                block_rows,
                ..Default::default()
            };
            let mut writer = SegmentWriter::new(&path, SegmentLabels::default(), options);
            writer.push(batch_from_records(chunk, 0, 0)).unwrap();
            let written = writer.finish().unwrap();
            file_bytes += written.bytes;
            index_bytes += written.index.total_bytes;
            terms += written.index.terms;
            for (k, (t, b)) in &written.index.by_kind {
                let e = by_kind.entry(k.clone()).or_default();
                e.0 += t;
                e.1 += b;
            }
            paths.push(path);
        }
        let write_s = started.elapsed().as_secs_f64();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for path in &paths {
            let reader = rt.block_on(SegmentReader::open_local(path)).unwrap();
            let before = reader.bytes_read();
            let blocks = rt
                .block_on(reader.lookup(&Term::keyword("trace_id", &needle_trace)))
                .unwrap();
            lookup_bytes += reader.bytes_read() - before;
            needle_rows += blocks.len() as u64 * u64::from(block_rows);
        }
        println!(
            "{block_rows:>10} {file_bytes:>12} {index_bytes:>12} {:>6.1}% {terms:>10} {:>8.1}x {write_s:>10.2} {lookup_bytes:>14} {needle_rows:>9}",
            index_bytes as f64 * 100.0 / file_bytes as f64,
            raw_bytes as f64 / file_bytes as f64,
        );
        for (kind, (t, b)) in &by_kind {
            println!(
                "{:>12} {kind:<12} {t:>10} terms {b:>12} raw entry bytes",
                ""
            );
        }
        for path in paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("silt-index-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
