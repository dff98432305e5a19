//! Arbitrary bytes as an index directory (with a matching checksum, so decoding gets past it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_storage::index::IndexDirectory;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (extra, dir) = data.split_at(2);
    let index_len = dir.len() as u64 + u64::from(u16::from_le_bytes([extra[0], extra[1]]));
    if let Ok(directory) = IndexDirectory::decode(dir, crc32c::crc32c(dir), index_len, "fuzz") {
        for entry in &directory.blocks {
            let _ = directory.block_for(&entry.first_term);
        }
        let _ = directory.blocks_in_range(b"a", Some(b"b"));
        let _ = directory.posting_blocks();
    }
});
