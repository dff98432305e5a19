//! The `silt` binary as a user runs it: ingest real samples, list segments, inspect them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn silt() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_silt"));
    cmd.env_remove("SILT_DATA_DIR");
    cmd
}

fn loghub(name: &str) -> PathBuf {
    let dir = std::env::var_os("SILT_LOGHUB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub")
        });
    dir.join(name)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn segments_json(data: &Path) -> Vec<serde_json::Value> {
    let out = run(silt()
        .args(["segments", "--format", "json", "--data-dir"])
        .arg(data));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Every row of a data directory, through `silt search --format ndjson`, as the given string
/// fields, sorted.
fn all_rows(data: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let out = run(silt()
        .args(["search", "--format", "ndjson", "--data-dir"])
        .arg(data)
        .arg(""));
    let mut rows: Vec<Vec<String>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|hit| {
            fields
                .iter()
                .map(|&f| hit[f].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn ingest_samples_then_list_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run(silt()
        .args(["ingest", "--tenant", "ops", "--data-dir"])
        .arg(&data)
        .arg(loghub("HDFS_2k.log"))
        .arg(loghub("OpenSSH_2k.log")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ingested 4000 lines (0 rejected)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "ingest writes its summary to stderr");

    let segments = segments_json(&data);
    assert!(!segments.is_empty());
    assert_eq!(
        segments
            .iter()
            .map(|s| s["rows"].as_u64().unwrap())
            .sum::<u64>(),
        4000
    );
    assert!(
        segments
            .iter()
            .all(|s| s["tenant"] == "ops" && s["stream"] == "default")
    );
    // HDFS_2k is from 2008: its rows carry their own time, not the time of ingest.
    assert!(
        segments
            .iter()
            .any(|s| s["partition"].as_str().unwrap().starts_with("2008-11")),
        "{segments:?}"
    );

    let location = segments[0]["location"].as_str().unwrap();
    let out = run(silt()
        .args(["inspect", "--format", "json"])
        .arg(data.join(location)));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], segments[0]["rows"]);
    assert_eq!(report["checksums"]["status"], "ok");
    assert_eq!(report["checksums"]["blake3"], segments[0]["blake3"]);
    assert_eq!(report["tenant"], "ops");
    assert_eq!(report["row_order"], "service,level,timestamp,_seq");
    let index = &report["index"];
    assert!(
        index["terms"].as_u64().unwrap() + index["fingerprinted_terms"].as_u64().unwrap() > 100
    );
    let columns = report["columns"].as_array().unwrap();
    assert!(columns.iter().any(|c| c["name"] == "attributes"));
    // Every byte of the row groups belongs to one column.
    let column_bytes: u64 = columns.iter().map(|c| c["bytes"].as_u64().unwrap()).sum();
    let row_group_bytes: u64 = report["row_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rg| rg["compressed_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(column_bytes, row_group_bytes);
    let message = columns.iter().find(|c| c["name"] == "message").unwrap();
    assert!(message["bytes"].as_u64().unwrap() > 0, "{message}");
    assert!(
        message["encodings"]
            .as_array()
            .unwrap()
            .contains(&"PLAIN".into()),
        "{message}"
    );
    let text = run(silt().arg("inspect").arg(data.join(location)));
    assert!(String::from_utf8_lossy(&text.stdout).contains("checksums   ok"));
}

#[test]
fn malformed_ndjson_lines_are_reported_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"ts\":\"2026-11-21T10:00:00Z\",\"level\":\"warn\",\"msg\":\"disk almost full\",\"host\":\"a\"}\n\
         {\"ts\":\"2026-11-21T10:00:01Z\",\"msg\":\"broken\"\n\
         \n\
         [1,2,3]\n\
         {\"ts\":\"2026-11-21T10:00:02Z\",\"msg\":\"ok again\",\"user\":{\"id\":7}}\n\
         {\"ts\":\"2026-11-21T10:00:03Z\",\"msg\":\"three\"}\n\
         {\"ts\":\"2026-11-21T10:00:04Z\",\"msg\":\"four\"}\n",
    )
    .unwrap();
    let errors = dir.path().join("errors.txt");
    let out = run(silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg("--errors")
        .arg(&errors)
        .arg(&input));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingested 4 lines (2 rejected)"), "{stderr}");
    assert!(
        stderr.contains(":2: rejected:") && stderr.contains(":4: rejected:"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(written.lines().count(), 2, "{written}");
    assert!(written.contains("expected a JSON object"), "{written}");
    assert_eq!(
        segments_json(&data)
            .iter()
            .map(|s| s["rows"].as_u64().unwrap())
            .sum::<u64>(),
        4
    );
}

#[test]
fn stdin_and_a_locked_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A first ingest from a pipe holds the data directory while its stdin is open.
    let mut holder = silt()
        .args(["ingest", "--format", "text", "--data-dir"])
        .arg(&data)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    stdin
        .write_all(b"2026-11-21 10:00:00,123 ERROR first line\n")
        .unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !data.join("LOCK").exists()
        || std::fs::read_to_string(data.join("LOCK"))
            .unwrap()
            .trim()
            .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "first ingest never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(loghub("Apache_2k.log"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("in use by process {}", holder.id())),
        "{stderr}"
    );

    stdin
        .write_all(b"2026-11-21 10:00:01,456 WARN second line\n")
        .unwrap();
    drop(stdin);
    let out = holder.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingested 2 lines (0 rejected)"));
    // Now the directory is free again.
    run(silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(loghub("Apache_2k.log")));
    assert_eq!(
        segments_json(&data)
            .iter()
            .map(|s| s["rows"].as_u64().unwrap())
            .sum::<u64>(),
        2002
    );
}

#[test]
fn inspect_refuses_a_damaged_segment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run(silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(loghub("Zookeeper_2k.log")));
    let segment = data.join(segments_json(&data)[0]["location"].as_str().unwrap());
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[200] ^= 0xff; // inside the row groups
    let damaged = dir.path().join("damaged.parquet");
    std::fs::write(&damaged, bytes).unwrap();
    let out = silt().arg("inspect").arg(&damaged).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("checksums   FAILED: corrupt segment"));
    let missing = silt()
        .arg("inspect")
        .arg(dir.path().join("nope.parquet"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.parquet"));
}

/// Ingests NDJSON with known fields into `data`, under tenant `default`.
fn ingest_known(data: &Path) {
    let mut lines = String::new();
    for i in 0..300 {
        let level = if i % 30 == 0 { "error" } else { "info" };
        let service = if i % 2 == 0 {
            "payment-service"
        } else {
            "gateway"
        };
        lines.push_str(&format!(
            "{{\"@timestamp\":\"2026-11-21T10:{:02}:{:02}Z\",\"level\":\"{level}\",\"service\":\"{service}\",\"msg\":\"order {i} took {} ms, connection reset\",\"http\":{{\"status\":{}}}}}\n",
            i / 60,
            i % 60,
            i % 17,
            if i % 3 == 0 { 500 } else { 200 }
        ));
    }
    let mut child = silt()
        .args(["ingest", "--data-dir"])
        .arg(data)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn search_prints_hits_newest_first_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ingest_known(&data);

    let out = run(silt()
        .args(["search", "--format", "ndjson", "--limit", "4", "--data-dir"])
        .arg(&data)
        .arg("level:ERROR service:payment-service"));
    let hits: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Errors are every 30th line, all even: lines 270, 240, 210, 180 are the newest four.
    let messages: Vec<&str> = hits
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "order 270 took 15 ms, connection reset",
            "order 240 took 2 ms, connection reset",
            "order 210 took 6 ms, connection reset",
            "order 180 took 10 ms, connection reset"
        ]
    );
    assert_eq!(hits[0]["timestamp"], "2026-11-21T10:04:30Z");
    assert_eq!(hits[0]["level"], "ERROR");
    assert_eq!(hits[0]["attributes"]["http.status"], "500");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("4 of 10 hits"), "{stderr}");

    let out = run(silt()
        .args([
            "search",
            "--format",
            "json",
            "--limit",
            "3",
            "--from",
            "2026-11-21T10:01:00Z",
            "--to",
            "2026-11-21T10:02:00Z",
            "--data-dir",
        ])
        .arg(&data)
        .arg("\"connection reset\" attributes.http.status:500"));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["total"], 20, "{doc}");
    assert_eq!(doc["hits"].as_array().unwrap().len(), 3);
    let cursor = doc["next_cursor"].as_str().unwrap().to_string();
    let out = run(silt()
        .args([
            "search",
            "--format",
            "json",
            "--limit",
            "100",
            "--cursor",
            &cursor,
            "--from",
            "2026-11-21T10:01:00Z",
            "--to",
            "2026-11-21T10:02:00Z",
            "--data-dir",
        ])
        .arg(&data)
        .arg("\"connection reset\" attributes.http.status:500"));
    let rest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rest["hits"].as_array().unwrap().len(), 17);
    assert!(rest["next_cursor"].is_null());

    let out = silt()
        .args(["search", "--data-dir"])
        .arg(&data)
        .arg("level:ERROR a) b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected ')' at column 14"));
}

