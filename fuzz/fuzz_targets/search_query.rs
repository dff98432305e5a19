//! Fuzzes the search-language parser: any input parses or fails with an error whose column
//! lies inside the input (one past the end for "missing …" errors), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser is std-only; including its file keeps DataFusion (silt-query's other half) out
// of fuzz builds.
#[path = "../../query/src/search/parse.rs"]
#[allow(dead_code)]
mod parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse::parse(text) {
        Ok(query) => {
            let _ = format!("{query:?}");
        }
        Err(e) => {
            let columns = text.chars().count() + 1;
            assert!(e.column >= 1 && e.column <= columns, "column {} outside 1..={columns} for {text:?}", e.column);
            assert!(!e.message.is_empty());
        }
    }
});
