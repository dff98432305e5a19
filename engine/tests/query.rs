//! The read path against brute force: random corpora (segments and memtable), random queries
//! of the search language, and the same answers from `search`, its cursors, and SQL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use silt_engine::{Engine, EngineOptions};
use silt_query::{Cursor, SearchRequest, SortOrder, TimeRange};
use silt_storage::record::LogRecord;

const WORDS: [&str; 14] = [
    "alpha",
    "beta",
    "gamma",
    "timeout",
    "connection",
    "reset",
    "Payment",
    "user",
    "42",
    "10.0.0.1",
    "Ünïcode",
    "done",
    "connect",
    "payments",
];
const SERVICES: [&str; 3] = ["api", "payment-service", "Auth"];
const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const HOUR: i64 = 3_600_000_000_000;
const BASE: i64 = 1_763_000_000_000_000_000;

/// A stored row as the brute force sees it.
#[derive(Debug, Clone)]
struct Row {
    seq: u64,
    stream: String,
    record: LogRecord,
}

fn corpus(seed: u64, n: usize) -> Vec<(String, LogRecord)> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    (0..n)
        .map(|_| {
            let words = 2 + next(6);
            let sep = [" ", " ", ", ", "-", ": ", "/"];
            let mut message = String::new();
            for w in 0..words {
                if w > 0 {
                    message.push_str(sep[next(sep.len() as u64) as usize]);
                }
                message.push_str(WORDS[next(WORDS.len() as u64) as usize]);
            }
            let mut attributes = Vec::new();
            if next(3) > 0 {
                attributes.push((
                    "http.status".to_string(),
                    ["200", "404", "500"][next(3) as usize].to_string(),
                ));
            }
            if next(2) == 0 {
                attributes.push(("duration_ms".to_string(), next(300).to_string()));
            }
            let record = LogRecord {
                timestamp: Some(BASE + next(3 * HOUR as u64 / 1_000_000) as i64 * 1_000_000),
                level: (next(7) < 6).then(|| LEVELS[next(6) as usize].to_string()),
                service: (next(4) < 3).then(|| SERVICES[next(3) as usize].to_string()),
                host: Some(format!("h{}", next(3))),
                trace_id: Some(format!("{:016x}", next(50))),
                message,
                attributes,
                ..Default::default()
            };
            let stream = if next(4) == 0 { "audit" } else { "app" };
            (stream.to_string(), record)
        })
        .collect()
}

// ----- queries and their brute-force meaning -----

#[derive(Debug, Clone)]
enum Q {
    Word(String),
    Phrase(String, String),
    Prefix(String),
    Glob(String),
    Level(String),
    LevelAtLeast(String),
    Service(String),
    Host(String),
    Status(String),
    SlowerThan(u32),
    Stream(String),
    Not(Box<Q>),
    And(Box<Q>, Box<Q>),
    Or(Box<Q>, Box<Q>),
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().flat_map(char::to_lowercase).collect())
        .collect()
}

fn glob(p: &[char], t: &[char]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some('*'), _) => glob(&p[1..], t) || (!t.is_empty() && glob(p, &t[1..])),
        (Some('?'), Some(_)) => glob(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &t[1..]),
        _ => false,
    }
}

impl Q {
    fn text(&self) -> String {
        match self {
            Q::Word(w) => w.clone(),
            Q::Phrase(a, b) => format!("\"{a} {b}\""),
            Q::Prefix(p) => format!("{p}*"),
            Q::Glob(g) => g.clone(),
            Q::Level(l) => format!("level:{l}"),
            Q::LevelAtLeast(l) => format!("level:>={l}"),
            Q::Service(s) => format!("service:{s}"),
            Q::Host(h) => format!("host:{h}"),
            Q::Status(s) => format!("attributes.http.status:{s}"),
            Q::SlowerThan(n) => format!("attributes.duration_ms:>{n}"),
            Q::Stream(s) => format!("stream:{s}"),
            Q::Not(q) => format!("-({})", q.text()),
            Q::And(a, b) => format!("({} {})", a.text(), b.text()),
            Q::Or(a, b) => format!("({} OR {})", a.text(), b.text()),
        }
    }

