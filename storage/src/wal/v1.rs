//! WAL record format version 1: encodes and decodes one checksummed, lz4-compressed record.
//! Owns the header layout below; knows nothing about files, sequences across records or replay.
//!
//! A record is a fixed 40-byte header followed by `compressed_len` payload bytes. All integers
//! are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     4  magic                  b"SLTW" (0x53 0x4c 0x54 0x57)
//!      4     1  version                1
//!      5     1  flags                  bit 0 = payload is an lz4 block (always set in v1);
//!                                      bits 1-7 reserved, zero
//!      6     2  reserved               zero
//!      8     8  first_seq   (u64)      `_seq` of the first row; row i gets first_seq + i
//!     16     4  row_count   (u32)      rows in the payload
//!     20     8  observed_timestamp_ns (i64)  when the request was received
//!     28     4  uncompressed_len (u32) bytes of `payload::encode(stream, rows)`, <= MAX_RECORD_BYTES
//!     32     4  compressed_len   (u32) bytes of the lz4 block that follows, <= MAX_RECORD_BYTES
//!     36     4  crc32c      (u32)      CRC-32C (Castagnoli) of bytes 0..36, then of the
//!                                      compressed payload
//!     40     n  payload                lz4_flex block of `payload::encode(stream, rows)`, n = compressed_len
//! ```
//!
//! Framing errors (short header, bad magic, a length above the limit or past the end of the
//! input, bad crc) are what a torn write produces; [`RecordError::is_framing`] tells them apart
//! from errors in a record whose crc is good, which only a bug or a newer writer explains.

use super::payload::{self, PayloadError};
use crate::record::LogRecord;

/// First four bytes of every record.
pub const MAGIC: [u8; 4] = *b"SLTW";
/// The format version this module writes and reads.
pub const VERSION: u8 = 1;
/// Flag bit 0: the payload is an lz4 block. v1 writers always set it.
pub const FLAG_LZ4: u8 = 1;
/// Size of the fixed header, in bytes.
pub const HEADER_BYTES: usize = 40;
/// Largest uncompressed or compressed payload of one record, in bytes (256 MiB). The writer
/// refuses a bigger request with [`RecordTooLarge`]; the reader treats a header claiming
/// more as a bad record (a torn tail or corruption) and never allocates from it.
pub const MAX_RECORD_BYTES: u32 = 256 << 20;
/// An lz4 block expands at most ~255× (each extra match-length byte adds 255 bytes of output);
/// a header claiming more than `compressed_len * MAX_LZ4_RATIO + LZ4_SLACK_BYTES` uncompressed
/// bytes is rejected before anything is allocated.
const MAX_LZ4_RATIO: u64 = 256;
/// Constant allowance added to the lz4 ratio bound, in bytes.
const LZ4_SLACK_BYTES: u64 = 64;
/// Bytes covered by the crc before the payload: the header without the crc field.
const CRC_COVERED_HEADER_BYTES: usize = 36;

/// The decoded fixed header of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub version: u8,
    pub flags: u8,
    pub first_seq: u64,
    pub row_count: u32,
    pub observed_timestamp_ns: i64,
    pub uncompressed_len: u32,
    pub compressed_len: u32,
    pub crc: u32,
}

impl RecordHeader {
    /// Total bytes of the record: header plus compressed payload.
    pub fn record_len(&self) -> usize {
        HEADER_BYTES + self.compressed_len as usize
    }

    /// One past the `_seq` of the last row.
    pub fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(u64::from(self.row_count))
    }
}

/// One fully decoded record and how many input bytes it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub header: RecordHeader,
    pub stream: String,
    pub rows: Vec<LogRecord>,
    pub consumed: usize,
}

