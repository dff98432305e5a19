//! Fuzzes the Loki push parsers: the input snappy-compressed by the target (so the protobuf
//! decoding is reached), the input as a snappy body itself, and the input as JSON. Nothing may
//! panic; every parse keeps the record and rejection invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::ParseOptions;
use silt_parse::body::{MAX_LISTED_REJECTIONS, ParsedBody};
use silt_parse::loki::{LokiError, parse_loki_json, parse_loki_protobuf};

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;
/// Decompressed size limit: small, so that snappy headers announcing more are exercised.
const MAX_DECODED_BYTES: usize = 1 << 20;
/// Longest literal one snappy element can carry with a 2-byte length.
const MAX_LITERAL_BYTES: usize = 1 << 16;

/// `data` as a snappy block of literals only: the simplest valid compressed form, written here
/// so that the target needs no snappy crate.
fn snappy_literal_block(data: &[u8]) -> Vec<u8> {
    let mut block = Vec::with_capacity(data.len() + data.len() / MAX_LITERAL_BYTES * 3 + 8);
    let mut len = data.len();
    while len >= 0x80 {
        block.push(len as u8 | 0x80);
        len >>= 7;
    }
    block.push(len as u8);
    for chunk in data.chunks(MAX_LITERAL_BYTES) {
        // Tag 61: a literal whose length - 1 follows in 2 little-endian bytes.
        block.push(61 << 2);
        block.extend_from_slice(&((chunk.len() - 1) as u16).to_le_bytes());
        block.extend_from_slice(chunk);
    }
    block
}

fn check(parsed: &ParsedBody) {
    for record in &parsed.records {
        let mut keys: Vec<&str> = record.attributes.iter().map(|(key, _)| key.as_str()).collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "attribute keys must be unique");
        assert!(record.level.as_deref().is_none_or(|level| !level.trim().is_empty()));
    }
    let listed = parsed.failed.min(MAX_LISTED_REJECTIONS as u64);
    assert_eq!(parsed.rejections.len() as u64, listed, "the first rejections are listed");
    let items = parsed.records.len() as u64 + parsed.failed;
    let mut previous = None;
    for rejection in &parsed.rejections {
        assert!(rejection.index < items, "a rejection points inside the request");
        assert!(previous < Some(rejection.index), "rejections in request order");
        previous = Some(rejection.index);
    }
}

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::utc_at(NOW_NS);
    match parse_loki_protobuf(&snappy_literal_block(data), MAX_DECODED_BYTES, &opts) {
        Ok(parsed) => check(&parsed),
        Err(LokiError::Snappy(e)) => panic!("a valid snappy block was refused: {e}"),
        Err(_) => {}
    }
    match parse_loki_protobuf(data, MAX_DECODED_BYTES, &opts) {
        Ok(parsed) => check(&parsed),
        Err(LokiError::TooLarge { decoded_bytes, max_decoded_bytes }) => {
            assert!(decoded_bytes > max_decoded_bytes);
        }
        Err(_) => {}
    }
    if let Ok(parsed) = parse_loki_json(data, &opts) {
        check(&parsed);
    }
});
