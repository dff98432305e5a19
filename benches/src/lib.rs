//! Corpus generators for Silt's benchmarks: realistic structured logs (~530 bytes per NDJSON
//! line) with planted needles. Deterministic for a given seed.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use silt_storage::record::LogRecord;

/// The ClickHouse side of the benchmarks, `benches/clickhouse/query_compare.py` (paths are from
/// the workspace root), run by the Python that has chDB: `$SILT_CHDB_PYTHON`, or
/// `target/chdb-env/bin/python`.
pub fn clickhouse_compare() -> (std::process::Command, std::path::PathBuf) {
    let python = std::env::var_os("SILT_CHDB_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target/chdb-env/bin/python"));
    let mut command = std::process::Command::new(&python);
    command.arg("benches/clickhouse/query_compare.py");
    (command, python)
}

/// Why [`clickhouse_compare`]'s Python did not start, and how to set it up.
pub fn chdb_python_missing(python: &std::path::Path, error: &std::io::Error) -> String {
    format!(
        "cannot run {} ({error}): python3 -m venv target/chdb-env && \
         target/chdb-env/bin/pip install -r benches/clickhouse/requirements.txt",
        python.display()
    )
}

/// Start of every generated corpus: 2026-11-21T00:00:00Z.
pub const CORPUS_START_NS: i64 = 1_795_219_200_000_000_000;

const SERVICES: &[&str] = &[
    "payment-service",
    "checkout-service",
    "cart-service",
    "auth-service",
    "search-api",
    "inventory",
    "shipping-service",
    "notification-worker",
    "gateway",
    "recommendation-engine",
    "user-profile",
    "billing-batch",
];
const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1"];
const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/cart",
    "/api/v1/users",
    "/api/v2/search",
    "/healthz",
    "/api/v1/payments",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];
const ERRORS: &[&str] = &[
    "connection refused",
    "timeout",
    "deadline exceeded",
    "broken pipe",
    "too many open files",
];

/// Generates a realistic log corpus line by line.
pub struct CorpusGenerator {
    rng: SmallRng,
    lines: u64,
    total_lines: u64,
    span_ns: i64,
    traces: Vec<(u128, u32)>,
    /// Per service (in `SERVICES` order), its pods.
    pods: Vec<Vec<Pod>>,
}

/// One replica of a service: where it runs and which release it runs.
struct Pod {
    name: String,
    host: String,
    region: &'static str,
    version: String,
}

