//! Decodes the index directory and term blocks from bytes a segment reader fetched, checking
//! every section's checksum first. Total over any input: corrupt bytes give an error, never a panic.

use roaring::RoaringBitmap;

use super::{
    INDEX_MAGIC, MAX_SECTION_BYTES, READABLE_INDEX_VERSIONS, TermHasher, decode_postings, varint,
};
use crate::error::{Result, StorageError};
use crate::tokenizer::TOKENIZER_VERSION;

/// Fixed part of the directory: magic 4, index version 2, tokenizer version 2, block rows 4,
/// rows 8, footer digest 32, term count 8, block count 4, stripe bytes 4, stripe count 4,
/// fingerprint partitions 4, rare terms 8, fields 4.
pub const DIRECTORY_HEADER_BYTES: usize = 88;

/// Where one fingerprint partition lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterEntry {
    /// Offset from the start of the index region.
    pub offset: u64,
    pub length: u64,
    pub crc32c: u32,
    pub raw_length: u32,
}

/// Per-field term counts and the posting blocks that hold the field's rare terms.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldEntry {
    pub field: Vec<u8>,
    pub exact_terms: u64,
    pub rare_terms: u64,
    pub rare_blocks: RoaringBitmap,
}

/// Where one term block lives and what it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    pub first_term: Vec<u8>,
    /// Offset from the start of the index region.
    pub offset: u64,
    pub length: u64,
    pub crc32c: u32,
    pub terms: u32,
    pub raw_length: u32,
}

/// The index directory: parameters and the block table, read first on every look-up.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDirectory {
    pub version: u16,
    pub tokenizer_version: u16,
    pub block_rows: u32,
    pub rows: u64,
    pub footer_digest: [u8; 32],
    pub terms: u64,
    /// Size of the data-region stripes that `stripes` checksums.
    pub stripe_bytes: u32,
    /// crc32c of each stripe of the bytes before the index, the last one possibly short.
    pub stripes: Vec<u32>,
    pub blocks: Vec<BlockEntry>,
    /// Terms stored only as fingerprints.
    pub rare_terms: u64,
    /// Fingerprint partitions; their count is a power of two (or zero).
    pub filters: Vec<FilterEntry>,
    pub fields: Vec<FieldEntry>,
}