/// Why bytes are not a valid v1 record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record header truncated: {available} of {HEADER_BYTES} bytes")]
    ShortHeader { available: usize },
    #[error("bad record magic {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported record format version {version}")]
    UnsupportedVersion { version: u8 },
    #[error("record {field} of {len} bytes is above the {MAX_RECORD_BYTES} byte limit")]
    TooLarge { field: &'static str, len: u64 },
    #[error("record payload of {needed} bytes runs past the end of the input ({available} left)")]
    ShortPayload { needed: usize, available: usize },
    #[error("record crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("record has unknown flags {flags:#04x} or nonzero reserved bytes {reserved:#06x}")]
    UnknownFlags { flags: u8, reserved: u16 },
    #[error(
        "record uncompressed length {uncompressed} is impossible for lz4 block of {compressed}"
    )]
    ImpossibleLength { uncompressed: u32, compressed: u32 },
    #[error("record payload does not decompress: {reason}")]
    Decompress { reason: String },
    #[error("record payload decompresses to {actual} bytes, header says {expected}")]
    LengthMismatch { expected: u32, actual: usize },
    #[error("record payload is invalid: {0}")]
    Payload(#[from] PayloadError),
    #[error("record header says {expected} rows, payload has {actual}")]
    RowCountMismatch { expected: u32, actual: usize },
}

impl RecordError {
    /// True for the errors a torn or partial write produces (the record's crc could not be
    /// verified); false for a crc-valid record that still cannot be decoded, and for an
    /// unsupported version (a newer writer, never to be cut away).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            Self::ShortHeader { .. }
                | Self::BadMagic { .. }
                | Self::TooLarge { .. }
                | Self::ShortPayload { .. }
                | Self::BadCrc { .. }
        )
    }
}

/// A compressed payload ready to be framed once its first seq is known. Build it outside any
/// lock: compression is the expensive part of an append.
#[derive(Debug, Clone)]
pub struct EncodedBody {
    compressed: Vec<u8>,
    uncompressed_len: u32,
    row_count: u32,
}

impl Drop for EncodedBody {
    fn drop(&mut self) {
        super::scratch::give_back(std::mem::take(&mut self.compressed));
    }
}

impl EncodedBody {
    /// Rows in the body.
    pub fn row_count(&self) -> u32 {
        self.row_count
    }

    /// Bytes the framed record will take.
    pub fn record_len(&self) -> usize {
        HEADER_BYTES + self.compressed.len()
    }
}

/// A request too big for one record: `len` bytes of `field` against [`MAX_RECORD_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("wal record {field} of {len} bytes is above the {MAX_RECORD_BYTES} byte limit")]
pub struct RecordTooLarge {
    pub field: &'static str,
    pub len: u64,
}

/// Encodes and compresses `rows`; fails when either payload size exceeds [`MAX_RECORD_BYTES`].
pub fn encode_body(stream: &str, rows: &[LogRecord]) -> Result<EncodedBody, RecordTooLarge> {
    let mut raw = super::scratch::take();
    payload::encode_into(stream, rows, &mut raw);
    let body = compress_body(&raw, rows.len());
    super::scratch::give_back(raw);
    body
}

fn compress_body(raw: &[u8], rows: usize) -> Result<EncodedBody, RecordTooLarge> {
    let uncompressed_len = checked_len("uncompressed payload", raw.len())?;
    // Compressed into a kept buffer at its worst-case size and not shrunk: the body lives only
    // until it is framed, then goes back to the pool (see `Drop`).
    let mut compressed = super::scratch::take();
    compressed.resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
    let len = lz4_flex::block::compress_into(raw, &mut compressed)
        .expect("the output buffer has the worst-case size");
    compressed.truncate(len);
    checked_len("compressed payload", compressed.len())?;
    let row_count = u32::try_from(rows).map_err(|_| RecordTooLarge {
        field: "row count",
        len: rows as u64,
    })?;
    Ok(EncodedBody {
        compressed,
        uncompressed_len,
        row_count,
    })
}