#[test]
fn sql_writes_csv_json_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ingest_known(&data);

    let out = run(silt().args(["sql", "--format", "csv", "--data-dir"]).arg(&data).arg(
        "SELECT service, count(*) AS n, min(timestamp) AS first FROM logs WHERE search('level:ERROR') GROUP BY service ORDER BY service",
    ));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "service,n,first\npayment-service,10,2026-11-21T10:00:00Z\n"
    );

    let out = run(silt().args(["sql", "--format", "json", "--data-dir"]).arg(&data).arg(
        "SELECT level, count(*) AS n FROM logs WHERE match(message, 'connection reset') GROUP BY level ORDER BY level",
    ));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["columns"][0]["name"], "level");
    assert_eq!(
        doc["rows"],
        serde_json::json!([["ERROR", 10], ["INFO", 290]])
    );

    let out = run(silt()
        .args(["sql", "--data-dir"])
        .arg(&data)
        .arg("SELECT count(*) AS n FROM logs"));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("| n   |") && table.contains("| 300 |"),
        "{table}"
    );

    let out = silt()
        .args(["sql", "--data-dir"])
        .arg(&data)
        .arg("SELECT nope FROM logs")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn utc_offset_applies_to_timestamps_without_a_zone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("app.log");
    std::fs::write(
        &input,
        "2024-01-02 03:04:05,250 INFO no zone\n2024-01-02T03:04:05Z WARN with a zone\n",
    )
    .unwrap();
    run(silt()
        .args(["ingest", "--utc-offset", "+02:00", "--data-dir"])
        .arg(&data)
        .arg(&input));
    assert_eq!(
        all_rows(&data, &["level", "timestamp"]),
        [
            ["INFO", "2024-01-02T01:04:05.250Z"],
            ["WARN", "2024-01-02T03:04:05Z"],
        ]
    );
    let bad = silt()
        .args(["ingest", "--utc-offset", "CET", "--data-dir"])
        .arg(&data)
        .arg(&input)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("+02:00"));
}

