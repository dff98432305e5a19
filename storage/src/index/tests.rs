use std::collections::BTreeMap;

use proptest::prelude::*;
use roaring::RoaringBitmap;

use super::*;
use crate::tokenizer::tokens;

/// Builds an index over `(message, service)` rows and returns its bytes.
fn build(rows: &[(String, Option<String>)], block_rows: u32) -> (Vec<u8>, IndexStats) {
    let mut builder = TermIndexBuilder::new(block_rows);
    for (message, service) in rows {
        builder.add_row(
            message,
            &[("service", service.as_deref())],
            std::iter::once(("user.id", Some("U-1"))),
        );
    }
    builder.finish([7; 32], 65536, &[1, 2, 3])
}

/// Decodes every block and returns all dictionary terms with postings.
fn decode_all(
    bytes: &[u8],
    stats: &IndexStats,
) -> (IndexDirectory, BTreeMap<Vec<u8>, RoaringBitmap>) {
    let dir_len = stats.directory_bytes as usize;
    let dir = IndexDirectory::decode(
        &bytes[..dir_len],
        stats.directory_crc32c,
        bytes.len() as u64,
        "mem",
    )
    .unwrap();
    let mut all = BTreeMap::new();
    for entry in &dir.blocks {
        let raw = &bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
        let block = TermBlock::decode(raw, entry, dir.posting_blocks(), "mem").unwrap();
        for (t, p) in block.iter() {
            assert!(
                all.insert(t.to_vec(), p.clone()).is_none(),
                "term in two blocks"
            );
        }
    }
    (dir, all)
}

fn brute_force(
    rows: &[(String, Option<String>)],
    block_rows: u32,
) -> BTreeMap<Vec<u8>, RoaringBitmap> {
    let mut out: BTreeMap<Vec<u8>, RoaringBitmap> = BTreeMap::new();
    for (i, (message, service)) in rows.iter().enumerate() {
        let block = i as u32 / block_rows;
        for t in tokens(message) {
            out.entry(
                Term::from_parts(MESSAGE_FIELD, t.as_bytes())
                    .as_bytes()
                    .to_vec(),
            )
            .or_default()
            .insert(block);
        }
        if let Some(s) = service {
            out.entry(Term::keyword("service", s).as_bytes().to_vec())
                .or_default()
                .insert(block);
        }
        out.entry(Term::attribute("user.id", "U-1").as_bytes().to_vec())
            .or_default()
            .insert(block);
    }
    out
}

fn row_strategy() -> impl Strategy<Value = (String, Option<String>)> {
    (
        prop::collection::vec(
            prop_oneof!["[a-d]{1,3}", "[0-9a-f]{8}", "ÄÖ[a-z]{1,2}", "[A-Z]{70}"],
            0..6,
        )
        .prop_map(|words| words.join(" ")),
        prop::option::of("svc-[a-c]"),
    )
}

/// Candidate blocks of a rare term from its fingerprint partition.
fn rare_lookup(bytes: &[u8], dir: &IndexDirectory, term: &[u8]) -> RoaringBitmap {
    let (p, fingerprint) = dir.filter_for(term).expect("index has fingerprints");
    let entry = &dir.filters[p];
    let raw = &bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
    FilterPartition::decode(raw, entry, dir.posting_blocks(), dir.version, "mem")
        .unwrap()
        .blocks_with(fingerprint)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn term_index_roundtrip(rows in prop::collection::vec(row_strategy(), 1..600), block_rows in 1u32..64) {
        let (bytes, stats) = build(&rows, block_rows);
        let (dir, all) = decode_all(&bytes, &stats);
        let expected = brute_force(&rows, block_rows);
        let (multi, single): (BTreeMap<_, _>, BTreeMap<_, _>) =
            expected.into_iter().partition(|(_, p)| p.len() as usize > RARE_MAX_BLOCKS);
        prop_assert_eq!(dir.rows, rows.len() as u64);
        prop_assert_eq!(dir.terms as usize, all.len());
        prop_assert_eq!(dir.rare_terms as usize, single.len());
        prop_assert_eq!(&dir.stripes, &vec![1, 2, 3]);
        prop_assert_eq!(all, multi);
        for (term, postings) in &single {
            let candidates = rare_lookup(&bytes, &dir, term);
            prop_assert!(postings.is_subset(&candidates), "rare term must find its blocks");
            let field = split_term(term).unwrap().0;
            prop_assert!(postings.is_subset(&dir.rare_blocks(field)));
        }
    }
}

