//! The write path end to end on real files: ingest → WAL → memtable → flush → segments →
//! catalog → WAL truncated, and what a restart finds after each step.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::segment_rows;
use silt_engine::{Engine, EngineOptions};
use silt_storage::catalog::Catalog;
use silt_storage::layout::DataDir;
use silt_storage::record::LogRecord;

fn options(dir: &Path) -> EngineOptions {
    EngineOptions {
        background_flush: false,
        partition_min_rows: 100,
        ..EngineOptions::new(dir)
    }
}

fn request(id: u64, rows: usize, hour: i64) -> Vec<LogRecord> {
    (0..rows)
        .map(|j| LogRecord {
            timestamp: Some(1_763_683_200_000_000_000 + hour * 3_600_000_000_000 + j as i64),
            level: Some("INFO".into()),
            message: format!("request {id} row {j}"),
            attributes: vec![("req".into(), id.to_string())],
            ..Default::default()
        })
        .collect()
}

/// Bytes in the tenant's WAL files.
fn wal_bytes(dir: &Path, tenant: &str) -> u64 {
    wal_files(dir, tenant)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn wal_files(dir: &Path, tenant: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(DataDir::new(dir).wal_dir(tenant))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn ingest_flush_and_reopen_keep_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    let mut expected = BTreeMap::new();
    for id in 0..20u64 {
        let rows = request(id, 50, (id % 3) as i64);
        let receipt = engine.ingest("acme", "web", &rows).unwrap();
        assert_eq!(receipt.rows, 50);
        for (j, r) in rows.iter().enumerate() {
            expected.insert(receipt.first_seq + j as u64, r.message.clone());
        }
    }
    assert_eq!(engine.memtable_rows("acme"), 1000);
    engine.flush_all().unwrap();
    assert_eq!(engine.memtable_rows("acme"), 0);
    assert_eq!(segment_rows(dir.path(), "acme"), expected);
    let state = engine.catalog().state();
    assert_eq!(state.flushed_seq("acme"), Some(999));
    assert_eq!(
        wal_bytes(dir.path(), "acme"),
        0,
        "the flush truncated the wal"
    );
    assert!(
        state
            .segments
            .values()
            .all(|s| s.stream == "web" && s.tenant == "acme")
    );
    drop(engine);

    let (engine, report) = Engine::open(options(dir.path())).unwrap();
    assert_eq!(
        report.wal_rows_replayed, 0,
        "the wal was truncated after the flush"
    );
    let receipt = engine.ingest("acme", "web", &request(99, 1, 0)).unwrap();
    assert_eq!(receipt.first_seq, 1000, "seqs continue after a restart");
    engine.shutdown().unwrap();
    assert_eq!(segment_rows(dir.path(), "acme").len(), 1001);
}

#[test]
fn acknowledged_rows_survive_a_restart_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    for id in 0..5 {
        engine
            .ingest("acme", "default", &request(id, 10, 0))
            .unwrap();
    }
    drop(engine); // no shutdown: nothing flushed
    assert!(segment_rows(dir.path(), "acme").is_empty());
    let (engine, report) = Engine::open(options(dir.path())).unwrap();
    assert_eq!(report.wal_rows_replayed, 50);
    assert_eq!(engine.memtable_rows("acme"), 50);
    engine.shutdown().unwrap();
    let rows = segment_rows(dir.path(), "acme");
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
}

#[test]
fn issue_3_crash_between_catalog_commit_and_wal_truncation_adds_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    for id in 0..3 {
        engine
            .ingest("acme", "default", &request(id, 10, 0))
            .unwrap();
    }
    // Keep the WAL as it was before the flush truncates it.
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = wal_files(dir.path(), "acme")
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    engine.flush_all().unwrap();
    drop(engine);
    for (path, bytes) in saved {
        std::fs::write(path, bytes).unwrap();
    }
    let (engine, report) = Engine::open(options(dir.path())).unwrap();
    assert_eq!(
        report.wal_rows_replayed, 0,
        "rows already in segments are skipped on replay"
    );
    engine.ingest("acme", "default", &request(7, 1, 0)).unwrap();
    engine.shutdown().unwrap();
    assert_eq!(segment_rows(dir.path(), "acme").len(), 31);
}