impl IndexDirectory {
    /// Decodes a directory whose crc32c the footer recorded as `expected_crc`. `index_len` is
    /// the length of the whole index region, to bound block offsets.
    pub fn decode(bytes: &[u8], expected_crc: u32, index_len: u64, location: &str) -> Result<Self> {
        let actual = crc32c::crc32c(bytes);
        if actual != expected_crc {
            return Err(StorageError::corrupt(
                location,
                format!(
                    "index directory checksum mismatch (expected {expected_crc:08x}, found {actual:08x})"
                ),
            ));
        }
        let corrupt =
            |what: &str| StorageError::corrupt(location, format!("index directory: {what}"));
        if bytes.len() < DIRECTORY_HEADER_BYTES {
            return Err(corrupt("shorter than its header"));
        }
        if bytes[0..4] != INDEX_MAGIC {
            return Err(corrupt("bad magic"));
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let version = u16_at(4);
        if !READABLE_INDEX_VERSIONS.contains(&version) {
            return Err(StorageError::unsupported_version(
                location,
                format!("index version {version}"),
            ));
        }
        let tokenizer_version = u16_at(6);
        if tokenizer_version != TOKENIZER_VERSION {
            return Err(StorageError::unsupported_version(
                location,
                format!("tokenizer version {tokenizer_version}"),
            ));
        }
        let block_rows = u32_at(8);
        if block_rows == 0 {
            return Err(corrupt("zero rows per block"));
        }
        let rows = u64_at(12);
        let footer_digest: [u8; 32] = bytes[20..52].try_into().expect("32 bytes");
        let terms = u64_at(52);
        let block_count = u32_at(60);
        let stripe_bytes = u32_at(64);
        let stripe_count = u32_at(68);
        let partition_count = u32_at(72);
        let rare_terms = u64_at(76);
        let field_count = u32_at(84);
        if partition_count != 0 && (!partition_count.is_power_of_two() || partition_count > 1 << 16)
        {
            return Err(corrupt("bad fingerprint partition count"));
        }
        let dir_len = bytes.len() as u64;
        if stripe_bytes == 0
            || u64::from(stripe_count) * 4 > dir_len - DIRECTORY_HEADER_BYTES as u64
        {
            return Err(corrupt("bad stripe table"));
        }
        let stripes_end = DIRECTORY_HEADER_BYTES + stripe_count as usize * 4;
        let stripes = bytes[DIRECTORY_HEADER_BYTES..stripes_end]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();

        // Each entry takes at least 9 bytes; a count beyond that is corrupt, not an allocation.
        if u64::from(block_count) > (dir_len - stripes_end as u64) / 9 {
            return Err(corrupt("block count exceeds directory size"));
        }
        let mut blocks = Vec::with_capacity(block_count as usize);
        let mut expected_offset = 0u64;
        let mut total_terms = 0u64;
        let mut cur = Cursor {
            bytes,
            pos: stripes_end,
        };
        for _ in 0..block_count {
            let truncated = || corrupt("truncated block table");
            let first_len = cur.varint().ok_or_else(truncated)? as usize;
            let first_term = cur
                .take(first_len)
                .ok_or_else(|| corrupt("first term past end"))?
                .to_vec();
            let offset = cur.varint().ok_or_else(truncated)?;
            let length = cur.varint().ok_or_else(truncated)?;
            let crc32c = cur.u32_le().ok_or_else(truncated)?;
            let block_terms = cur.varint().ok_or_else(truncated)?;
            let raw_length = cur.varint().ok_or_else(truncated)?;
            if offset != expected_offset
                || length == 0
                || length > MAX_SECTION_BYTES
                || raw_length > MAX_SECTION_BYTES
                || block_terms == 0
                || block_terms > u64::from(u32::MAX)
            {
                return Err(corrupt("inconsistent block table"));
            }
            if let Some(prev) = blocks.last().map(|b: &BlockEntry| &b.first_term) {
                if *prev >= first_term {
                    return Err(corrupt("block table not sorted"));
                }
            }
            expected_offset = offset + length;
            total_terms += block_terms;
            blocks.push(BlockEntry {
                first_term,
                offset: dir_len + offset,
                length,
                crc32c,
                terms: block_terms as u32,
                raw_length: raw_length as u32,
            });
        }
        if u64::from(partition_count) > (dir_len - cur.pos as u64) / 7 {
            return Err(corrupt("partition count exceeds directory size"));
        }
        let mut filters = Vec::with_capacity(partition_count as usize);
        for _ in 0..partition_count {
            let truncated = || corrupt("truncated partition table");
            let offset = cur.varint().ok_or_else(truncated)?;
            let length = cur.varint().ok_or_else(truncated)?;
            let crc32c = cur.u32_le().ok_or_else(truncated)?;
            let raw_length = cur.varint().ok_or_else(truncated)?;
            // Version 3 partitions are stored as they are read: their raw length is their length.
            if offset != expected_offset
                || length == 0
                || length > MAX_SECTION_BYTES
                || raw_length > MAX_SECTION_BYTES
                || (version >= 3 && raw_length != length)
            {
                return Err(corrupt("inconsistent partition table"));
            }
            expected_offset = offset + length;
            filters.push(FilterEntry {
                offset: dir_len + offset,
                length,
                crc32c,
                raw_length: raw_length as u32,
            });
        }
        if u64::from(field_count) > (dir_len - cur.pos as u64) / 4 {
            return Err(corrupt("field count exceeds directory size"));
        }
        let mut fields = Vec::with_capacity(field_count as usize);
        let mut total_rare = 0u64;
        for _ in 0..field_count {
            let truncated = || corrupt("truncated field table");
            let name_len = cur.varint().ok_or_else(truncated)? as usize;
            let field = cur
                .take(name_len)
                .ok_or_else(|| corrupt("field name past end"))?
                .to_vec();
            let exact_terms = cur.varint().ok_or_else(truncated)?;
            let field_rare = cur.varint().ok_or_else(truncated)?;
            let bitmap_len = cur.varint().ok_or_else(truncated)? as usize;
            let bitmap = cur
                .take(bitmap_len)
                .ok_or_else(|| corrupt("field bitmap past end"))?;
            let rare_blocks = RoaringBitmap::deserialize_from(bitmap)
                .map_err(|_| corrupt("invalid field bitmap"))?;
            total_rare = total_rare
                .checked_add(field_rare)
                .ok_or_else(|| corrupt("rare term count overflows"))?;
            fields.push(FieldEntry {
                field,
                exact_terms,
                rare_terms: field_rare,
                rare_blocks,
            });
        }
        if total_rare != rare_terms || (rare_terms > 0) != (partition_count > 0) {
            return Err(corrupt("rare term counts do not match"));
        }
        if cur.pos != bytes.len() {
            return Err(corrupt("trailing bytes after the tables"));
        }
        if dir_len + expected_offset != index_len {
            return Err(corrupt("blocks do not fill the index region"));
        }
        if total_terms != terms {
            return Err(corrupt("term count does not match blocks"));
        }
        let directory = Self {
            version,
            tokenizer_version,
            block_rows,
            rows,
            footer_digest,
            terms,
            stripe_bytes,
            stripes,
            blocks,
            rare_terms,
            filters,
            fields,
        };
        if directory.fields.iter().any(|f| {
            f.rare_blocks
                .max()
                .is_some_and(|m| m >= directory.posting_blocks())
        }) {
            return Err(corrupt("field bitmap names a block past the last row"));
        }
        Ok(directory)
    }

    /// Number of posting blocks in the segment.
    pub fn posting_blocks(&self) -> u32 {
        self.rows.div_ceil(u64::from(self.block_rows)) as u32
    }

    /// How this segment hashes terms for fingerprints.
    pub fn term_hasher(&self) -> TermHasher {
        TermHasher::for_segment(self.version, &self.footer_digest)
    }

    /// The fingerprint partition that may hold `term` if it is rare, with its fingerprint.
    pub fn filter_for(&self, term: &[u8]) -> Option<(usize, u16)> {
        if self.filters.is_empty() {
            return None;
        }
        let hash = self.term_hasher().hash(term);
        let bits = self.filters.len().trailing_zeros();
        Some((
            super::partition_of(hash, bits) as usize,
            super::fingerprint_of(hash),
        ))
    }

    /// Blocks holding rare terms of `field` (their values are not in the dictionary).
    pub fn rare_blocks(&self, field: &str) -> RoaringBitmap {
        self.fields
            .iter()
            .find(|f| f.field == field.as_bytes())
            .map(|f| f.rare_blocks.clone())
            .unwrap_or_default()
    }

    /// Index of the only block that can hold `term`, if any.
    pub fn block_for(&self, term: &[u8]) -> Option<usize> {
        let after = self
            .blocks
            .partition_point(|b| b.first_term.as_slice() <= term);
        after.checked_sub(1)
    }

    /// Indexes of the blocks that can hold terms in `[start, end)` (`end = None`: unbounded).
    pub fn blocks_in_range(&self, start: &[u8], end: Option<&[u8]>) -> std::ops::Range<usize> {
        let first = self.block_for(start).unwrap_or(0);
        let last = match end {
            Some(end) => self
                .blocks
                .partition_point(|b| b.first_term.as_slice() < end),
            None => self.blocks.len(),
        };
        first..last.max(first)
    }
}

/// Reads the directory's tables front to back; every read is bounds-checked (`None` past the end).
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Option<u64> {
        varint::get(self.bytes, &mut self.pos)
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Some(out)
    }

