//! Builds the embedded term index from rows in segment order: collects terms and their posting
//! blocks in memory, then sorts and writes the directory and zstd term blocks.

use std::collections::BTreeMap;

use super::{
    ATTRIBUTE_FIELD_PREFIX, FIELD_SEPARATOR, FINGERPRINTS_PER_SET, INDEX_MAGIC, INDEX_VERSION,
    MAX_FILTER_PARTITION_BITS, MESSAGE_FIELD, RARE_MAX_BLOCKS, TERM_BLOCK_TARGET_BYTES,
    encode_postings, fingerprint_of, partition_of, rice, varint,
};
use crate::tokenizer::{self, MAX_TOKEN_BYTES, TOKENIZER_VERSION};

/// Zstd level of term blocks: level 3 compresses sorted, front-coded terms within a few percent
/// of level 9 at a fraction of the time (measured, docs/format.md).
const TERM_BLOCK_ZSTD_LEVEL: i32 = 3;

/// Terms per row (distinct within their posting block) and bytes per term that
/// [`TermIndexBuilder::for_rows`] reserves room for: generous for log lines (the benchmark
/// corpus has ~11 terms of ~23 bytes), and capped.
const RESERVED_TERMS_PER_ROW: usize = 16;
const RESERVED_BYTES_PER_TERM: usize = 32;
const MAX_RESERVED_TERMS: usize = 32 << 20;

/// A term's first occurrence in one posting block: its key and where its bytes are (16 bytes,
/// the builder's main memory cost).
#[derive(Clone, Copy)]
struct Occurrence {
    /// `field id << 48 | crc32c << 16 | length & 0xffff`: equal terms have equal keys, and the
    /// field and CRC (all that a fingerprinted term needs) are read without touching the bytes.
    key: u64,
    /// Offset in the arena of the term's `varint length | bytes`.
    start: u32,
    block: u32,
}

impl Occurrence {
    fn field(&self) -> u16 {
        (self.key >> 48) as u16
    }

    fn crc(&self) -> u32 {
        (self.key >> 16) as u32
    }
}

/// Field id of fields beyond the first 65,535 of a segment: their name is read from the term.
const OTHER_FIELD: u16 = u16::MAX;

/// Every term once per posting block it occurs in, in block order, with the bytes in one arena.
///
/// Only the current block's terms are looked up (a table that stays in the CPU cache); terms
/// are matched across blocks once, at the end, by sorting. A single table of all the segment's
/// distinct terms, most of them one-off ids, spent most of the index time on cache misses
/// (docs/format.md, "Building the index").
struct TermOccurrences {
    /// `varint length | bytes` of each occurrence.
    arena: Vec<u8>,
    seen: Vec<Occurrence>,
    /// The current block's terms, as offsets from `block_start` into `seen`.
    block_terms: hashbrown::HashTable<u32>,
    block: u32,
    block_start: usize,
    /// Field names by id, and ids by name.
    field_names: Vec<Vec<u8>>,
    field_ids: rustc_hash::FxHashMap<Vec<u8>, u16>,
}

impl TermOccurrences {
    fn new() -> Self {
        Self {
            arena: Vec::new(),
            seen: Vec::new(),
            block_terms: hashbrown::HashTable::new(),
            block: 0,
            block_start: 0,
            field_names: Vec::new(),
            field_ids: Default::default(),
        }
    }

    /// The id of a field name, assigned on first sight.
    fn field_id(&mut self, name: &[u8]) -> u16 {
        if let Some(&id) = self.field_ids.get(name) {
            return id;
        }
        let id = u16::try_from(self.field_names.len())
            .ok()
            .filter(|&id| id != OTHER_FIELD)
            .unwrap_or(OTHER_FIELD);
        if id != OTHER_FIELD {
            self.field_names.push(name.to_vec());
            self.field_ids.insert(name.to_vec(), id);
        }
        id
    }

    /// Records `term` of field `field` in `block`; blocks must not decrease.
    fn insert(&mut self, term: &[u8], field: u16, block: u32) {
        if block != self.block {
            self.block_terms.clear();
            self.block = block;
            self.block_start = self.seen.len();
        }
        let crc = crc32c::crc32c(term);
        let key = u64::from(field) << 48 | u64::from(crc) << 16 | (term.len() as u64 & 0xffff);
        let hash = table_hash(key);
        let (arena, seen) = (&self.arena, &self.seen[self.block_start..]);
        let found = self.block_terms.find(hash, |&i| {
            let o = &seen[i as usize];
            o.key == key && same_bytes(term_at(arena, o.start), term)
        });
        if found.is_none() {
            let i = u32::try_from(seen.len()).expect("fewer than 2^32 terms per posting block");
            let start = u32::try_from(self.arena.len())
                .expect("less than 4 GiB of distinct terms per posting block and segment");
            self.seen.push(Occurrence { key, start, block });
            varint::put(&mut self.arena, term.len() as u64);
            self.arena.extend_from_slice(term);
            let seen = &self.seen[self.block_start..];
            self.block_terms
                .insert_unique(hash, i, |&j| table_hash(seen[j as usize].key));
        }
    }
}

