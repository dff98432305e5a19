//! A real full disk under a running `silt serve`: its data directory is a small tmpfs, mounted in
//! a private user and mount namespace (`unshare`), so the kernel itself answers ENOSPC. Ingest
//! gets a precise 503 while the disk is full, resumes once space is freed without a restart, and
//! after a SIGKILL every acknowledged request is present exactly once, every other one entirely
//! or not at all.
//!
//! The test runs itself again inside the namespace with `SILT_DISK_FULL_CHILD_DIR` set. Where
//! `unshare` is missing or namespaces are not permitted, it says so and passes without running.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const CHILD_DIR: &str = "SILT_DISK_FULL_CHILD_DIR";
const LINES: u64 = 400;

/// An NDJSON body of `LINES` rows of request `id`, each row telling its request and place.
fn body(id: u64) -> Vec<u8> {
    let mut out = String::new();
    for row in 0..LINES {
        out.push_str(&format!(
            "{{\"timestamp\":\"2026-11-21T00:{:02}:{:02}.{row:03}Z\",\"level\":\"INFO\",\"service\":\"disk\",\
             \"message\":\"request {id} row {row} user=u-{} took {}ms\",\"req\":{id},\"row\":{row}}}\n",
            id / 60 % 60,
            id % 60,
            (id * 7919 + row * 104_729) % 100_003,
            (id + row) % 977,
        ));
    }
    out.into_bytes()
}

/// Sends request `id`; returns the status and the parsed answer.
fn send(server: &Server, id: u64) -> (u16, serde_json::Value) {
    let (status, _, answer) = server.post_raw(
        "/v1/logs/ingest",
        &[("Content-Type", "application/x-ndjson")],
        &body(id),
    );
    (status, serde_json::from_slice(&answer).unwrap())
}

/// Rows and distinct `_seq`s per request id.
fn rows_by_request(server: &Server) -> BTreeMap<u64, (u64, u64)> {
    server
        .sql(
            None,
            "SELECT attributes['req'], count(*), count(DISTINCT _seq) FROM logs GROUP BY 1",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().parse().unwrap(),
                (r[1].as_u64().unwrap(), r[2].as_u64().unwrap()),
            )
        })
        .collect()
}

/// A counter of the server's `/metrics`.
fn metric(server: &Server, name: &str) -> u64 {
    let (status, text) = server.get("/metrics", None);
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

/// Every acknowledged request exactly once, every other one whole or absent.
fn check(server: &Server, acked: &BTreeSet<u64>, refused: &BTreeSet<u64>, when: &str) {
    let found = rows_by_request(server);
    for id in acked {
        assert_eq!(
            found.get(id),
            Some(&(LINES, LINES)),
            "{when}: acknowledged request {id}"
        );
    }
    for (id, &(rows, seqs)) in &found {
        assert!(
            acked.contains(id) || refused.contains(id),
            "{when}: request {id} was never sent"
        );
        assert_eq!(
            (rows, seqs),
            (LINES, LINES),
            "{when}: request {id} partly stored"
        );
    }
}

#[test]
fn a_full_disk_refuses_ingest_precisely_then_recovers_without_losing_acknowledged_rows() {
    if std::env::var_os(CHILD_DIR).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    silt_storage::test_support::rerun_in_mount_namespace("disk_full_child", CHILD_DIR, dir.path());
}

/// Mounts a tmpfs of `mib` MiB on `dir` and takes all but `free_kib` KiB of it with a file the
/// operator will delete; returns that file.
fn small_disk(dir: &Path, mib: u64, free_kib: u64) -> std::path::PathBuf {
    silt_storage::test_support::mount_tmpfs(dir, &format!("{mib}m"));
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![1u8; ((mib << 10) - free_kib) as usize * 1024]).unwrap();
    filler
}

