//! Plain-text lines: one record per line with the raw line as message, plus the timestamp and
//! level recognised near its start, and the rule for which lines continue the previous one.

use silt_storage::record::LogRecord;

use super::ParseOptions;
use super::level::scan_line_level;
use super::timestamp::scan_line_timestamp;

/// Parses one plain-text line. Never fails: unrecognised parts are left `None`.
///
/// A trailing `\r` is stripped; the message is the whole line with invalid UTF-8 replaced.
pub fn parse_text_line(line: &[u8], opts: &ParseOptions) -> LogRecord {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let found = scan_line_timestamp(line, opts);
    let level = scan_line_level(line, found.map(|(_, end)| end));
    LogRecord {
        timestamp: found.map(|(ns, _)| ns),
        level: level.map(str::to_owned),
        message: match std::str::from_utf8(line) {
            Ok(valid) => valid.to_owned(),
            Err(_) => String::from_utf8_lossy(line).into_owned(),
        },
        ..LogRecord::default()
    }
}

/// Whether a line continues the previous record in multiline mode: it starts with whitespace,
/// `at ` (Java stack frames), `Caused by:` or `...` (`... 12 more`).
pub(crate) fn is_continuation_line(line: &[u8]) -> bool {
    match line.first() {
        Some(c) if c.is_ascii_whitespace() => true,
        Some(_) => {
            line.starts_with(b"at ") || line.starts_with(b"Caused by:") || line.starts_with(b"...")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-06-15T12:00:00Z.
    const NOW_NS: i64 = 1_718_452_800_000_000_000;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(NOW_NS)
    }

    fn ns(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn ts(line: &str) -> Option<i64> {
        parse_text_line(line.as_bytes(), &opts()).timestamp
    }

    #[test]
    fn iso_8601_forms() {
        assert_eq!(
            ts("2024-01-02T03:04:05.123Z INFO x"),
            Some(ns("2024-01-02T03:04:05.123Z"))
        );
        assert_eq!(
            ts("2024-01-02T03:04:05+02:00 x"),
            Some(ns("2024-01-02T01:04:05Z"))
        );
        assert_eq!(
            ts("2024-01-02T03:04:05-0130 x"),
            Some(ns("2024-01-02T04:34:05Z"))
        );
        assert_eq!(
            ts("2024-01-02T03:04:05 x"),
            Some(ns("2024-01-02T03:04:05Z"))
        );
        assert_eq!(
            ts("2024-01-02T03:04:05.123456789Z"),
            Some(ns("2024-01-02T03:04:05.123456789Z"))
        );
        assert_eq!(
            ts("2024-01-02 03:04:05,678 x"),
            Some(ns("2024-01-02T03:04:05.678Z"))
        );
        assert_eq!(
            ts("2024-01-02 03:04:05.6 x"),
            Some(ns("2024-01-02T03:04:05.600Z"))
        );
        assert_eq!(
            ts("2024/01/02 03:04:05 x"),
            Some(ns("2024-01-02T03:04:05Z"))
        );
    }

    #[test]
    fn timestamp_after_a_prefix() {
        let line = "[pid 12] 2015-10-18 18:01:47,978 INFO main: x";
        assert_eq!(ts(line), Some(ns("2015-10-18T18:01:47.978Z")));
        assert_eq!(
            ts("host=a time=2024-01-02T03:04:05Z"),
            Some(ns("2024-01-02T03:04:05Z"))
        );
        assert_eq!(
            ts("a b c d e 2024-01-02T03:04:05Z"),
            None,
            "beyond the token window"
        );
    }

    #[test]
    fn syslog_year_rule() {
        // now is 2024-06-15T12:00Z: dates up to a day ahead are this year, later ones last year.
        assert_eq!(
            ts("Jun 14 15:16:01 combo sshd"),
            Some(ns("2024-06-14T15:16:01Z"))
        );
        assert_eq!(
            ts("Jun  9 01:02:03 combo x"),
            Some(ns("2024-06-09T01:02:03Z"))
        );
        assert_eq!(
            ts("Jun 16 11:00:00 combo x"),
            Some(ns("2024-06-16T11:00:00Z"))
        );
        assert_eq!(
            ts("Jun 16 13:00:00 combo x"),
            Some(ns("2023-06-16T13:00:00Z"))
        );
        assert_eq!(
            ts("Dec 31 23:59:59 combo x"),
            Some(ns("2023-12-31T23:59:59Z"))
        );
        assert_eq!(
            ts("<13>Jan  1 00:00:00 host app: x"),
            Some(ns("2024-01-01T00:00:00Z"))
        );
        let opts_2025 = ParseOptions {
            now_ns: ns("2025-03-01T00:00:00Z"),
            ..opts()
        };
        let feb29 = parse_text_line(b"Feb 29 10:00:00 h x", &opts_2025).timestamp;
        assert_eq!(feb29, Some(ns("2024-02-29T10:00:00Z")));
    }

    #[test]
    fn other_formats() {
        assert_eq!(
            ts("17/06/09 20:10:40 INFO x"),
            Some(ns("2017-06-09T20:10:40Z"))
        );
        assert_eq!(
            ts("081109 203615 148 INFO dfs"),
            Some(ns("2008-11-09T20:36:15Z"))
        );
        assert_eq!(
            ts("20171223-22:15:29:606|Step_LSC|x"),
            Some(ns("2017-12-23T22:15:29.606Z"))
        );
        assert_eq!(
            ts("[Sun Dec 04 04:47:44 2005] [notice] x"),
            Some(ns("2005-12-04T04:47:44Z"))
        );
        let clf = r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200"#;
        assert_eq!(ts(clf), Some(ns("2000-10-10T20:55:36Z")));
    }

    /// Shapes of other well-known corpora (BGL, Thunderbird, HPC, Android, Proxifier, klog,
    /// Windows CBS), with made-up content.
    #[test]
    fn more_corpus_shapes() {
        // BGL and Thunderbird: alert label, then epoch seconds, then a dotted date.
        // BGL: the date with a year and microseconds (local time, read as UTC) wins over the
        // epoch before it; Thunderbird's syslog date has no year, so its epoch stays.
        let bgl = "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 \
                   R02-M1-N0-C:J12-U11 RAS KERNEL INFO cache parity error corrected";
        assert_eq!(ts(bgl), Some(ns("2005-06-03T15:42:50.675872Z")));
        let no_date = "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 R02-M1-N0-C:J12-U11 RAS";
        assert_eq!(ts(no_date), Some(ns("2005-06-03T22:42:50Z")));
        let record = parse_text_line(bgl.as_bytes(), &opts());
        assert_eq!(record.level.as_deref(), Some("INFO"));
        let thunderbird = "- 1131566461 2005.11.09 tb17 Nov 9 12:01:01 tb17/tb17 crond[2915]: ok";
        assert_eq!(ts(thunderbird), Some(ns("2005-11-09T20:01:01Z")));
        let label = "KERNDTLB 1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048";
        assert_eq!(ts(label), Some(ns("2005-06-11T17:32:07.581048Z")));
        assert_eq!(
            ts("1700000000 Jan  1 00:00:00 host x"),
            Some(ns("2023-11-14T22:13:20Z")),
            "an epoch first keeps its place against a date without a year"
        );
        assert_eq!(
            ts("Nov 14 10:00:00 host 1700000000 x"),
            Some(ns("2023-11-14T10:00:00Z")),
            "a date first wins"
        );
        // HPC: a line counter (never a 1970 timestamp), epoch seconds as the fifth token.
        let hpc = "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State";
        assert_eq!(ts(hpc), Some(ns("2004-02-26T14:12:22Z")));
        assert_eq!(
            ts("2561 node-92 action start 1074119817 1 clusterAddMember"),
            { Some(ns("2004-01-14T22:36:57Z")) }
        );
        // Android logcat and Proxifier: no year, resolved like syslog dates (now is 2024-06-15).
        assert_eq!(
            ts("03-17 16:13:38.811  1702  2395 D WindowManager: x"),
            Some(ns("2024-03-17T16:13:38.811Z"))
        );
        assert_eq!(
            ts("12-25 08:00:00.000  1702  2395 I Clock: x"),
            Some(ns("2023-12-25T08:00:00Z"))
        );
        assert_eq!(
            ts("[10.30 16:49:06] chrome.exe - proxy.example.org:5070 open through proxy"),
            Some(ns("2023-10-30T16:49:06Z"))
        );
        assert_eq!(ts("[13.30 16:49:06] x"), None, "month 13");
        // klog: level letter, MMdd, time with microseconds.
        assert_eq!(
            ts("E0312 10:22:33.123456    4711 reflector.go:138] watch failed"),
            Some(ns("2024-03-12T10:22:33.123456Z"))
        );
        assert_eq!(
            ts("x E0312 10:22:33.123456 1 a.go:1] y"),
            None,
            "klog only first"
        );
        // Windows CBS: the level follows `time, `.
        let cbs = "2016-09-28 04:30:31, Info                  CBS    Session initialized";
        let record = parse_text_line(cbs.as_bytes(), &opts());
        assert_eq!(record.timestamp, Some(ns("2016-09-28T04:30:31Z")));
        assert_eq!(record.level.as_deref(), Some("INFO"));
    }

    #[test]
    fn epoch_numbers_only_in_range() {
        assert_eq!(ts("1700000000 x"), Some(ns("2023-11-14T22:13:20Z")));
        assert_eq!(ts("1700000000.25 x"), Some(ns("2023-11-14T22:13:20.25Z")));
        assert_eq!(ts("1700000000123 x"), Some(ns("2023-11-14T22:13:20.123Z")));
        assert_eq!(
            ts("1700000000123456 x"),
            Some(ns("2023-11-14T22:13:20.123456Z"))
        );
        assert_eq!(
            ts("1700000000123456789 x"),
            Some(ns("2023-11-14T22:13:20.123456789Z"))
        );
        assert_eq!(ts("12345 line counter"), None);
        assert_eq!(ts("123456789 x"), None, "1973 is out of range");
        assert_eq!(ts("99999999999 x"), None, "between units");
        assert_eq!(ts("1700000000abc"), None);
        assert_eq!(
            ts("x 1700000000 y"),
            Some(ns("2023-11-14T22:13:20Z")),
            "a whole later token"
        );
        assert_eq!(ts("x 1700000000"), Some(ns("2023-11-14T22:13:20Z")));
        assert_eq!(ts("x id=1700000000 y"), None, "later only as a whole token");
        assert_eq!(ts("x [1700000000] y"), None);
        assert_eq!(ts("x 1700000000ms y"), None);
        assert_eq!(ts("x 1700000000, y"), None);
        assert_eq!(ts("a b c d e 1700000000"), None, "beyond the token window");
    }

    #[test]
    fn default_offset_applies_without_a_zone() {
        let east = ParseOptions {
            default_offset_secs: 3600,
            ..opts()
        };
        let line = b"2024-01-02 03:04:05 x";
        assert_eq!(
            parse_text_line(line, &east).timestamp,
            Some(ns("2024-01-02T02:04:05Z"))
        );
        let zoned = b"2024-01-02T03:04:05Z x";
        assert_eq!(
            parse_text_line(zoned, &east).timestamp,
            Some(ns("2024-01-02T03:04:05Z"))
        );
    }

    #[test]
    fn invalid_dates_are_not_timestamps() {
        assert_eq!(ts("2024-13-02 03:04:05 x"), None);
        assert_eq!(ts("2023-02-29 03:04:05 x"), None);
        assert_eq!(ts("2024-01-02 24:04:05 x"), None);
        assert_eq!(ts("Foo 12 03:04:05 x"), None);
        assert_eq!(ts("999999 999999 x"), None);
    }

    #[test]
    fn message_is_the_raw_line() {
        let record = parse_text_line(b"2024-01-02 03:04:05 WARN caf\xff done\r", &opts());
        assert_eq!(record.message, "2024-01-02 03:04:05 WARN caf\u{FFFD} done");
        assert_eq!(record.level.as_deref(), Some("WARN"));
        let plain = parse_text_line(b"just words", &opts());
        assert_eq!(
            plain,
            LogRecord {
                message: "just words".to_owned(),
                ..LogRecord::default()
            }
        );
    }

    #[test]
    fn continuation_lines() {
        assert!(is_continuation_line(b"\tat com.example.Foo(Foo.java:1)"));
        assert!(is_continuation_line(b"  more"));
        assert!(is_continuation_line(b"at com.example.Foo"));
        assert!(is_continuation_line(b"Caused by: java.io.IOException"));
        assert!(is_continuation_line(b"... 12 more"));
        assert!(!is_continuation_line(b"2024-01-02 x"));
        assert!(!is_continuation_line(b"attention"));
    }
}
