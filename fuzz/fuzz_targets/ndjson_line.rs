//! Fuzzes the NDJSON path: `parse_ndjson_line` on the raw input, and `LineParser` over it in
//! both formats, fed whole and in chunks, which must agree. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::{InputFormat, LineParser, ParseOptions, parse_ndjson_line};

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;

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
    let (chunk_bytes, input) = match data.split_first() {
        Some((&first, rest)) => (usize::from(first % 64) + 1, rest),
        None => (1, data),
    };
    let opts = ParseOptions::utc_at(NOW_NS);
    if let Ok(record) = parse_ndjson_line(input, &opts) {
        let mut keys: Vec<&str> = record.attributes.iter().map(|(key, _)| key.as_str()).collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "attribute keys must be unique");
    }
    for format in [InputFormat::Ndjson, InputFormat::Text] {
        let whole = parse_all(format, &opts, input, input.len());
        let chunked = parse_all(format, &opts, input, chunk_bytes);
        assert_eq!(whole, chunked, "chunk boundaries changed the result");
    }
});
