//! The agent protocols end to end, each proved with a client nobody here wrote: the official
//! Elasticsearch Python client, the OpenTelemetry Python SDK, a Loki protobuf+snappy push,
//! util-linux `logger`; and live tail over a real WebSocket.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Runs `scripts/agents/<script> URL KEY COUNT` with the test interpreter; its stdout is a
/// JSON summary of what it sent.
fn run_agent(script: &str, url: &str, key: &str, count: usize) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/agents")
        .join(script);
    let python = std::env::var("SILT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&path)
        .args([url, key, &count.to_string()])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{python} {} failed (scripts/test installs its packages):\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON summary ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `SELECT key, count(*) … GROUP BY key` as a map.
fn counts(server: &Server, key: &str, sql: &str) -> BTreeMap<String, u64> {
    server
        .sql(Some(key), sql)
        .into_iter()
        .map(|row| {
            (
                row[0].as_str().unwrap_or("<null>").to_owned(),
                row[1].as_u64().unwrap(),
            )
        })
        .collect()
}

fn json_counts(value: &Value) -> BTreeMap<String, u64> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

#[test]
fn the_official_elasticsearch_client_bulk_loads_and_search_and_sql_see_exactly_what_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let sent = run_agent("es_bulk.py", &server.url, &key, 3000);

    assert!(
        sent["version"].as_str().unwrap().starts_with(['8', '9']),
        "{sent}"
    );
    assert_eq!(sent["license"], "active");
    assert_eq!(sent["template_exists"], true);
    assert_eq!(sent["ok"], 3000, "{sent}");
    assert_eq!(sent["errors"], 0, "{sent}");
    // The good document among the broken ones is kept; each broken one has its own error.
    assert_eq!(sent["broken_errors"], true);
    assert_eq!(sent["broken_statuses"], json!([201, 400, 400, 400]));
    assert_eq!(
        sent["broken_types"],
        json!([
            null,
            "illegal_argument_exception",
            "document_parsing_exception",
            "action_request_validation_exception"
        ])
    );

    let mut want_levels: BTreeMap<String, u64> = json_counts(&sent["levels"])
        .into_iter()
        .map(|(k, v)| (k.to_uppercase(), v))
        .collect();
    *want_levels.get_mut("WARN").unwrap() += 1;
    assert_eq!(
        counts(
            &server,
            &key,
            "SELECT level, count(*) FROM logs WHERE stream = 'es-app' GROUP BY level"
        ),
        want_levels
    );
    let mut want_services = json_counts(&sent["services"]);
    want_services.insert("raw".into(), 1);
    assert_eq!(
        counts(
            &server,
            &key,
            "SELECT service, count(*) FROM logs WHERE stream = 'es-app' GROUP BY service"
        ),
        want_services
    );
    let rows = server.sql(
        Some(&key),
        "SELECT CAST(min(timestamp) AS BIGINT), CAST(max(timestamp) AS BIGINT), count(DISTINCT host) \
         FROM logs WHERE stream = 'es-app' AND service <> 'raw'",
    );
    let ms = 1_000_000;
    assert_eq!(
        rows[0][0].as_i64().unwrap(),
        sent["min_ms"].as_i64().unwrap() * ms
    );
    assert_eq!(
        rows[0][1].as_i64().unwrap(),
        sent["max_ms"].as_i64().unwrap() * ms
    );
    assert_eq!(rows[0][2], 5);

    // One document, every ECS field in its column, the rest as attributes.
    let hit = &server.search(Some(&key), "\"order 1234 handled\"")["hits"][0];
    assert_eq!(hit["service"], "payments", "{hit}");
    assert_eq!(hit["level"], "ERROR");
    assert_eq!(hit["host"], "node-4");
    assert_eq!(hit["trace_id"], format!("{:032x}", 1234));
    assert_eq!(hit["stream"], "es-app");
    assert_eq!(
        total(&server.search(
            Some(&key),
            "stream:es-app attributes.http.response.status_code:300"
        )),
        1000
    );
    assert_eq!(total(&server.search(Some(&key), "\"never stored\"")), 0);
}