    fn u32_le(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
}

/// Checks a stored section's crc32c and decompresses its zstd frame to exactly `raw_length`
/// bytes; `corrupt` turns what is wrong into the caller's error.
fn checked_section(
    bytes: &[u8],
    crc: u32,
    raw_length: u32,
    corrupt: &dyn Fn(String) -> StorageError,
) -> Result<Vec<u8>> {
    let actual = crc32c::crc32c(bytes);
    if actual != crc {
        return Err(corrupt(format!(
            "checksum mismatch (expected {crc:08x}, found {actual:08x})"
        )));
    }
    let raw = zstd::bulk::decompress(bytes, raw_length as usize)
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
    if raw.len() != raw_length as usize {
        return Err(corrupt("decompressed length differs from directory".into()));
    }
    Ok(raw)
}

/// One decoded fingerprint partition: for each posting block, sorted 16-bit fingerprints.
#[derive(Debug, Clone)]
pub struct FilterPartition {
    sets: Vec<Vec<u16>>,
}

impl FilterPartition {
    /// Decodes a partition stored as `index_version` wrote it: zstd varints (1, 2) or
    /// Golomb-Rice codes (3).
    pub fn decode(
        bytes: &[u8],
        entry: &FilterEntry,
        posting_blocks: u32,
        index_version: u16,
        location: &str,
    ) -> Result<Self> {
        let corrupt = |what: String| {
            StorageError::corrupt(
                location,
                format!("fingerprint partition at {}: {what}", entry.offset),
            )
        };
        if index_version >= 3 {
            let actual = crc32c::crc32c(bytes);
            if actual != entry.crc32c {
                return Err(corrupt(format!(
                    "checksum mismatch (expected {:08x}, found {actual:08x})",
                    entry.crc32c
                )));
            }
            let sets = super::rice::decode_partition(bytes, posting_blocks)
                .map_err(|what| corrupt(what.into()))?;
            return Ok(Self { sets });
        }
        let raw = checked_section(bytes, entry.crc32c, entry.raw_length, &corrupt)?;
        let mut sets = Vec::with_capacity(posting_blocks.min(1 << 20) as usize);
        let mut pos = 0;
        for _ in 0..posting_blocks {
            let n = varint::get(&raw, &mut pos).ok_or_else(|| corrupt("truncated set".into()))?;
            if n > 65536 || n as usize > raw.len() - pos {
                return Err(corrupt("set larger than its partition".into()));
            }
            let mut set = Vec::with_capacity(n as usize);
            let mut last = 0u64;
            for i in 0..n {
                let v =
                    varint::get(&raw, &mut pos).ok_or_else(|| corrupt("truncated set".into()))?;
                let value = if i == 0 { v } else { last.saturating_add(v) };
                if (i > 0 && v == 0) || value > u64::from(u16::MAX) {
                    return Err(corrupt("fingerprints not sorted".into()));
                }
                set.push(value as u16);
                last = value;
            }
            sets.push(set);
        }
        if pos != raw.len() {
            return Err(corrupt("trailing bytes".into()));
        }
        Ok(Self { sets })
    }