#[test]
fn unlogged_rows_skip_the_wal_and_are_durable_once_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let unlogged = |dir: &Path| EngineOptions {
        unlogged: true,
        ..options(dir)
    };
    // Rows acknowledged through the WAL before, then replayed into a bulk load: they come first.
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    engine
        .ingest("acme", "default", &request(0, 10, 0))
        .unwrap();
    drop(engine);
    let (engine, report) = Engine::open(unlogged(dir.path())).unwrap();
    assert_eq!(report.wal_rows_replayed, 10);
    let logged_bytes = wal_bytes(dir.path(), "acme");
    let fsyncs = engine.wal_fsyncs();
    let mut receipts = Vec::new();
    for id in 1..4 {
        receipts.push(
            engine
                .ingest("acme", "default", &request(id, 10, 0))
                .unwrap(),
        );
    }
    assert_eq!(
        receipts.iter().map(|r| r.first_seq).collect::<Vec<_>>(),
        [10, 20, 30],
        "seqs follow the replayed rows"
    );
    assert_eq!(
        wal_bytes(dir.path(), "acme"),
        logged_bytes,
        "nothing was written to the wal"
    );
    assert_eq!(engine.wal_fsyncs(), fsyncs, "nor fsynced");
    assert_eq!(
        engine.memtable_rows("acme"),
        40,
        "acknowledged rows are readable"
    );
    assert_eq!(engine.flushed_seq("acme"), None);
    engine.flush_all().unwrap();
    assert_eq!(engine.flushed_seq("acme"), Some(39));
    assert_eq!(
        wal_bytes(dir.path(), "acme"),
        0,
        "the flush truncated the replayed rows' wal"
    );

    // Rows not yet flushed when the process ends are gone, and their seqs are given again.
    engine
        .ingest("acme", "default", &request(4, 10, 0))
        .unwrap();
    drop(engine);
    let (engine, report) = Engine::open(unlogged(dir.path())).unwrap();
    assert_eq!(report.wal_rows_replayed, 0);
    let receipt = engine
        .ingest("acme", "default", &request(5, 10, 0))
        .unwrap();
    assert_eq!(receipt.first_seq, 40);
    engine.shutdown().unwrap();
    let rows = segment_rows(dir.path(), "acme");
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    assert_eq!(rows[&0], "request 0 row 0");
    assert_eq!(rows[&40], "request 5 row 0");

    // A logged engine afterwards appends where the bulk load stopped, and replays cleanly.
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    let receipt = engine
        .ingest("acme", "default", &request(6, 10, 0))
        .unwrap();
    assert_eq!(receipt.first_seq, 50);
    drop(engine);
    let (engine, report) = Engine::open(options(dir.path())).unwrap();
    assert_eq!(report.wal_rows_replayed, 10);
    engine.shutdown().unwrap();
    assert_eq!(segment_rows(dir.path(), "acme").len(), 60);
}

#[test]
fn orphan_and_temp_segments_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    engine
        .ingest("acme", "default", &request(0, 10, 0))
        .unwrap();
    engine.shutdown().unwrap();
    let partition = DataDir::new(dir.path()).partition_dir("acme", "default", "2026-11");
    std::fs::create_dir_all(&partition).unwrap();
    std::fs::write(
        partition.join("0123456789abcdef0123456789abcdef.parquet"),
        b"half a flush",
    )
    .unwrap();
    std::fs::write(partition.join(".tmp-x.parquet"), b"torn").unwrap();
    let (_engine, report) = Engine::open(options(dir.path())).unwrap();
    assert_eq!(report.orphan_files_removed, 2);
    assert_eq!(segment_rows(dir.path(), "acme").len(), 10);
}

#[test]
fn a_second_engine_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, _) = Engine::open(options(dir.path())).unwrap();
    let err = Engine::open(options(dir.path())).err().unwrap().to_string();
    assert!(
        err.contains(&format!("in use by process {}", std::process::id())),
        "{err}"
    );
}

#[test]
fn every_acknowledged_ingest_was_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    engine.ingest("acme", "default", &request(0, 1, 0)).unwrap();
    for id in 1..20 {
        let before = engine.wal_fsyncs();
        engine
            .ingest("acme", "default", &request(id, 3, 0))
            .unwrap();
        assert_eq!(
            engine.wal_fsyncs(),
            before + 1,
            "ingest {id} returned without its own fsync"
        );
    }
}