#[test]
fn elasticsearch_handshake_calls_answer_like_elasticsearch() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &[]);
    let auth = format!("ApiKey {key}");

    for (method, path) in [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/_license"),
        ("HEAD", "/_index_template/logs"),
        ("PUT", "/_index_template/logs"),
        ("GET", "/_index_template/logs"),
        ("PUT", "/_ilm/policy/logs"),
        ("GET", "/_ilm/policy/logs"),
        ("PUT", "/_data_stream/logs-app-default"),
        ("PUT", "/_ingest/pipeline/p1"),
        ("PUT", "/_template/old"),
    ] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Accept: application/vnd.elasticsearch+json; compatible-with=8\r\n\
             Content-Type: application/vnd.elasticsearch+json; compatible-with=8\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let answer = raw_http(&server.url, &request);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{method} {path}: {answer}"
        );
        let lower = answer.to_ascii_lowercase();
        assert!(
            lower.contains("x-elastic-product: elasticsearch"),
            "{method} {path}: {answer}"
        );
        if method != "HEAD" {
            assert!(
                lower.contains(
                    "content-type: application/vnd.elasticsearch+json; compatible-with=8"
                ),
                "{method} {path}: {answer}"
            );
        }
    }
    // Without a key: the ES-shaped refusal, still with the product header.
    let answer = raw_http(
        &server.url,
        "GET /_license HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-elastic-product: elasticsearch")
    );

    // Basic auth with the key as the password, and a gzip body, as Filebeat sends.
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("filebeat:{key}"))
    );
    let body = b"{\"create\":{}}\n{\"@timestamp\":\"2026-11-22T10:00:00Z\",\"message\":\"from filebeat\",\"log\":{\"level\":\"info\"}}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body).unwrap();
    let (status, _, answer) = server.post_raw(
        "/logs-filebeat-default/_bulk",
        &[
            ("Authorization", &basic),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        &gz.finish().unwrap(),
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], false);
    assert_eq!(answer["items"][0]["create"]["status"], 201);
    assert_eq!(
        answer["items"][0]["create"]["_index"],
        "logs-filebeat-default"
    );
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn subscribe(server: &Server, key: &str, query: &str) -> Socket {
    use tungstenite::client::IntoClientRequest;
    let q = serde_urlencoded::to_string([("q", query)]).unwrap();
    let url = format!(
        "{}/v1/logs/tail?{q}",
        server.url.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse().unwrap());
    let (socket, response) = tungstenite::connect(request).expect("tail connects");
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// The next JSON message, or `None` after `wait` without one.
fn next_message(socket: &mut Socket, wait: Duration) -> Option<Value> {
    if let MaybeTlsStream::Plain(tcp) = socket.get_ref() {
        tcp.set_read_timeout(Some(wait)).unwrap();
    }
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("tail socket failed: {e}"),
        }
    }
}