/// Sorts occurrences so that each distinct term's are adjacent, in block order. Equal keys with
/// different bytes (rare) are ordered by their bytes; returns where they are, for [`terms`].
/// The bytes of a term seen in one block are never read.
fn group(seen: &mut [Occurrence], arena: &[u8]) -> Vec<std::ops::Range<usize>> {
    seen.sort_unstable_by_key(|o| (o.key, o.block));
    let bytes = |o: &Occurrence| term_at(arena, o.start);
    let mut collided = Vec::new();
    let mut i = 0;
    while i < seen.len() {
        let key = seen[i].key;
        let mut end = i + 1;
        while end < seen.len() && seen[end].key == key {
            end += 1;
        }
        if end - i > 1 && {
            let first = bytes(&seen[i]);
            seen[i + 1..end]
                .iter()
                .any(|o| !same_bytes(bytes(o), first))
        } {
            seen[i..end].sort_by(|a, b| bytes(a).cmp(bytes(b)).then(a.block.cmp(&b.block)));
            collided.push(i..end);
        }
        i = end;
    }
    collided
}

/// The ranges of `seen` holding each distinct term, after [`group`] returned `collided`.
fn terms<'a>(
    seen: &'a [Occurrence],
    arena: &'a [u8],
    collided: &'a [std::ops::Range<usize>],
) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let bytes = |o: &Occurrence| term_at(arena, o.start);
    let mut collided = collided.iter().peekable();
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= seen.len() {
            return None;
        }
        let key = seen[i].key;
        let split = collided.peek().is_some_and(|c| c.contains(&i));
        let mut end = i + 1;
        while end < seen.len()
            && seen[end].key == key
            && (!split || same_bytes(bytes(&seen[end]), bytes(&seen[i])))
        {
            end += 1;
        }
        if collided.peek().is_some_and(|c| c.end <= end) {
            collided.next();
        }
        let range = i..end;
        i = end;
        Some(range)
    })
}

/// Moves the occurrences for which `front` holds before the others; returns how many there are.
fn partition_in_place(seen: &mut [Occurrence], front: impl Fn(&Occurrence) -> bool) -> usize {
    let mut mid = 0;
    for i in 0..seen.len() {
        if front(&seen[i]) {
            seen.swap(mid, i);
            mid += 1;
        }
    }
    mid
}

/// One share of a segment's distinct terms, told apart into dictionary and fingerprinted ones.
struct Classified<'a> {
    /// Dictionary terms: bytes and occurrences (in block order).
    exact: Vec<(&'a [u8], &'a [Occurrence])>,
    /// `hash << 32 | block` of each fingerprinted term's occurrences.
    rare: Vec<u64>,
    /// Per field id, then for fields past the id space by name.
    by_id: Vec<FieldStats>,
    other_fields: BTreeMap<&'a [u8], FieldStats>,
}

/// Groups `seen` (whole terms: every occurrence of each of its terms) and classifies its terms.
fn classify<'a>(
    seen: &'a mut [Occurrence],
    arena: &'a [u8],
    fields: usize,
    hasher: super::TermHasher,
) -> Classified<'a> {
    let collided = group(seen, arena);
    let seen: &'a [Occurrence] = seen;
    let mut out = Classified {
        exact: Vec::new(),
        rare: Vec::with_capacity(seen.len()),
        by_id: (0..fields).map(|_| FieldStats::default()).collect(),
        other_fields: BTreeMap::new(),
    };
    for range in terms(seen, arena, &collided) {
        let occurrences = &seen[range];
        let first = &occurrences[0];
        let stats = match first.field() {
            OTHER_FIELD => out
                .other_fields
                .entry(field_of(term_at(arena, first.start)))
                .or_default(),
            id => &mut out.by_id[id as usize],
        };
        if occurrences.len() <= RARE_MAX_BLOCKS {
            stats.rare += 1;
            let hash = hasher.hash_crc(first.crc());
            for o in occurrences {
                stats.rare_blocks.insert(o.block);
                out.rare.push(u64::from(hash) << 32 | u64::from(o.block));
            }
        } else {
            stats.exact += 1;
            out.exact.push((term_at(arena, first.start), occurrences));
        }
    }
    out
}

/// Occurrences below which [`TermIndexBuilder::finish`] stays on one thread: a thread costs more
/// than it saves on a small segment.
const PARALLEL_FINISH_OCCURRENCES: usize = 1 << 16;

