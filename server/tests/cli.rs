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
    let index = &report["index"];
    assert!(
        index["terms"].as_u64().unwrap() + index["fingerprinted_terms"].as_u64().unwrap() > 100
    );
    assert!(
        report["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "attributes")
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