impl CorpusGenerator {
    /// `total_lines` spread evenly over `span_secs` seconds from [`CORPUS_START_NS`].
    pub fn new(seed: u64, total_lines: u64, span_secs: i64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let hosts: Vec<(String, &'static str)> = (0..40)
            .map(|_| {
                let region = REGIONS[rng.random_range(0..REGIONS.len())];
                let name = format!(
                    "ip-10-{}-{}-{}.{}.compute.internal",
                    rng.random_range(0..8),
                    rng.random_range(0..255),
                    rng.random_range(0..255),
                    region
                );
                (name, region)
            })
            .collect();
        // A Kubernetes-style deployment: each service runs 3-12 replicas scheduled on the hosts,
        // named `<service>-<template hash>-<suffix>`, in the middle of a rolling update (about a
        // third of the replicas already on the next release).
        let pods = SERVICES
            .iter()
            .map(|service| {
                let template = rng.random_range(0..0xff_ffff_ffffu64);
                let (minor, patch) = (rng.random_range(0..5), rng.random_range(0..20));
                (0..rng.random_range(3..=12))
                    .map(|_| {
                        let (host, region) = hosts[rng.random_range(0..hosts.len())].clone();
                        let next = rng.random_bool(0.35);
                        Pod {
                            name: format!(
                                "{service}-{template:010x}-{:05x}",
                                rng.random_range(0..0xf_ffffu32)
                            ),
                            host,
                            region,
                            version: format!("v1.{minor}.{}", patch + u32::from(next)),
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            rng,
            lines: 0,
            total_lines,
            span_ns: span_secs * 1_000_000_000,
            traces: Vec::new(),
            pods,
        }
    }

    fn trace_id(&mut self) -> u128 {
        // About 64 traces in flight, each 2-30 lines long.
        if self.traces.len() < 64 || self.rng.random_bool(0.05) {
            let id = self.rng.random::<u128>();
            let lines = self.rng.random_range(2..30);
            self.traces.push((id, lines));
        }
        let i = self.rng.random_range(0..self.traces.len());
        let (id, left) = &mut self.traces[i];
        let id = *id;
        *left -= 1;
        if *left == 0 {
            self.traces.swap_remove(i);
        }
        id
    }

    /// The next record.
    pub fn next_record(&mut self) -> LogRecord {
        let n = self.lines;
        self.lines += 1;
        let rng = &mut self.rng;
        let jitter = rng.random_range(0..2_000_000i64);
        let timestamp = CORPUS_START_NS
            + (self.span_ns as i128 * n as i128 / self.total_lines.max(1) as i128) as i64
            + jitter;
        let roll = rng.random_range(0..1000);
        let level = match roll {
            0..=9 => "ERROR",
            10..=59 => "WARN",
            60..=199 => "DEBUG",
            _ => "INFO",
        };
        let service_index = rng.random_range(0..SERVICES.len() * 3) % SERVICES.len();
        let service = SERVICES[service_index];
        let pods = &self.pods[service_index];
        let pod = &pods[rng.random_range(0..pods.len())];
        let user = rng.random_range(0..200_000u32);
        let order = rng.random_range(0..5_000_000u32);
        let ms = rng.random_range(1..5000u32);
        let ip = format!(
            "10.{}.{}.{}",
            rng.random_range(0..8),
            rng.random_range(0..255),
            rng.random_range(1..255)
        );
        let method = METHODS[rng.random_range(0..METHODS.len())];
        let path = PATHS[rng.random_range(0..PATHS.len())];
        let status = [200, 200, 200, 201, 204, 301, 400, 404, 500, 503][rng.random_range(0..10)];
        let request_id = format!("req-{:016x}", rng.random::<u64>());
        let error = ERRORS[rng.random_range(0..ERRORS.len())];
        let message = match (level, rng.random_range(0..6)) {
            ("ERROR", 0..=2) => format!(
                "failed to process order {order} for user u-{user}: upstream {ip}:5432 {error} after {ms}ms (attempt {})",
                rng.random_range(1..4)
            ),
            ("ERROR", _) => format!(
                "unhandled exception in {method} {path}/{order}: {error} request_id={request_id}"
            ),
            ("WARN", 0..=2) => format!(
                "slow query on orders table took {ms}ms rows={} user=u-{user}",
                rng.random_range(0..10_000)
            ),
            ("WARN", _) => format!(
                "retrying call to {ip}:8080 after {error}, backoff {}ms",
                ms / 10
            ),
            ("DEBUG", _) => format!(
                "cache {} for key user:{user}:cart in {}us",
                if rng.random_bool(0.7) { "hit" } else { "miss" },
                rng.random_range(5..900)
            ),
            (_, 0 | 1) => format!(
                "{method} {path}/{order} {status} {ms}ms client={ip} request_id={request_id}"
            ),
            (_, 2) => format!(
                "user u-{user} logged in from {ip} using session {:012x}",
                rng.random::<u64>() & 0xffff_ffff_ffff
            ),
            (_, 3) => format!(
                "order {order} created for user u-{user} total={}.{:02} EUR items={}",
                rng.random_range(1..900),
                rng.random_range(0..100),
                rng.random_range(1..12)
            ),
            (_, 4) => format!(
                "payment authorized for order {order} amount={}.{:02} provider=stripe latency={ms}ms",
                rng.random_range(1..900),
                rng.random_range(0..100)
            ),
            _ => format!(
                "published event order.updated partition={} offset={} lag={}ms",
                rng.random_range(0..32),
                rng.random_range(0..90_000_000u64),
                rng.random_range(0..300)
            ),
        };
        let (pod, host, region, version) = (
            pod.name.clone(),
            pod.host.clone(),
            pod.region,
            pod.version.clone(),
        );
        let trace = self.trace_id();
        let rng = &mut self.rng;
        let attributes = vec![
            ("metadata.region".to_string(), region.to_string()),
            ("metadata.version".to_string(), version),
            ("metadata.user_id".to_string(), format!("u-{user}")),
            ("metadata.request_id".to_string(), request_id),
            ("metadata.http.method".to_string(), method.to_string()),
            ("metadata.http.status".to_string(), status.to_string()),
            ("metadata.http.path".to_string(), format!("{path}/{order}")),
            (
                "metadata.duration_ms".to_string(),
                format!("{}.{}", ms, rng.random_range(0..10)),
            ),
            ("metadata.pod".to_string(), pod),
        ];
        LogRecord {
            timestamp: Some(timestamp),
            level: Some(level.to_string()),
            service: Some(service.to_string()),
            host: Some(host),
            trace_id: Some(format!("{trace:032x}")),
            span_id: Some(format!("{:016x}", rng.random::<u64>())),
            message,
            attributes,
        }
    }
}

impl Iterator for CorpusGenerator {
    type Item = LogRecord;
    fn next(&mut self) -> Option<LogRecord> {
        (self.lines < self.total_lines).then(|| self.next_record())
    }
}

/// One record as an NDJSON line (nested `metadata` object, RFC 3339 timestamp), without newline.
pub fn to_ndjson(record: &LogRecord) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(560);
    let ts = record.timestamp.unwrap_or(0);
    let secs = ts.div_euclid(1_000_000_000);
    let nanos = ts.rem_euclid(1_000_000_000);
    let _ = write!(
        out,
        "{{\"timestamp\":\"{}.{:06}Z\"",
        format_utc(secs),
        nanos / 1000
    );
    for (key, value) in [
        ("level", &record.level),
        ("service", &record.service),
        ("host", &record.host),
        ("trace_id", &record.trace_id),
        ("span_id", &record.span_id),
    ] {
        if let Some(v) = value {
            let _ = write!(out, ",\"{key}\":{}", json_string(v));
        }
    }
    let _ = write!(out, ",\"message\":{}", json_string(&record.message));
    // Rebuild the nested metadata object from the dotted keys.
    out.push_str(",\"metadata\":{");
    let mut http = Vec::new();
    let mut first = true;
    for (key, value) in &record.attributes {
        let key = key.strip_prefix("metadata.").unwrap_or(key);
        if let Some(sub) = key.strip_prefix("http.") {
            http.push((sub, value));
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let rendered = if key == "duration_ms" {
            value.clone()
        } else {
            json_string(value)
        };
        let _ = write!(out, "{}:{rendered}", json_string(key));
    }
    if !http.is_empty() {
        out.push_str(",\"http\":{");
        for (i, (k, v)) in http.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let rendered = if *k == "status" {
                v.to_string()
            } else {
                json_string(v)
            };
            let _ = write!(out, "{}:{rendered}", json_string(k));
        }
        out.push('}');
    }
    out.push_str("}}");
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC), without a date library.
fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_about_530_bytes() {
        let lines: Vec<String> = CorpusGenerator::new(1, 2000, 3600)
            .map(|r| to_ndjson(&r))
            .collect();
        let avg = lines.iter().map(String::len).sum::<usize>() / lines.len();
        assert!((480..=600).contains(&avg), "average line {avg} bytes");
        assert!(
            lines[0].starts_with("{\"timestamp\":\"2026-11-21T00:00:00."),
            "{}",
            lines[0]
        );
        for l in &lines[..50] {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["metadata"]["http"]["status"].is_u64());
        }
    }
}
