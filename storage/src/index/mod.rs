//! The term index embedded in every segment: terms → posting blocks, laid out for ranged reads
//! (a small directory, then zstd term blocks). Byte layout specified in docs/format.md.

mod builder;
mod postings;
mod reader;
mod rice;

pub(crate) use builder::same_bytes;
pub use builder::{IndexStats, TermIndexBuilder};
pub use postings::{decode_postings, encode_postings};
pub use reader::{BlockEntry, FieldEntry, FilterEntry, FilterPartition, IndexDirectory, TermBlock};

use crate::tokenizer;

/// First bytes of the index directory.
pub const INDEX_MAGIC: [u8; 4] = *b"SLTX";
/// Version of the index layout described in docs/format.md, written by this build.
pub const INDEX_VERSION: u16 = 3;
/// Index versions this build reads: 1 (unseeded fingerprints), 2 (seeded, zstd varint sets)
/// and 3 (seeded, Golomb-Rice sets).
pub const READABLE_INDEX_VERSIONS: [u16; 3] = [1, 2, 3];
/// Rows per posting block: a term's postings name blocks of this many consecutive rows.
/// Chosen by measurement (docs/format.md, "Posting granularity").
pub const DEFAULT_BLOCK_ROWS: u32 = 4096;
/// A term block is closed once its uncompressed entries reach this size.
pub const TERM_BLOCK_TARGET_BYTES: usize = 16 * 1024;
/// Posting lists with at most this many blocks are stored as delta varints; longer ones as a
/// roaring bitmap.
pub const SMALL_POSTINGS_MAX: usize = 8;
/// A term found in at most this many posting blocks is stored as a 16-bit fingerprint in each
/// of them instead of in the dictionary: ~1.33 bytes per block against its bytes and a roaring
/// posting list (12 bytes and two per block before zstd) for a dictionary entry. 16 rather
/// than 8 moved most trace ids out of the dictionary (a trace's lines land in one cluster per
/// service) and took 1.1 MB off the benchmark corpus' 138 MB; 32 saved no more.
pub const RARE_MAX_BLOCKS: usize = 16;
/// Fingerprint partitions are sized so each (partition, posting block) set holds about this
/// many fingerprints: dense enough that their Rice codes take ~1.33 bytes each, sparse enough
/// that a look-up reads only a small share of the fingerprints (measured, docs/format.md).
pub const FINGERPRINTS_PER_SET: usize = 128;
/// At most 2^16 fingerprint partitions.
pub const MAX_FILTER_PARTITION_BITS: u32 = 16;

/// How one segment hashes a term for its fingerprint partition and fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermHasher {
    /// Index v1: the CRC-32C (Castagnoli) of the term bytes. A term colliding with another
    /// collides in every segment, so its false positives pile up across all of them.
    Crc32c,
    /// Index v2: the CRC-32C xor the segment's seed, through murmur3's 32-bit finaliser, so
    /// which terms collide differs from segment to segment.
    Seeded(u32),
}

impl TermHasher {
    /// The hasher of a segment with this index version and footer digest: v2 seeds with the
    /// digest's first four bytes (little-endian), which differ between segments.
    pub fn for_segment(index_version: u16, footer_digest: &[u8; 32]) -> Self {
        if index_version < 2 {
            TermHasher::Crc32c
        } else {
            let seed = u32::from_le_bytes(footer_digest[..4].try_into().expect("4 bytes"));
            TermHasher::Seeded(seed)
        }
    }

    pub fn hash(self, term: &[u8]) -> u32 {
        self.hash_crc(crc32c::crc32c(term))
    }

    /// [`TermHasher::hash`] of a term whose CRC-32C is `crc`.
    pub fn hash_crc(self, crc: u32) -> u32 {
        match self {
            TermHasher::Crc32c => crc,
            TermHasher::Seeded(seed) => fmix32(crc ^ seed),
        }
    }
}

/// murmur3's 32-bit finaliser: a bijection in which every input bit flips about half of the
/// output bits, so terms whose CRCs differ share partition and fingerprint bits by chance only.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The fingerprint partition of a term hash: its top `bits` bits.
pub fn partition_of(hash: u32, bits: u32) -> u32 {
    if bits == 0 { 0 } else { hash >> (32 - bits) }
}

/// The 16-bit fingerprint of a term hash: its low 16 bits.
pub fn fingerprint_of(hash: u32) -> u16 {
    (hash & 0xffff) as u16
}

/// A directory or term block larger than this is refused as corrupt before allocating for it.
pub const MAX_SECTION_BYTES: u64 = 1 << 30;
/// Field name of message tokens in the term dictionary.
pub const MESSAGE_FIELD: &str = "message";
/// Prefix of attribute fields in the term dictionary (`attributes.user_id`).
pub const ATTRIBUTE_FIELD_PREFIX: &str = "attributes.";
/// Separates a term's field from its value. Never part of a field name Silt creates; a key that
/// contains it can only widen a look-up, never miss rows, because the scan re-checks.
pub const FIELD_SEPARATOR: u8 = 0;

/// One dictionary key: `field`, `0x00`, then the value bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(Vec<u8>);

impl Term {
    /// A term from a field and already-normalised value bytes.
    pub fn from_parts(field: &str, value: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(field.len() + 1 + value.len());
        bytes.extend_from_slice(field.as_bytes());
        bytes.push(FIELD_SEPARATOR);
        bytes.extend_from_slice(value);
        Term(bytes)
    }

    /// The term for one token of a message. `token` is tokenized first; only its first token
    /// is used (callers pass single tokens, see [`tokenizer::tokens`]).
    pub fn message_token(token: &str) -> Self {
        let mut first = None;
        let mut buf = Vec::new();
        tokenizer::for_each_token(token, &mut buf, |t| {
            if first.is_none() {
                first = Some(t.to_vec());
            }
        });
        Term::from_parts(MESSAGE_FIELD, &first.unwrap_or_default())
    }

    /// The term of a keyword column value (`level`, `service`, `host`, `trace_id`, `span_id`).
    pub fn keyword(field: &str, value: &str) -> Self {
        Term::from_parts(field, &tokenizer::normalize_keyword(value))
    }

    /// The term of an attribute key/value pair.
    pub fn attribute(key: &str, value: &str) -> Self {
        let field = format!("{ATTRIBUTE_FIELD_PREFIX}{key}");
        Term::from_parts(&field, &tokenizer::normalize_keyword(value))
    }

    /// The range start of all terms of `field` whose value starts with `value_prefix`.
    pub fn prefix(field: &str, value_prefix: &[u8]) -> Self {
        Term::from_parts(field, value_prefix)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Term(bytes)
    }

    /// The field part (before the separator), if the term has one.
    pub fn field(&self) -> Option<&str> {
        split_term(&self.0).map(|(f, _)| f)
    }

    pub fn value(&self) -> &[u8] {
        split_term(&self.0).map_or(&[][..], |(_, v)| v)
    }
}

/// Splits raw term bytes into (field, value).
pub fn split_term(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let pos = bytes.iter().position(|&b| b == FIELD_SEPARATOR)?;
    let field = std::str::from_utf8(&bytes[..pos]).ok()?;
    Some((field, &bytes[pos + 1..]))
}

/// LEB128 unsigned varints, used throughout the index.
pub(crate) mod varint {
    pub fn put(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Reads a varint at `*pos`, advancing it. `None` on truncation or overflow.
    pub fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *buf.get(*pos)?;
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if shift == 63 && b > 1 {
                    return None;
                }
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