/// Runs `second` on another thread while `first` runs on this one, or both here unless
/// `parallel`.
fn both<A: Send, B: Send>(
    parallel: bool,
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (first(), second());
    }
    std::thread::scope(|s| {
        let second = s.spawn(second);
        let a = first();
        let b = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

/// A key's hash for the block table: murmur3's 64-bit finaliser, so that every key bit reaches
/// both the low bits (the slot) and the high bits (the tag) the table uses.
fn table_hash(key: u64) -> u64 {
    let mut h = key;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `a == b`, inlined for the short terms the builder compares for every repeated term, and the
/// attribute keys compared with the row before's (a call to `memcmp` cost more than the
/// comparison).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last word, overlapping the one before when `n` is not a multiple of 8.
    word(a, n - 8) == word(b, n - 8)
}

/// The term whose `varint length | bytes` starts at `start` of the arena.
fn term_at(arena: &[u8], start: u32) -> &[u8] {
    let mut pos = start as usize;
    let len = varint::get(arena, &mut pos).expect("the builder wrote this length") as usize;
    &arena[pos..pos + len]
}

/// Collects terms row by row; rows must be added in segment order (row numbers increasing).
pub struct TermIndexBuilder {
    block_rows: u32,
    terms: TermOccurrences,
    /// Per keyword or attribute position in a row, the last field name seen there and its id:
    /// rows of one service repeat their keys in the same order.
    field_memo: Vec<(Vec<u8>, u16)>,
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
            terms: TermOccurrences::new(),
            field_memo: Vec::new(),
            rows: 0,
            term_buf: Vec::with_capacity(128),
            token_buf: Vec::with_capacity(MAX_TOKEN_BYTES * 2),
        }
    }

    /// A builder for about `rows` rows: room for a typical number of terms is reserved up
    /// front, so the builder's buffers are not copied as they grow (reserved memory that is
    /// never written costs address space, not RAM).
    pub fn for_rows(block_rows: u32, rows: usize) -> Self {
        let mut builder = Self::new(block_rows);
        let occurrences = rows
            .saturating_mul(RESERVED_TERMS_PER_ROW)
            .min(MAX_RESERVED_TERMS);
        builder.terms.seen.reserve(occurrences);
        builder
            .terms
            .arena
            .reserve(occurrences * RESERVED_BYTES_PER_TERM);
        builder
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
        let message_field = self.terms.field_id(MESSAGE_FIELD.as_bytes());
        tokenizer::for_each_token(message, &mut token_buf, |token| {
            term_buf.clear();
            term_buf.extend_from_slice(MESSAGE_FIELD.as_bytes());
            term_buf.push(FIELD_SEPARATOR);
            term_buf.extend_from_slice(token);
            self.terms.insert(&term_buf, message_field, block);
        });
        let keywords = keywords.iter().map(|&(field, value)| ("", field, value));
        let attributes = attributes.map(|(key, value)| (ATTRIBUTE_FIELD_PREFIX, key, value));
        for (position, (prefix, field, value)) in keywords.chain(attributes).enumerate() {
            if let Some(value) = value {
                keyword_term(&mut term_buf, prefix, field, value);
                let id = self.field_id_at(position, field_of(&term_buf));
                self.terms.insert(&term_buf, id, block);
            }
        }
        self.term_buf = term_buf;
        self.token_buf = token_buf;
        self.rows += 1;
    }

    /// The id of `name`, the field at `position` in the row, through the memo of that position.
    fn field_id_at(&mut self, position: usize, name: &[u8]) -> u16 {
        if let Some((memo, id)) = self.field_memo.get(position)
            && same_bytes(memo, name)
        {
            return *id;
        }
        let id = self.terms.field_id(name);
        if self.field_memo.len() <= position {
            self.field_memo.resize(position + 1, (Vec::new(), 0));
        }
        self.field_memo[position] = (name.to_vec(), id);
        id
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
        self.finish_with(
            PARALLEL_FINISH_OCCURRENCES,
            footer_digest,
            stripe_bytes,
            stripes,
        )
    }

    /// [`TermIndexBuilder::finish`], on two threads from `parallel_from` term occurrences on.
    /// The bytes are the same either way.
    pub(crate) fn finish_with(
        mut self,
        parallel_from: usize,
        footer_digest: [u8; 32],
        stripe_bytes: u32,
        stripes: &[u32],
    ) -> (Vec<u8>, IndexStats) {
        let posting_blocks = self.rows.div_ceil(u64::from(self.block_rows)) as usize;
        let hasher = super::TermHasher::for_segment(INDEX_VERSION, &footer_digest);
        let TermOccurrences {
            arena,
            seen,
            field_names,
            ..
        } = &mut self.terms;
        let (arena, field_names) = (arena.as_slice(), field_names.as_slice());
        // Equal terms have equal keys, so a bit of the CRC splits the occurrences into two
        // shares of whole terms, sorted and classified on two threads: on one, this end of a
        // flush left a core idle while ingest waited for the memory the flush would free.
        let parallel = seen.len() >= parallel_from;
        let mid = partition_in_place(seen, |o| o.crc() & 1 == 0);
        let (left, right) = seen.split_at_mut(mid);
        let fields_known = field_names.len();
        let (left, right) = both(
            parallel,
            || classify(left, arena, fields_known, hasher),
            || classify(right, arena, fields_known, hasher),
        );
        let mut by_id = left.by_id;
        for (stats, more) in by_id.iter_mut().zip(right.by_id) {
            stats.add(more);
        }
        let mut fields: BTreeMap<&[u8], FieldStats> = left.other_fields;
        for (name, more) in right.other_fields {
            fields.entry(name).or_default().add(more);
        }
        for (name, stats) in field_names.iter().zip(by_id) {
            if stats.rare + stats.exact > 0 {
                fields.insert(name, stats);
            }
        }
        let mut exact = left.exact;
        exact.extend(right.exact);
        exact.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let rare = [left.rare, right.rare];

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

        for &(term, occurrences) in &exact {
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
            postings_buf.extend(occurrences.iter().map(|o| o.block));
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
        // 16-bit fingerprints of the rare terms whose hash falls in p. Two threads encode half
        // of the partitions each.
        let rare_count = rare.iter().map(Vec::len).sum::<usize>();
        let partition_bits = filter_partition_bits(rare_count, posting_blocks);
        let partitions = if rare_count == 0 {
            0u32
        } else {
            1 << partition_bits
        };
        let encode = |range: std::ops::Range<u32>| {
            encode_partitions(&rare, partition_bits, range, posting_blocks)
        };
        let filters = if partitions >= 2 {
            let (mut low, high) = both(
                parallel,
                || encode(0..partitions / 2),
                || encode(partitions / 2..partitions),
            );
            low.extend(high);
            low
        } else {
            encode(0..partitions)
        };
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

impl FieldStats {
    fn add(&mut self, more: FieldStats) {
        self.exact += more.exact;
        self.rare += more.rare;
        self.rare_blocks |= more.rare_blocks;
    }
}

/// The partitions in `range`, encoded (bytes, crc32c, raw length), from `rare`'s `hash << 32 |
/// block` keys.
fn encode_partitions(
    rare: &[Vec<u64>],
    partition_bits: u32,
    range: std::ops::Range<u32>,
    posting_blocks: usize,
) -> Vec<(Vec<u8>, u32, u32)> {
    // Sorted by (partition, block, fingerprint), packed into one integer so the sort compares
    // integers rather than computing three fields per comparison.
    let all = rare.iter().map(Vec::len).sum::<usize>();
    let share = range.len() as f64 / (1u64 << partition_bits) as f64;
    let mut keys: Vec<u64> = Vec::with_capacity((all as f64 * share * 1.05) as usize + 64);
    for &key in rare.iter().flatten() {
        let (hash, block) = ((key >> 32) as u32, key as u32);
        let partition = partition_of(hash, partition_bits);
        if range.contains(&partition) {
            keys.push(
                u64::from(partition) << 48
                    | u64::from(block) << 16
                    | u64::from(fingerprint_of(hash)),
            );
        }
    }
    keys.sort_unstable();
    let unpack = |key: u64| ((key >> 48) as u32, (key >> 16) as u32, key as u16);
    let mut filters = Vec::with_capacity(range.len());
    let mut rare_iter = keys.iter().map(|&key| unpack(key)).peekable();
    let mut prints: Vec<u16> = Vec::new();
    let mut set_ends: Vec<usize> = Vec::with_capacity(posting_blocks);
    for p in range {
        prints.clear();
        set_ends.clear();
        for block in 0..posting_blocks as u32 {
            let start = prints.len();
            while let Some(&(partition, b, print)) = rare_iter.peek() {
                if partition != p || b != block {
                    break;
                }
                if prints.len() == start || prints.last() != Some(&print) {
                    prints.push(print);
                }
                rare_iter.next();
            }
            set_ends.push(prints.len());
        }
        let sets: Vec<&[u16]> = std::iter::once(0)
            .chain(set_ends.iter().copied())
            .zip(&set_ends)
            .map(|(start, &end)| &prints[start..end])
            .collect();
        let bytes = rice::encode_partition(&sets);
        let crc = crc32c::crc32c(&bytes);
        let len = bytes.len() as u32;
        filters.push((bytes, crc, len));
    }
    filters
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
