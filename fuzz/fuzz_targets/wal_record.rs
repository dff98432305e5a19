//! Fuzzes the WAL v1 record decoder and the payload decoder: any bytes must decode or fail with
//! a typed error, never panic or allocate without bound; whatever decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silt_storage::wal::{payload, v1};

/// Bytes of the v1 header covered by the crc (everything before the crc field).
const CRC_COVERED_HEADER_BYTES: usize = 36;

fuzz_target!(|data: &[u8]| {
    // 1. The raw input as a record stream, as replay sees a file.
    check_record(data);
    let _ = v1::find_next_valid(data, 0);

    // 2. The raw input as a payload.
    if let Ok((stream, rows)) = payload::decode(data) {
        let again = payload::encode(&stream, &rows);
        assert_eq!(payload::decode(&again).expect("re-encoded payload decodes"), (stream, rows));
    }

    // 3. The input behind a header with a correct crc, so the fuzzer reaches decompression and
    //    payload decoding (it cannot forge a crc32c on its own). First 8 bytes pick the claimed
    //    uncompressed length and row count; the rest is the "compressed" payload.
    if data.len() >= 8 {
        let (fields, body) = data.split_at(8);
        let uncompressed_len = u32::from_le_bytes([fields[0], fields[1], fields[2], fields[3]]);
        let row_count = u32::from_le_bytes([fields[4], fields[5], fields[6], fields[7]]);
        let mut rec = v1::encode_record(0, 0, "default", &[]).expect("empty record encodes");
        rec.truncate(v1::HEADER_BYTES);
        rec.extend_from_slice(body);
        rec[16..20].copy_from_slice(&row_count.to_le_bytes());
        rec[28..32].copy_from_slice(&uncompressed_len.to_le_bytes());
        rec[32..36].copy_from_slice(&(body.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c_append(
            crc32c::crc32c(&rec[..CRC_COVERED_HEADER_BYTES]),
            &rec[v1::HEADER_BYTES..],
        );
        rec[36..40].copy_from_slice(&crc.to_le_bytes());
        match v1::decode_record(&rec) {
            Ok(_) => check_record(&rec),
            // The crc is right, so this can only be a content error, never a framing one.
            Err(e) => assert!(
                !e.is_framing()
                    || uncompressed_len > v1::MAX_RECORD_BYTES
                    || body.len() > v1::MAX_RECORD_BYTES as usize,
                "{e}"
            ),
        }
    }
});

/// Decodes records from the start of `data` until one fails; every decoded record must re-encode
/// to bytes that decode to the same rows.
fn check_record(mut data: &[u8]) {
    while let Ok(rec) = v1::decode_record(data) {
        assert!(rec.consumed >= v1::HEADER_BYTES && rec.consumed <= data.len());
        assert_eq!(rec.rows.len(), rec.header.row_count as usize);
        let again = v1::encode_record(rec.header.first_seq, rec.header.observed_timestamp_ns, &rec.stream, &rec.rows)
            .expect("a decoded record re-encodes");
        let back = v1::decode_record(&again).expect("a re-encoded record decodes");
        assert_eq!(back.rows, rec.rows);
        assert_eq!(back.header.first_seq, rec.header.first_seq);
        data = &data[rec.consumed..];
    }
}