fn ingest_ndjson(server: &Server, key: &str, stream: &str, lines: &[Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let auth = format!("Bearer {key}");
    let (status, _, answer) = server.post_raw(
        &format!("/v1/logs/ingest?stream={stream}"),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-ndjson"),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
}

#[test]
fn live_tail_sends_the_matching_rows_acknowledged_after_subscribing_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "admin");
    let other_tenant = create_key(dir.path(), "other", "admin");
    let server = Server::start(dir.path(), &[]);
    let line = |i: usize, level: &str, service: &str| json!({"level": level, "service": service, "message": format!("payment {i} declined")});
    ingest_ndjson(&server, &key, "web", &[line(0, "error", "pay")]);

    let mut socket = subscribe(&server, &key, "level:error service:pay declined");
    // The subscription is live once the upgrade answered; rows from now on are sent.
    let mut expected = HashSet::new();
    for round in 0..5 {
        let mut lines = Vec::new();
        for i in 0..40 {
            let n = round * 100 + i + 1;
            let (level, service) = [
                ("error", "pay"),
                ("info", "pay"),
                ("error", "auth"),
                ("error", "pay"),
            ][i % 4];
            if level == "error" && service == "pay" {
                expected.insert(format!("payment {n} declined"));
            }
            lines.push(line(n, level, service));
        }
        ingest_ndjson(&server, &key, "web", &lines);
        // Another tenant's matching rows never reach this subscriber.
        ingest_ndjson(&server, &other_tenant, "web", &[line(9999, "error", "pay")]);
    }
    // Through _bulk too: every ingest path feeds the tail.
    let auth = format!("Bearer {key}");
    let (status, _, _) = server.post_raw(
        "/bulk-stream/_bulk",
        &[("Authorization", auth.as_str()), ("Content-Type", "application/x-ndjson")],
        b"{\"index\":{}}\n{\"level\":\"error\",\"service\":\"pay\",\"message\":\"payment 7777 declined\"}\n",
    );
    assert_eq!(status, 200);
    expected.insert("payment 7777 declined".to_owned());

    let mut received = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.len() < expected.len() && Instant::now() < deadline {
        if let Some(row) = next_message(&mut socket, Duration::from_secs(5)) {
            assert_eq!(row["level"], "ERROR", "{row}");
            assert_eq!(row["service"], "pay", "{row}");
            assert!(
                row["timestamp"].is_string() && row["_seq"].is_u64(),
                "{row}"
            );
            let message = row["message"].as_str().unwrap().to_owned();
            assert!(expected.contains(&message), "unexpected row {row}");
            assert!(received.insert(message), "row sent twice: {row}");
        }
    }
    assert_eq!(received, expected);
    // Nothing else is on its way.
    assert_eq!(next_message(&mut socket, Duration::from_millis(500)), None);

    // A query that does not parse is refused before the upgrade.
    let (status, body) = server.get("/v1/logs/tail?q=level:(", Some(&key));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn a_stalled_subscriber_is_told_how_many_rows_it_missed_and_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    // Subscribes and then reads nothing while a lot is ingested.
    let mut stalled = subscribe(&server, &key, "stalled");
    let filler = "x".repeat(200);
    let batches = 60;
    let per_batch = 1000;
    for b in 0..batches {
        let lines: Vec<Value> = (0..per_batch)
            .map(|i| json!({"message": format!("stalled row {b}-{i} {filler}")}))
            .collect();
        ingest_ndjson(&server, &key, "bulk", &lines);
    }
    let sent = (batches * per_batch) as u64;
    let (mut delivered, mut dropped) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered + dropped < sent && Instant::now() < deadline {
        match next_message(&mut stalled, Duration::from_secs(10)) {
            Some(message) => match message.get("dropped") {
                Some(n) => dropped += n.as_u64().unwrap(),
                None => delivered += 1,
            },
            None => break,
        }
    }
    assert!(
        dropped > 0,
        "a stalled subscriber should have lost rows ({delivered} delivered)"
    );
    assert_eq!(
        delivered + dropped,
        sent,
        "every row is either delivered or counted as dropped"
    );
    // The server is as responsive as before.
    assert_eq!(total(&server.search(Some(&key), "stalled")), sent);
    // And its metrics tell the same story.
    let metrics = String::from_utf8(server.get("/metrics", None).1).unwrap();
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert_eq!(metric("silt_tail_rows_sent_total"), delivered);
    assert_eq!(metric("silt_tail_rows_dropped_total"), dropped);
    assert_eq!(metric("silt_tail_subscribers"), 1);
}

