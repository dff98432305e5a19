//! Query benchmark: a 2M-line corpus with planted needles, ingested by the real `silt ingest`,
//! then six queries through the engine API, warm (median of runs) and cold (new engine, page
//! cache dropped when permitted): latency and bytes read.
//!
//! `cargo build --release --workspace --bins && target/release/query-bench [LINES] [--keep DIR]
//! [--clickhouse]`
//! The `silt` binary is `$SILT_BIN` or `target/release/silt`. With `--keep DIR` an existing
//! ingested corpus there is reused (and its NDJSON kept beside it). `--clickhouse` then runs the
//! same six queries in ClickHouse (chDB, `benches/clickhouse/query_compare.py`, with the Python
//! of `$SILT_CHDB_PYTHON` or `target/chdb-env/bin/python`) on the same corpus, in the same run,
//! and prints each query's Silt / ClickHouse ratio against the must.
//! `SILT_BENCH_ONLY=text` runs only the queries whose name contains it; `SILT_BENCH_RUNS=N` sets
//! the warm runs; `SILT_BENCH_STATS=1` prints each search's `SearchStats` (blocks, rows, bytes).

/// The allocator `silt serve` runs with (server/src/main.rs), so that the engine is measured as
/// the server runs it. (Against glibc's malloc: no difference beyond this host's noise.)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use silt_benches::{CORPUS_START_NS, CorpusGenerator, to_ndjson};
use silt_engine::{DEFAULT_TENANT, Engine, EngineOptions};
use silt_query::{AggregateRequest, Metric, SearchRequest, TimeRange};

const NEEDLE_ONE: &str = "xqzneedleone";
const NEEDLE_21: &str = "xqzneedletwentyone";
const SPAN_SECS: i64 = 7200;
/// Warm runs per query (the median is reported); `SILT_BENCH_RUNS` overrides, for profiling.
const WARM_RUNS: usize = 9;

enum Job {
    Search(SearchRequest),
    Aggregate(AggregateRequest),
}