/// Checks an index built over `rows` against brute force: dictionary terms and postings
/// exactly, fingerprinted terms found in all their blocks.
fn assert_matches_brute_force(rows: &[(String, Option<String>)], block_rows: u32) {
    let (bytes, stats) = build(rows, block_rows);
    let (dir, all) = decode_all(&bytes, &stats);
    let expected = brute_force(rows, block_rows);
    let (multi, single): (BTreeMap<_, _>, BTreeMap<_, _>) = expected
        .into_iter()
        .partition(|(_, p)| p.len() as usize > RARE_MAX_BLOCKS);
    assert_eq!(dir.terms as usize, all.len());
    assert_eq!(dir.rare_terms as usize, single.len());
    assert_eq!(all, multi);
    for (term, postings) in &single {
        assert!(postings.is_subset(&rare_lookup(&bytes, &dir, term)));
    }
}

#[test]
fn an_index_finished_on_two_threads_is_the_one_finished_on_one() {
    // Enough occurrences for two threads, two fingerprint partitions, dictionary terms of
    // several fields and fingerprinted ones; then the same bytes from one thread.
    let rows: Vec<(String, Option<String>)> = (0..40_000u32)
        .map(|i| {
            (
                format!(
                    "id{i:08x} word{} order {}",
                    i % 97,
                    i.wrapping_mul(2_654_435_761)
                ),
                (i % 3 != 0).then(|| format!("svc-{}", i % 11)),
            )
        })
        .collect();
    let builder = || {
        let mut builder = TermIndexBuilder::new(256);
        for (i, (message, service)) in rows.iter().enumerate() {
            let user = format!("u-{}", i % 5_000);
            builder.add_row(
                message,
                &[("service", service.as_deref())],
                std::iter::once(("user.id", Some(user.as_str()))),
            );
        }
        builder
    };
    let (two, stats) = builder().finish_with(0, [7; 32], 65536, &[1, 2, 3]);
    let (one, one_stats) = builder().finish_with(usize::MAX, [7; 32], 65536, &[1, 2, 3]);
    assert!(stats.filter_partitions >= 2, "{stats:?}");
    assert!(stats.terms > 100 && stats.rare_terms > 40_000, "{stats:?}");
    assert_eq!(stats, one_stats);
    assert!(two == one, "the two indexes differ");
    let (dir, all) = decode_all(&two, &stats);
    assert_eq!(dir.terms as usize, all.len());
    for i in (0..40_000u32).step_by(997) {
        let term = Term::from_parts(MESSAGE_FIELD, format!("id{i:08x}").as_bytes());
        assert!(rare_lookup(&two, &dir, term.as_bytes()).contains(i / 256));
    }
}

#[test]
fn terms_with_the_same_crc_and_length_stay_apart() {
    // The builder matches a term across blocks by (field, CRC-32C, length) before its bytes;
    // real CRC collisions between same-length tokens must still give each token its own postings.
    let mut by_crc: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for i in 0..400_000u64 {
        // splitmix64: spread-out tokens (CRCs of nearby strings never collide).
        let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let token = format!("{:016x}", z ^ (z >> 31));
        let crc = crc32c::crc32c(Term::message_token(&token).as_bytes());
        if let Some(other) = by_crc.insert(crc, token.clone()) {
            pairs.push((other, token));
        }
    }
    assert!(pairs.len() >= 3, "found {} colliding pairs", pairs.len());
    // Each pair: the first token in 12 blocks (dictionary), the second in 2 (fingerprints),
    // and for the next pair the other way round; both sometimes in the same block.
    let block_rows = 4;
    let mut rows: Vec<(String, Option<String>)> = Vec::new();
    for block in 0..16 {
        for row in 0..block_rows {
            let mut words = vec![format!("w{row}")];
            for (n, (a, b)) in pairs.iter().enumerate() {
                let (often, seldom) = if n % 2 == 0 { (a, b) } else { (b, a) };
                if row == 0 && block < 12 {
                    words.push(often.clone());
                }
                if row == 1 && (block == 3 || block == 14) {
                    words.push(seldom.clone());
                }
            }
            rows.push((words.join(" "), None));
        }
    }
    assert_matches_brute_force(&rows, block_rows);
}

#[test]
fn more_fields_than_field_ids_keep_their_statistics() {
    // Field ids are 16 bits; fields beyond 65,535 take their name from the term.
    let fields = 70_000usize;
    let mut builder = TermIndexBuilder::new(16);
    for i in 0..fields {
        let key = format!("k{i}");
        builder.add_row(
            "m",
            &[],
            [(key.as_str(), Some("v")), ("shared", Some("x"))].into_iter(),
        );
    }
    let (bytes, stats) = builder.finish([7; 32], 65536, &[1]);
    let (dir, all) = decode_all(&bytes, &stats);
    assert_eq!(
        dir.fields.len(),
        fields + 2,
        "message, shared and every k<i>"
    );
    for i in [0, 65_000, 65_534, 65_535, 69_999] {
        let name = format!("attributes.k{i}");
        let field = dir
            .fields
            .iter()
            .find(|f| f.field == name.as_bytes())
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((field.exact_terms, field.rare_terms), (0, 1), "{name}");
        assert_eq!(
            field.rare_blocks.iter().collect::<Vec<_>>(),
            vec![i as u32 / 16]
        );
        let term = Term::attribute(&format!("k{i}"), "v");
        assert!(rare_lookup(&bytes, &dir, term.as_bytes()).contains(i as u32 / 16));
    }
    let shared = Term::attribute("shared", "x");
    assert_eq!(all[shared.as_bytes()].len() as usize, fields.div_ceil(16));
}