#[test]
fn the_opentelemetry_sdk_exports_over_otlp_http_and_search_sees_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let sent = run_agent("otel_logs.py", &server.url, &key, 400);
    assert_eq!(sent["flushed"], true, "{sent}");

    assert_eq!(
        counts(
            &server,
            &key,
            "SELECT level, count(*) FROM logs WHERE service = 'otel-shop' AND host = 'otel-host-1' GROUP BY level"
        ),
        json_counts(&sent["levels"])
    );
    let traced = server.sql(
        Some(&key),
        "SELECT count(*) FROM logs WHERE trace_id IS NOT NULL AND span_id IS NOT NULL",
    );
    assert_eq!(traced[0][0], sent["traced"]);
    let trace_id = sent["trace_ids"][0].as_str().unwrap();
    let hits = server.search(Some(&key), &format!("trace_id:{trace_id}"));
    assert_eq!(total(&hits), 1, "{hits}");
    let hit = &hits["hits"][0];
    assert_eq!(hit["service"], "otel-shop");
    assert!(hit["span_id"].as_str().unwrap().len() == 16, "{hit}");
    assert!(
        hit["message"].as_str().unwrap().starts_with("otel order "),
        "{hit}"
    );
    assert_eq!(
        hit["attributes"]["resource.deployment.environment"], "test",
        "{hit}"
    );
    assert_eq!(hit["attributes"]["scope.name"], "shop.orders", "{hit}");
    // Record attributes keep their values; the timestamp is the SDK's, not the arrival time.
    let seven = server.search(Some(&key), "\"otel order 7 shipped\"");
    assert_eq!(total(&seven), 1, "{seven}");
    assert_eq!(
        seven["hits"][0]["attributes"]["log.order.id"], "7",
        "{seven}"
    );
    assert_ne!(
        seven["hits"][0]["timestamp"], seven["hits"][0]["observed_timestamp"],
        "{seven}"
    );
}

