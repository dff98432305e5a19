//! Arbitrary bytes as a compressed term block, with a directory entry that fits them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_storage::index::{BlockEntry, TermBlock};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, body) = data.split_at(8);
    let raw_length = u32::from_le_bytes(head[0..4].try_into().unwrap()) % (1 << 20);
    let terms = u32::from(u16::from_le_bytes([head[4], head[5]])).max(1);
    let posting_blocks = u32::from(u16::from_le_bytes([head[6], head[7]]));
    // Compressing the fuzz input lets the fuzzer reach the entry decoder, not just zstd.
    let compressed = zstd::bulk::compress(body, 1).unwrap();
    for bytes in [body, &compressed[..]] {
        let entry = BlockEntry {
            first_term: body.iter().take(4).copied().collect(),
            offset: 0,
            length: bytes.len() as u64,
            crc32c: crc32c::crc32c(bytes),
            terms,
            raw_length: if bytes.len() == body.len() { raw_length } else { body.len() as u32 },
        };
        if let Ok(block) = TermBlock::decode(bytes, &entry, posting_blocks, "fuzz") {
            for (term, _) in block.iter() {
                assert!(block.get(term).is_some());
            }
        }
    }
});
