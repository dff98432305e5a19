//! Splitting a byte stream into lines across chunk boundaries: line numbering, `\r\n`, blank
//! lines, a leading byte-order mark, and joining continuation lines in multiline text mode.

use std::fmt;

use silt_storage::record::LogRecord;

use super::text::is_continuation_line;
use super::{InputFormat, ParseOptions, UTF8_BOM, parse_ndjson_line, parse_text_line};

/// A rejected input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the whole input.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for LineError {}

/// Turns an input fed in chunks of any size into records, one per line (text lines are never
/// rejected; NDJSON lines may be).
///
/// Lines end at `\n`; a `\r` before it is dropped. Lines that are empty or only whitespace are
/// skipped but still counted. A UTF-8 byte-order mark at the start of the input is ignored.
/// A line cut by the end of a chunk is carried over to the next; [`LineParser::finish`] parses
/// the last line when the input does not end with `\n`.
///
/// In text mode with [`ParseOptions::multiline`], a record is only returned once the next
/// record starts (or at `finish`), since continuation lines may still follow it.
#[derive(Debug)]
pub struct LineParser {
    format: InputFormat,
    opts: ParseOptions,
    /// The start of a line whose end has not been fed yet.
    partial_line: Vec<u8>,
    /// 1-based number of the next line to complete.
    next_line: u64,
    /// Multiline text mode: the newest record, still open to continuation lines.
    open_record: Option<LogRecord>,
}

impl LineParser {
    pub fn new(format: InputFormat, opts: ParseOptions) -> Self {
        LineParser {
            format,
            opts,
            partial_line: Vec::new(),
            next_line: 1,
            open_record: None,
        }
    }

