//! Load benchmark of `silt serve` over real HTTP: sustained NDJSON ingest from several clients
//! (lines/s, ack latency p50/p99), ingest-to-searchable latency (a fresh token posted, then
//! searched for until found), and search latency while the ingest load runs.
//!
//! With `--bulk`, the same documents go through the Elasticsearch `_bulk` endpoint instead of
//! `/v1/logs/ingest`. With `--tail N`, N WebSocket subscribers follow `/v1/logs/tail?q=probe…`
//! and the time from each probe's ack to its delivery to every subscriber is measured.
//!
//! `cargo build --release --workspace --bins && target/release/serve-bench [SECONDS] [--clients N] [--batch LINES] [--bulk] [--tail N] [--rate LINES_PER_S]`
//! The `silt` binary is `$SILT_BIN` or `target/release/silt`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use silt_benches::{CorpusGenerator, to_ndjson};

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} n={:<7} p50={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let clients: usize = arg(&args, "--clients").unwrap_or(4);
    let batch: u64 = arg(&args, "--batch").unwrap_or(2000);
    let bulk = args.iter().any(|a| a == "--bulk");
    let subscribers: usize = arg(&args, "--tail").unwrap_or(0);
    // Lines/s all clients together hold to (0: as fast as the server takes them).
    let rate: u64 = arg(&args, "--rate").unwrap_or(0);
    let silt = std::env::var_os("SILT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/silt"));
    assert!(
        silt.exists(),
        "{} not found: cargo build --release --workspace --bins",
        silt.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&silt)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SILT_LOG", "warn")
        // Benchmark the engine, not the default rate limit.
        .env("SILT_LIMITS__INGEST_LINES_PER_SECOND", "0")
        .env("SILT_LIMITS__INGEST_BYTES_PER_SECOND", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    while agent()
        .get(format!("{url}/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    // Request bodies prepared up front so the clients measure the server, not the generator.
    let bodies: Vec<String> = {
        let mut generator = CorpusGenerator::new(7, batch * 16, 3600);
        (0..16)
            .map(|_| {
                (0..batch)
                    .map(|_| {
                        let doc = to_ndjson(&generator.next_record()) + "\n";
                        if bulk {
                            format!("{{\"create\":{{}}}}\n{doc}")
                        } else {
                            doc
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let body_bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum::<u64>() / bodies.len() as u64;
    let (endpoint, content_type, accepted) = if bulk {
        ("/bench/_bulk", "application/x-ndjson", 200)
    } else {
        ("/v1/logs/ingest", "application/x-ndjson", 202)
    };
    println!(
        "silt serve at {url}: {clients} clients × {batch}-document requests to {endpoint} (~{} KiB) for {seconds} s, {subscribers} tail subscribers",
        body_bytes / 1024
    );

    // Probe token → when its ingest was acknowledged; subscribers time their delivery from it.
    let probe_acks: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    let deliveries: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
    let tail_ready = AtomicU64::new(0);

    let stop = AtomicBool::new(false);
    let lines = AtomicU64::new(0);
    let started = Instant::now();
    let (acks, visible, searches) = std::thread::scope(|s| {
        for _ in 0..subscribers {
            let (url, stop, probe_acks, deliveries, tail_ready) =
                (&url, &stop, &probe_acks, &deliveries, &tail_ready);
            s.spawn(move || {
                let ws = format!(
                    "{}/v1/logs/tail?q=probe",
                    url.replacen("http://", "ws://", 1)
                );
                let (mut socket, _) = tungstenite::connect(ws.as_str()).expect("tail connects");
                if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
                    tcp.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                }
                tail_ready.fetch_add(1, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) {
                    let Ok(tungstenite::Message::Text(text)) = socket.read() else {
                        continue;
                    };
                    let received = Instant::now();
                    let Some(token) = text
                        .as_str()
                        .split(['"', ' '])
                        .find(|w| w.starts_with("probetoken"))
                    else {
                        continue;
                    };
                    // The ack may reach the prober a moment after the row reached us.
                    let deadline = received + Duration::from_secs(1);
                    loop {
                        if let Some(acked) = probe_acks.lock().unwrap().get(token) {
                            deliveries
                                .lock()
                                .unwrap()
                                .push(received.saturating_duration_since(*acked));
                            break;
                        }
                        if Instant::now() > deadline {
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            });
        }
        while tail_ready.load(Ordering::Relaxed) < subscribers as u64 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let ingesters: Vec<_> = (0..clients)
            .map(|c| {
                let (url, bodies, stop, lines) = (&url, &bodies, &stop, &lines);
                s.spawn(move || {
                    let agent = agent();
                    let mut acks = Vec::new();
                    let mut i = c;
                    let pace = (rate > 0).then(|| {
                        Duration::from_secs_f64(batch as f64 * clients as f64 / rate as f64)
                    });
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(pace) = pace {
                            std::thread::sleep(next.saturating_duration_since(Instant::now()));
                            next += pace;
                        }
                        let t = Instant::now();
                        let r = agent
                            .post(format!("{url}{endpoint}"))
                            .header("Content-Type", content_type)
                            .send(bodies[i % bodies.len()].as_bytes())
                            .unwrap();
                        match r.status().as_u16() {
                            status if status == accepted => {
                                acks.push(t.elapsed());
                                lines.fetch_add(batch, Ordering::Relaxed);
                            }
                            503 | 429 => std::thread::sleep(Duration::from_millis(50)),
                            other => panic!("ingest answered {other}"),
                        }
                        i += clients;
                    }
                    acks
                })
            })
            .collect();
        let prober = s.spawn(|| {
            let agent = agent();
            let mut visible = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let token = format!("probetoken{n}x{}", std::process::id());
                let t = Instant::now();
                let r = agent
                    .post(format!("{url}/v1/logs/ingest"))
                    .header("Content-Type", "text/plain")
                    .send(format!("probe {token}\n").as_bytes())
                    .unwrap();
                if r.status().as_u16() != 202 {
                    continue;
                }
                probe_acks
                    .lock()
                    .unwrap()
                    .insert(token.clone(), Instant::now());
                loop {
                    let mut r = agent
                        .post(format!("{url}/v1/logs/search"))
                        .header("Content-Type", "application/json")
                        .send(format!("{{\"query\":\"{token}\",\"limit\":1}}").as_bytes())
                        .unwrap();
                    let body = r.body_mut().read_to_string().unwrap();
                    if body.contains("\"total\":1") {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                visible.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(200));
            }
            visible
        });
        let searcher = s.spawn(|| {
            let agent = agent();
            let mut latencies = Vec::new();
            let queries = [
                "level:ERROR",
                "timeout",
                "service:checkout-service level:>=WARN",
                "\"connection reset\"",
            ];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let q = queries[i % queries.len()];
                i += 1;
                let t = Instant::now();
                let r = agent
                    .post(format!("{url}/v1/logs/search"))
                    .header("Content-Type", "application/json")
                    .send(
                        format!(
                            "{{\"query\":{},\"limit\":100,\"time_range\":{{\"last\":\"15m\"}}}}",
                            serde_json_str(q)
                        )
                        .as_bytes(),
                    )
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                latencies.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            latencies
        });
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        let acks: Vec<Duration> = ingesters
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (acks, prober.join().unwrap(), searcher.join().unwrap())
    });
    let elapsed = started.elapsed().as_secs_f64();
    let total = lines.load(Ordering::Relaxed);
    println!(
        "ingest: {total} lines in {elapsed:.1} s = {:.0} lines/s ({:.1} MB/s of NDJSON)",
        total as f64 / elapsed,
        total as f64 * (body_bytes / batch) as f64 / elapsed / 1e6
    );
    summary("ingest ack latency", acks);
    summary("ingest→searchable", visible);
    summary("search under ingest load", searches);
    if subscribers > 0 {
        summary("tail ack→delivery", deliveries.into_inner().unwrap());
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn serde_json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
