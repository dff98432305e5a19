//! End-to-end ingest benchmark: generates the realistic NDJSON corpus (default 2,000,000 lines
//! of ~530 bytes), runs the real `silt ingest` on it, and reports lines/s, MB/s, peak RSS and
//! bytes on disk against raw bytes, and the CPU time `silt ingest` used: on a shared host its
//! wall time varies by ±20% from run to run, and CPU µs a line is the steadier figure to compare.
//!
//! `cargo build --release --workspace --bins && target/release/ingest-bench [LINES] [--keep DIR]`
//! (building with `-p` resolves features differently and rebuilds DataFusion).
//! `--sparse` instead writes LINES text lines one hour apart (an old file with a line an hour),
//! where what matters is peak RSS and the number of segments, not lines/s.
//! The `silt` binary is `$SILT_BIN` or `target/release/silt`.
//! `--against BASE` runs `BASE` (another `silt` binary) and the tested one in turn, `--runs N`
//! times each (3 by default with `--against`), on the same corpus, and prints the medians and
//! their ratio: this host's speed drifts too much for runs made minutes apart to be compared.
//! `--clickhouse` also loads the same corpus into ClickHouse (chDB, a MergeTree with a
//! `tokenbf_v1` index on the message, `benches/clickhouse/query_compare.py --load-only`, with the
//! Python of `$SILT_CHDB_PYTHON` or `target/chdb-env/bin/python`) after each run, and prints
//! ClickHouse's lines/s (its `INSERT`; parts are merged afterwards, untimed), its raw/disk after
//! the merge, and Silt's ratio to each: the reference figures, measured on this host in
//! the same minutes.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use silt_benches::{CorpusGenerator, to_ndjson};

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The flags that take a value.
const VALUE_FLAGS: [&str; 3] = ["--keep", "--against", "--runs"];