#[test]
fn otlp_json_and_bad_requests_get_otlp_answers() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let auth = format!("Bearer {key}");
    let request = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeLogs": [{"scope": {"name": "s"}, "logRecords": [
            {"timeUnixNano": "1763800000000000000", "severityNumber": 17, "body": {"stringValue": "json one"},
             "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174"},
            {"timeUnixNano": "1763800000000000001", "severityText": "WARN", "body": {"stringValue": "json bad ids"},
             "traceId": "abcd"},
            {"timeUnixNano": 1763800000000000002u64, "body": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "5"}}]}}}
        ]}]
    }]});
    let (status, _, answer) = server.post_raw(
        "/v1/logs",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        &serde_json::to_vec(&request).unwrap(),
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    let partial = &answer["partialSuccess"];
    assert_eq!(
        partial["rejectedLogRecords"].to_string().trim_matches('"'),
        "1",
        "{answer}"
    );
    assert!(
        partial["errorMessage"].as_str().unwrap().contains("trace"),
        "{answer}"
    );
    let hits = server.search(Some(&key), "service:json-svc");
    assert_eq!(total(&hits), 2, "{hits}");
    let one = server.search(Some(&key), "\"json one\"");
    assert_eq!(
        one["hits"][0]["trace_id"],
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(one["hits"][0]["level"], "ERROR");

    for (content_type, body, want) in [
        ("application/x-protobuf", &b"\xff\xff\xff garbage"[..], 400),
        ("application/json", b"{\"resourceLogs\": [", 400),
        ("text/plain", b"hello", 415),
    ] {
        let (status, _, answer) = server.post_raw(
            "/v1/logs",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", content_type),
            ],
            body,
        );
        assert_eq!(
            status,
            want,
            "{content_type}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(total(&server.search(Some(&key), "service:json-svc")), 2);
}

#[test]
fn a_loki_protobuf_snappy_push_is_stored_with_its_labels_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let sent = run_agent("loki_push.py", &server.url, &key, 300);
    assert_eq!(sent["status"], 204, "{sent}");

    let by_stream = counts(
        &server,
        &key,
        "SELECT concat(service, '/', lower(level)), count(*) FROM logs GROUP BY 1",
    );
    assert_eq!(by_stream, json_counts(&sent["sent"]));
    let hits = server.search(Some(&key), "\"loki line 0-0\"");
    assert_eq!(total(&hits), 1, "{hits}");
    let hit = &hits["hits"][0];
    assert_eq!(hit["attributes"]["env"], "prod", "{hit}");
    assert_eq!(hit["attributes"]["job"], "loki-api", "{hit}");
    assert_eq!(hit["attributes"]["quote"], "say \"hi\"", "{hit}");
    assert_eq!(hit["trace_id"], format!("{:02x}{:030x}", 0, 0), "{hit}");
    let rows = server.sql(
        Some(&key),
        "SELECT CAST(min(timestamp) AS BIGINT) FROM logs",
    );
    assert_eq!(
        rows[0][0].as_i64().unwrap(),
        sent["first_ns"].as_i64().unwrap()
    );

    // JSON push: one bad entry is named in a 400, the others are stored.
    let auth = format!("Bearer {key}");
    let push = json!({"streams": [{"stream": {"app": "json-app", "level": "error"},
        "values": [["1763800000000000000", "json entry ok"], ["not-a-time", "json entry bad"],
                   ["1763800000000000001", "json entry meta", {"trace_id": "feed"}]]}]});
    let (status, _, answer) = server.post_raw(
        "/loki/api/v1/push",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        &serde_json::to_vec(&push).unwrap(),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    assert!(
        String::from_utf8_lossy(&answer).contains("entry 1"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        total(&server.search(Some(&key), "service:json-app level:error")),
        2
    );
    // Broken snappy or protobuf: the whole request is refused, nothing stored.
    let (status, _, _) = server.post_raw(
        "/loki/api/v1/push",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-protobuf"),
        ],
        b"\x10not snappy at all",
    );
    assert_eq!(status, 400);
}

/// The `udp://` and `tcp://` addresses in the server's banner.
fn syslog_addr(server: &Server, scheme: &str) -> String {
    server
        .banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix(scheme))
        .unwrap_or_else(|| panic!("no {scheme} in {:?}", server.banner))
        .to_owned()
}

fn logger(args: &[&str]) {
    let out = Command::new("logger")
        .args(args)
        .output()
        .expect("run logger (util-linux)");
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for_hits(server: &Server, key: &str, query: &str, want: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hits = server.search(Some(key), query);
        if total(&hits) >= want || Instant::now() > deadline {
            return hits;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn util_linux_logger_over_udp_and_tcp_reaches_search_with_syslog_fields_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "default", "admin");
    let server = Server::start(
        dir.path(),
        &[
            ("SILT_SYSLOG__UDP", "127.0.0.1:0"),
            ("SILT_SYSLOG__TCP", "127.0.0.1:0"),
            ("SILT_SYSLOG__MAX_MESSAGE_BYTES", "8192"),
        ],
    );
    let udp = syslog_addr(&server, "udp://");
    let tcp = syslog_addr(&server, "tcp://");
    let (udp_host, udp_port) = udp.rsplit_once(':').unwrap();
    let (tcp_host, tcp_port) = tcp.rsplit_once(':').unwrap();

    logger(&[
        "--server",
        udp_host,
        "--port",
        udp_port,
        "--udp",
        "--rfc5424",
        "-t",
        "app-a",
        "-p",
        "local3.err",
        "--id=4242",
        "udp five424 message",
    ]);
    logger(&[
        "--server",
        udp_host,
        "--port",
        udp_port,
        "--udp",
        "--rfc3164",
        "-t",
        "app-b",
        "-p",
        "user.warning",
        "udp bsd message",
    ]);
    logger(&[
        "--server",
        tcp_host,
        "--port",
        tcp_port,
        "--tcp",
        "--rfc5424",
        "--octet-count",
        "-t",
        "app-c",
        "-p",
        "daemon.info",
        "tcp octet message",
    ]);
    logger(&[
        "--server",
        tcp_host,
        "--port",
        tcp_port,
        "--tcp",
        "--rfc3164",
        "-t",
        "app-d",
        "-p",
        "auth.notice",
        "tcp newline message",
    ]);
    let hits = wait_for_hits(&server, &key, "stream:syslog message", 4);
    assert_eq!(total(&hits), 4, "{hits}");
    let by_service: BTreeMap<String, Value> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["service"].as_str().unwrap().to_owned(), h.clone()))
        .collect();
    let a = &by_service["app-a"];
    assert_eq!(a["level"], "ERROR", "{a}");
    assert_eq!(a["message"], "udp five424 message", "{a}");
    assert!(a["host"].is_string(), "{a}");
    assert_eq!(a["attributes"]["syslog.facility"], "local3", "{a}");
    assert_eq!(a["attributes"]["syslog.procid"], "4242", "{a}");
    assert_eq!(by_service["app-b"]["level"], "WARN");
    assert_eq!(by_service["app-b"]["message"], "udp bsd message");
    assert_eq!(by_service["app-c"]["level"], "INFO");
    assert_eq!(
        by_service["app-c"]["attributes"]["syslog.facility"],
        "daemon"
    );
    assert_eq!(by_service["app-d"]["message"], "tcp newline message");
    assert_eq!(
        by_service["app-d"]["attributes"]["syslog.severity"],
        "notice"
    );

    // An oversized datagram and an oversized TCP frame are rejected; what follows is kept.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let huge = format!("<13>Nov 22 10:00:00 h big: {}", "x".repeat(20 << 10));
    socket.send_to(huge.as_bytes(), &udp).unwrap();
    socket
        .send_to(b"<13>Nov 22 10:00:00 h small: after the big datagram", &udp)
        .unwrap();
    let mut stream = TcpStream::connect(&tcp).unwrap();
    let big_frame = format!("<13>Nov 22 10:00:00 h big: {}\n", "y".repeat(30 << 10));
    std::io::Write::write_all(&mut stream, big_frame.as_bytes()).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"<13>Nov 22 10:00:00 h small: after the big frame\n",
    )
    .unwrap();
    std::io::Write::write_all(&mut stream, b"<999>bad pri\n").unwrap();
    drop(stream);
    let after = wait_for_hits(&server, &key, "service:small", 2);
    assert_eq!(total(&after), 2, "{after}");
    assert_eq!(total(&server.search(Some(&key), "service:big")), 0);
    let metrics = String::from_utf8(server.get("/metrics", Some(&key)).1).unwrap();
    let rejected: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("silt_ingest_rejected_lines_total{tenant=\"default\"}"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert_eq!(rejected, 3, "{metrics}");
}