fn checked_len(field: &'static str, len: usize) -> Result<u32, RecordTooLarge> {
    u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_RECORD_BYTES)
        .ok_or(RecordTooLarge {
            field,
            len: len as u64,
        })
}

/// Appends the framed record (header, crc, payload) to `out`.
pub fn write_record(
    first_seq: u64,
    observed_timestamp_ns: i64,
    body: &EncodedBody,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(FLAG_LZ4);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&body.row_count.to_le_bytes());
    out.extend_from_slice(&observed_timestamp_ns.to_le_bytes());
    out.extend_from_slice(&body.uncompressed_len.to_le_bytes());
    // Cannot truncate: encode_body checked the length against MAX_RECORD_BYTES.
    out.extend_from_slice(&(body.compressed.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    let crc = crc32c::crc32c_append(crc, &body.compressed);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body.compressed);
}

/// Encodes one whole record into a fresh vector.
pub fn encode_record(
    first_seq: u64,
    observed_timestamp_ns: i64,
    stream: &str,
    rows: &[LogRecord],
) -> Result<Vec<u8>, RecordTooLarge> {
    let body = encode_body(stream, rows)?;
    let mut out = Vec::with_capacity(body.record_len());
    write_record(first_seq, observed_timestamp_ns, &body, &mut out);
    Ok(out)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks the framing of the record at the start of `buf`: header, length limits, that the
/// payload fits in `buf`, and the crc. Does not decompress. Cheap enough to try at every offset
/// where the magic appears.
pub fn check_frame(buf: &[u8]) -> Result<RecordHeader, RecordError> {
    if buf.len() < HEADER_BYTES {
        // A short tail whose bytes do not even start like a record is reported as bad magic.
        let n = buf.len().min(MAGIC.len());
        if buf[..n] != MAGIC[..n] {
            let mut found = [0u8; 4];
            found[..n].copy_from_slice(&buf[..n]);
            return Err(RecordError::BadMagic { found });
        }
        return Err(RecordError::ShortHeader {
            available: buf.len(),
        });
    }
    let h = &buf[..HEADER_BYTES];
    let mut found = [0u8; 4];
    found.copy_from_slice(&h[..4]);
    if found != MAGIC {
        return Err(RecordError::BadMagic { found });
    }
    if h[4] != VERSION {
        return Err(RecordError::UnsupportedVersion { version: h[4] });
    }
    let header = RecordHeader {
        version: h[4],
        flags: h[5],
        first_seq: le_u64(h, 8),
        row_count: le_u32(h, 16),
        observed_timestamp_ns: le_u64(h, 20) as i64,
        uncompressed_len: le_u32(h, 28),
        compressed_len: le_u32(h, 32),
        crc: le_u32(h, 36),
    };
    for (field, len) in [
        ("uncompressed payload", header.uncompressed_len),
        ("compressed payload", header.compressed_len),
    ] {
        if len > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge {
                field,
                len: u64::from(len),
            });
        }
    }
    let needed = header.compressed_len as usize;
    let available = buf.len() - HEADER_BYTES;
    if needed > available {
        return Err(RecordError::ShortPayload { needed, available });
    }
    let payload = &buf[HEADER_BYTES..HEADER_BYTES + needed];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&h[..CRC_COVERED_HEADER_BYTES]), payload);
    if computed != header.crc {
        return Err(RecordError::BadCrc {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Decodes the record at the start of `buf` (trailing bytes are left for the caller).
/// Total: any input gives a record or a [`RecordError`]; allocation is bounded by
/// [`MAX_RECORD_BYTES`] and by the lz4 expansion limit of the bytes actually present.
pub fn decode_record(buf: &[u8]) -> Result<DecodedRecord, RecordError> {
    let header = check_frame(buf)?;
    let (stream, rows) = decode_framed(buf, &header)?;
    Ok(DecodedRecord {
        header,
        stream,
        rows,
        consumed: header.record_len(),
    })
}

/// Decompresses and decodes the rows of a record whose frame [`check_frame`] accepted as
/// `header` on the same `buf`.
pub(super) fn decode_framed(
    buf: &[u8],
    header: &RecordHeader,
) -> Result<(String, Vec<LogRecord>), RecordError> {
    let reserved = u16::from_le_bytes([buf[6], buf[7]]);
    if header.flags != FLAG_LZ4 || reserved != 0 {
        return Err(RecordError::UnknownFlags {
            flags: header.flags,
            reserved,
        });
    }
    let bound = u64::from(header.compressed_len) * MAX_LZ4_RATIO + LZ4_SLACK_BYTES;
    if u64::from(header.uncompressed_len) > bound {
        return Err(RecordError::ImpossibleLength {
            uncompressed: header.uncompressed_len,
            compressed: header.compressed_len,
        });
    }
    let compressed = &buf[HEADER_BYTES..header.record_len()];
    let mut raw = vec![0u8; header.uncompressed_len as usize];
    let actual = lz4_flex::block::decompress_into(compressed, &mut raw).map_err(|e| {
        RecordError::Decompress {
            reason: e.to_string(),
        }
    })?;
    if actual != raw.len() {
        return Err(RecordError::LengthMismatch {
            expected: header.uncompressed_len,
            actual,
        });
    }
    let (stream, rows) = payload::decode(&raw)?;
    if rows.len() != header.row_count as usize {
        return Err(RecordError::RowCountMismatch {
            expected: header.row_count,
            actual: rows.len(),
        });
    }
    Ok((stream, rows))
}

/// Offset of the first position at or after `from` in `buf` where a record with a valid frame
/// starts, if any. Used to tell a torn tail (nothing valid follows) from corruption.
pub fn find_next_valid(buf: &[u8], from: usize) -> Option<usize> {
    let tail = buf.get(from..)?;
    tail.windows(MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == MAGIC)
        .map(|(i, _)| from + i)
        .find(|&at| check_frame(&buf[at..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::tests::arb_record;
    use proptest::prelude::*;

    fn sample() -> Vec<LogRecord> {
        vec![
            LogRecord {
                message: "hello".into(),
                ..LogRecord::default()
            };
            3
        ]
    }

    /// Rewrites the crc so a deliberately changed header or payload passes the frame check.
    fn fix_crc(rec: &mut [u8]) {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[..36]), &rec[HEADER_BYTES..]);
        rec[36..40].copy_from_slice(&crc.to_le_bytes());
    }

    proptest! {
        #[test]
        fn round_trip(
            seq in any::<u64>(),
            ts in any::<i64>(),
            rows in proptest::collection::vec(arb_record(), 0..6),
        ) {
            let mut buf = encode_record(seq, ts, "default", &rows).unwrap();
            let len = buf.len();
            buf.extend_from_slice(b"trailing");
            let rec = decode_record(&buf).unwrap();
            prop_assert_eq!(rec.consumed, len);
            prop_assert_eq!(rec.header.first_seq, seq);
            prop_assert_eq!(rec.header.observed_timestamp_ns, ts);
            prop_assert_eq!(rec.header.row_count as usize, rows.len());
            prop_assert_eq!(rec.rows, rows);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_record(&bytes);
            let _ = find_next_valid(&bytes, 0);
        }

        #[test]
        fn arbitrary_bytes_behind_a_valid_header_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            uncompressed_len in 0u32..4096,
            row_count in any::<u32>(),
        ) {
            let mut rec = encode_record(0, 0, "default", &[]).unwrap();
            rec.truncate(HEADER_BYTES);
            rec.extend_from_slice(&body);
            rec[16..20].copy_from_slice(&row_count.to_le_bytes());
            rec[28..32].copy_from_slice(&uncompressed_len.to_le_bytes());
            rec[32..36].copy_from_slice(&(body.len() as u32).to_le_bytes());
            fix_crc(&mut rec);
            if let Err(e) = decode_record(&rec) {
                prop_assert!(!e.is_framing(), "{e}");
            }
        }
    }

    #[test]
    fn every_truncation_is_a_framing_error() {
        let rec = encode_record(7, 1, "default", &sample()).unwrap();
        for len in 0..rec.len() {
            let err = decode_record(&rec[..len]).unwrap_err();
            assert!(err.is_framing(), "{len}: {err}");
        }
        assert!(matches!(
            decode_record(&rec[..10]),
            Err(RecordError::ShortHeader { available: 10 })
        ));
        assert!(matches!(
            decode_record(&[0; 10]),
            Err(RecordError::BadMagic { .. })
        ));
    }

    #[test]
    fn header_checks() {
        let rec = encode_record(7, 1, "default", &sample()).unwrap();
        let mut bad = rec.clone();
        bad[4] = 9;
        assert_eq!(
            decode_record(&bad),
            Err(RecordError::UnsupportedVersion { version: 9 })
        );
        assert!(!RecordError::UnsupportedVersion { version: 9 }.is_framing());

        let mut bad = rec.clone();
        bad[32..36].copy_from_slice(&(MAX_RECORD_BYTES + 1).to_le_bytes());
        assert!(matches!(
            decode_record(&bad),
            Err(RecordError::TooLarge { .. })
        ));

        let mut bad = rec.clone();
        bad[8] ^= 1;
        assert!(matches!(
            decode_record(&bad),
            Err(RecordError::BadCrc { .. })
        ));

        let mut bad = rec.clone();
        bad[5] = 3;
        fix_crc(&mut bad);
        assert!(matches!(
            decode_record(&bad),
            Err(RecordError::UnknownFlags { flags: 3, .. })
        ));

        let mut bad = rec.clone();
        bad[16] = 4;
        fix_crc(&mut bad);
        assert!(matches!(
            decode_record(&bad),
            Err(RecordError::RowCountMismatch { .. })
        ));

        // A tiny payload claiming the maximum uncompressed size is refused before allocating.
        let mut bad = rec.clone();
        bad[28..32].copy_from_slice(&MAX_RECORD_BYTES.to_le_bytes());
        fix_crc(&mut bad);
        assert!(matches!(
            decode_record(&bad),
            Err(RecordError::ImpossibleLength { .. })
        ));
    }

    #[test]
    fn maximally_compressible_payload_is_within_the_ratio_bound() {
        let rows = vec![LogRecord {
            message: "\0".repeat(8 << 20),
            ..LogRecord::default()
        }];
        let rec = encode_record(0, 0, "default", &rows).unwrap();
        assert_eq!(decode_record(&rec).unwrap().rows, rows);
    }

    /// Bodies are encoded in kept buffers: a small body after a large one, round after round,
    /// each frame holds only its own rows.
    #[test]
    fn bodies_in_reused_buffers_hold_only_their_own_rows() {
        let large = vec![
            LogRecord {
                message: "x".repeat(1 << 16),
                ..LogRecord::default()
            };
            16
        ];
        for _ in 0..3 {
            let first = encode_record(1, 0, "default", &large).unwrap();
            let second = encode_record(17, 0, "other", &sample()).unwrap();
            assert_eq!(decode_record(&first).unwrap().rows, large);
            let decoded = decode_record(&second).unwrap();
            assert_eq!((decoded.stream.as_str(), decoded.rows), ("other", sample()));
        }
    }

    #[test]
    fn find_next_valid_skips_garbage() {
        let rec = encode_record(7, 1, "default", &sample()).unwrap();
        let mut buf = vec![0xAB; 13];
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&rec);
        assert_eq!(find_next_valid(&buf, 0), Some(17));
        assert_eq!(find_next_valid(&buf, 18), None);
        assert_eq!(find_next_valid(&buf, 1000), None);
    }
}
