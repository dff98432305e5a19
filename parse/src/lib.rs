//! Log-line parsing for ingest: the options, the input formats and their detection, the
//! public entry points re-exported from the per-format modules, and whole request bodies.

mod aliases;
pub mod body;
pub mod bulk;
mod calendar;
mod flatten;
mod level;
mod lines;
pub mod loki;
mod ndjson;
pub mod otlp;
pub mod syslog;
mod text;
mod timestamp;

pub use lines::{LineError, LineParser};
pub use ndjson::parse_ndjson_line;
pub use text::parse_text_line;

/// How many complete non-blank lines [`detect_format`] looks at.
const MAX_DETECT_LINES: usize = 8;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Settings shared by all parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// UTC offset of timestamps written without a zone, in seconds east of UTC; 0 = UTC.
    pub default_offset_secs: i32,
    /// "Now" in nanoseconds since the Unix epoch; picks the year of syslog dates, which have none.
    pub now_ns: i64,
    /// In text input, attach continuation lines (stack traces) to the previous record.
    pub multiline: bool,
}

impl Default for ParseOptions {
    /// UTC, now = the current time, one record per line.
    fn default() -> Self {
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
            });
        ParseOptions::utc_at(now_ns)
    }
}

impl ParseOptions {
    /// UTC, now = `now_ns`, one record per line: a fixed clock, for parses that must come out
    /// the same every time (tests, fuzzing).
    pub fn utc_at(now_ns: i64) -> Self {
        ParseOptions {
            default_offset_secs: 0,
            now_ns,
            multiline: false,
        }
    }
}

/// `Z`, `UTC`, `+hh:mm`, `+hhmm` or `+hh` (or `-`) as seconds east of UTC.
pub fn parse_utc_offset(text: &str) -> Result<i32, String> {
    let err = || format!("expected Z, UTC or an offset such as +02:00 or -0530, got {text:?}");
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(err()),
    };
    let digits: String = rest.chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) || rest.starts_with(':') {
        return Err(err());
    }
    let (hours, minutes) = match digits.len() {
        2 => (&digits[..2], "0"),
        4 if rest.len() == 4 || rest.as_bytes().get(2) == Some(&b':') => {
            (&digits[..2], &digits[2..])
        }
        _ => return Err(err()),
    };
    let (hours, minutes): (i32, i32) = (
        hours.parse().map_err(|_| err())?,
        minutes.parse().map_err(|_| err())?,
    );
    if hours > 23 || minutes > 59 {
        return Err(err());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

/// The shape of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON object per line.
    Ndjson,
    /// Free text, one event per line.
    Text,
}

/// Guesses the format from the start of a file: NDJSON when most of the first non-blank lines
/// look like JSON objects (`{` ... `}`), otherwise text.
///
/// `head` may end mid-line; that last partial line only counts when it is the only line.
pub fn detect_format(head: &[u8]) -> InputFormat {
    let head = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    let complete_len = memchr::memrchr(b'\n', head).map_or(head.len(), |pos| pos + 1);
    let mut examined = 0;
    let mut objects = 0;
    for line in head[..complete_len].split(|&c| c == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        examined += 1;
        let complete = line.ends_with(b"}") || complete_len == head.len() && !head.ends_with(b"\n");
        if line.starts_with(b"{") && complete {
            objects += 1;
        }
        if examined == MAX_DETECT_LINES {
            break;
        }
    }
    if examined > 0 && objects * 2 > examined {
        InputFormat::Ndjson
    } else {
        InputFormat::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets() {
        for (text, secs) in [
            ("Z", 0),
            ("utc", 0),
            ("+02:00", 7200),
            ("+0200", 7200),
            ("+02", 7200),
            ("-05:30", -19800),
            ("-0530", -19800),
            ("+00:00", 0),
        ] {
            assert_eq!(parse_utc_offset(text), Ok(secs), "{text}");
        }
        for bad in [
            "",
            "+",
            "2",
            "02:00",
            "+2",
            "+24:00",
            "+02:60",
            "+0:200",
            "+02:0",
            "+02:00:00",
            "CET",
        ] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn detects_ndjson() {
        assert_eq!(
            detect_format(b"{\"a\":1}\n{\"a\":2}\n"),
            InputFormat::Ndjson
        );
        assert_eq!(
            detect_format(b"\xEF\xBB\xBF\n\n  {\"a\":1}\r\n{\"a\":"),
            InputFormat::Ndjson
        );
        assert_eq!(
            detect_format(b"{\"a\":1, \"b\": \"long line cut he"),
            InputFormat::Ndjson
        );
        assert_eq!(
            detect_format(b"{\"a\":1}\nbroken\n{\"a\":3}\n"),
            InputFormat::Ndjson
        );
    }

    #[test]
    fn detects_text() {
        assert_eq!(
            detect_format(b"2024-01-02 INFO x\n{\"a\":1}\n"),
            InputFormat::Text
        );
        assert_eq!(
            detect_format(b"[Sun Dec 04 04:47:44 2005] [notice] x\n"),
            InputFormat::Text
        );
        assert_eq!(detect_format(b""), InputFormat::Text);
        assert_eq!(detect_format(b"\n\n"), InputFormat::Text);
    }

    #[test]
    fn default_options_use_the_clock() {
        let opts = ParseOptions::default();
        assert_eq!(opts.default_offset_secs, 0);
        assert!(!opts.multiline);
        assert!(opts.now_ns > 1_700_000_000_000_000_000);
    }
}