/// The tests proper, inside the namespace. Do nothing unless started by the test above.
#[test]
fn disk_full_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    server_on_a_full_disk(&dir.join("serve"));
    cli_with_wal_on_a_full_disk(&dir.join("cli"));
    cli_on_a_full_disk(&dir.join("bulk"));
}

/// An NDJSON file of `lines` lines, line `n` with attribute `n`.
fn numbered_lines(lines: u64) -> tempfile::NamedTempFile {
    let input = tempfile::NamedTempFile::new().unwrap();
    let mut text = String::new();
    for n in 0..lines {
        text.push_str(&format!(
            "{{\"timestamp\":\"2026-11-21T01:00:00.{n:06}Z\",\"message\":\"line {n} value={}\",\"n\":{n}}}\n",
            n * 7919 % 100_003
        ));
    }
    std::fs::write(input.path(), text).unwrap();
    input
}

/// `silt ARGS --data-dir DATA ARG`: whether it succeeded, its stdout and its stderr.
fn silt_in(data: &Path, args: &[&str], arg: &str) -> (bool, Vec<u8>, String) {
    let out = Command::new(SILT)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .arg(arg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), out.stdout, stderr)
}

/// Rows, distinct `_seq`s, distinct `n`s and the largest `n` in `data`.
fn numbered_rows(data: &Path) -> (u64, u64, u64, Option<u64>) {
    let (ok, stdout, stderr) = silt_in(
        data,
        &["sql", "--format", "json"],
        "SELECT count(*) AS c, count(DISTINCT _seq) AS s, count(DISTINCT attributes['n']) AS d, max(CAST(attributes['n'] AS BIGINT)) AS m FROM logs",
    );
    assert!(ok, "{stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let row = &answer["rows"][0];
    (
        row[0].as_u64().unwrap(),
        row[1].as_u64().unwrap(),
        row[2].as_u64().unwrap(),
        row[3].as_u64(),
    )
}

/// `silt ingest` (past the WAL) fails on a full disk, saying how many rows, a prefix of the
/// input, are in segments; exactly those are there once space is freed, and ingesting the file
/// again then stores every line.
fn cli_on_a_full_disk(dir: &Path) {
    let lines = 60_000u64;
    let input = numbered_lines(lines);
    let input = input.path().to_str().unwrap();
    // Room for the catalog, not for the segment.
    let filler = small_disk(dir, 4, 96);
    let data = dir.join("data");
    let (ok, _, stderr) = silt_in(&data, &["ingest"], input);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // "… of the N rows read, the first M (…) are in segments; the others were not stored".
    let number_after = |text: &str| -> u64 {
        let at = stderr
            .find(text)
            .unwrap_or_else(|| panic!("no {text:?} in {stderr}"));
        let digits: String = stderr[at + text.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or_else(|_| panic!("{stderr}"))
    };
    let (read, stored) = (number_after("of the "), number_after("the first "));
    assert!(stderr.contains("are in segments"), "{stderr}");
    assert!(stored <= read && read <= lines, "{stderr}");
    eprintln!("silt ingest on a full disk: {}", stderr.trim());

    std::fs::remove_file(&filler).unwrap();
    let (count, seqs, distinct, max) = numbered_rows(&data);
    assert_eq!(count, stored, "{stderr}");
    assert_eq!((seqs, distinct), (count, count));
    assert_eq!(max, count.checked_sub(1), "the stored rows are a prefix");
    let (ok, _, stderr) = silt_in(&data, &["ingest"], input);
    assert!(ok, "{stderr}");
    assert_eq!(numbered_rows(&data).0, stored + lines);
}

/// `silt ingest --wal` stops at the first failure and says what is durable: that many lines,
/// kept in the WAL, in segments after the next open once space is freed.
fn cli_with_wal_on_a_full_disk(dir: &Path) {
    let lines = 60_000u64;
    let input = numbered_lines(lines);
    let filler = small_disk(dir, 4, 600);
    let data = dir.join("data");
    let silt = |args: &[&str], arg: &str| silt_in(&data, args, arg);
    let (ok, _, stderr) = silt(&["ingest", "--wal"], input.path().to_str().unwrap());
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // "… after N rows (they are durable …" or "… (all N rows are durable …".
    let durable: u64 = stderr
        .split_whitespace()
        .skip_while(|w| *w != "after" && *w != "(all")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no durable line count in {stderr}"));
    assert!(
        stderr.contains("are durable") && stderr.contains("write-ahead log"),
        "{stderr}"
    );
    eprintln!("silt ingest --wal on a full disk: {}", stderr.trim());
    assert!(durable > 0 && durable < lines, "{stderr}");

    std::fs::remove_file(&filler).unwrap();
    let empty = tempfile::NamedTempFile::new().unwrap();
    let (ok, _, stderr) = silt(&["ingest", "--wal"], empty.path().to_str().unwrap());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("recovered"), "{stderr}");
    let (count, seqs, distinct, max) = numbered_rows(&data);
    // What was reported durable, plus the failed batch whole or not at all; a prefix of the
    // file, each line once.
    assert!(count >= durable, "{count} rows, {durable} durable");
    assert_eq!((seqs, distinct), (count, count));
    assert_eq!(max, Some(count - 1));
}

fn server_on_a_full_disk(dir: &Path) {
    // Most of the disk is taken by a file the operator will delete.
    let filler = small_disk(dir, 6, 2048);
    let data = dir.join("data");
    // Small memtables: segments are written (and fail to be) while the disk fills.
    let envs = [("SILT_ENGINE__FLUSH_BYTES", "262144")];
    let mut server = Server::start(&data, &envs);

    let mut acked = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut next = 0u64;
    let refusal = loop {
        assert!(next < 2_000, "the disk never filled");
        let (status, answer) = send(&server, next);
        match status {
            202 => {
                assert_eq!(answer["ingested"], LINES, "{answer}");
                acked.insert(next);
                // Time for background flushes: segments fill the disk too.
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                refused.insert(next);
                break (status, answer);
            }
        }
        next += 1;
    };
    let (status, answer) = refusal;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["type"], "storage_error", "{answer}");
    let reason = answer["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("No space left on device") && reason.contains("not acknowledged"),
        "{reason}"
    );
    assert!(acked.len() >= 5, "filled after {} requests", acked.len());

    // While the disk stays full: refused again, and what was acknowledged is still searchable.
    let (status, answer) = send(&server, next);
    assert_eq!(status, 503, "{answer}");
    refused.insert(next);
    next += 1;
    check(&server, &acked, &refused, "disk full");
    eprintln!(
        "disk full after {} acknowledged requests; {} flushes, {} failed",
        acked.len(),
        metric(&server, "silt_flushes_total"),
        metric(&server, "silt_flush_errors_total"),
    );

    // Space freed: ingest resumes without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = send(&server, next);
        if status == 202 {
            acked.insert(next);
            next += 1;
            break;
        }
        assert_eq!(status, 503, "{answer}");
        refused.insert(next);
        next += 1;
        assert!(Instant::now() < deadline, "ingest never resumed: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..5 {
        let (status, answer) = send(&server, next);
        assert_eq!(status, 202, "{answer}");
        acked.insert(next);
        next += 1;
    }
    check(&server, &acked, &refused, "after recovery");
    // Segments whose write failed left no half-written file behind.
    let mut stack = vec![data.join("segments")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "{} left behind",
                entry.path().display()
            );
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }

    // A crash now loses nothing acknowledged, before or after the full disk.
    server.signal(rustix::process::Signal::KILL);
    server.wait();
    let server = Server::start(&data, &envs);
    check(&server, &acked, &refused, "after SIGKILL and restart");
    let (status, answer) = send(&server, next);
    assert_eq!(status, 202, "{answer}");
}
