//! Pinned `EXPLAIN` plans (golden files in tests/golden/) showing that time ranges prune
//! segments, search terms prune segments and blocks through the index, and the memtable is
//! scanned too. `SILT_UPDATE_GOLDEN=1` rewrites the files.

use arrow::array::{AsArray, RecordBatch};
use silt_engine::{Engine, EngineOptions};
use silt_storage::record::LogRecord;

const HOUR: i64 = 3_600_000_000_000;
const BASE: i64 = 1_795_219_200_000_000_000; // 2026-11-21T00:00:00Z

fn engine(dir: &std::path::Path) -> Engine {
    engine_with_partitions(dir, 2)
}

fn engine_with_partitions(dir: &std::path::Path, partitions: usize) -> Engine {
    let mut options = EngineOptions::new(dir);
    options.background_flush = false;
    options.partition_min_rows = 1;
    options.segment.row_group_rows = 1024;
    options.segment.block_rows = 256;
    options.query.target_partitions = partitions;
    // Identical bytes on every run: the index seeds its fingerprints from the footer digest, and
    // the arrival times are part of the data, so a real clock would let a rare term's fingerprint
    // collide in another segment now and then and change the plan.
    options.clock = || BASE + 6 * HOUR;
    let (engine, _) = Engine::open(options).unwrap();
    for hour in 0..4 {
        let records: Vec<LogRecord> = (0..2000)
            .map(|i| LogRecord {
                timestamp: Some(BASE + hour * HOUR + i * 1_000_000_000),
                level: Some(if i % 50 == 0 { "ERROR" } else { "INFO" }.into()),
                service: Some(format!("svc-{}", i % 7)),
                trace_id: Some(format!("{:032x}", hour * 10_000 + i)),
                message: format!("request {i} served in {} ms", i % 97),
                ..Default::default()
            })
            .collect();
        engine.ingest("t", "app", &records).unwrap();
    }
    engine.flush_all().unwrap();
    engine
        .ingest(
            "t",
            "app",
            &[LogRecord {
                timestamp: Some(BASE + 5 * HOUR),
                message: "fresh row".into(),
                ..Default::default()
            }],
        )
        .unwrap();
    engine
}

fn normalize(plan: &str, dir: &std::path::Path) -> String {
    let dir = dir.to_string_lossy().trim_start_matches('/').to_string();
    let mut out = String::new();
    for line in plan.replace(&dir, "<dir>").lines() {
        // Segment file names hold random ids.
        let mut cleaned = String::new();
        for (i, part) in line.split(".parquet").enumerate() {
            if i > 0 {
                cleaned.push_str("<segment>.parquet");
            }
            let cut = if i + 1 < line.split(".parquet").count() {
                part.rfind('/').map_or(part.len(), |p| p + 1)
            } else {
                part.len()
            };
            cleaned.push_str(&part[..cut]);
        }
        out.push_str(cleaned.trim_end());
        out.push('\n');
    }
    out
}

fn explain(engine: &Engine, rt: &tokio::runtime::Runtime, sql: &str) -> String {
    let batches: Vec<RecordBatch> = rt
        .block_on(engine.sql("t", &format!("EXPLAIN {sql}")))
        .unwrap();
    let mut out = String::new();
    for b in &batches {
        let kind = b.column(0).as_string::<i32>();
        let plan = b.column(1).as_string::<i32>();
        for i in 0..b.num_rows() {
            if kind.value(i) == "physical_plan" {
                out.push_str(plan.value(i));
            }
        }
    }
    out
}

fn check(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("SILT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with SILT_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        actual, expected,
        "plan for {name} changed (SILT_UPDATE_GOLDEN=1 to accept)"
    );
}

#[test]
fn explain_plans_show_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = [
        ("trace_id_search", format!("SELECT timestamp, message FROM logs WHERE search('trace_id:{:032x}')", 2 * 10_000 + 777)),
        (
            "time_range_count",
            "SELECT count(*) FROM logs WHERE timestamp >= '2026-11-21T01:00:00Z' AND timestamp < '2026-11-21T02:00:00Z'".to_string(),
        ),
        ("phrase_and_level", "SELECT service, count(*) FROM logs WHERE search('level:ERROR \"served in 3 ms\"') GROUP BY service".to_string()),
    ];
    for (name, sql) in &cases {
        let plan = normalize(&explain(&engine, &rt, sql), dir.path());
        assert!(plan.contains("LogsScanExec"), "{plan}");
        check(name, &plan);
    }

    // EXPLAIN ANALYZE reports what was pruned and read.
    let batches = rt
        .block_on(engine.sql("t", &format!("EXPLAIN ANALYZE {}", cases[0].1)))
        .unwrap();
    let text: String = batches
        .iter()
        .map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert!(text.contains("segments_pruned_by_index=3"), "{text}");
    assert!(text.contains("segment_bytes_read="), "{text}");
}

#[test]
fn newest_first_limit_skips_older_segments() {
    let dir = tempfile::tempdir().unwrap();
    // One partition: the segments are scanned one after another, so TopK's filter from the
    // newest reaches the older ones before they are read. With two, whether it arrives in time
    // was a race between the partitions (the test failed now and then on a busy machine).
    let engine = engine_with_partitions(dir.path(), 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sql = "SELECT timestamp, message FROM logs ORDER BY timestamp DESC LIMIT 5";
    let batches = rt.block_on(engine.sql("t", sql)).unwrap();
    let ts: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .values()
                .to_vec()
        })
        .collect();
    let last_flushed = BASE + 3 * HOUR + 1999 * 1_000_000_000;
    assert_eq!(
        ts,
        vec![
            BASE + 5 * HOUR,
            last_flushed,
            last_flushed - 1_000_000_000,
            last_flushed - 2_000_000_000,
            last_flushed - 3_000_000_000
        ]
    );
    let analyzed = rt
        .block_on(engine.sql("t", &format!("EXPLAIN ANALYZE {sql}")))
        .unwrap();
    let text: String = analyzed
        .iter()
        .map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert!(
        text.contains("DynamicFilter"),
        "TopK's filter reaches the scan: {text}"
    );
    // 4 segments of 2 row groups: the older ones are skipped once the newest fill the top 5.
    let pruned = text
        .split("row_groups_pruned_statistics=8 total → ")
        .nth(1)
        .expect("row group pruning metric");
    let matched: u32 = pruned.split(' ').next().unwrap().parse().unwrap();
    assert!(matched <= 4, "{matched} of 8 row groups read: {text}");
}
