//! The uncompressed body of a WAL record: a compact binary encoding of `&[LogRecord]`.
//! Owns the field layout and a total decoder (any bytes → rows or a typed error, never a panic).
//!
//! Layout (all integers are unsigned LEB128 varints unless noted):
//!
//! ```text
//! payload  = stream row_count row*
//! stream   = string: the stream every row of the request belongs to
//! row      = presence [timestamp] [level] [service] [host] [trace_id] [span_id]
//!            message attr_count (key value)*
//! presence = 1 byte: bit 0 timestamp, bit 1 level, bit 2 service, bit 3 host,
//!            bit 4 trace_id, bit 5 span_id; bits 6-7 must be zero
//! timestamp= zigzag-encoded i64 as a varint
//! string   = byte_len bytes (UTF-8)
//! ```
//!
//! The decoder rejects trailing bytes, over-long varints, invalid UTF-8 and unknown presence
//! bits, and never reserves more memory than the remaining input could fill.

use crate::record::LogRecord;

/// Smallest encoded row: presence byte, empty message length, zero attribute count.
/// The decoder caps vector reservations at `remaining / MIN_ROW_BYTES` rows.
const MIN_ROW_BYTES: usize = 3;
/// Smallest encoded attribute: two empty strings.
const MIN_ATTR_BYTES: usize = 2;
/// Longest LEB128 encoding of a u64, in bytes; a longer varint is an error.
const MAX_VARINT_BYTES: usize = 10;

const HAS_TIMESTAMP: u8 = 1 << 0;
const HAS_LEVEL: u8 = 1 << 1;
const HAS_SERVICE: u8 = 1 << 2;
const HAS_HOST: u8 = 1 << 3;
const HAS_TRACE_ID: u8 = 1 << 4;
const HAS_SPAN_ID: u8 = 1 << 5;
const KNOWN_BITS: u8 = (1 << 6) - 1;

/// Why a byte string is not a valid payload; `offset` is where in the payload decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload truncated at offset {offset}: {what} needs {needed} more bytes")]
    Truncated {
        offset: usize,
        what: &'static str,
        needed: u64,
    },
    #[error("payload varint at offset {offset} is longer than 10 bytes or overflows u64")]
    BadVarint { offset: usize },
    #[error("payload string at offset {offset} is not valid utf-8")]
    InvalidUtf8 { offset: usize },
    #[error("payload row at offset {offset} has unknown presence bits {bits:#04x}")]
    UnknownPresenceBits { offset: usize, bits: u8 },
    #[error("payload has {count} trailing bytes at offset {offset}")]
    TrailingBytes { offset: usize, count: usize },
}

/// Encodes the rows of one request to `stream`, appending to `out`.
pub fn encode_into(stream: &str, rows: &[LogRecord], out: &mut Vec<u8>) {
    put_str(out, stream);
    put_varint(out, rows.len() as u64);
    for row in rows {
        let mut presence = 0u8;
        let optional = [
            (HAS_LEVEL, &row.level),
            (HAS_SERVICE, &row.service),
            (HAS_HOST, &row.host),
            (HAS_TRACE_ID, &row.trace_id),
            (HAS_SPAN_ID, &row.span_id),
        ];
        if row.timestamp.is_some() {
            presence |= HAS_TIMESTAMP;
        }
        for (bit, value) in &optional {
            if value.is_some() {
                presence |= bit;
            }
        }
        out.push(presence);
        if let Some(ts) = row.timestamp {
            put_varint(out, zigzag(ts));
        }
        for (_, value) in &optional {
            if let Some(s) = value {
                put_str(out, s);
            }
        }
        put_str(out, &row.message);
        put_varint(out, row.attributes.len() as u64);
        for (key, value) in &row.attributes {
            put_str(out, key);
            put_str(out, value);
        }
    }
}