/// The value after `flag` on the command line.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // LINES is the first number that is not the value of a flag.
    let lines: u64 = args
        .iter()
        .enumerate()
        .filter(|&(i, _)| i == 0 || !VALUE_FLAGS.contains(&args[i - 1].as_str()))
        .find_map(|(_, a)| a.parse().ok())
        .unwrap_or(2_000_000);
    let keep = flag_value(&args, "--keep").map(PathBuf::from);
    let sparse = args.iter().any(|a| a == "--sparse");
    let clickhouse = args.iter().any(|a| a == "--clickhouse");
    assert!(
        !(clickhouse && sparse),
        "--clickhouse loads the NDJSON corpus; --sparse writes text lines"
    );
    let silt = std::env::var_os("SILT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/silt"));
    assert!(
        silt.exists(),
        "{} not found: build it with `cargo build --release --bin silt`",
        silt.display()
    );

    let work = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("silt-ingest-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&work).unwrap();
    let corpus = work.join(if sparse {
        "sparse.log"
    } else {
        "corpus.ndjson"
    });
    let started = Instant::now();
    let mut raw_bytes = 0u64;
    if sparse {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&corpus).unwrap());
        // Hourly lines from 2023-01-01T00:00:00Z, in `yyyy-MM-dd HH:mm:ss` as an old log has.
        for hour in 0..lines as i64 {
            let secs = 1_672_531_200 + hour * 3600;
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            let line = format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:00 INFO nightly job {hour} finished in {} ms\n",
                rem / 3600,
                rem % 3600 / 60,
                hour % 997
            );
            raw_bytes += line.len() as u64;
            out.write_all(line.as_bytes()).unwrap();
        }
        out.flush().unwrap();
    } else {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&corpus).unwrap());
        for record in CorpusGenerator::new(42, lines, 7200) {
            let line = to_ndjson(&record);
            raw_bytes += line.len() as u64 + 1;
            out.write_all(line.as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.flush().unwrap();
    }
    eprintln!(
        "corpus: {lines} lines, {raw_bytes} bytes ({} bytes/line), generated in {:.1} s",
        raw_bytes / lines.max(1),
        started.elapsed().as_secs_f64()
    );

    let against = flag_value(&args, "--against").map(PathBuf::from);
    let runs: usize = flag_value(&args, "--runs")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if against.is_some() { 3 } else { 1 });
    let data = work.join("data");
    let mut tested = Vec::new();
    let mut base = Vec::new();
    let mut reference = Vec::new();
    for _ in 0..runs.max(1) {
        if let Some(bin) = &against {
            let run = ingest_once(bin, &corpus, &data, lines, raw_bytes);
            run.print(&format!("base {}", bin.display()));
            base.push(run);
        }
        let run = ingest_once(&silt, &corpus, &data, lines, raw_bytes);
        run.print(&format!("silt ingest ({})", silt.display()));
        tested.push(run);
        if clickhouse {
            let load = clickhouse_load(&corpus, &work.join("chdb"), lines, raw_bytes);
            load.print();
            reference.push(load);
        }
    }
    if tested.len() > 1 || !base.is_empty() {
        println!("medians of {} runs:", tested.len());
        let rows: [Metric; 4] = [
            ("lines/s", Run::lines_per_sec),
            ("CPU µs a line", Run::cpu_us_per_line),
            ("peak RSS MiB", Run::max_rss_mib),
            ("raw/disk", Run::raw_per_disk),
        ];
        for (name, field) in rows {
            let t = median(tested.iter().map(field).collect());
            if base.is_empty() {
                println!("  {name:14} {t:>12.2}");
            } else {
                let b = median(base.iter().map(field).collect());
                println!(
                    "  {name:14} {t:>12.2}   base {b:>12.2}   ratio {:.3}",
                    t / b
                );
            }
        }
    }
    if !reference.is_empty() {
        let silt_rate = median(tested.iter().map(Run::lines_per_sec).collect());
        let silt_ratio = median(tested.iter().map(Run::raw_per_disk).collect());
        let ch_rate = median(
            reference
                .iter()
                .map(|r| r.lines as f64 / r.insert_secs)
                .collect(),
        );
        let ch_ratio = median(
            reference
                .iter()
                .map(|r| r.raw_bytes as f64 / r.disk as f64)
                .collect(),
        );
        println!(
            "against ClickHouse (medians of {} loads each):",
            reference.len()
        );
        println!(
            "  lines/s        silt {silt_rate:>10.0}   ClickHouse {ch_rate:>10.0}   ratio {:.3}",
            silt_rate / ch_rate
        );
        println!(
            "  raw/disk       silt {silt_ratio:>10.2}   ClickHouse {ch_ratio:>10.2}   ratio {:.3}",
            silt_ratio / ch_ratio
        );
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// One fresh load of the corpus into ClickHouse (chDB).
struct ClickHouseLoad {
    engine: String,
    lines: u64,
    raw_bytes: u64,
    insert_secs: f64,
    merge_secs: f64,
    disk: u64,
    usage: ChildUsage,
}

impl ClickHouseLoad {
    fn print(&self) {
        println!(
            "{}: {} lines, INSERT {:.2} s ({:.0} lines/s), merge {:.2} s",
            self.engine,
            self.lines,
            self.insert_secs,
            self.lines as f64 / self.insert_secs,
            self.merge_secs
        );
        println!(
            "  CPU          {:.2} s user + {:.2} s sys, peak RSS {:.0} MiB (whole Python process)",
            self.usage.user_secs,
            self.usage.sys_secs,
            self.usage.max_rss_kib as f64 / 1024.0
        );
        println!(
            "  on disk      {} bytes after the merge; raw/disk = {:.2}x",
            self.disk,
            self.raw_bytes as f64 / self.disk as f64
        );
    }
}

/// Loads `corpus` into a fresh chDB database in `work` with `query_compare.py --load-only`.
fn clickhouse_load(corpus: &Path, work: &Path, lines: u64, raw_bytes: u64) -> ClickHouseLoad {
    let (mut command, python) = silt_benches::clickhouse_compare();
    let out = tempfile_path(work, "load.json");
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    let child = command
        .args(["--corpus", &corpus.display().to_string()])
        .args(["--work", &work.display().to_string()])
        .args(["--body-index", "tokenbf", "--reload", "--load-only"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", silt_benches::chdb_python_missing(&python, &e)));
    let usage = wait_with_rusage(child.id() as i32);
    assert!(usage.status == 0, "the ClickHouse load failed");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).expect("load-only prints JSON");
    let _ = std::fs::remove_dir_all(work);
    let number = |key: &str| report[key].as_f64().unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(
        number("rows_loaded") as u64,
        lines,
        "ClickHouse loaded another number of rows"
    );
    ClickHouseLoad {
        engine: report["engine"].as_str().unwrap_or("ClickHouse").to_owned(),
        lines,
        raw_bytes,
        insert_secs: number("insert_s"),
        merge_secs: number("merge_s"),
        disk: number("disk_bytes") as u64,
        usage,
    }
}

/// `name` beside `dir` (not inside it: `dir` is deleted before each load).
fn tempfile_path(dir: &Path, name: &str) -> PathBuf {
    let parent = dir.parent().unwrap_or(Path::new("."));
    parent.join(format!(
        "{}-{name}",
        dir.file_name()
            .map_or("chdb".into(), |n| n.to_string_lossy())
    ))
}

/// A figure of a run, by name.
type Metric = (&'static str, fn(&Run) -> f64);

/// One `silt ingest` of the corpus into a fresh data directory.
struct Run {
    secs: f64,
    lines: u64,
    raw_bytes: u64,
    usage: ChildUsage,
    segment_files: usize,
    disk: u64,
    segments: u64,
}

fn ingest_once(silt: &Path, corpus: &Path, data: &Path, lines: u64, raw_bytes: u64) -> Run {
    let _ = std::fs::remove_dir_all(data);
    let started = Instant::now();
    // Reaped by `wait4` below, which also reports its CPU time and peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(silt)
        .arg("ingest")
        .arg("--data-dir")
        .arg(data)
        .arg(corpus)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let usage = wait_with_rusage(child.id() as i32);
    let secs = started.elapsed().as_secs_f64();
    assert!(
        usage.status == 0,
        "{} ingest failed with status {}",
        silt.display(),
        usage.status
    );
    Run {
        secs,
        lines,
        raw_bytes,
        usage,
        segment_files: count_files(&data.join("segments"), "parquet"),
        disk: dir_bytes(data),
        segments: dir_bytes(&data.join("segments")),
    }
}

impl Run {
    fn lines_per_sec(&self) -> f64 {
        self.lines as f64 / self.secs
    }

    fn cpu_secs(&self) -> f64 {
        self.usage.user_secs + self.usage.sys_secs
    }

    fn cpu_us_per_line(&self) -> f64 {
        self.cpu_secs() * 1e6 / self.lines.max(1) as f64
    }

    fn max_rss_mib(&self) -> f64 {
        self.usage.max_rss_kib as f64 / 1024.0
    }

    fn raw_per_disk(&self) -> f64 {
        self.raw_bytes as f64 / self.disk as f64
    }

    fn print(&self, what: &str) {
        println!("{what}: {} lines in {:.2} s", self.lines, self.secs);
        println!(
            "  throughput   {:.0} lines/s, {:.1} MB/s",
            self.lines_per_sec(),
            self.raw_bytes as f64 / 1e6 / self.secs
        );
        println!(
            "  CPU          {:.2} s user + {:.2} s sys = {:.2} µs a line ({:.0}% of one core)",
            self.usage.user_secs,
            self.usage.sys_secs,
            self.cpu_us_per_line(),
            self.cpu_secs() * 100.0 / self.secs
        );
        println!("  peak RSS     {:.0} MiB", self.max_rss_mib());
        println!("  segments     {}", self.segment_files);
        println!(
            "  on disk      {} bytes (segments {}); raw/disk = {:.2}x",
            self.disk,
            self.segments,
            self.raw_per_disk()
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn count_files(path: &Path, extension: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path(), extension),
            _ => usize::from(e.path().extension().is_some_and(|x| x == extension)),
        })
        .sum()
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// What `wait4` reports of a finished child.
struct ChildUsage {
    status: i32,
    max_rss_kib: i64,
    user_secs: f64,
    sys_secs: f64,
}

/// Waits for `pid` and returns its exit status, peak RSS and CPU time from `wait4`.
fn wait_with_rusage(pid: i32) -> ChildUsage {
    let mut status = 0;
    // SAFETY: plain FFI call with valid pointers to locals.
    #[allow(unsafe_code)]
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::wait4(pid, &mut status, 0, &mut usage);
        (rc, usage)
    };
    assert_eq!(rc, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    ChildUsage {
        status: code,
        max_rss_kib: usage.ru_maxrss,
        user_secs: secs(usage.ru_utime),
        sys_secs: secs(usage.ru_stime),
    }
}