    fn matches(&self, row: &Row) -> bool {
        let r = &row.record;
        let attr = |k: &str| {
            r.attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        match self {
            Q::Word(w) => {
                let q = tokens(w);
                tokens(&r.message)
                    .windows(q.len())
                    .any(|win| win == q.as_slice())
            }
            Q::Phrase(a, b) => {
                let q: Vec<String> = tokens(a).into_iter().chain(tokens(b)).collect();
                tokens(&r.message)
                    .windows(q.len())
                    .any(|win| win == q.as_slice())
            }
            Q::Prefix(p) => tokens(&r.message)
                .iter()
                .any(|t| t.starts_with(&p.to_lowercase())),
            Q::Glob(g) => {
                let p: Vec<char> = g.to_lowercase().chars().collect();
                tokens(&r.message)
                    .iter()
                    .any(|t| glob(&p, &t.chars().collect::<Vec<_>>()))
            }
            Q::Level(l) => r.level.as_deref() == Some(l.to_uppercase().as_str()),
            Q::LevelAtLeast(l) => {
                let rank = |x: &str| LEVELS.iter().position(|y| *y == x);
                r.level
                    .as_deref()
                    .and_then(rank)
                    .is_some_and(|x| x >= rank(l).unwrap())
            }
            Q::Service(s) => r.service.as_deref() == Some(s),
            Q::Host(h) => r.host.as_deref() == Some(h),
            Q::Status(s) => attr("http.status") == Some(s),
            Q::SlowerThan(n) => attr("duration_ms")
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v > f64::from(*n)),
            Q::Stream(s) => row.stream == *s,
            Q::Not(q) => !q.matches(row),
            Q::And(a, b) => a.matches(row) && b.matches(row),
            Q::Or(a, b) => a.matches(row) || b.matches(row),
        }
    }
}

fn leaf() -> impl Strategy<Value = Q> {
    let word = prop::sample::select(WORDS.to_vec()).prop_map(str::to_string);
    prop_oneof![
        3 => word.clone().prop_map(Q::Word),
        1 => (word.clone(), word.clone()).prop_map(|(a, b)| Q::Phrase(a, b)),
        1 => prop::sample::select(vec!["con", "pay", "ti", "ü", "4"]).prop_map(|p| Q::Prefix(p.into())),
        1 => prop::sample::select(vec!["*ment", "c?nnect*", "*e*", "p*s"]).prop_map(|g| Q::Glob(g.into())),
        1 => prop::sample::select(vec!["ERROR", "warn", "info"]).prop_map(|l| Q::Level(l.into())),
        1 => prop::sample::select(vec!["WARN", "DEBUG"]).prop_map(|l| Q::LevelAtLeast(l.into())),
        1 => prop::sample::select(SERVICES.to_vec()).prop_map(|s| Q::Service(s.into())),
        1 => prop::sample::select(vec!["h0", "h2"]).prop_map(|s| Q::Host(s.into())),
        1 => prop::sample::select(vec!["200", "500"]).prop_map(|s| Q::Status(s.into())),
        1 => (0u32..300).prop_map(Q::SlowerThan),
        1 => prop::sample::select(vec!["app", "audit"]).prop_map(|s| Q::Stream(s.into())),
    ]
}

fn query() -> impl Strategy<Value = Q> {
    leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|q| Q::Not(Box::new(q))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Q::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Q::Or(Box::new(a), Box::new(b))),
        ]
    })
}

// ----- fixtures -----

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    rows: Vec<Row>,
    rt: tokio::runtime::Runtime,
}

