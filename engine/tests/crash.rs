//! Crash test with a real child process: a writer ingests requests and prints each
//! acknowledgement; it is killed with SIGKILL at random moments (during appends, fsyncs and
//! flushes), many times. Afterwards every acknowledged request is present exactly once with
//! the `_seq`s it was acknowledged with, and every other request is present entirely or not at all.
//!
//! The child is this test binary run again with `SILT_CRASH_CHILD_DIR` set.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::segment_rows;
use silt_engine::{Engine, EngineOptions};
use silt_storage::record::LogRecord;

const CYCLES: u64 = 12;

fn engine_options(dir: &Path) -> EngineOptions {
    // Tiny flush threshold: kills often land inside a flush.
    EngineOptions {
        flush_bytes: 48 << 10,
        partition_min_rows: 50,
        ..EngineOptions::new(dir)
    }
}

/// The writer. Does nothing unless started by the parent test.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os("SILT_CRASH_CHILD_DIR") else {
        return;
    };
    let cycle: u64 = std::env::var("SILT_CRASH_CYCLE").unwrap().parse().unwrap();
    let (engine, _) = Engine::open(engine_options(Path::new(&dir))).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for k in 0u64.. {
        let id = cycle * 1_000_000 + k;
        let n = 1 + (k * 7919 % 40) as usize;
        let rows: Vec<LogRecord> = (0..n)
            .map(|j| LogRecord {
                timestamp: Some(
                    1_795_219_200_000_000_000 + (id % 5) as i64 * 3_600_000_000_000 + j as i64,
                ),
                message: format!("request {id} row {j} of {n}"),
                ..Default::default()
            })
            .collect();
        let receipt = engine.ingest("crash", "default", &rows).unwrap();
        writeln!(out, "ack {id} {} {n}", receipt.first_seq).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn issue_3_sigkill_loses_no_acknowledged_request() {
    if std::env::var_os("SILT_CRASH_CHILD_DIR").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // (first_seq, rows) of every acknowledged request.
    let mut acked: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    let mut seed = 0x5eed_u64;
    for cycle in 0..CYCLES {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SILT_CRASH_CHILD_DIR", dir.path())
            .env("SILT_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // libtest prints its own lines first, and `test crash_child_writer ... ` before "ready".
        while !rx
            .recv_timeout(Duration::from_secs(60))
            .expect("writer did not start")
            .ends_with("ready")
        {}
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(30 + (seed >> 33) % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked.len();
        for line in rx.try_iter() {
            let parts: Vec<&str> = line.split(' ').collect();
            if parts.len() == 4 && parts[0] == "ack" {
                acked.insert(
                    parts[1].parse().unwrap(),
                    (parts[2].parse().unwrap(), parts[3].parse().unwrap()),
                );
            }
        }
        assert!(acked.len() > before, "cycle {cycle} acknowledged nothing");
    }

    // Recover: open (replays the WAL), flush everything, then compare with the acks.
    let (engine, _) = Engine::open(engine_options(dir.path())).unwrap();
    engine.shutdown().unwrap();
    let rows = segment_rows(dir.path(), "crash");
    let mut present: BTreeMap<u64, Vec<(u64, usize, usize)>> = BTreeMap::new(); // id → (seq, j, n)
    for (seq, message) in &rows {
        let p: Vec<&str> = message.split(' ').collect();
        let (id, j, n) = (
            p[1].parse().unwrap(),
            p[3].parse().unwrap(),
            p[5].parse().unwrap(),
        );
        present.entry(id).or_default().push((*seq, j, n));
    }
    for (id, (first_seq, n)) in &acked {
        let got = present
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged request {id} is missing"));
        let expected: Vec<(u64, usize, usize)> =
            (0..*n).map(|j| (first_seq + j as u64, j, *n)).collect();
        assert_eq!(
            got, &expected,
            "request {id} is not present exactly once with its acknowledged _seq"
        );
    }
    let mut unacked_kept = 0;
    for (id, got) in &present {
        if acked.contains_key(id) {
            continue;
        }
        let n = got[0].2;
        let js: HashSet<usize> = got.iter().map(|g| g.1).collect();
        assert_eq!(js.len(), n, "unacknowledged request {id} is partly present");
        assert_eq!(got.len(), n, "unacknowledged request {id} is duplicated");
        unacked_kept += 1;
    }
    eprintln!(
        "{} acknowledged requests all present; {unacked_kept} unacknowledged kept whole",
        acked.len()
    );
}