    /// Parses every line completed by `chunk`.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Result<LogRecord, LineError>> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out);
        out
    }

    /// Like [`LineParser::feed`], appending to `out` so its allocation can be reused.
    pub fn feed_into(&mut self, chunk: &[u8], out: &mut Vec<Result<LogRecord, LineError>>) {
        let mut rest = chunk;
        if !self.partial_line.is_empty() {
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                self.partial_line.extend_from_slice(rest);
                return;
            };
            let mut line = std::mem::take(&mut self.partial_line);
            line.extend_from_slice(&rest[..newline]);
            self.parse_line(&line, out);
            line.clear();
            self.partial_line = line;
            rest = &rest[newline + 1..];
        }
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', rest) {
            self.parse_line(&rest[line_start..newline], out);
            line_start = newline + 1;
        }
        self.partial_line.extend_from_slice(&rest[line_start..]);
    }

    /// Ends the input: parses a last line without `\n` and returns the record still open.
    pub fn finish(mut self) -> Vec<Result<LogRecord, LineError>> {
        let mut out = Vec::new();
        let last_line = std::mem::take(&mut self.partial_line);
        if !last_line.is_empty() {
            self.parse_line(&last_line, &mut out);
        }
        if let Some(record) = self.open_record.take() {
            out.push(Ok(record));
        }
        out
    }

    /// How many lines have been completed so far, blank ones included.
    pub fn lines_seen(&self) -> u64 {
        self.next_line - 1
    }

    fn parse_line(&mut self, line: &[u8], out: &mut Vec<Result<LogRecord, LineError>>) {
        let number = self.next_line;
        self.next_line += 1;
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if number == 1 {
            line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
        }
        if line.trim_ascii_start().is_empty() {
            return;
        }
        match self.format {
            InputFormat::Ndjson => out.push(parse_ndjson_line(line, &self.opts).map_err(
                |reason| LineError {
                    line: number,
                    reason,
                },
            )),
            InputFormat::Text if !self.opts.multiline => {
                out.push(Ok(parse_text_line(line, &self.opts)))
            }
            InputFormat::Text => {
                if is_continuation_line(line)
                    && let Some(open) = &mut self.open_record
                {
                    open.message.push('\n');
                    open.message.push_str(&String::from_utf8_lossy(line));
                    return;
                }
                let record = parse_text_line(line, &self.opts);
                if let Some(previous) = self.open_record.replace(record) {
                    out.push(Ok(previous));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(multiline: bool) -> ParseOptions {
        ParseOptions {
            multiline,
            ..ParseOptions::utc_at(1_718_452_800_000_000_000)
        }
    }

    fn parse_chunked(
        format: InputFormat,
        options: ParseOptions,
        input: &[u8],
        cuts: &[usize],
    ) -> Vec<Result<LogRecord, LineError>> {
        let mut parser = LineParser::new(format, options);
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.clamp(start, input.len());
            parser.feed_into(&input[start..cut], &mut out);
            start = cut;
        }
        parser.feed_into(&input[start..], &mut out);
        out.extend(parser.finish());
        out
    }

    fn messages(results: &[Result<LogRecord, LineError>]) -> Vec<String> {
        results
            .iter()
            .map(|r| r.as_ref().unwrap().message.clone())
            .collect()
    }

    #[test]
    fn crlf_blank_lines_and_last_line_without_newline() {
        let input = b"\xEF\xBB\xBFfirst\r\n\r\n   \nsecond\n\nthird\r";
        let out = parse_chunked(InputFormat::Text, opts(false), input, &[]);
        assert_eq!(messages(&out), ["first", "second", "third"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let out = parse_chunked(InputFormat::Text, opts(false), b"a\xffb\n", &[]);
        assert_eq!(messages(&out), ["a\u{FFFD}b"]);
        let out = parse_chunked(
            InputFormat::Ndjson,
            opts(false),
            b"{\"msg\":\"a\xffb\"}\n",
            &[],
        );
        assert_eq!(messages(&out), ["a\u{FFFD}b"]);
    }

    #[test]
    fn ndjson_errors_carry_line_numbers() {
        let input = b"{\"msg\":\"a\"}\n\n[1,2]\n{\"msg\":\n{\"msg\":\"b\"}";
        let out = parse_chunked(InputFormat::Ndjson, opts(false), input, &[5, 17]);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().unwrap().message, "a");
        let err = out[1].as_ref().unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (3, "expected a JSON object")
        );
        let err = out[2].as_ref().unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.reason.contains("column"), "{}", err.reason);
        assert_eq!(err.to_string(), format!("line 4: {}", err.reason));
        assert_eq!(out[3].as_ref().unwrap().message, "b");
    }

    #[test]
    fn multiline_attaches_continuations() {
        let input = b"2024-01-02 03:04:05 ERROR boom\n\
            java.lang.IllegalStateException: bad\n\
            \tat com.example.Foo.bar(Foo.java:10)\n\
            at com.example.Main.main(Main.java:3)\n\
            Caused by: java.io.IOException: disk\n\
            ... 12 more\n\
            \n\
            2024-01-02 03:04:06 INFO next\n";
        let out = parse_chunked(InputFormat::Text, opts(true), input, &[]);
        let got = messages(&out);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], "2024-01-02 03:04:05 ERROR boom");
        assert_eq!(
            got[1],
            "java.lang.IllegalStateException: bad\n\tat com.example.Foo.bar(Foo.java:10)\n\
             at com.example.Main.main(Main.java:3)\nCaused by: java.io.IOException: disk\n... 12 more"
        );
        assert_eq!(out[1].as_ref().unwrap().timestamp, None);
        assert_eq!(got[2], "2024-01-02 03:04:06 INFO next");
    }

    #[test]
    fn multiline_off_keeps_one_record_per_line() {
        let out = parse_chunked(InputFormat::Text, opts(false), b"a\n  b\nat c\n", &[]);
        assert_eq!(messages(&out), ["a", "  b", "at c"]);
    }

    #[test]
    fn leading_continuation_starts_a_record() {
        let out = parse_chunked(
            InputFormat::Text,
            opts(true),
            b"  orphan\n  more\nnext\n",
            &[],
        );
        assert_eq!(messages(&out), ["  orphan\n  more", "next"]);
    }

    #[test]
    fn lines_seen_counts_blank_lines() {
        let mut parser = LineParser::new(InputFormat::Text, opts(false));
        assert_eq!(parser.feed(b"a\n\nb\nc").len(), 2);
        assert_eq!(parser.lines_seen(), 3);
        assert_eq!(parser.finish().len(), 1);
    }

    fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"2024-01-02T03:04:05Z INFO hello".to_vec()),
            Just(b"\tat com.example.Foo(Foo.java:1)".to_vec()),
            Just(b"Caused by: x".to_vec()),
            Just(b"{\"msg\":\"hi\",\"level\":\"warn\",\"a\":{\"b\":[1,2]}}".to_vec()),
            Just(b"{\"msg\":".to_vec()),
            Just(Vec::new()),
            Just(b"\r".to_vec()),
            proptest::collection::vec(
                any::<u8>().prop_filter("no newline", |&b| b != b'\n'),
                0..40
            ),
        ]
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_matter(
            lines in proptest::collection::vec(line_strategy(), 0..30),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
            crlf in any::<bool>(),
            trailing_newline in any::<bool>(),
            multiline in any::<bool>(),
        ) {
            let separator: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut input = lines.join(separator);
            if trailing_newline {
                input.extend_from_slice(separator);
            }
            let mut cuts = cuts;
            cuts.sort_unstable();
            for format in [InputFormat::Text, InputFormat::Ndjson] {
                let whole = parse_chunked(format, opts(multiline), &input, &[]);
                let chunked = parse_chunked(format, opts(multiline), &input, &cuts);
                prop_assert_eq!(&whole, &chunked);
                let byte_at_a_time: Vec<usize> = (0..input.len()).collect();
                let tiny = parse_chunked(format, opts(multiline), &input, &byte_at_a_time);
                prop_assert_eq!(&whole, &tiny);
            }
        }
    }
}
