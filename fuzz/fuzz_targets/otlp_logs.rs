//! Fuzzes the OTLP/HTTP logs parsers: the input as a binary protobuf request and as an OTLP/JSON
//! request. Nothing may panic; every parse keeps the record and rejection invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::ParseOptions;
use silt_parse::body::{MAX_LISTED_REJECTIONS, ParsedBody};
use silt_parse::otlp::{
    encode_response_protobuf, parse_otlp_json, parse_otlp_protobuf, response_json,
};

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;

fn is_lower_hex(id: &str, len: usize) -> bool {
    id.len() == len && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn check(parsed: &ParsedBody) {
    for record in &parsed.records {
        let mut keys: Vec<&str> = record.attributes.iter().map(|(key, _)| key.as_str()).collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "attribute keys must be unique");
        assert!(record.trace_id.as_deref().is_none_or(|id| is_lower_hex(id, 32)));
        assert!(record.span_id.as_deref().is_none_or(|id| is_lower_hex(id, 16)));
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
    let _ = encode_response_protobuf(parsed.failed, "rejected");
    let _ = response_json(parsed.failed, "rejected");
}

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::utc_at(NOW_NS);
    if let Ok(parsed) = parse_otlp_protobuf(data, &opts) {
        check(&parsed);
    }
    if let Ok(parsed) = parse_otlp_json(data, &opts) {
        check(&parsed);
    }
});