#[test]
fn sparse_data_makes_few_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(EngineOptions {
        partition_min_rows: 1000,
        ..options(dir.path())
    })
    .unwrap();
    // Two lines every five hours for a year.
    let rows: Vec<LogRecord> = (0..24 * 365 / 5)
        .flat_map(|h| request(h as u64, 2, h * 5))
        .collect();
    engine.ingest("acme", "default", &rows).unwrap();
    engine.shutdown().unwrap();
    let state = Catalog::read_only(&DataDir::new(dir.path()).catalog_dir()).unwrap();
    assert!(
        state.segments.len() <= 13,
        "{} segments for a sparse year",
        state.segments.len()
    );
    assert_eq!(
        state.segments.values().map(|s| s.rows).sum::<u64>(),
        rows.len() as u64
    );
}

#[test]
fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(options(dir.path())).unwrap();
    assert!(
        engine
            .ingest("../etc", "default", &request(0, 1, 0))
            .is_err()
    );
    assert!(engine.ingest("acme", "a/b", &request(0, 1, 0)).is_err());
}

#[test]
fn background_flush_writes_segments_on_size() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        flush_bytes: 64 << 10,
        background_flush: true,
        ..options(dir.path())
    };
    let (engine, _) = Engine::open(options).unwrap();
    for id in 0..50 {
        engine
            .ingest("acme", "default", &request(id, 100, 0))
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while engine.catalog().state().segments.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no background flush");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    engine.shutdown().unwrap();
    assert_eq!(segment_rows(dir.path(), "acme").len(), 5000);
}

#[test]
fn many_small_tenants_over_the_memory_limit_get_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        flush_bytes: 64 << 20,
        memtable_limit_bytes: 256 << 10,
        background_flush: true,
        ..options(dir.path())
    };
    let (engine, _) = Engine::open(options).unwrap();
    // Each tenant stays far below its flush size; together they pass the limit many times over.
    for round in 0..20 {
        for t in 0..5 {
            engine
                .ingest(&format!("t{t}"), "default", &request(round, 200, 0))
                .unwrap();
        }
    }
    assert!(
        !engine.catalog().state().segments.is_empty(),
        "the memory limit forced flushes"
    );
    engine.shutdown().unwrap();
}

const FULL_SEGMENTS_CHILD: &str = "SILT_FULL_SEGMENTS_DIR";

/// Segments cannot be written (their directory is a full tmpfs, mounted in a private user and
/// mount namespace) while the WAL can: once memtables pass their limit, ingest fails with the
/// flush's error instead of waiting for ever, and after space comes back every acknowledged
/// row is flushed, once.
#[test]
fn ingest_over_the_memory_limit_fails_while_flushes_fail_then_recovers() {
    if let Some(dir) = std::env::var_os(FULL_SEGMENTS_CHILD) {
        full_segments_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    silt_storage::test_support::rerun_in_mount_namespace(
        "ingest_over_the_memory_limit_fails_while_flushes_fail_then_recovers",
        FULL_SEGMENTS_CHILD,
        dir.path(),
    );
}

fn full_segments_child(dir: &Path) {
    let segments = DataDir::new(dir).segments_dir();
    silt_storage::test_support::mount_tmpfs(&segments, "4m");
    // All but 40 KiB taken by a file the operator will delete.
    let filler = segments.join("filler");
    std::fs::write(&filler, vec![1u8; (4096 - 40) << 10]).unwrap();
    let options = EngineOptions {
        flush_bytes: 64 << 10,
        memtable_limit_bytes: 512 << 10,
        background_flush: true,
        ..options(dir)
    };
    let (engine, _) = Engine::open(options.clone()).unwrap();
    let mut acked = BTreeMap::new();
    let mut id = 0u64;
    let error = loop {
        assert!(id < 10_000, "ingest never failed");
        let rows = request(id, 200, 0);
        match engine.ingest("acme", "default", &rows) {
            Ok(receipt) => {
                for (j, r) in rows.iter().enumerate() {
                    acked.insert(receipt.first_seq + j as u64, r.message.clone());
                }
            }
            Err(e) => break e.to_string(),
        }
        id += 1;
    };
    assert!(
        error.contains("cannot be flushed") && error.contains("No space left on device"),
        "{error}"
    );
    assert!(engine.last_flush_error().is_some());

    // Space again: the next flush takes the memtables (after the retry delay) and ingest works.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let rows = request(id, 200, 0);
        id += 1;
        if let Ok(receipt) = engine.ingest("acme", "default", &rows) {
            for (j, r) in rows.iter().enumerate() {
                acked.insert(receipt.first_seq + j as u64, r.message.clone());
            }
            break;
        }
        assert!(std::time::Instant::now() < deadline, "ingest never resumed");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    engine.shutdown().unwrap();
    assert_eq!(segment_rows(dir, "acme"), acked);
}