    /// Posting blocks whose set holds `fingerprint`.
    pub fn blocks_with(&self, fingerprint: u16) -> RoaringBitmap {
        self.sets
            .iter()
            .enumerate()
            .filter(|(_, set)| set.binary_search(&fingerprint).is_ok())
            .map(|(b, _)| b as u32)
            .collect()
    }
}

/// One decoded term block: sorted terms with their posting bitmaps.
#[derive(Debug, Clone)]
pub struct TermBlock {
    entries: Vec<(Vec<u8>, RoaringBitmap)>,
}

impl TermBlock {
    /// Checks the block's crc32c, decompresses and decodes it. `posting_blocks` bounds the block
    /// numbers a posting may name.
    pub fn decode(
        bytes: &[u8],
        entry: &BlockEntry,
        posting_blocks: u32,
        location: &str,
    ) -> Result<Self> {
        let corrupt = |what: String| {
            StorageError::corrupt(location, format!("index block at {}: {what}", entry.offset))
        };
        let raw = checked_section(bytes, entry.crc32c, entry.raw_length, &corrupt)?;
        let mut entries: Vec<(Vec<u8>, RoaringBitmap)> = Vec::with_capacity(entry.terms as usize);
        let mut pos = 0;
        let mut prev: Vec<u8> = Vec::new();
        while pos < raw.len() {
            let shared = varint::get(&raw, &mut pos)
                .ok_or_else(|| corrupt("truncated entry".into()))?
                as usize;
            let suffix_len = varint::get(&raw, &mut pos)
                .ok_or_else(|| corrupt("truncated entry".into()))?
                as usize;
            let end = pos
                .checked_add(suffix_len)
                .filter(|&e| e <= raw.len())
                .ok_or_else(|| corrupt("term past block end".into()))?;
            if shared > prev.len() {
                return Err(corrupt("shared prefix longer than previous term".into()));
            }
            let mut term = Vec::with_capacity(shared + suffix_len);
            term.extend_from_slice(&prev[..shared]);
            term.extend_from_slice(&raw[pos..end]);
            pos = end;
            if !entries.is_empty() && term <= prev {
                return Err(corrupt("terms not sorted".into()));
            }
            let postings = decode_postings(&raw, &mut pos).map_err(|e| corrupt(e.into()))?;
            if postings.max().is_some_and(|m| m >= posting_blocks) {
                return Err(corrupt("posting names a block past the last row".into()));
            }
            prev.clone_from(&term);
            entries.push((term, postings));
        }
        if entries.len() != entry.terms as usize {
            return Err(corrupt("term count differs from directory".into()));
        }
        if entries.first().is_some_and(|(t, _)| *t != entry.first_term) {
            return Err(corrupt("first term differs from directory".into()));
        }
        Ok(Self { entries })
    }

    /// Postings of exactly `term`.
    pub fn get(&self, term: &[u8]) -> Option<&RoaringBitmap> {
        self.entries
            .binary_search_by(|(t, _)| t.as_slice().cmp(term))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Terms of this block in `[start, end)`.
    pub fn range<'a>(
        &'a self,
        start: &'a [u8],
        end: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a [u8], &'a RoaringBitmap)> {
        let from = self.entries.partition_point(|(t, _)| t.as_slice() < start);
        self.entries[from..]
            .iter()
            .take_while(move |(t, _)| end.is_none_or(|e| t.as_slice() < e))
            .map(|(t, p)| (t.as_slice(), p))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &RoaringBitmap)> {
        self.entries.iter().map(|(t, p)| (t.as_slice(), p))
    }
}