#[test]
fn fingerprints_rarely_name_other_blocks() {
    // 20,000 unique ids over 80 blocks: each look-up should find its block and few others.
    let rows: Vec<(String, Option<String>)> =
        (0..20_000).map(|i| (format!("id{i:08x}"), None)).collect();
    let (bytes, stats) = build(&rows, 256);
    let (dir, _) = decode_all(&bytes, &stats);
    assert_eq!(dir.rare_terms, 20_000);
    assert!(!dir.filters.is_empty());
    let mut extra = 0;
    for i in (0..20_000).step_by(13) {
        let term = Term::from_parts(MESSAGE_FIELD, format!("id{i:08x}").as_bytes());
        let found = rare_lookup(&bytes, &dir, term.as_bytes());
        assert!(found.contains(i / 256));
        extra += found.len() - 1;
    }
    // Each of the 79 other blocks holds about 125 fingerprints of the term's partition, so each
    // names the term falsely with probability ~125/65,536: ~0.15 false blocks a look-up.
    let lookups = 20_000 / 13 + 1;
    let designed = lookups as f64 * 79.0 * 125.0 / 65_536.0;
    assert!(
        (extra as f64) < designed * 1.5,
        "{extra} false blocks in {lookups} look-ups (designed rate: {designed:.0})"
    );
    // A fingerprint costs about a byte and a half (random 16-bit values, ~125 to a set: gaps
    // of ~500 take two varint bytes, which zstd brings down).
    assert!(
        stats.filter_bytes < 20_000 * 8 / 5,
        "{} bytes of fingerprints",
        stats.filter_bytes
    );
}

#[test]
fn many_terms_span_many_blocks_and_block_for_finds_them() {
    // Every id appears in many distant rows, so all are dictionary terms.
    let rows: Vec<(String, Option<String>)> = (0..40_000)
        .map(|i| {
            (
                format!("request {:08x} done", i % 2_000),
                Some(format!("svc-{}", i % 7)),
            )
        })
        .collect();
    let (bytes, stats) = build(&rows, 128);
    let (dir, all) = decode_all(&bytes, &stats);
    assert!(
        dir.blocks.len() >= 4,
        "expected several term blocks, got {}",
        dir.blocks.len()
    );
    for (term, postings) in all.iter().step_by(97) {
        let b = dir.block_for(term).unwrap();
        let entry = &dir.blocks[b];
        let raw = &bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
        let block = TermBlock::decode(raw, entry, dir.posting_blocks(), "mem").unwrap();
        assert_eq!(block.get(term), Some(postings));
    }
    // A term before every other maps to no block; one past every other to the last block.
    assert_eq!(dir.block_for(b""), None);
    assert_eq!(dir.block_for(&[0xff; 4]), Some(dir.blocks.len() - 1));
}

#[test]
fn every_flipped_bit_in_the_directory_is_caught() {
    let rows: Vec<(String, Option<String>)> = (0..300)
        .map(|i| (format!("word{i} common"), None))
        .collect();
    let (bytes, stats) = build(&rows, 16);
    let dir_len = stats.directory_bytes as usize;
    for at in 0..dir_len {
        let mut damaged = bytes[..dir_len].to_vec();
        damaged[at] ^= 0x10;
        let err = IndexDirectory::decode(
            &damaged,
            stats.directory_crc32c,
            bytes.len() as u64,
            "seg.parquet",
        )
        .unwrap_err();
        assert!(err.to_string().contains("seg.parquet"), "{err}");
    }
}

#[test]
fn flipped_bytes_in_a_block_are_caught() {
    let rows: Vec<(String, Option<String>)> = (0..300)
        .map(|i| (format!("word{i} common"), None))
        .collect();
    let (bytes, stats) = build(&rows, 16);
    let (dir, _) = decode_all(&bytes, &stats);
    let entry = &dir.blocks[0];
    let raw = &bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
    for at in 0..raw.len() {
        let mut damaged = raw.to_vec();
        damaged[at] ^= 0x01;
        let err =
            TermBlock::decode(&damaged, entry, dir.posting_blocks(), "seg.parquet").unwrap_err();
        assert!(
            err.is_corrupt() && err.to_string().contains("checksum"),
            "{err}"
        );
    }
}