#[test]
fn silt_tail_prints_matching_rows_as_they_are_acknowledged() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // No --server: it follows the server of the data directory (server.addr).
    let mut tail = Command::new(SILT)
        .args([
            "tail",
            "--format",
            "ndjson",
            "level:error checkout",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("SILT_SERVER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tail.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("following http://"), "{line}");

    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let (status, _, _) = server.post_raw(
        "/v1/logs/ingest",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"level\":\"info\",\"message\":\"checkout ok\"}\n{\"level\":\"error\",\"message\":\"checkout failed: card declined\"}\n",
    );
    assert_eq!(status, 202);
    let printed = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("silt tail printed a row");
    let row: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(row["message"], "checkout failed: card declined", "{row}");
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "only the matching row"
    );
    let _ = tail.kill();
    let _ = tail.wait();
}

#[test]
fn syslog_messages_received_before_sigterm_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "default", "admin");
    let envs = [
        ("SILT_SYSLOG__TCP", "127.0.0.1:0"),
        ("SILT_SYSLOG__UDP", ""),
    ];
    let mut server = Server::start(dir.path(), &envs);
    let tcp = syslog_addr(&server, "tcp://");
    let mut stream = TcpStream::connect(&tcp).unwrap();
    let sent = 20_000;
    let body: Vec<u8> = (0..sent)
        .flat_map(|i| format!("<13>Nov 22 10:00:00 h app: before shutdown {i}\n").into_bytes())
        .collect();
    std::io::Write::write_all(&mut stream, &body).unwrap();
    drop(stream);
    // The connection is being read once rows appear; then the server is told to stop.
    wait_for_hits(&server, &key, "before shutdown", 1);
    server.signal(rustix::process::Signal::TERM);
    assert!(server.wait().success());

    let server = Server::start(dir.path(), &envs);
    assert_eq!(
        total(&server.search(Some(&key), "\"before shutdown\"")),
        sent
    );
}
