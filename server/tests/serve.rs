//! `silt serve` end to end: the real binary on a loopback socket, real HTTP requests, real
//! key files, real SIGTERM and SIGKILL.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

#[test]
fn times_without_a_zone_read_at_the_requests_utc_offset() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // Times without a zone read at the request's offset (header, else query parameter).
    let r = ingest(
        &server,
        None,
        "text/plain",
        &[("X-Silt-Utc-Offset", "+02:00")],
        b"2026-11-22 12:03:00 INFO formzone header\n",
    );
    assert_eq!(r["ingested"], 1);
    let (status, _, body) = server.post_raw(
        "/v1/logs/ingest?utc_offset=-01:00",
        &[("Content-Type", "text/plain")],
        b"2026-11-22 09:03:01 INFO formzone query\n",
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = server.post_raw(
        "/v1/logs/ingest?utc_offset=CET",
        &[("Content-Type", "text/plain")],
        b"2026-11-22 09:03:01 INFO formzone refused\n",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let zoned = server.search(None, "formzone");
    let mut stamps: Vec<&str> = zoned["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["timestamp"].as_str().unwrap())
        .collect();
    stamps.sort();
    assert_eq!(stamps, ["2026-11-22T10:03:00Z", "2026-11-22T10:03:01Z"]);
}

#[test]
fn every_body_form_and_encoding_is_ingested_and_seen_exactly_by_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("SILT_LIMITS__MAX_BODY_BYTES", "262144")]);

    let json_doc = json!({"logs": [
        {"timestamp": "2026-11-22T10:00:00Z", "level": "error", "service": "pay", "message": "formjson one", "order": 7},
        {"timestamp": "2026-11-22T10:00:01Z", "level": "info", "service": "pay", "message": "formjson two"},
        "not an object",
    ]});
    let r = ingest(
        &server,
        None,
        "application/json",
        &[],
        json_doc.to_string().as_bytes(),
    );
    assert_eq!(
        (r["ingested"].as_u64(), r["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r["errors"][0]["index"], 2);

    let ndjson = "{\"ts\":\"2026-11-22T10:01:00Z\",\"level\":\"WARN\",\"service\":\"web\",\"msg\":\"formndjson a\"}\n{broken\n{\"ts\":\"2026-11-22T10:01:01Z\",\"level\":\"WARN\",\"msg\":\"formndjson b\"}\n";
    let r = ingest(
        &server,
        None,
        "application/x-ndjson",
        &[("X-Silt-Stream", "edge")],
        ndjson.as_bytes(),
    );
    assert_eq!(
        (r["ingested"].as_u64(), r["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r["errors"][0]["index"], 1);

    let text = "2026-11-22 10:02:00 ERROR formtext first line\n2026-11-22 10:02:01 INFO formtext second line\n";
    let r = ingest(&server, None, "text/plain", &[], text.as_bytes());
    assert_eq!(r["ingested"], 2);

    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"{\"level\":\"error\",\"message\":\"formgzip x\"}\n")
            .unwrap();
        e.finish().unwrap()
    };
    let r = server.post_raw(
        "/v1/logs/ingest?stream=zipped",
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        &gz,
    );
    assert_eq!(r.0, 202, "{}", String::from_utf8_lossy(&r.2));
    let zs = zstd::encode_all(&b"formzstd y\nformzstd z\n"[..], 3).unwrap();
    let r = server.post_raw(
        "/v1/logs/ingest?stream=zipped",
        &[("Content-Type", "text/plain"), ("Content-Encoding", "zstd")],
        &zs,
    );
    assert_eq!(r.0, 202, "{}", String::from_utf8_lossy(&r.2));

    // Oversized (also after decompression) and unreadable bodies: precise errors, nothing kept.
    // An announced length over the limit is refused before a byte of the body is read.
    let big = vec![b'a'; 300_000];
    let answer = raw_http(
        &server.url,
        "POST /v1/logs/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 300000\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    let bomb = zstd::encode_all(&big[..], 3).unwrap();
    let (status, _, _) = server.post_raw(
        "/v1/logs/ingest",
        &[("Content-Type", "text/plain"), ("Content-Encoding", "zstd")],
        &bomb,
    );
    assert_eq!(status, 413);
    let (status, _, body) = server.post_raw(
        "/v1/logs/ingest",
        &[("Content-Type", "application/json")],
        b"{\"logs\": [",
    );
    assert_eq!(status, 400);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["type"], "invalid_json");
    let (status, _, _) = server.post_raw(
        "/v1/logs/ingest",
        &[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(status, 400);
    let (status, _, _) = server.post_raw(
        "/v1/logs/ingest?stream=../x",
        &[("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(status, 400);

    // Search sees exactly what was sent.
    assert_eq!(total(&server.search(None, "formjson")), 2);
    assert_eq!(total(&server.search(None, "formndjson")), 2);
    assert_eq!(total(&server.search(None, "formtext")), 2);
    assert_eq!(total(&server.search(None, "formgzip")), 1);
    assert_eq!(total(&server.search(None, "formzstd")), 2);
    assert_eq!(total(&server.search(None, "")), 9);
    let hit = &server.search(None, "formjson level:ERROR")["hits"][0];
    assert_eq!(hit["message"], "formjson one");
    assert_eq!(hit["service"], "pay");
    assert_eq!(hit["timestamp"], "2026-11-22T10:00:00Z");
    assert_eq!(hit["attributes"]["order"], "7");

    // Paging with a cursor returns every hit once.
    let (_, page1) = server.post_json("/v1/logs/search", None, &json!({"query": "", "limit": 5}));
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "", "limit": 5, "cursor": cursor}),
    );
    assert_eq!(
        page1["hits"].as_array().unwrap().len() + page2["hits"].as_array().unwrap().len(),
        9
    );
    assert!(page2["next_cursor"].is_null());

    // Oldest first, paged; a cursor keeps to its order.
    let (status, asc) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "formjson OR formndjson", "limit": 3, "sort": "asc"}),
    );
    assert_eq!(status, 200, "{asc}");
    let messages: Vec<&str> = asc["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["formjson one", "formjson two", "formndjson a"]);
    let cursor = asc["next_cursor"].as_str().unwrap();
    let (_, rest) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "formjson OR formndjson", "sort": "asc", "cursor": cursor}),
    );
    assert_eq!(rest["hits"][0]["message"], "formndjson b");
    let (status, _) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "formjson", "cursor": cursor}),
    );
    assert_eq!(status, 400);
    let (status, _) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "", "sort": "level"}),
    );
    assert_eq!(status, 400);

    // The time range: `to` is exclusive.
    let (_, r) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "formjson OR formndjson",
        "time_range": {"from": "2026-11-22T10:00:01Z", "to": "2026-11-22T10:01:01Z"}}),
    );
    assert_eq!(total(&r), 2);
    let (status, r) = server.get("/v1/logs/search?q=formtext&last=100000d", None);
    assert_eq!(status, 200);
    assert_eq!(total(&serde_json::from_slice(&r).unwrap()), 2);

    // SQL and aggregations agree.
    let rows = server.sql(
        None,
        "SELECT stream, count(*) AS n FROM logs GROUP BY stream ORDER BY stream",
    );
    assert_eq!(
        rows,
        vec![
            vec![json!("default"), json!(4)],
            vec![json!("edge"), json!(2)],
            vec![json!("zipped"), json!(3)]
        ]
    );
    let (status, agg) = server.post_json(
        "/v1/logs/aggregate",
        None,
        &json!({"query": "", "group_by": "level"}),
    );
    assert_eq!(status, 200, "{agg}");
    let errors = agg["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["group"] == "ERROR")
        .unwrap();
    assert_eq!(errors["count"], 3);
    let (status, agg) = server.post_json(
        "/v1/logs/aggregate",
        None,
        &json!({"query": "formjson OR formndjson", "interval": "1m"}),
    );
    assert_eq!(status, 200, "{agg}");
    assert_eq!(agg["buckets"][0]["time"], "2026-11-22T10:00:00Z");
    assert_eq!(agg["buckets"][0]["count"], 2);

    // `top` with an interval: the top groups over the whole range, bucket by bucket.
    let (status, agg) = server.post_json(
        "/v1/logs/aggregate",
        None,
        &json!({"group_by": "level", "interval": "1m", "top": 1}),
    );
    assert_eq!(status, 200, "{agg}");
    let buckets = agg["buckets"].as_array().unwrap();
    assert!(buckets.iter().all(|b| b["group"] == "ERROR"), "{agg}");
    assert_eq!(
        buckets
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );

    // SQL as CSV and as an Arrow IPC stream.
    let sql = serde_json::to_vec(&json!({"query": "SELECT message, timestamp FROM logs WHERE search('formjson') ORDER BY timestamp"})).unwrap();
    let (status, _, csv) = server.post_raw(
        "/v1/sql",
        &[("Content-Type", "application/json"), ("Accept", "text/csv")],
        &sql,
    );
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        "message,timestamp\nformjson one,2026-11-22T10:00:00Z\nformjson two,2026-11-22T10:00:01Z\n"
    );
    let (status, _, arrow) = server.post_raw(
        "/v1/sql",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/vnd.apache.arrow.stream"),
        ],
        &sql,
    );
    assert_eq!(status, 200);
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow), None)
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);

    // User errors are 400s with a type and, for the search language, a position.
    let (status, err) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "level:ERROR AND (x"}),
    );
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "search_syntax_error");
    assert!(err["error"]["position"].as_u64().is_some(), "{err}");
    let (status, err) =
        server.post_json("/v1/sql", None, &json!({"query": "SELECT nope FROM logs"}));
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["type"], "sql_error");
    // Errors that come from the data at run time are the caller's too.
    let (status, err) = server.post_json(
        "/v1/sql",
        None,
        &json!({"query": "SELECT CAST(message AS INT) FROM logs"}),
    );
    assert_eq!(status, 400, "{err}");
    // A query body over its limit is refused without being read.
    let answer = raw_http(
        &server.url,
        "POST /v1/sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // SQL is read-only: no reading or writing server files, no session changes.
    for statement in [
        "CREATE EXTERNAL TABLE leak STORED AS PARQUET LOCATION '/'",
        "COPY (SELECT 1) TO '/tmp/silt-copy-test.csv'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE logs",
    ] {
        let (status, err) = server.post_json("/v1/sql", None, &json!({"query": statement}));
        assert_eq!(status, 400, "{statement}: {err}");
    }
    assert!(!Path::new("/tmp/silt-copy-test.csv").exists());
    let (status, _) = server.post_json(
        "/v1/logs/search",
        None,
        &json!({"query": "", "limit": 10001}),
    );
    assert_eq!(status, 400);
    let (status, _) = server.post_json("/v1/logs/search", None, &json!({"qeury": "typo"}));
    assert_eq!(status, 400);
    let (status, err) = server.post_json("/v1/logs/aggregate", None, &json!({"metric": "median"}));
    assert_eq!(status, 400, "{err}");
    let (status, body) = server.get("/v2/nothing", None);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("not_found"));

    // Metrics count what happened.
    let (status, metrics) = server.get("/metrics", None);
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("silt_ingest_lines_total{tenant=\"default\"} 9"),
        "{metrics}"
    );
    assert!(
        metrics.contains("silt_ingest_rejected_lines_total{tenant=\"default\"} 2"),
        "{metrics}"
    );
    for name in [
        "silt_wal_fsync_seconds_count",
        "silt_query_seconds_bucket",
        "silt_memtable_bytes",
        "silt_ingest_ack_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

#[test]
fn keys_decide_the_tenant_and_no_key_reaches_another_tenants_data() {
    let dir = tempfile::tempdir().unwrap();
    let a_admin = create_key(dir.path(), "acme", "admin");
    let a_read = create_key(dir.path(), "acme", "read");
    let a_ingest = create_key(dir.path(), "acme", "ingest");
    let b_admin = create_key(dir.path(), "beta", "admin");
    let server = Server::start(dir.path(), &[]);

    ingest(
        &server,
        Some(&a_ingest),
        "text/plain",
        &[],
        b"acmeonly secret alpha\nshared word\n",
    );
    // A tenant header cannot pick another tenant: the key decides.
    ingest(
        &server,
        Some(&b_admin),
        "text/plain",
        &[("X-Silt-Tenant", "acme")],
        b"betaonly secret beta\nshared word\n",
    );

    assert_eq!(total(&server.search(Some(&a_read), "secret")), 1);
    assert_eq!(total(&server.search(Some(&a_read), "betaonly")), 0);
    assert_eq!(total(&server.search(Some(&b_admin), "acmeonly")), 0);
    assert_eq!(total(&server.search(Some(&b_admin), "shared")), 1);
    assert_eq!(
        server.sql(Some(&a_admin), "SELECT count(*) FROM logs"),
        vec![vec![json!(2)]]
    );
    assert_eq!(
        server.sql(
            Some(&b_admin),
            "SELECT count(*) FROM logs WHERE message LIKE '%acme%'"
        ),
        vec![vec![json!(0)]]
    );
    let (_, agg) = server.post_json("/v1/logs/aggregate", Some(&b_admin), &json!({"query": ""}));
    assert_eq!(agg["buckets"][0]["count"], 2);

    // X-API-Key works as well as Bearer.
    let (status, _, body) = server.post_raw(
        "/v1/logs/search",
        &[("Content-Type", "application/json"), ("X-API-Key", &a_read)],
        br#"{"query": "alpha"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(total(&serde_json::from_slice(&body).unwrap()), 1);

    // Missing, wrong and revoked keys: 401; a key without the role: 403.
    for path in [
        "/v1/logs/search",
        "/v1/logs/aggregate",
        "/v1/sql",
        "/v1/logs/ingest",
    ] {
        let (status, _) = server.post_json(path, None, &json!({"query": ""}));
        assert_eq!(status, 401, "{path}");
        // The real key with its last hex digit changed (always to a different one).
        let last = if a_admin.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &a_admin[..a_admin.len() - 1]);
        let (status, _) = server.post_json(path, Some(&forged), &json!({"query": ""}));
        assert_eq!(status, 401, "{path}");
    }
    let (status, err) = server.post_json("/v1/logs/search", Some(&a_ingest), &json!({"query": ""}));
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (403, Some("authorization_error"))
    );
    let (status, _, _) = server.post_raw(
        "/v1/logs/ingest",
        &[
            ("Content-Type", "text/plain"),
            ("Authorization", &format!("Bearer {a_read}")),
        ],
        b"nope",
    );
    assert_eq!(status, 403);

    // Revocation reaches the running server.
    let id = a_read.split('_').nth(1).unwrap();
    let out = Command::new(SILT)
        .args(["keys", "revoke", id, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server.post_json("/v1/logs/search", Some(&a_read), &json!({"query": ""}));
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "revoked key still accepted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = Command::new(SILT)
        .args(["keys", "list", "--format", "json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(
        !std::fs::read_to_string(dir.path().join("keys.json"))
            .unwrap()
            .contains(&a_admin)
    );
}

#[test]
fn without_keys_the_server_stays_on_loopback_unless_told_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(SILT)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("SILT_INSECURE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without API keys"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start_on(dir.path(), "0.0.0.0:0", &[("SILT_INSECURE", "true")]);
    assert_eq!(server.get("/health", None).0, 200);
}

#[test]
fn a_flooding_tenant_gets_429_while_another_tenant_keeps_querying() {
    let dir = tempfile::tempdir().unwrap();
    let flood = create_key(dir.path(), "flood", "admin");
    let calm = create_key(dir.path(), "calm", "admin");
    let server = Server::start(
        dir.path(),
        &[
            ("SILT_TENANTS__FLOOD__INGEST_LINES_PER_SECOND", "2000"),
            ("SILT_TENANTS__FLOOD__INGEST_BURST_SECONDS", "1"),
        ],
    );
    ingest(
        &server,
        Some(&calm),
        "text/plain",
        &[],
        b"calm line one\ncalm line two\n",
    );
    let body: String = (0..1000).map(|i| format!("flood line {i}\n")).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (limited, accepted, latencies) = std::thread::scope(|s| {
        let floods: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let (mut limited, mut accepted) = (0, 0);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (status, retry, _) = server.post_raw(
                            "/v1/logs/ingest",
                            &[
                                ("Content-Type", "text/plain"),
                                ("Authorization", &format!("Bearer {flood}")),
                            ],
                            body.as_bytes(),
                        );
                        match status {
                            429 => {
                                assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
                                limited += 1;
                            }
                            202 => accepted += 1,
                            other => panic!("flood got {other}"),
                        }
                    }
                    (limited, accepted)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for _ in 0..100 {
            let started = Instant::now();
            assert_eq!(total(&server.search(Some(&calm), "calm")), 2);
            latencies.push(started.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut limited, mut accepted) = (0, 0);
        for f in floods {
            let (l, a) = f.join().unwrap();
            limited += l;
            accepted += a;
        }
        (limited, accepted, latencies)
    });
    eprintln!(
        "flood: {accepted} accepted, {limited} limited; calm queries: worst {:?}",
        latencies.iter().max()
    );
    assert!(
        limited > 0,
        "the flood was never limited ({accepted} accepted)"
    );
    assert!(accepted > 0);
    // Starvation check, not a speed goal (that is in benches/): every query answered promptly.
    let worst = latencies.iter().max().unwrap();
    assert!(
        *worst < Duration::from_secs(10),
        "calm tenant's query took {worst:?}"
    );
    let (_, metrics) = server.get("/metrics", None);
    assert!(
        String::from_utf8(metrics)
            .unwrap()
            .contains("silt_limited_requests_total{tenant=\"flood\",limit=\"ingest_rate\"}")
    );
}

#[test]
fn query_limits_cut_results_cancel_slow_queries_and_cap_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("SILT_LIMITS__MAX_RESULT_ROWS", "5"),
            ("SILT_LIMITS__QUERY_TIMEOUT_SECONDS", "3"),
            ("SILT_LIMITS__MAX_CONCURRENT_QUERIES", "1"),
        ],
    );
    let lines: String = (0..20).map(|i| format!("row {i}\n")).collect();
    ingest(&server, None, "text/plain", &[], lines.as_bytes());

    // A result over the row limit is cut, and says so.
    let (status, body) = server.post_json(
        "/v1/sql",
        None,
        &json!({"query": "SELECT message FROM logs"}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["rows"].as_array().unwrap().len(), 5);
    assert_eq!(body["truncated"], true);

    // A slow query holds the tenant's only slot, so another is refused, until it times out.
    let slow = json!({"query": "SELECT count(*) FROM generate_series(1, 100000000000)"});
    std::thread::scope(|s| {
        // The slow query may itself find the slot taken by one of the probes below; it
        // retries until it gets it.
        let slow = s.spawn(|| {
            loop {
                let (status, body) = server.post_json("/v1/sql", None, &slow);
                if status != 429 {
                    return (status, body);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // Once the slow query holds the slot, other queries are refused.
        let deadline = Instant::now() + Duration::from_secs(20);
        let err = loop {
            let (status, err) = server.post_json("/v1/logs/search", None, &json!({"query": "row"}));
            if status == 429 {
                break err;
            }
            assert_eq!(status, 200, "{err}");
            assert!(
                Instant::now() < deadline,
                "the slow query never held the slot"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(err["error"]["type"], "too_many_queries");
        let (status, err) = slow.join().unwrap();
        assert_eq!(status, 504, "{err}");
        assert_eq!(err["error"]["type"], "timeout");
    });
    // The slot is free again once the cancelled query has wound down.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server.post_json("/v1/logs/search", None, &json!({"query": "row"}));
        if status == 200 {
            assert_eq!(total(&body), 20);
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(Instant::now() < deadline, "the slot was never released");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_openapi_document_lists_every_route_and_only_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (status, doc) = server.get("/v1/openapi.json", None);
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<String> = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /health",
            "GET /metrics",
            "GET /ready",
            "GET /v1/logs/search",
            "GET /v1/logs/tail",
            "GET /v1/openapi.json",
            "POST /loki/api/v1/push",
            "POST /v1/logs",
            "POST /v1/logs/aggregate",
            "POST /v1/logs/ingest",
            "POST /v1/logs/search",
            "POST /v1/sql",
        ]
    );
    // Every listed route exists (a wrong method or path would be 404/405).
    for route in &listed {
        let (method, path) = route.split_once(' ').unwrap();
        let status = if method == "GET" {
            server.get(path, None).0
        } else {
            server
                .post_raw(path, &[("Content-Type", "application/json")], b"{}")
                .0
        };
        assert!(status != 404 && status != 405, "{route} answered {status}");
    }
}

/// Rows of each batch id, from SQL.
fn batch_counts(server: &Server) -> std::collections::HashMap<u64, u64> {
    server
        .sql(
            None,
            "SELECT attributes['batch'], count(*) FROM logs GROUP BY 1",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().parse().unwrap(),
                r[1].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn batches_acknowledged_before_sigkill_are_present_exactly_once_and_never_partly() {
    const ROWS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    // Small memtables so that flushes happen between kills, too.
    let envs = [("SILT_ENGINE__FLUSH_BYTES", "65536")];
    let mut acked: Vec<u64> = Vec::new();
    let mut sent: Vec<u64> = Vec::new();
    let mut next_batch = 0u64;
    for round in 0..4 {
        let server = Server::start(dir.path(), &envs);
        let url = server.url.clone();
        let stop_at = Instant::now() + Duration::from_millis(400 + 150 * round);
        let results = std::thread::scope(|s| {
            let workers: Vec<_> = (0..3)
                .map(|w| {
                    let url = url.clone();
                    let first = next_batch + w * 1_000_000;
                    s.spawn(move || {
                        let agent = Server::agent();
                        let mut out = Vec::new();
                        let mut batch = first;
                        loop {
                            let body: String = (0..ROWS)
                                .map(|i| {
                                    format!(
                                        "{{\"message\":\"crash row {i}\",\"batch\":\"{batch}\"}}\n"
                                    )
                                })
                                .collect();
                            let r = agent
                                .post(format!("{url}/v1/logs/ingest"))
                                .header("Content-Type", "application/x-ndjson")
                                .send(body.as_bytes());
                            match r {
                                Ok(resp) if resp.status().as_u16() == 202 => {
                                    out.push((batch, true))
                                }
                                // Memtables over budget while flushes catch up: not acknowledged.
                                Ok(resp) if resp.status().as_u16() == 503 => {
                                    out.push((batch, false));
                                    std::thread::sleep(Duration::from_millis(20));
                                }
                                Ok(resp) => panic!("unexpected status {}", resp.status()),
                                Err(_) => {
                                    out.push((batch, false));
                                    return out;
                                }
                            }
                            batch += 1;
                        }
                    })
                })
                .collect();
            while Instant::now() < stop_at {
                std::thread::sleep(Duration::from_millis(10));
            }
            server.signal(rustix::process::Signal::KILL);
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect::<Vec<_>>()
        });
        drop(server);
        for (batch, ok) in results {
            sent.push(batch);
            if ok {
                acked.push(batch);
            }
        }
        next_batch += 10_000_000;
    }
    eprintln!(
        "{} batches sent over 4 kills, {} acknowledged",
        sent.len(),
        acked.len()
    );
    assert!(
        acked.len() > 10,
        "too few batches acknowledged to mean anything: {}",
        acked.len()
    );
    let server = Server::start(dir.path(), &envs);
    let counts = batch_counts(&server);
    for batch in &acked {
        assert_eq!(counts.get(batch), Some(&ROWS), "acknowledged batch {batch}");
    }
    for (batch, rows) in &counts {
        assert!(sent.contains(batch), "batch {batch} was never sent");
        assert_eq!(*rows, ROWS, "batch {batch} is partly present");
    }
}

#[test]
fn sigterm_flushes_everything_and_the_cli_points_at_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    ingest(
        &server,
        None,
        "text/plain",
        &[],
        b"termword one\ntermword two\n",
    );

    // A local query of the data directory is refused with a pointer to --server …
    let out = Command::new(SILT)
        .args(["search", "termword", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--server {}", server.url)), "{err}");
    // … which works.
    let out = Command::new(SILT)
        .args([
            "search",
            "termword",
            "--format",
            "ndjson",
            "--server",
            &server.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    let out = Command::new(SILT)
        .args([
            "sql",
            "--format",
            "csv",
            "--server",
            &server.url,
            "SELECT count(*) AS n FROM logs",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "n\n2\n");
    let out = Command::new(SILT)
        .args(["search", "(", "--server", &server.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    server.signal(rustix::process::Signal::TERM);
    assert!(server.wait().success());
    // Everything is in segments; nothing is left to replay.
    let segments = Command::new(SILT)
        .args(["segments", "--format", "json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let segments: Value = serde_json::from_slice(&segments.stdout).unwrap();
    let rows: u64 = segments
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 2, "{segments}");
    let out = Command::new(SILT)
        .args(["sql", "--format", "csv", "--data-dir"])
        .arg(dir.path())
        .arg("SELECT count(*) AS n FROM logs")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "n\n2\n");
}

#[test]
fn silt_config_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("silt.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\n[limits]\nmax_concurrent_queries = 3\n",
    )
    .unwrap();
    let out = Command::new(SILT)
        .args(["config", "--config"])
        .arg(&file)
        .env("SILT_LIMITS__MAX_BODY_BYTES", "12345")
        .env("SILT_LISTEN", "127.0.0.1:7777")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let printed: toml::Table = text.parse().unwrap();
    assert_eq!(printed["listen"].as_str(), Some("127.0.0.1:7777"));
    assert_eq!(
        printed["limits"]["max_concurrent_queries"].as_integer(),
        Some(3)
    );
    assert_eq!(
        printed["limits"]["max_body_bytes"].as_integer(),
        Some(12345)
    );

    let out = Command::new(SILT)
        .args(["config"])
        .env("SILT_LIMITS__NO_SUCH_KEY", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_key"));
}