/// Ingests a corpus in four requests: the first two flushed into segments, the rest left in
/// the memtable.
fn fixture(seed: u64, n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new(dir.path());
    options.background_flush = false;
    options.partition_min_rows = 1;
    options.segment.row_group_rows = 512;
    options.segment.block_rows = 64;
    let (engine, _) = Engine::open(options).unwrap();
    let data = corpus(seed, n);
    let mut rows = Vec::new();
    for (part, chunk) in data.chunks(n.div_ceil(4)).enumerate() {
        for stream in ["app", "audit"] {
            let records: Vec<LogRecord> = chunk
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, r)| r.clone())
                .collect();
            let receipt = engine.ingest("t1", stream, &records).unwrap();
            rows.extend(records.into_iter().enumerate().map(|(i, record)| Row {
                seq: receipt.first_seq + i as u64,
                stream: stream.to_string(),
                record,
            }));
        }
        if part < 2 {
            engine.flush_all().unwrap();
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Fixture {
        _dir: dir,
        engine,
        rows,
        rt,
    }
}

fn seqs(batch: &RecordBatch) -> Vec<u64> {
    batch
        .column_by_name("_seq")
        .unwrap()
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec()
}

fn keys(batch: &RecordBatch) -> Vec<(i64, u64)> {
    let ts = batch
        .column_by_name("timestamp")
        .unwrap()
        .as_primitive::<TimestampNanosecondType>();
    ts.values().iter().copied().zip(seqs(batch)).collect()
}

/// Expected hits newest first.
fn expected(f: &Fixture, q: &Q, time: TimeRange) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = f
        .rows
        .iter()
        .filter(|r| {
            let ts = r.record.timestamp.unwrap();
            ts >= time.min && ts <= time.max && q.matches(r)
        })
        .map(|r| (r.record.timestamp.unwrap(), r.seq))
        .collect();
    out.sort_by(|a, b| b.cmp(a));
    out
}