/// Encodes `rows` of `stream` into a fresh vector.
pub fn encode(stream: &str, rows: &[LogRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(stream, rows, &mut out);
    out
}

/// Decodes a whole payload. Total: returns an error for any input that [`encode`] cannot produce.
pub fn decode(bytes: &[u8]) -> Result<(String, Vec<LogRecord>), PayloadError> {
    let mut r = Reader { bytes, pos: 0 };
    let stream = r.string()?;
    let count = r.varint()?;
    let mut rows = Vec::with_capacity(r.cap(count, MIN_ROW_BYTES));
    for _ in 0..count {
        rows.push(r.row()?);
    }
    if r.pos != bytes.len() {
        return Err(PayloadError::TrailingBytes {
            offset: r.pos,
            count: bytes.len() - r.pos,
        });
    }
    Ok((stream, rows))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A reservation for `count` items of at least `min_bytes` each that the input can back.
    fn cap(&self, count: u64, min_bytes: usize) -> usize {
        let fit = self.remaining() / min_bytes;
        usize::try_from(count).map_or(fit, |c| c.min(fit))
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, PayloadError> {
        let b = *self.bytes.get(self.pos).ok_or(PayloadError::Truncated {
            offset: self.pos,
            what,
            needed: 1,
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, PayloadError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let b = self.byte("varint")?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == MAX_VARINT_BYTES - 1 && bits > 1 {
                return Err(PayloadError::BadVarint { offset: start });
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(PayloadError::BadVarint { offset: start })
    }

    fn string(&mut self) -> Result<String, PayloadError> {
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&end| end <= self.bytes.len())
            .ok_or(PayloadError::Truncated {
                offset: start,
                what: "string",
                needed: len.saturating_sub(self.remaining() as u64),
            })?;
        let s = std::str::from_utf8(&self.bytes[start..end])
            .map_err(|_| PayloadError::InvalidUtf8 { offset: start })?;
        self.pos = end;
        Ok(s.to_owned())
    }

    fn opt_string(&mut self, presence: u8, bit: u8) -> Result<Option<String>, PayloadError> {
        if presence & bit == 0 {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    fn row(&mut self) -> Result<LogRecord, PayloadError> {
        let offset = self.pos;
        let presence = self.byte("presence")?;
        if presence & !KNOWN_BITS != 0 {
            return Err(PayloadError::UnknownPresenceBits {
                offset,
                bits: presence,
            });
        }
        let timestamp = if presence & HAS_TIMESTAMP != 0 {
            Some(unzigzag(self.varint()?))
        } else {
            None
        };
        let level = self.opt_string(presence, HAS_LEVEL)?;
        let service = self.opt_string(presence, HAS_SERVICE)?;
        let host = self.opt_string(presence, HAS_HOST)?;
        let trace_id = self.opt_string(presence, HAS_TRACE_ID)?;
        let span_id = self.opt_string(presence, HAS_SPAN_ID)?;
        let message = self.string()?;
        let attr_count = self.varint()?;
        let mut attributes = Vec::with_capacity(self.cap(attr_count, MIN_ATTR_BYTES));
        for _ in 0..attr_count {
            let key = self.string()?;
            let value = self.string()?;
            attributes.push((key, value));
        }
        Ok(LogRecord {
            timestamp,
            level,
            service,
            host,
            trace_id,
            span_id,
            message,
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::tests::arb_record;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(rows in proptest::collection::vec(arb_record(), 0..8)) {
            prop_assert_eq!(decode(&encode("web", &rows)).unwrap(), ("web".to_string(), rows));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn every_strict_prefix_is_rejected(rows in proptest::collection::vec(arb_record(), 1..4)) {
            let bytes = encode("web", &rows);
            for len in 0..bytes.len() {
                prop_assert!(decode(&bytes[..len]).is_err());
            }
        }
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        // row_count = u64::MAX with no rows behind it.
        let bytes = [
            0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            decode(&bytes),
            Err(PayloadError::Truncated { .. })
        ));
        // one row whose message claims u64::MAX bytes.
        let bytes = [
            0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            decode(&bytes),
            Err(PayloadError::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_bad_varints_bits_and_trailing_bytes() {
        assert!(matches!(
            decode(&[0x80; 11]),
            Err(PayloadError::BadVarint { offset: 0 })
        ));
        let overflow = [
            0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert!(matches!(
            decode(&overflow),
            Err(PayloadError::BadVarint { offset: 1 })
        ));
        assert!(matches!(
            decode(&[0, 1, 0x40, 0, 0]),
            Err(PayloadError::UnknownPresenceBits { .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 7]),
            Err(PayloadError::TrailingBytes {
                offset: 2,
                count: 1
            })
        ));
        assert!(matches!(
            decode(&[0, 1, 0, 1, 0xff, 0]),
            Err(PayloadError::InvalidUtf8 { offset: 4 })
        ));
        assert_eq!(decode(&[0, 0]).unwrap(), (String::new(), Vec::new()));
    }

    #[test]
    fn extreme_timestamps() {
        for ts in [i64::MIN, -1, 0, 1, i64::MAX] {
            let rows = vec![LogRecord {
                timestamp: Some(ts),
                ..LogRecord::default()
            }];
            assert_eq!(decode(&encode("", &rows)).unwrap(), (String::new(), rows));
        }
    }
}
