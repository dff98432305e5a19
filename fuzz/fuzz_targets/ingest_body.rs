//! Fuzzes whole ingest request bodies in every media type, and JSON document files as
//! `silt ingest` reads them: nothing may panic, every event is either a record or a rejection,
//! and rejections and errors point inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::body::{
    BodyKind, MAX_LISTED_REJECTIONS, looks_like_json_document, parse_body, parse_json_events,
};
use silt_parse::{InputFormat, ParseOptions};

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let (kind, body) = match data.split_first() {
        Some((&first, rest)) => (
            match first % 4 {
                0 => BodyKind::JsonDocument,
                1 => BodyKind::Lines(InputFormat::Ndjson),
                2 => BodyKind::Lines(InputFormat::Text),
                _ => BodyKind::Detect,
            },
            rest,
        ),
        None => return,
    };
    let opts = ParseOptions::utc_at(NOW_NS);
    let _ = looks_like_json_document(body);
    let mut next = 0;
    let outcome = parse_json_events(body, &opts, |index, _| {
        assert_eq!(index, next, "events are numbered in order");
        next += 1;
    });
    if let Err(e) = outcome
        && let Some(offset) = e.offset
    {
        assert!(offset <= body.len() as u64 + 1, "offset {offset} beyond the file");
    }
    match parse_body(body, kind, &opts) {
        Ok(parsed) => {
            assert!(parsed.rejections.len() <= MAX_LISTED_REJECTIONS);
            assert!(parsed.rejections.len() as u64 <= parsed.failed);
            if !matches!(kind, BodyKind::JsonDocument) {
                let lines = body.split(|&b| b == b'\n').count() as u64;
                for r in &parsed.rejections {
                    assert!(r.index < lines, "rejection {} beyond {lines} lines", r.index);
                }
            }
        }
        Err(e) => {
            assert!(
                matches!(kind, BodyKind::JsonDocument)
                    || matches!(kind, BodyKind::Detect) && looks_like_json_document(body),
                "only JSON documents fail whole"
            );
            if let Some(offset) = e.offset {
                assert!(offset <= body.len() as u64 + 1, "offset {offset} beyond the body");
            }
        }
    }
});
