//! Query benchmark: a 2M-line corpus with planted needles, ingested by the real `silt ingest`,
//! then six queries through the engine API, warm (median of runs) and cold (new engine, page
//! cache dropped when permitted): latency and bytes read.
//!
//! `cargo build --release --workspace --bins && target/release/query-bench [LINES] [--keep DIR]`
//! The `silt` binary is `$SILT_BIN` or `target/release/silt`. With `--keep DIR` an existing
//! ingested corpus there is reused. `SILT_BENCH_ONLY=text` runs only the queries whose name
//! contains it; `SILT_BENCH_STATS=1` prints each search's `SearchStats` (blocks, rows, bytes).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use silt_benches::{CORPUS_START_NS, CorpusGenerator, to_ndjson};
use silt_engine::{DEFAULT_TENANT, Engine, EngineOptions};
use silt_query::{AggregateRequest, Metric, SearchRequest, TimeRange};

const NEEDLE_ONE: &str = "xqzneedleone";
const NEEDLE_21: &str = "xqzneedletwentyone";
const SPAN_SECS: i64 = 7200;
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
        std::fs::remove_file(&corpus).unwrap();
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
    let mut cold_dropped = true;
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
            (0..WARM_RUNS).map(|_| run(&rt, &engine, job)).collect();
        warm.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (warm_ms, rows, warm_bytes) = warm[WARM_RUNS / 2];
        println!(
            "{name:<40} {warm_ms:>10.2} {:>12} {cold_ms:>10.2} {:>12} {rows:>8}  {reference}",
            human(warm_bytes),
            human(cold_bytes)
        );
        drop(engine);
    }
    if !cold_dropped {
        println!("(cold: new engine, but the page cache could not be dropped without root)");
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
}

fn human(bytes: u64) -> String {
    if bytes == 0 {
        return "-".into();
    }
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
