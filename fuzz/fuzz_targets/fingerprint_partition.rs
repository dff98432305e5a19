//! Arbitrary bytes as a fingerprint partition of every index version, with a directory entry
//! that fits them (so decoding gets past the checksum).
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_storage::index::{FilterEntry, FilterPartition};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (head, body) = data.split_at(2);
    let posting_blocks = u32::from(u16::from_le_bytes([head[0], head[1]]) % 4096);
    // Compressing the fuzz input lets the fuzzer reach the v2 set decoder, not just zstd.
    let compressed = zstd::bulk::compress(body, 1).unwrap();
    for (version, bytes) in [(3, body), (2, &compressed[..])] {
        let entry = FilterEntry {
            offset: 0,
            length: bytes.len() as u64,
            crc32c: crc32c::crc32c(bytes),
            raw_length: body.len() as u32,
        };
        if let Ok(partition) =
            FilterPartition::decode(bytes, &entry, posting_blocks, version, "fuzz")
        {
            let blocks = partition.blocks_with(u16::from_le_bytes([head[0], head[1]]));
            assert!(blocks.iter().all(|b| b < posting_blocks));
        }
    }
});