#[test]
fn compressed_inputs_are_read_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = "2024-01-02 03:04:05 INFO first member\n2024-01-02 03:04:06 WARN second\n";
    let ndjson = "{\"ts\":\"2024-01-02T03:04:07Z\",\"level\":\"error\",\"msg\":\"from zstd\"}\n";
    // Two gzip members one after the other, as `cat a.gz b.gz` or pigz write them.
    let mut gz = Vec::new();
    for part in text.split_inclusive('\n') {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(part.as_bytes()).unwrap();
        gz.extend(encoder.finish().unwrap());
    }
    std::fs::write(dir.path().join("app.log.gz"), &gz).unwrap();
    let zst = zstd::encode_all(ndjson.as_bytes(), 3).unwrap();
    std::fs::write(dir.path().join("app.ndjson.zst"), &zst).unwrap();
    let out = run(silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(dir.path().join("app.log.gz"))
        .arg(dir.path().join("app.ndjson.zst")));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ingested 3 lines (0 rejected)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        all_rows(&data, &["timestamp", "message"]),
        [
            [
                "2024-01-02T03:04:05Z",
                "2024-01-02 03:04:05 INFO first member"
            ],
            ["2024-01-02T03:04:06Z", "2024-01-02 03:04:06 WARN second"],
            ["2024-01-02T03:04:07Z", "from zstd"],
        ]
    );

    // A damaged gzip file is an error naming it; nothing is half-read silently.
    let bad = dir.path().join("bad.log.gz");
    std::fs::write(&bad, &gz[..gz.len() / 2]).unwrap();
    let out = silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.log.gz"));
}

