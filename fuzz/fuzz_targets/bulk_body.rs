//! Fuzzes Elasticsearch `_bulk` bodies: `parse_bulk` on the raw input, with and without a
//! default index. Nothing may panic; every action line yields exactly one item, and stored
//! records have unique attribute keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::ParseOptions;
use silt_parse::bulk::parse_bulk;

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::utc_at(NOW_NS);
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
    for default_index in [None, Some("logs")] {
        let items = parse_bulk(data, default_index, &opts);
        assert!(items.len() <= lines, "more items than lines");
        for item in &items {
            if let Ok(record) = &item.outcome {
                assert!(item.index.is_some(), "a stored item without an index");
                let mut keys: Vec<&str> = record.attributes.iter().map(|(k, _)| k.as_str()).collect();
                let count = keys.len();
                keys.sort_unstable();
                keys.dedup();
                assert_eq!(keys.len(), count, "attribute keys must be unique");
            }
        }
    }
});
