//! Fuzzes the plain-text path: `parse_text_line` on the raw input, and `LineParser` over it in
//! both formats and both multiline modes, fed whole and in chunks, which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::{InputFormat, LineParser, ParseOptions, parse_text_line};

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;
/// Zone offsets in real use stay within ±18 h; the fuzzer also tries the extremes.
const OFFSETS_SECS: [i32; 4] = [0, 3600, -18 * 3600, i32::MAX];

fn parse_all(format: InputFormat, opts: &ParseOptions, input: &[u8], chunk_bytes: usize) -> Vec<String> {
    let mut parser = LineParser::new(format, opts.clone());
    let mut out = Vec::new();
    for chunk in input.chunks(chunk_bytes.max(1)) {
        parser.feed_into(chunk, &mut out);
    }
    out.extend(parser.finish());
    out.iter().map(|result| format!("{result:?}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let (control, input) = match data.split_first() {
        Some((&first, rest)) => (first, rest),
        None => (0, data),
    };
    let chunk_bytes = usize::from(control % 32) + 1;
    let opts = ParseOptions {
        default_offset_secs: OFFSETS_SECS[usize::from(control >> 6)],
        now_ns: NOW_NS,
        multiline: control & 0x20 != 0,
    };
    let record = parse_text_line(input, &opts);
    let line = input.strip_suffix(b"\r").unwrap_or(input);
    assert_eq!(record.message, String::from_utf8_lossy(line), "the message is the raw line");
    for format in [InputFormat::Text, InputFormat::Ndjson] {
        let whole = parse_all(format, &opts, input, input.len());
        let chunked = parse_all(format, &opts, input, chunk_bytes);
        assert_eq!(whole, chunked, "chunk boundaries changed the result");
    }
});