fn drop_page_cache() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn run(rt: &tokio::runtime::Runtime, engine: &Engine, job: &Job) -> (f64, u64, u64) {
    let started = Instant::now();
    let (rows, bytes) = match job {
        Job::Search(r) => {
            let result = rt
                .block_on(engine.search(DEFAULT_TENANT, r))
                .expect("search");
            if std::env::var_os("SILT_BENCH_STATS").is_some() {
                eprintln!("{:?}", result.stats);
            }
            (result.total, result.stats.bytes_read)
        }
        Job::Aggregate(r) => {
            let buckets = rt
                .block_on(engine.aggregate(DEFAULT_TENANT, r))
                .expect("aggregate");
            (buckets.len() as u64, 0)
        }
    };
    (started.elapsed().as_secs_f64() * 1000.0, rows, bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lines: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let keep = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let work = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("silt-query-bench-{}", std::process::id()))
    });
    let data = work.join("data");
    let trace_file = work.join("trace_id");

    if !data.exists() {
        let silt = std::env::var_os("SILT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/silt"));
        assert!(
            silt.exists(),
            "{} not found: cargo build --release --workspace --bins",
            silt.display()
        );
        std::fs::create_dir_all(&work).unwrap();
        let corpus = work.join("corpus.ndjson");
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&corpus).unwrap());
        let spacing = lines / 21;
        let mut trace = String::new();
        for (n, mut record) in CorpusGenerator::new(7, lines, SPAN_SECS).enumerate() {
            let n = n as u64;
            if n == lines / 2 + 3 {
                record.message.push_str(&format!(" {NEEDLE_ONE}"));
            }
            if n % spacing == spacing / 2 && n / spacing < 21 {
                record.message.push_str(&format!(" {NEEDLE_21}"));
            }
            if n == lines * 3 / 4 {
                trace = record.trace_id.clone().unwrap();
            }
            out.write_all(to_ndjson(&record).as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.flush().unwrap();
        drop(out);
        std::fs::write(&trace_file, &trace).unwrap();
        let status = std::process::Command::new(&silt)
            .args(["ingest", "--data-dir"])
            .arg(&data)
            .arg(&corpus)
            .status()
            .unwrap();
        assert!(status.success(), "silt ingest failed");
        if keep.is_none() {
            std::fs::remove_file(&corpus).unwrap();
        }
    }
    let trace = std::fs::read_to_string(&trace_file).unwrap();

    let end = CORPUS_START_NS + SPAN_SECS * 1_000_000_000;
    let search = |q: &str, time: TimeRange| {
        let mut r = SearchRequest::new(q);
        r.time = time;
        r.limit = 100;
        Job::Search(r)
    };
    let jobs: Vec<(&str, Job, &str)> = vec![
        (
            "needle, 1 hit",
            search(NEEDLE_ONE, TimeRange::ALL),
            "10 / 420",
        ),
        (
            "needle, 21 hits",
            search(NEEDLE_21, TimeRange::ALL),
            "53 / 510",
        ),
        (
            "trace_id",
            search(&format!("trace_id:{}", trace.trim()), TimeRange::ALL),
            "25 / 138",
        ),
        (
            "ERROR payment timeout, 1h, newest 100",
            search(
                "level:ERROR service:payment-service timeout",
                TimeRange::from_bounds(Some(end - 3_600_000_000_000), Some(end)),
            ),
            "16 / 85",
        ),
        (
            "count per level per minute",
            Job::Aggregate(AggregateRequest {
                query: String::new(),
                time: TimeRange::ALL,
                group_by: Some("level".into()),
                interval_ns: Some(60_000_000_000),
                metric: Metric::Count,
                top: None,
            }),
            "128 / 165",
        ),
        (
            "top-10 services by ERROR count",
            Job::Aggregate(AggregateRequest {
                query: "level:ERROR".into(),
                time: TimeRange::ALL,
                group_by: Some("service".into()),
                interval_ns: None,
                metric: Metric::Count,
                top: Some(10),
            }),
            "18 / 14",
        ),
    ];

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let open = || {
        let mut options = EngineOptions::new(&data);
        options.background_flush = false;
        Engine::open(options).expect("open data dir").0
    };
    println!("{lines} lines; ClickHouse / DuckDB reference (issue 4, this machine): ms warm");
    println!(
        "{:<40} {:>10} {:>12} {:>10} {:>12} {:>8}  {}",
        "query", "warm ms", "warm read", "cold ms", "cold read", "rows", "CH / DuckDB ms"
    );
    let warm_runs: usize = std::env::var("SILT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(WARM_RUNS);
    let mut cold_dropped = true;
    let mut silt_warm: Vec<(&str, f64)> = Vec::new();
    // SILT_BENCH_ONLY=needle runs only the queries whose name contains it (for profiling).
    let only = std::env::var("SILT_BENCH_ONLY").unwrap_or_default();
    for (name, job, reference) in jobs
        .iter()
        .filter(|(name, _, _)| name.contains(only.as_str()))
    {
        cold_dropped &= drop_page_cache();
        let engine = open();
        let (cold_ms, _, cold_bytes) = run(&rt, &engine, job);
        let mut warm: Vec<(f64, u64, u64)> =
            (0..warm_runs).map(|_| run(&rt, &engine, job)).collect();
        warm.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (warm_ms, rows, warm_bytes) = warm[warm_runs / 2];
        println!(
            "{name:<40} {warm_ms:>10.2} {:>12} {cold_ms:>10.2} {:>12} {rows:>8}  {reference}",
            human(warm_bytes),
            human(cold_bytes)
        );
        silt_warm.push((name, warm_ms));
        drop(engine);
    }
    if !cold_dropped {
        println!("(cold: new engine, but the page cache could not be dropped without root)");
    }
    if args.iter().any(|a| a == "--clickhouse") {
        compare_with_clickhouse(&work, trace.trim(), end, &silt_warm);
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// The must for each query, as the most Silt's warm time may be of ClickHouse's.
fn must_ratio(name: &str) -> f64 {
    if name.contains("count per level") || name.contains("top-10") {
        1.0
    } else {
        0.5
    }
}

/// Runs the six queries in ClickHouse (chDB) on the same corpus and prints both, side by side.
fn compare_with_clickhouse(work: &std::path::Path, trace: &str, end: i64, silt: &[(&str, f64)]) {
    let corpus = work.join("corpus.ndjson");
    if !corpus.exists() {
        eprintln!("--clickhouse needs the NDJSON corpus: run with --keep DIR on a new DIR");
        return;
    }
    let (mut command, python) = silt_benches::clickhouse_compare();
    let output = command
        .arg("--corpus")
        .arg(&corpus)
        .arg("--work")
        .arg(work.join("chdb"))
        .args(["--needle-one", NEEDLE_ONE, "--needle-21", NEEDLE_21])
        .args(["--trace-id", trace, "--end-ns", &end.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output();
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("query_compare.py failed: {}", o.status);
            return;
        }
        Err(e) => {
            eprintln!("{}", silt_benches::chdb_python_missing(&python, &e));
            return;
        }
    };
    let report: serde_json::Value = match serde_json::from_slice(&output.stdout) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("query_compare.py printed no JSON report: {e}");
            return;
        }
    };
    println!(
        "\nSame run, {} ({} body index): warm medians",
        report["engine"].as_str().unwrap_or("ClickHouse"),
        report["body_index"].as_str().unwrap_or("?")
    );
    println!(
        "{:<40} {:>10} {:>12} {:>8} {:>8}  verdict",
        "query", "Silt ms", "ClickHouse", "ratio", "must"
    );
    for (name, silt_ms) in silt {
        let Some(ch_ms) = report["queries"][*name]["warm_ms"].as_f64() else {
            continue;
        };
        let ratio = silt_ms / ch_ms;
        let must = must_ratio(name);
        println!(
            "{name:<40} {silt_ms:>10.2} {ch_ms:>12.2} {ratio:>8.2} {must:>8.2}  {}",
            if ratio <= must { "met" } else { "NOT met" }
        );
    }
}

fn human(bytes: u64) -> String {
    if bytes == 0 {
        return "-".into();
    }
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
