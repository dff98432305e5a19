//! The text parser against real samples: the loghub 2k logs and their structured CSVs (time,
//! level and content per line). Set `SILT_LOGHUB_DIR` to read them from elsewhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use silt_engine::parse::{InputFormat, LineParser, ParseOptions, detect_format, parse_text_line};
use silt_storage::record::{LogRecord, normalize_level};

/// Feeding the parser in chunks this small also crosses many line boundaries.
const CHUNK_BYTES: usize = 4096;
/// Syslog samples have no year: "now" is fixed so their year is 2024.
const NOW_2024_12_31_NS: i64 = 1_735_603_200_000_000_000;

fn loghub_dir() -> PathBuf {
    match std::env::var_os("SILT_LOGHUB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/loghub"
        )),
    }
}

fn opts() -> ParseOptions {
    ParseOptions::utc_at(NOW_2024_12_31_NS)
}

/// One sample: the parsed records, and the CSV rows as column name → value.
struct Sample {
    records: Vec<LogRecord>,
    rows: Vec<BTreeMap<String, String>>,
}

fn load(name: &str) -> Sample {
    let dir = loghub_dir();
    let log_path = dir.join(format!("{name}_2k.log"));
    let log = std::fs::read(&log_path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err} (set SILT_LOGHUB_DIR to the loghub samples)",
            log_path.display()
        )
    });
    assert_eq!(
        detect_format(&log[..log.len().min(64 * 1024)]),
        InputFormat::Text,
        "{name}"
    );

    let mut parser = LineParser::new(InputFormat::Text, opts());
    let mut results = Vec::new();
    for chunk in log.chunks(CHUNK_BYTES) {
        parser.feed_into(chunk, &mut results);
    }
    results.extend(parser.finish());
    let records: Vec<LogRecord> = results
        .into_iter()
        .map(|r| r.expect("text lines are never rejected"))
        .collect();
    let one_by_one: Vec<LogRecord> = log
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_text_line(l, &opts()))
        .collect();
    assert_eq!(
        records, one_by_one,
        "{name}: chunked and line-by-line parses differ"
    );

    let csv_path = dir.join(format!("{name}_2k.log_structured.csv"));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut table = parse_csv(&csv).into_iter();
    let header = table.next().unwrap();
    let rows = table
        .map(|fields| header.iter().cloned().zip(fields).collect())
        .collect();
    Sample { records, rows }
}

/// A minimal RFC 4180 reader: quoted fields with `""` escapes, `\n` or `\r\n` row ends.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => in_quotes = false,
            (true, _) => field.push(c),
            (false, '"') => in_quotes = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn utc_ns(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp_nanos_opt().unwrap()
}

/// Checks row count, content, timestamps (via `expected_time`) and, if given, the level column.
fn check(
    name: &str,
    level_column: Option<&str>,
    expected_time: impl Fn(&BTreeMap<String, String>) -> NaiveDateTime,
) {
    let sample = load(name);
    assert_eq!(sample.records.len(), 2000, "{name}: one record per line");
    assert_eq!(sample.rows.len(), 2000, "{name}: csv rows");
    for (record, row) in sample.records.iter().zip(&sample.rows) {
        let line_id = &row["LineId"];
        let content = row["Content"].trim();
        assert!(
            record.message.contains(content),
            "{name} line {line_id}: content {content:?} not in {:?}",
            record.message
        );
        let expected = utc_ns(expected_time(row));
        assert_eq!(
            record.timestamp,
            Some(expected),
            "{name} line {line_id}: {:?}",
            record.message
        );
        if let Some(column) = level_column {
            let expected = normalize_level(&row[column]);
            assert!(
                expected.is_some(),
                "{name} line {line_id}: csv level {:?}",
                row[column]
            );
            assert_eq!(
                record.level.as_deref(),
                expected,
                "{name} line {line_id}: {:?}",
                record.message
            );
        }
    }
}

fn time(text: &str, format: &str) -> NaiveTime {
    NaiveTime::parse_from_str(text, format).unwrap_or_else(|err| panic!("{text:?}: {err}"))
}

/// Month name, day and time of a syslog line, in 2024.
fn syslog_time(month: &str, day: &str, clock: &str) -> NaiveDateTime {
    let date = NaiveDate::parse_from_str(&format!("2024 {month} {day}"), "%Y %b %d").unwrap();
    date.and_time(time(clock, "%H:%M:%S"))
}

#[test]
fn apache() {
    check("Apache", Some("Level"), |row| {
        NaiveDateTime::parse_from_str(&row["Time"], "%a %b %d %H:%M:%S %Y").unwrap()
    });
}

#[test]
fn hdfs() {
    check("HDFS", Some("Level"), |row| {
        let date = NaiveDate::parse_from_str(&row["Date"], "%y%m%d").unwrap();
        date.and_time(time(&row["Time"], "%H%M%S"))
    });
}

#[test]
fn zookeeper() {
    check("Zookeeper", Some("Level"), |row| {
        let date = NaiveDate::parse_from_str(&row["Date"], "%Y-%m-%d").unwrap();
        date.and_time(time(&row["Time"], "%H:%M:%S,%3f"))
    });
}

/// Linux's "Level" column holds the host name (`combo`), not a level: it is not compared.
/// Instead each line's level must follow from its content: `warning:` right after the
/// `xinetd[pid]:` tag is WARN, logrotate's upper-case `ALERT exited abnormally` is taken as the
/// alert level (FATAL), and no other line has a level (no false positives from words such as
/// "failure", "info" in host names, or `*** info [mice.c(1766)]` deeper in a gpm line).
#[test]
fn linux() {
    check("Linux", None, |row| {
        syslog_time(&row["Month"], &row["Date"], &row["Time"])
    });
    check_levels_by_content("Linux", &[("warning:", "WARN"), ("ALERT ", "FATAL")]);
}

/// OpenSSH has no level column. sshd writes `error:` / `fatal:` after the `sshd[pid]:` tag for
/// its error and fatal messages: exactly those lines get a level.
#[test]
fn openssh() {
    check("OpenSSH", None, |row| {
        syslog_time(&row["Date"], &row["Day"], &row["Time"])
    });
    check_levels_by_content("OpenSSH", &[("error:", "ERROR"), ("fatal:", "FATAL")]);
}

/// Each record's level is the one paired with the prefix its CSV content starts with, or none.
fn check_levels_by_content(name: &str, prefixes: &[(&str, &str)]) {
    let sample = load(name);
    let mut counts: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for (record, row) in sample.records.iter().zip(&sample.rows) {
        let content = &row["Content"];
        let expected = prefixes
            .iter()
            .find(|(prefix, _)| content.starts_with(prefix))
            .map(|&(_, level)| level);
        assert_eq!(
            record.level.as_deref(),
            expected,
            "{name} line {}: {:?}",
            row["LineId"],
            record.message
        );
        *counts.entry(expected).or_insert(0) += 1;
    }
    eprintln!("{name} levels: {counts:?}");
}
