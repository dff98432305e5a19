//! Fuzzes the syslog path: `parse_syslog_message` on the raw input and on every frame, and
//! `SyslogFramer` over the input fed whole and in chunks, which must agree. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_parse::ParseOptions;
use silt_parse::syslog::{FrameError, SyslogFramer, parse_syslog_message};

/// 2024-06-15T12:00:00Z: a fixed "now" keeps runs reproducible.
const NOW_NS: i64 = 1_718_452_800_000_000_000;
/// Frame limits small enough for fuzz inputs to cross them.
const MAX_FRAME_BYTES: [usize; 4] = [0, 7, 64, 4096];

fn frames(
    input: &[u8],
    chunk_bytes: usize,
    max_frame_bytes: usize,
) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut framer = SyslogFramer::new(max_frame_bytes);
    let mut out = Vec::new();
    for chunk in input.chunks(chunk_bytes.max(1)) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            out.push(frame);
        }
    }
    while let Some(frame) = framer.finish() {
        out.push(frame);
    }
    out
}

fn check_message(message: &[u8], opts: &ParseOptions) {
    if let Ok(record) = parse_syslog_message(message, opts) {
        let mut keys: Vec<&str> = record
            .attributes
            .iter()
            .map(|(key, _)| key.as_str())
            .collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "attribute keys must be unique");
    }
}

fuzz_target!(|data: &[u8]| {
    let (control, input) = match data.split_first() {
        Some((&first, rest)) => (first, rest),
        None => (0, data),
    };
    let chunk_bytes = usize::from(control % 32) + 1;
    let max_frame_bytes = MAX_FRAME_BYTES[usize::from(control >> 6)];
    let opts = ParseOptions::utc_at(NOW_NS);
    check_message(input, &opts);
    let whole = frames(input, input.len(), max_frame_bytes);
    let chunked = frames(input, chunk_bytes, max_frame_bytes);
    assert_eq!(whole, chunked, "chunk boundaries changed the frames");
    for frame in whole.iter().flatten() {
        assert!(
            frame.len() <= max_frame_bytes,
            "a frame over the limit was delivered"
        );
        check_message(frame, &opts);
    }
});