#[test]
fn json_documents_are_events_not_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let array = dir.path().join("events.json");
    std::fs::write(
        &array,
        "[\n  {\"ts\": \"2024-01-02T03:04:05Z\", \"level\": \"error\", \"msg\": \"from an array\"},\n  7,\n  {\"msg\": \"second\"}\n]\n",
    )
    .unwrap();
    let pretty = dir.path().join("jq.out");
    std::fs::write(
        &pretty,
        "{\n  \"msg\": \"pretty one\",\n  \"level\": \"warn\"\n}\n{\n  \"msg\": \"pretty two\"\n}\n",
    )
    .unwrap();
    let out = run(silt()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&array)
        .arg(&pretty));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingested 4 lines (1 rejected)"), "{stderr}");
    assert!(stderr.contains("events.json:2"), "{stderr}");
    assert_eq!(
        all_rows(&data, &["message"]),
        [
            ["from an array"],
            ["pretty one"],
            ["pretty two"],
            ["second"]
        ]
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[{\"msg\": \"a\"}, {\"msg\": }]").unwrap();
    let out = silt()
        .args(["ingest", "--format", "json", "--data-dir"])
        .arg(&data)
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.json at byte 23: invalid JSON: expected value"),
        "{stderr}"
    );
}

/// `silt ingest` writes past the WAL: killed part-way, it leaves neither a WAL to replay nor
/// rows of its own (it had flushed none), so ingesting the whole input again stores every line
/// once. Its input is a pipe left open: it reads 8 MiB at a time, so the first ~90,000 lines are
/// parsed and in the memtable when it is killed, and the rest never arrive.
#[test]
fn a_killed_ingest_leaves_nothing_to_replay_and_a_rerun_stores_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    const LINES: u64 = 120_000;
    let lines: Vec<String> = (0..LINES)
        .map(|n| {
            format!(
                "{{\"timestamp\":\"2026-11-21T10:00:00.{n:06}Z\",\"message\":\"line {n}\",\"n\":{n}}}\n"
            )
        })
        .collect();
    let mut child = silt()
        .args(["ingest", "--format", "ndjson", "--data-dir"])
        .arg(&data)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines.concat().as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The first chunk is in the memtable by now; SIGKILL with stdin still open.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let wal_bytes: u64 = std::fs::read_dir(data.join("wal").join("default"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(wal_bytes, 0, "nothing was written to the wal");

    let input = dir.path().join("lines.ndjson");
    std::fs::write(&input, lines.concat()).unwrap();
    let out = run(silt().args(["ingest", "--data-dir"]).arg(&data).arg(&input));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("recovered"), "{stderr}");
    assert!(
        stderr.contains(&format!("ingested {LINES} lines")),
        "{stderr}"
    );
    let out = run(silt()
        .args(["sql", "--format", "json", "--data-dir"])
        .arg(&data)
        .arg("SELECT count(*), count(DISTINCT attributes['n']), count(DISTINCT _seq) FROM logs"));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["rows"][0],
        serde_json::json!([LINES, LINES, LINES]),
        "{answer}"
    );
}
