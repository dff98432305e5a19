//! Builds the embedded term index from rows in segment order: collects terms and their posting
//! blocks in memory, then sorts and writes the directory and zstd term blocks.

use std::collections::BTreeMap;

use std::hash::Hasher;

use super::{
    ATTRIBUTE_FIELD_PREFIX, FIELD_SEPARATOR, FINGERPRINTS_PER_SET, INDEX_MAGIC, INDEX_VERSION,
    MAX_FILTER_PARTITION_BITS, MESSAGE_FIELD, RARE_MAX_BLOCKS, TERM_BLOCK_TARGET_BYTES,
    encode_postings, fingerprint_of, partition_of, varint,
};
use crate::tokenizer::{self, MAX_TOKEN_BYTES, TOKENIZER_VERSION};

/// Zstd level of term blocks: level 3 compresses sorted, front-coded terms within a few percent
/// of level 9 at a fraction of the time (measured, docs/format.md).
const TERM_BLOCK_ZSTD_LEVEL: i32 = 3;

/// The blocks one term occurs in, in increasing order. The first block is kept inline so a
/// term seen in one block costs no allocation.
struct PostingList {
    first: u32,
    last: u32,
    rest: Vec<u32>,
}

/// One distinct term: its bytes in the arena, its hash, its postings.
struct TermEntry {
    start: usize,
    len: u32,
    hash: u64,
    postings: PostingList,
}

/// Distinct terms in one arena of bytes, found through a hash table of entry indices: no
/// allocation per term, and the hash is computed once per occurrence.
#[derive(Default)]
struct TermTable {
    arena: Vec<u8>,
    entries: Vec<TermEntry>,
    /// Entry indices. Kept at 4 bytes a slot: a wider slot holding the hash too measured slower
    /// (a 4x larger table misses the cache more than the entry look-ups it saves).
    index: hashbrown::HashTable<u32>,
}

impl TermTable {
    fn insert(&mut self, term: &[u8], block: u32) {
        let hash = {
            let mut h = rustc_hash::FxHasher::default();
            h.write(term);
            h.finish()
        };
        let (arena, entries) = (&self.arena, &mut self.entries);
        let found = self.index.find(hash, |&i| {
            let e = &entries[i as usize];
            e.hash == hash && &arena[e.start..e.start + e.len as usize] == term
        });
        match found {
            Some(&i) => {
                let list = &mut entries[i as usize].postings;
                if list.last != block {
                    list.rest.push(block);
                    list.last = block;
                }
            }
            None => {
                let i = u32::try_from(entries.len()).expect("fewer than 2^32 terms per segment");
                let start = self.arena.len();
                self.arena.extend_from_slice(term);
                self.entries.push(TermEntry {
                    start,
                    len: term.len() as u32,
                    hash,
                    postings: PostingList {
                        first: block,
                        last: block,
                        rest: Vec::new(),
                    },
                });
                let entries = &self.entries;
                self.index
                    .insert_unique(hash, i, |&j| entries[j as usize].hash);
            }
        }
    }

    fn term(&self, e: &TermEntry) -> &[u8] {
        &self.arena[e.start..e.start + e.len as usize]
    }
}

/// Collects terms row by row; rows must be added in segment order (row numbers increasing).
pub struct TermIndexBuilder {
    block_rows: u32,
    terms: TermTable,
    rows: u64,
    term_buf: Vec<u8>,
    token_buf: Vec<u8>,
}

/// What [`TermIndexBuilder::finish`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub terms: u64,
    pub blocks: u32,
    pub directory_bytes: u64,
    pub total_bytes: u64,
    pub directory_crc32c: u32,
    /// Terms and uncompressed entry bytes per field kind: `message`, keyword fields by name,
    /// and all attributes together as `attributes`.
    pub by_kind: BTreeMap<String, (u64, u64)>,
    /// Terms kept only as fingerprints (they occur in at most `RARE_MAX_BLOCKS` posting blocks).
    pub rare_terms: u64,
    pub filter_partitions: u32,
    /// Bytes of the term blocks and of the fingerprint partitions.
    pub term_block_bytes: u64,
    pub filter_bytes: u64,
}