#[test]
fn search_equals_brute_force_on_random_corpora_and_queries() {
    for seed in [1u64, 2] {
        let f = fixture(seed, 3000);
        assert!(
            f.engine.memtable_rows("t1") > 0,
            "part of the corpus stays in the memtable"
        );
        assert!(
            f.engine.catalog().state().tenant_segments("t1").len() >= 4,
            "and part is in segments"
        );
        let mut runner = TestRunner::new(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        });
        let window = prop_oneof![Just(None), (0i64..3 * 60, 1i64..90).prop_map(Some)];
        runner
            .run(&(query(), window), |(q, window)| {
                let time = match window {
                    None => TimeRange::ALL,
                    Some((start_min, len_min)) => {
                        let from = BASE + start_min * 60_000_000_000;
                        TimeRange::from_bounds(Some(from), Some(from + len_min * 60_000_000_000))
                    }
                };
                let want = expected(&f, &q, time);
                let mut request = SearchRequest::new(q.text());
                request.time = time;
                request.limit = 100_000;
                let result = f.rt.block_on(f.engine.search("t1", &request)).map_err(|e| TestCaseError::fail(format!("{}: {e}", q.text())))?;
                prop_assert_eq!(keys(&result.hits), want.clone(), "query {}", q.text());
                prop_assert_eq!(result.total, want.len() as u64);
                prop_assert!(result.total_exact);

                // Small pages through cursors give the same rows, in the same order.
                let mut paged = Vec::new();
                request.limit = 211;
                loop {
                    let page = f.rt.block_on(f.engine.search("t1", &request)).unwrap();
                    prop_assert_eq!(page.total, want.len() as u64);
                    paged.extend(keys(&page.hits));
                    match page.next_cursor {
                        Some(c) => request.cursor = Some(c),
                        None => break,
                    }
                }
                prop_assert_eq!(paged, want.clone(), "paged {}", q.text());

                // Oldest first, paged, is the same rows the other way round.
                let mut paged = Vec::new();
                request.cursor = None;
                request.order = SortOrder::OldestFirst;
                request.limit = 97;
                loop {
                    let page = f.rt.block_on(f.engine.search("t1", &request)).unwrap();
                    prop_assert_eq!(page.total, want.len() as u64);
                    paged.extend(keys(&page.hits));
                    match page.next_cursor {
                        Some(c) => request.cursor = Some(c),
                        None => break,
                    }
                }
                let oldest_first: Vec<(i64, u64)> = want.iter().rev().copied().collect();
                prop_assert_eq!(paged, oldest_first, "oldest first {}", q.text());
                request.order = SortOrder::NewestFirst;
                request.cursor = None;

                // SQL's search() means the same.
                let text = q.text().replace('\'', "''");
                let sql = format!(
                    "SELECT timestamp, _seq FROM logs WHERE search('{text}') AND timestamp >= {} AND timestamp <= {} ORDER BY timestamp DESC, _seq DESC",
                    format!("to_timestamp_nanos({})", time.min.max(0)),
                    format!("to_timestamp_nanos({})", time.max),
                );
                let batches = f.rt.block_on(f.engine.sql("t1", &sql)).map_err(|e| TestCaseError::fail(format!("{sql}: {e}")))?;
                let got: Vec<(i64, u64)> = batches.iter().flat_map(keys).collect();
                prop_assert_eq!(got, want, "sql {}", sql);
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn needles_read_only_their_blocks() {
    let f = fixture(7, 4000);
    let needle = LogRecord {
        timestamp: Some(BASE + HOUR),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        message: "needle in the haystack".into(),
        ..Default::default()
    };
    f.engine.ingest("t1", "app", &[needle]).unwrap();
    f.engine.flush_all().unwrap();
    let mut request = SearchRequest::new("trace_id:4bf92f3577b34da6a3ce929d0e0e4736");
    request.limit = 10;
    let result = f.rt.block_on(f.engine.search("t1", &request)).unwrap();
    assert_eq!(result.total, 1);
    assert_eq!(result.hits.num_rows(), 1);
    assert!(
        result.stats.blocks_scanned < result.stats.blocks_total / 2,
        "{:?}",
        result.stats
    );
    assert!(result.stats.bytes_read > 0);
}

#[test]
fn bad_queries_are_user_errors_with_a_position() {
    let f = fixture(3, 200);
    let err =
        f.rt.block_on(
            f.engine
                .search("t1", &SearchRequest::new("level:ERROR a) b")),
        )
        .unwrap_err();
    assert!(err.is_user_error());
    assert_eq!(err.to_string(), "unexpected ')' at column 14");
    let mut request = SearchRequest::new("a");
    request.cursor = Some("nonsense".into());
    assert!(
        f.rt.block_on(f.engine.search("t1", &request))
            .unwrap_err()
            .is_user_error()
    );
    let err =
        f.rt.block_on(
            f.engine
                .sql("t1", "SELECT * FROM logs WHERE search('foo:bar')"),
        )
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert!(err.to_string().contains("unknown field 'foo'"), "{err}");
    let err =
        f.rt.block_on(f.engine.sql("t1", "SELECT nope FROM logs"))
            .unwrap_err();
    assert!(err.is_user_error(), "{err}");
}

#[test]
fn tenants_never_see_each_other() {
    let f = fixture(4, 500);
    f.engine
        .ingest(
            "other",
            "app",
            &[LogRecord {
                message: "secret alpha".into(),
                ..Default::default()
            }],
        )
        .unwrap();
    let result =
        f.rt.block_on(f.engine.search("other", &SearchRequest::new("alpha")))
            .unwrap();
    assert_eq!(result.total, 1);
    let rows: usize =
        f.rt.block_on(f.engine.sql("other", "SELECT * FROM logs"))
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
    assert_eq!(rows, 1);
    let result =
        f.rt.block_on(f.engine.search("t1", &SearchRequest::new("secret")))
            .unwrap();
    assert_eq!(result.total, 0);
    let nobody =
        f.rt.block_on(f.engine.search("nobody", &SearchRequest::new("")))
            .unwrap();
    assert_eq!(nobody.total, 0);
}

#[test]
fn cursors_neither_skip_nor_repeat_while_ingest_and_flushes_run() {
    let f = Arc::new(fixture(5, 2000));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (f, stop) = (f.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut written: Vec<Row> = Vec::new();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch = corpus(1000 + i, 50);
                let records: Vec<LogRecord> = batch.into_iter().map(|(_, r)| r).collect();
                let receipt = f.engine.ingest("t1", "app", &records).unwrap();
                written.extend(records.into_iter().enumerate().map(|(k, record)| Row {
                    seq: receipt.first_seq + k as u64,
                    stream: "app".into(),
                    record,
                }));
                if i % 3 == 0 {
                    f.engine.flush_all().unwrap();
                }
                i += 1;
            }
            written
        })
    };
    let q = Q::Or(
        Box::new(Q::Word("alpha".into())),
        Box::new(Q::Level("ERROR".into())),
    );
    let mut request = SearchRequest::new(q.text());
    request.limit = 25;
    let mut got = Vec::new();
    let mut mark = None;
    let mut pages = 0;
    loop {
        let page = f.rt.block_on(f.engine.search("t1", &request)).unwrap();
        got.extend(keys(&page.hits));
        pages += 1;
        match page.next_cursor {
            Some(c) => {
                mark.get_or_insert(Cursor::decode(&c).unwrap().mark);
                request.cursor = Some(c);
            }
            None => break,
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(pages > 10, "paging overlapped with ingest ({pages} pages)");
    let mark = mark.unwrap();
    let mut all: Vec<Row> = f.rows.clone();
    all.extend(written);
    let mut want: Vec<(i64, u64)> = all
        .iter()
        .filter(|r| r.seq <= mark && q.matches(r))
        .map(|r| (r.record.timestamp.unwrap(), r.seq))
        .collect();
    want.sort_by(|a, b| b.cmp(a));
    let unique: BTreeSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no row repeated");
    assert_eq!(
        got, want,
        "every row up to the first page's mark, once, newest first"
    );
}

#[test]
fn aggregations_count_like_brute_force() {
    let f = fixture(6, 2500);
    let request = silt_query::AggregateRequest {
        query: "-level:DEBUG".into(),
        time: TimeRange::ALL,
        group_by: Some("level".into()),
        interval_ns: Some(HOUR),
        metric: silt_query::Metric::Count,
        top: None,
    };
    let buckets = f.rt.block_on(f.engine.aggregate("t1", &request)).unwrap();
    let mut want: BTreeMap<(i64, Option<String>), u64> = BTreeMap::new();
    for r in &f.rows {
        if r.record.level.as_deref() == Some("DEBUG") {
            continue;
        }
        let ts = r.record.timestamp.unwrap();
        *want
            .entry((ts - ts.rem_euclid(HOUR), r.record.level.clone()))
            .or_default() += 1;
    }
    let got: BTreeMap<(i64, Option<String>), u64> = buckets
        .iter()
        .map(|b| ((b.time.unwrap(), b.group.clone()), b.count))
        .collect();
    assert_eq!(got, want);

    let top = silt_query::AggregateRequest {
        query: "level:ERROR".into(),
        group_by: Some("service".into()),
        interval_ns: None,
        top: Some(2),
        ..request.clone()
    };
    let buckets = f.rt.block_on(f.engine.aggregate("t1", &top)).unwrap();
    let mut counts: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for r in f
        .rows
        .iter()
        .filter(|r| r.record.level.as_deref() == Some("ERROR"))
    {
        *counts.entry(r.record.service.clone()).or_default() += 1;
    }
    let mut ranked: Vec<(u64, Option<String>)> = counts.into_iter().map(|(s, c)| (c, s)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0].count, ranked[0].0);
    assert_eq!(buckets[1].count, ranked[1].0);

    let p = silt_query::AggregateRequest {
        query: "".into(),
        group_by: None,
        interval_ns: None,
        top: None,
        metric: silt_query::Metric::Avg("duration_ms".into()),
        ..request
    };
    let buckets = f.rt.block_on(f.engine.aggregate("t1", &p)).unwrap();
    let values: Vec<f64> = f
        .rows
        .iter()
        .filter_map(|r| {
            r.record
                .attributes
                .iter()
                .find(|(k, _)| k == "duration_ms")
                .map(|(_, v)| v.parse::<f64>().unwrap())
        })
        .collect();
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    assert_eq!(buckets.len(), 1);
    assert!(
        (buckets[0].value.unwrap() - avg).abs() < 1e-9,
        "{buckets:?} vs {avg}"
    );
}

#[test]
fn sql_search_with_attributes_under_or_resolves_its_columns() {
    // Found by the differential test: the rewritten expression's `attributes` column was left
    // unqualified and an optimizer rule saw it next to `logs.attributes`.
    let f = fixture(8, 600);
    let q = Q::And(
        Box::new(Q::LevelAtLeast("WARN".into())),
        Box::new(Q::Or(
            Box::new(Q::Level("warn".into())),
            Box::new(Q::Status("200".into())),
        )),
    );
    let sql = format!(
        "SELECT timestamp, _seq FROM logs WHERE search('{}') AND timestamp >= to_timestamp_nanos(0) ORDER BY timestamp DESC, _seq DESC",
        q.text()
    );
    let batches = f.rt.block_on(f.engine.sql("t1", &sql)).unwrap();
    let got: Vec<(i64, u64)> = batches.iter().flat_map(keys).collect();
    assert_eq!(got, expected(&f, &q, TimeRange::ALL));
}

/// `segment_bytes_read` of `EXPLAIN ANALYZE sql`.
fn segment_bytes_read(f: &Fixture, sql: &str) -> u64 {
    let batches =
        f.rt.block_on(f.engine.sql("t1", &format!("EXPLAIN ANALYZE {sql}")))
            .unwrap();
    let text: String = batches
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let at = text.find("segment_bytes_read=").expect("metric") + "segment_bytes_read=".len();
    // DataFusion prints counts as `812`, `12.34 K` or `1.20 M`.
    let mut words = text[at..].split([' ', ',', ']']);
    let number: f64 = words.next().unwrap().parse().unwrap();
    let scale = match words.next() {
        Some("K") => 1e3,
        Some("M") => 1e6,
        Some("B") => 1e9,
        _ => 1.0,
    };
    (number * scale) as u64
}

#[test]
fn sql_reads_shredded_attributes_like_the_map() {
    // Both keys are frequent, so every segment stores them as columns of their own; SQL sees
    // the same `attributes` as before, and `attributes['k']` reads only k's column.
    let f = fixture(9, 3000);
    let batches =
        f.rt.block_on(f.engine.sql(
            "t1",
            "SELECT _seq, attributes, attributes['http.status'] AS status FROM logs ORDER BY _seq",
        ))
        .unwrap();
    let mut got = BTreeMap::new();
    for b in &batches {
        let seq = b.column(0).as_primitive::<UInt64Type>();
        let attrs = b.column(1).as_map();
        let status = b.column(2).as_string::<i32>();
        for row in 0..b.num_rows() {
            let entries = attrs.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let mut list: Vec<(String, String)> = (0..keys.len())
                .map(|i| (keys.value(i).to_owned(), values.value(i).to_owned()))
                .collect();
            list.sort();
            let status = status.is_valid(row).then(|| status.value(row).to_owned());
            got.insert(seq.value(row), (list, status));
        }
    }
    assert_eq!(got.len(), f.rows.len());
    for row in &f.rows {
        let mut want = row.record.attributes.clone();
        want.sort();
        let status = want
            .iter()
            .find(|(k, _)| k == "http.status")
            .map(|(_, v)| v.clone());
        assert_eq!(got[&row.seq], (want, status), "seq {}", row.seq);
    }

    // A filter on a shredded key gives the brute-force rows.
    let sql = "SELECT _seq FROM logs WHERE attributes['http.status'] = '500' AND CAST(attributes['duration_ms'] AS INT) < 100 ORDER BY _seq";
    let batches = f.rt.block_on(f.engine.sql("t1", sql)).unwrap();
    let got: Vec<u64> = batches.iter().flat_map(seqs).collect();
    let want: Vec<u64> = f
        .rows
        .iter()
        .filter(|r| {
            let attr = |k: &str| {
                r.record
                    .attributes
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            attr("http.status") == Some("500")
                && attr("duration_ms").is_some_and(|d| d.parse::<i32>().unwrap() < 100)
        })
        .map(|r| r.seq)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);

    // One key's column is a fraction of the whole map.
    let one = segment_bytes_read(&f, "SELECT attributes['duration_ms'] FROM logs");
    let whole = segment_bytes_read(&f, "SELECT attributes FROM logs");
    assert!(one * 2 < whole, "one key read {one} bytes, the map {whole}");
}