#[test]
fn postings_roundtrip_small_and_large() {
    for blocks in [
        vec![],
        vec![0],
        vec![3, 9, 700],
        (0..5000).step_by(3).collect::<Vec<u32>>(),
    ] {
        let mut buf = Vec::new();
        encode_postings(&blocks, &mut buf);
        let mut pos = 0;
        let decoded = decode_postings(&buf, &mut pos).unwrap();
        assert_eq!(pos, buf.len());
        assert_eq!(decoded.iter().collect::<Vec<_>>(), blocks);
    }
}

#[test]
fn varints_reject_overflow_and_truncation() {
    let mut buf = Vec::new();
    varint::put(&mut buf, u64::MAX);
    let mut pos = 0;
    assert_eq!(varint::get(&buf, &mut pos), Some(u64::MAX));
    assert_eq!(varint::get(&[0x80, 0x80], &mut 0), None);
    assert_eq!(varint::get(&[0xff; 11], &mut 0), None);
}

#[test]
fn term_parts() {
    let t = Term::keyword("service", "Payment-Service");
    assert_eq!(t.field(), Some("service"));
    assert_eq!(t.value(), b"payment-service");
    assert_eq!(Term::message_token("Timeout!").value(), b"timeout");
    assert_eq!(
        Term::attribute("user.id", "U-1").field(),
        Some("attributes.user.id")
    );
}

/// Pairs of `terms` whose 16-bit fingerprints collide under `hasher`.
fn colliding_pairs(
    terms: &[Vec<u8>],
    hasher: TermHasher,
) -> std::collections::HashSet<(usize, usize)> {
    let mut by_print: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, t) in terms.iter().enumerate() {
        by_print
            .entry(fingerprint_of(hasher.hash(t)))
            .or_default()
            .push(i);
    }
    let mut pairs = std::collections::HashSet::new();
    for group in by_print.values() {
        for (n, &a) in group.iter().enumerate() {
            for &b in &group[n + 1..] {
                pairs.insert((a, b));
            }
        }
    }
    pairs
}

#[test]
fn seeded_fingerprints_collide_independently_per_segment() {
    // Under v1 the same pairs of terms collide in every segment; under v2 the pairs colliding
    // in one segment collide in another only by chance (1 in 65,536 each).
    let terms: Vec<Vec<u8>> = (0..20_000)
        .map(|i| Term::message_token(&format!("tok{i}")).as_bytes().to_vec())
        .collect();
    let digest = |b: u8| {
        let mut d = [0u8; 32];
        d[..4].copy_from_slice(&[b, 0x5a, b.wrapping_mul(7), 0x13]);
        d
    };
    let one = colliding_pairs(&terms, TermHasher::for_segment(INDEX_VERSION, &digest(1)));
    let two = colliding_pairs(&terms, TermHasher::for_segment(INDEX_VERSION, &digest(2)));
    // About C(20000, 2) / 65536 ≈ 3,052 pairs each.
    assert!((2_500..3_600).contains(&one.len()), "{}", one.len());
    assert!((2_500..3_600).contains(&two.len()), "{}", two.len());
    let both = one.intersection(&two).count();
    assert!(both <= 5, "{both} pairs collide in both segments");
    // v1 (digest ignored) collides the same pairs whatever the segment.
    let v1_one = colliding_pairs(&terms, TermHasher::for_segment(1, &digest(1)));
    let v1_two = colliding_pairs(&terms, TermHasher::for_segment(1, &digest(2)));
    assert_eq!(v1_one, v1_two);
    assert_eq!(TermHasher::for_segment(1, &digest(1)), TermHasher::Crc32c);
}

#[test]
fn a_v2_partition_with_a_huge_gap_is_corrupt_not_an_overflow() {
    // Found by the fingerprint_partition fuzz target: one set of two, the gap u64::MAX.
    let mut raw = Vec::new();
    varint::put(&mut raw, 2);
    varint::put(&mut raw, 5);
    varint::put(&mut raw, u64::MAX);
    let stored = zstd::bulk::compress(&raw, 1).unwrap();
    let entry = FilterEntry {
        offset: 0,
        length: stored.len() as u64,
        crc32c: crc32c::crc32c(&stored),
        raw_length: raw.len() as u32,
    };
    let err = FilterPartition::decode(&stored, &entry, 1, 2, "mem").unwrap_err();
    assert!(err.to_string().contains("not sorted"), "{err}");
}

#[test]
fn same_bytes_is_slice_equality() {
    let base: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37)).collect();
    for n in 0..base.len() {
        let a = &base[..n];
        assert!(super::builder::same_bytes(a, a));
        assert!(!super::builder::same_bytes(a, &base[..n + 1]));
        for at in 0..n {
            let mut b = a.to_vec();
            b[at] ^= 0x80;
            assert!(!super::builder::same_bytes(a, &b), "length {n}, byte {at}");
        }
    }
}