impl TermIndexBuilder {
    pub fn new(block_rows: u32) -> Self {
        assert!(block_rows > 0, "block_rows must be positive");
        Self {
            block_rows,
            terms: TermTable::default(),
            rows: 0,
            term_buf: Vec::with_capacity(128),
            token_buf: Vec::with_capacity(MAX_TOKEN_BYTES * 2),
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn current_block(&self) -> u32 {
        u32::try_from(self.rows / u64::from(self.block_rows))
            .expect("fewer than 2^32 blocks per segment")
    }

    /// Adds the terms of the next row.
    pub fn add_row<'a>(
        &mut self,
        message: &str,
        keywords: &[(&str, Option<&str>)],
        attributes: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    ) {
        let block = self.current_block();
        let mut term_buf = std::mem::take(&mut self.term_buf);
        let mut token_buf = std::mem::take(&mut self.token_buf);
        tokenizer::for_each_token(message, &mut token_buf, |token| {
            term_buf.clear();
            term_buf.extend_from_slice(MESSAGE_FIELD.as_bytes());
            term_buf.push(FIELD_SEPARATOR);
            term_buf.extend_from_slice(token);
            self.terms.insert(&term_buf, block);
        });
        for &(field, value) in keywords {
            if let Some(value) = value {
                keyword_term(&mut term_buf, "", field, value);
                self.terms.insert(&term_buf, block);
            }
        }
        for (key, value) in attributes {
            if let Some(value) = value {
                keyword_term(&mut term_buf, ATTRIBUTE_FIELD_PREFIX, key, value);
                self.terms.insert(&term_buf, block);
            }
        }
        self.term_buf = term_buf;
        self.token_buf = token_buf;
        self.rows += 1;
    }

    /// Writes the index region: directory (fixed header, data stripe checksums, term block
    /// table, fingerprint partition table, field table), then the term blocks, then the
    /// fingerprint partitions. Terms seen in at most `RARE_MAX_BLOCKS` posting blocks are stored as
    /// fingerprints in each of their blocks;
    /// the others with exact postings. Layout in docs/format.md.
    pub fn finish(
        self,
        footer_digest: [u8; 32],
        stripe_bytes: u32,
        stripes: &[u32],
    ) -> (Vec<u8>, IndexStats) {
        let posting_blocks = self.rows.div_ceil(u64::from(self.block_rows)) as usize;
        let table = self.terms;
        let hasher = super::TermHasher::for_segment(INDEX_VERSION, &footer_digest);
        let mut exact: Vec<(&[u8], &PostingList)> = Vec::new();
        let mut rare: Vec<(u32, u32)> = Vec::new(); // (hash, block)
        let mut fields: BTreeMap<&[u8], FieldStats> = BTreeMap::new();
        for entry in &table.entries {
            let term = table.term(entry);
            let list = &entry.postings;
            let stats = fields.entry(field_of(term)).or_default();
            if list.rest.len() < RARE_MAX_BLOCKS {
                stats.rare += 1;
                let hash = hasher.hash(term);
                for &block in std::iter::once(&list.first).chain(&list.rest) {
                    stats.rare_blocks.insert(block);
                    rare.push((hash, block));
                }
            } else {
                stats.exact += 1;
                exact.push((term, list));
            }
        }
        exact.sort_unstable_by(|a, b| a.0.cmp(b.0));

        let rare_terms = fields.values().map(|f| f.rare).sum();
        let mut stats = IndexStats {
            terms: exact.len() as u64,
            rare_terms,
            ..Default::default()
        };
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        let mut table: Vec<(Vec<u8>, u32, u32, u32)> = Vec::new(); // first term, crc, terms, raw len
        let mut raw = Vec::with_capacity(TERM_BLOCK_TARGET_BYTES * 2);
        let mut first_term: Vec<u8> = Vec::new();
        let mut prev: &[u8] = &[];
        let mut in_block = 0u32;
        let mut postings_buf: Vec<u32> = Vec::new();

        let mut close_block =
            |raw: &mut Vec<u8>, first: &[u8], n: u32, blocks: &mut Vec<Vec<u8>>| {
                let compressed = zstd::bulk::compress(raw, TERM_BLOCK_ZSTD_LEVEL)
                    .expect("zstd compresses in memory");
                table.push((
                    first.to_vec(),
                    crc32c::crc32c(&compressed),
                    n,
                    raw.len() as u32,
                ));
                blocks.push(compressed);
                raw.clear();
            };

        for &(term, list) in &exact {
            if in_block == 0 {
                first_term.clear();
                first_term.extend_from_slice(term);
                prev = &[];
            }
            let before = raw.len();
            let shared = prev
                .iter()
                .zip(term.iter())
                .take_while(|(a, b)| a == b)
                .count();
            varint::put(&mut raw, shared as u64);
            varint::put(&mut raw, (term.len() - shared) as u64);
            raw.extend_from_slice(&term[shared..]);
            postings_buf.clear();
            postings_buf.push(list.first);
            postings_buf.extend_from_slice(&list.rest);
            encode_postings(&postings_buf, &mut raw);
            let kind = stats.by_kind.entry(kind_of(term).to_owned()).or_default();
            kind.0 += 1;
            kind.1 += (raw.len() - before) as u64;
            prev = term;
            in_block += 1;
            if raw.len() >= TERM_BLOCK_TARGET_BYTES {
                close_block(&mut raw, &first_term, in_block, &mut blocks);
                in_block = 0;
            }
        }
        if in_block > 0 {
            close_block(&mut raw, &first_term, in_block, &mut blocks);
        }

        // Fingerprint partitions: partition p holds, for every posting block, the sorted
        // 16-bit fingerprints of the rare terms whose hash falls in p.
        let partition_bits = filter_partition_bits(rare.len(), posting_blocks);
        let partitions = if rare.is_empty() {
            0u32
        } else {
            1 << partition_bits
        };
        rare.sort_unstable_by_key(|&(hash, block)| {
            (
                partition_of(hash, partition_bits),
                block,
                fingerprint_of(hash),
            )
        });
        let mut filters: Vec<(Vec<u8>, u32, u32)> = Vec::new(); // bytes, crc, raw len
        let mut rare_iter = rare.iter().peekable();
        for p in 0..partitions {
            raw.clear();
            for block in 0..posting_blocks as u32 {
                let mut prints: Vec<u16> = Vec::new();
                while let Some(&&(hash, b)) = rare_iter.peek() {
                    if partition_of(hash, partition_bits) != p || b != block {
                        break;
                    }
                    prints.push(fingerprint_of(hash));
                    rare_iter.next();
                }
                prints.dedup();
                varint::put(&mut raw, prints.len() as u64);
                let mut last = 0u16;
                for (i, f) in prints.iter().enumerate() {
                    varint::put(&mut raw, u64::from(if i == 0 { *f } else { f - last }));
                    last = *f;
                }
            }
            let compressed = zstd::bulk::compress(&raw, TERM_BLOCK_ZSTD_LEVEL)
                .expect("zstd compresses in memory");
            filters.push((
                compressed.clone(),
                crc32c::crc32c(&compressed),
                raw.len() as u32,
            ));
        }
        for (field, f) in &fields {
            let kind = stats
                .by_kind
                .entry(kind_of_field(field).to_owned())
                .or_default();
            kind.0 += f.rare;
        }

        // Directory: fixed header, stripes, then the tables. Offsets are relative to the end
        // of the directory; term blocks come first, fingerprint partitions after them.
        let mut dir = Vec::new();
        dir.extend_from_slice(&INDEX_MAGIC);
        dir.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        dir.extend_from_slice(&TOKENIZER_VERSION.to_le_bytes());
        dir.extend_from_slice(&self.block_rows.to_le_bytes());
        dir.extend_from_slice(&self.rows.to_le_bytes());
        dir.extend_from_slice(&footer_digest);
        dir.extend_from_slice(&stats.terms.to_le_bytes());
        dir.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
        dir.extend_from_slice(&stripe_bytes.to_le_bytes());
        dir.extend_from_slice(&(stripes.len() as u32).to_le_bytes());
        dir.extend_from_slice(&partitions.to_le_bytes());
        dir.extend_from_slice(&stats.rare_terms.to_le_bytes());
        dir.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        for crc in stripes {
            dir.extend_from_slice(&crc.to_le_bytes());
        }
        let mut offset = 0u64;
        for ((first, crc, n, raw_len), block) in table.iter().zip(&blocks) {
            varint::put(&mut dir, first.len() as u64);
            dir.extend_from_slice(first);
            varint::put(&mut dir, offset);
            varint::put(&mut dir, block.len() as u64);
            dir.extend_from_slice(&crc.to_le_bytes());
            varint::put(&mut dir, u64::from(*n));
            varint::put(&mut dir, u64::from(*raw_len));
            offset += block.len() as u64;
        }
        stats.term_block_bytes = offset;
        for (bytes, crc, raw_len) in &filters {
            varint::put(&mut dir, offset);
            varint::put(&mut dir, bytes.len() as u64);
            dir.extend_from_slice(&crc.to_le_bytes());
            varint::put(&mut dir, u64::from(*raw_len));
            offset += bytes.len() as u64;
        }
        stats.filter_bytes = offset - stats.term_block_bytes;
        for (field, f) in &fields {
            varint::put(&mut dir, field.len() as u64);
            dir.extend_from_slice(field);
            varint::put(&mut dir, f.exact);
            varint::put(&mut dir, f.rare);
            varint::put(&mut dir, f.rare_blocks.serialized_size() as u64);
            f.rare_blocks
                .serialize_into(&mut dir)
                .expect("writing to a Vec cannot fail");
        }
        stats.directory_bytes = dir.len() as u64;
        stats.directory_crc32c = crc32c::crc32c(&dir);
        stats.blocks = blocks.len() as u32;
        stats.filter_partitions = partitions;
        let mut out = dir;
        out.reserve(offset as usize);
        for block in blocks {
            out.extend_from_slice(&block);
        }
        for (bytes, _, _) in filters {
            out.extend_from_slice(&bytes);
        }
        stats.total_bytes = out.len() as u64;
        (out, stats)
    }
}

#[derive(Default)]
struct FieldStats {
    exact: u64,
    rare: u64,
    rare_blocks: roaring::RoaringBitmap,
}

/// The field part of a term (everything before the separator).
fn field_of(term: &[u8]) -> &[u8] {
    let end = term
        .iter()
        .position(|&b| b == FIELD_SEPARATOR)
        .unwrap_or(term.len());
    &term[..end]
}

/// Bits of the hash that pick a fingerprint partition: about [`FINGERPRINTS_PER_SET`]
/// fingerprints per (partition, posting block) set.
fn filter_partition_bits(fingerprints: usize, posting_blocks: usize) -> u32 {
    let wanted = fingerprints
        .div_ceil(posting_blocks.max(1) * FINGERPRINTS_PER_SET)
        .max(1);
    wanted
        .next_power_of_two()
        .trailing_zeros()
        .min(MAX_FILTER_PARTITION_BITS)
}

fn keyword_term(buf: &mut Vec<u8>, prefix: &str, field: &str, value: &str) {
    buf.clear();
    buf.extend_from_slice(prefix.as_bytes());
    buf.extend_from_slice(field.as_bytes());
    buf.push(FIELD_SEPARATOR);
    tokenizer::push_normalized_keyword(buf, value);
}

/// The statistics bucket of a term: its field, with every attribute counted as `attributes`.
pub(crate) fn kind_of(term: &[u8]) -> &str {
    kind_of_field(field_of(term))
}

pub(crate) fn kind_of_field(field: &[u8]) -> &str {
    match std::str::from_utf8(field) {
        Ok(f) if f.starts_with(ATTRIBUTE_FIELD_PREFIX) => "attributes",
        Ok(f) => f,
        Err(_) => "invalid",
    }
}
