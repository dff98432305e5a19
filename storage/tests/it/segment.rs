//! Round trips, index look-ups against brute force, row selections, object-store reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;
use silt_storage::index::Term;
use silt_storage::record::LogRecord;
use silt_storage::schema::{self, log_schema};
use silt_storage::segment::{
    SegmentCompression, SegmentFile, SegmentReader, SegmentWriterOptions, sort_for_segment,
};
use silt_storage::tokenizer::{normalize_keyword, tokens};

use crate::common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn read_all(reader: &SegmentReader) -> RecordBatch {
    let batches = runtime().block_on(reader.read(None, None)).unwrap();
    concat_batches(&log_schema(), &batches).unwrap()
}

/// Terms of each row of a sorted batch, the way the index defines them.
fn row_terms(batch: &RecordBatch) -> Vec<BTreeSet<Vec<u8>>> {
    let message = batch
        .column_by_name(schema::MESSAGE)
        .unwrap()
        .as_string::<i32>();
    let attrs = batch.column_by_name(schema::ATTRIBUTES).unwrap().as_map();
    (0..batch.num_rows())
        .map(|row| {
            let mut terms = BTreeSet::new();
            for t in tokens(message.value(row)) {
                terms.insert(
                    Term::from_parts("message", t.as_bytes())
                        .as_bytes()
                        .to_vec(),
                );
            }
            for field in schema::KEYWORD_COLUMNS {
                let col = batch.column_by_name(field).unwrap().as_string::<i32>();
                if col.is_valid(row) {
                    terms.insert(Term::keyword(field, col.value(row)).as_bytes().to_vec());
                }
            }
            let entries = attrs.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            for i in 0..keys.len() {
                terms.insert(
                    Term::attribute(keys.value(i), values.value(i))
                        .as_bytes()
                        .to_vec(),
                );
            }
            terms
        })
        .collect()
}

fn brute_postings(
    terms: &[BTreeSet<Vec<u8>>],
    block_rows: u32,
) -> BTreeMap<Vec<u8>, RoaringBitmap> {
    let mut out: BTreeMap<Vec<u8>, RoaringBitmap> = BTreeMap::new();
    for (row, set) in terms.iter().enumerate() {
        for t in set {
            out.entry(t.clone())
                .or_default()
                .insert(row as u32 / block_rows);
        }
    }
    out
}

/// The order docs/format.md promises, written out independently of the writer: service (none
/// first), then level (none, TRACE … FATAL, then other words), then `(timestamp, _seq)`.
fn documented_order_key(
    batch: &RecordBatch,
    row: usize,
) -> (Option<String>, u8, Option<String>, i64, u64) {
    let text = |name: &str| {
        let col = batch.column_by_name(name).unwrap().as_string::<i32>();
        col.is_valid(row).then(|| col.value(row).to_string())
    };
    let level = text(schema::LEVEL);
    let rank = match level.as_deref() {
        None => 0,
        Some("TRACE") => 1,
        Some("DEBUG") => 2,
        Some("INFO") => 3,
        Some("WARN") => 4,
        Some("ERROR") => 5,
        Some("FATAL") => 6,
        Some(_) => u8::MAX,
    };
    let timestamp = batch
        .column(0)
        .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
        .value(row);
    let seq = batch
        .column_by_name(schema::SEQ)
        .unwrap()
        .as_primitive::<arrow::datatypes::UInt64Type>()
        .value(row);
    (
        text(schema::SERVICE),
        rank,
        (rank == u8::MAX).then_some(level).flatten(),
        timestamp,
        seq,
    )
}

#[test]
fn rows_are_clustered_by_service_and_level_each_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let records = records(11, 3000);
    let written = write_segment(dir.path(), &records, small_options());
    let reader = runtime()
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let rows = read_all(&reader);
    let keys: Vec<_> = (0..rows.num_rows())
        .map(|r| documented_order_key(&rows, r))
        .collect();
    for (i, pair) in keys.windows(2).enumerate() {
        assert!(
            pair[0] < pair[1],
            "rows {i} and {} out of order: {:?} then {:?}",
            i + 1,
            pair[0],
            pair[1]
        );
    }
    // Several clusters, so the first and last rows are not the oldest and newest: the segment's
    // time range must still be the true one.
    let clusters: BTreeSet<_> = keys
        .iter()
        .map(|k| (k.0.clone(), k.1, k.2.clone()))
        .collect();
    assert!(clusters.len() > 20, "{} clusters", clusters.len());
    assert_eq!(
        written.min_timestamp,
        keys.iter().map(|k| k.3).min().unwrap()
    );
    assert_eq!(
        written.max_timestamp,
        keys.iter().map(|k| k.3).max().unwrap()
    );
    assert_ne!(written.min_timestamp, keys[0].3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn segment_roundtrip(seed in any::<u64>(), n in 1usize..2500, lz4 in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let records = records(seed, n);
        let mut options = small_options();
        if lz4 {
            options.compression = SegmentCompression::Lz4;
        }
        let written = write_segment(dir.path(), &records, options);
        let reader = runtime().block_on(SegmentReader::open_local(&written.path)).unwrap();
        let expected = sort_for_segment(&batch(&records)).unwrap();
        let actual = read_all(&reader);
        prop_assert_eq!(&actual, &expected);
        // The order itself, checked against the documented key rather than the writer's code.
        let keys: Vec<_> = (0..actual.num_rows()).map(|r| documented_order_key(&actual, r)).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "rows out of the documented order");
        prop_assert_eq!(written.rows, n as u64);
        prop_assert_eq!(reader.num_rows(), n as u64);
        prop_assert_eq!(reader.footer().labels.clone(), labels());
        let verify = runtime().block_on(reader.verify()).unwrap();
        prop_assert_eq!(verify.blake3, written.blake3);
    }
}

/// Row groups larger than the writer's copy slices (8,192 rows), and not a multiple of them:
/// row groups keep their size, every row comes back, and the index (built from the same slices
/// on its own thread) names exactly the blocks of each dictionary term.
#[test]
fn row_groups_larger_than_a_copy_slice_keep_their_rows_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let records = records(5, 25_000);
    let options = SegmentWriterOptions {
        row_group_rows: 10_000,
        block_rows: 1_000,
        ..Default::default()
    };
    let written = write_segment(dir.path(), &records, options);
    let rt = runtime();
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let sizes: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|rg| rg.num_rows())
        .collect();
    assert_eq!(sizes, vec![10_000, 10_000, 5_000]);
    let rows = read_all(&reader);
    assert_eq!(rows, sort_for_segment(&batch(&records)).unwrap());
    let expected = brute_postings(&row_terms(&rows), 1_000);
    let rare_max = silt_storage::index::RARE_MAX_BLOCKS as u64;
    let multi: BTreeMap<Vec<u8>, RoaringBitmap> = expected
        .into_iter()
        .filter(|(_, p)| p.len() > rare_max)
        .collect();
    let all: BTreeMap<Vec<u8>, RoaringBitmap> =
        rt.block_on(reader.terms()).unwrap().into_iter().collect();
    assert_eq!(all, multi);
}

#[test]
fn lookups_equal_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let records = records(42, 6000);
    let options = small_options();
    let block_rows = options.block_rows;
    let written = write_segment(dir.path(), &records, options);
    let rt = runtime();
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let sorted = read_all(&reader);
    let expected = brute_postings(&row_terms(&sorted), block_rows);

    // The dictionary holds exactly the terms seen in two or more blocks; the others are
    // fingerprints whose look-ups find their block plus rare false candidates.
    let all: BTreeMap<Vec<u8>, RoaringBitmap> =
        rt.block_on(reader.terms()).unwrap().into_iter().collect();
    let rare_max = silt_storage::index::RARE_MAX_BLOCKS as u64;
    let multi: BTreeMap<Vec<u8>, RoaringBitmap> = expected
        .iter()
        .filter(|(_, p)| p.len() > rare_max)
        .map(|(t, p)| (t.clone(), p.clone()))
        .collect();
    assert_eq!(all, multi);
    let mut false_blocks = 0;
    let mut rare_lookups = 0;
    for (term, postings) in expected.iter().step_by(7) {
        let got = rt
            .block_on(reader.lookup(&Term::from_bytes(term.clone())))
            .unwrap();
        if postings.len() > rare_max {
            assert_eq!(&got, postings, "{}", String::from_utf8_lossy(term));
        } else {
            assert!(
                postings.is_subset(&got),
                "{}",
                String::from_utf8_lossy(term)
            );
            false_blocks += got.len() - postings.len();
            rare_lookups += 1;
        }
    }
    // Each posting block's set answers a foreign fingerprint with probability about
    // FINGERPRINTS_PER_SET / 65536.
    let blocks = reader.directory().posting_blocks() as f64;
    let per_lookup = blocks * silt_storage::index::FINGERPRINTS_PER_SET as f64 / 65536.0;
    assert!(rare_lookups > 100, "{rare_lookups}");
    assert!(
        (false_blocks as f64) < rare_lookups as f64 * per_lookup * 2.0 + 5.0,
        "{false_blocks} false blocks in {rare_lookups} look-ups (expected about {per_lookup:.2} each)"
    );
    for absent in [
        Term::message_token("zzzz"),
        Term::keyword("service", "nope"),
        Term::from_bytes(vec![]),
    ] {
        assert!(rt.block_on(reader.lookup(&absent)).unwrap().len() <= 1);
    }

    // Prefix and pattern look-ups: exact over the dictionary, plus every block holding a rare
    // term of the field. They must contain every true block.
    let rare_blocks = |field: &str| {
        expected
            .iter()
            .filter(|(t, p)| {
                p.len() <= rare_max && silt_storage::index::split_term(t).unwrap().0 == field
            })
            .fold(RoaringBitmap::new(), |acc, (_, p)| acc | p)
    };
    let union_where = |keep: &dyn Fn(&[u8]) -> bool| {
        let exact = expected
            .iter()
            .filter(|(t, _)| keep(t))
            .fold(RoaringBitmap::new(), |acc, (_, p)| acc | p);
        let field = expected
            .keys()
            .find(|t| keep(t))
            .map(|t| silt_storage::index::split_term(t).unwrap().0.to_string());
        exact | field.map(|f| rare_blocks(&f)).unwrap_or_default()
    };
    let prefix = Term::prefix("message", b"re");
    assert_eq!(
        rt.block_on(reader.lookup_prefix(&prefix)).unwrap(),
        union_where(&|t| t.starts_with(prefix.as_bytes()))
    );
    assert_eq!(
        rt.block_on(reader.lookup_wildcard("host", "WEB-*"))
            .unwrap(),
        union_where(&|t| t.starts_with(b"host\0web-"))
    );
    assert_eq!(
        rt.block_on(reader.lookup_regex("service", "svc-[0-2]"))
            .unwrap(),
        union_where(
            &|t| [b"service\0svc-0", b"service\0svc-1", b"service\0svc-2"]
                .iter()
                .any(|w| t == &w[..])
        )
    );
    assert_eq!(
        rt.block_on(reader.lookup_regex("attributes.http.status", "5.*|404"))
            .unwrap(),
        union_where(
            &|t| t.starts_with(b"attributes.http.status\05") || t == b"attributes.http.status\0404"
        )
    );
    assert!(rt.block_on(reader.lookup_regex("message", "(")).is_err());
}

#[test]
fn row_selection_reads_exactly_the_blocks_of_a_term() {
    let dir = tempfile::tempdir().unwrap();
    let records = records(7, 5000);
    let written = write_segment(dir.path(), &records, small_options());
    let rt = runtime();
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let sorted = read_all(&reader);
    let terms = row_terms(&sorted);
    let seq = sorted
        .column_by_name(schema::SEQ)
        .unwrap()
        .as_primitive::<arrow::datatypes::UInt64Type>();

    let block_rows = small_options().block_rows;
    let postings = brute_postings(&terms, block_rows);
    let total_blocks = sorted.num_rows().div_ceil(block_rows as usize) as u64;
    // A needle, a rare term and a mid-frequency term.
    let mut by_frequency: Vec<_> = postings
        .iter()
        .filter(|(_, p)| p.len() < total_blocks / 2)
        .collect();
    by_frequency.sort_by_key(|(t, p)| (p.len(), (*t).clone()));
    let picks = [
        by_frequency[0],
        by_frequency[by_frequency.len() / 2],
        by_frequency[by_frequency.len() - 1],
    ];
    for (term, _) in picks {
        let term = Term::from_bytes(term.clone());
        let blocks = rt.block_on(reader.lookup(&term)).unwrap();
        assert!(!blocks.is_empty());
        let selected = rt
            .block_on(reader.read(Some(&["_seq", "message"]), Some(&blocks)))
            .unwrap();
        let selected_seqs: BTreeSet<u64> = selected
            .iter()
            .flat_map(|b| {
                b.column_by_name("_seq")
                    .unwrap()
                    .as_primitive::<arrow::datatypes::UInt64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        let rows_in_blocks: BTreeSet<u64> = (0..sorted.num_rows())
            .filter(|&r| blocks.contains(r as u32 / small_options().block_rows))
            .map(|r| seq.value(r))
            .collect();
        let matching: BTreeSet<u64> = (0..sorted.num_rows())
            .filter(|&r| terms[r].contains(term.as_bytes()))
            .map(|r| seq.value(r))
            .collect();
        assert_eq!(
            selected_seqs, rows_in_blocks,
            "the selection reads exactly the posting blocks"
        );
        assert!(
            matching.is_subset(&selected_seqs),
            "every matching row is selected"
        );
        assert!(
            selected_seqs.len() < sorted.num_rows(),
            "some rows were skipped"
        );
    }
    // No blocks: nothing read.
    assert!(
        rt.block_on(reader.read(None, Some(&RoaringBitmap::new())))
            .unwrap()
            .is_empty()
    );
}

/// The column chunk metadata of leaf column `path` in each row group.
fn chunks_of(
    reader: &SegmentReader,
    path: &str,
) -> Vec<parquet::file::metadata::ColumnChunkMetaData> {
    let metadata = reader.metadata();
    (0..metadata.num_row_groups())
        .map(|rg| {
            metadata
                .row_group(rg)
                .columns()
                .iter()
                .find(|c| c.column_path().string() == path)
                .unwrap()
                .clone()
        })
        .collect()
}

/// Whether each row group's chunk of column `path` has a dictionary page.
fn dictionary_pages(reader: &SegmentReader, path: &str) -> Vec<bool> {
    chunks_of(reader, path)
        .iter()
        .map(|c| c.dictionary_page_offset().is_some())
        .collect()
}

#[test]
fn repeated_trace_ids_get_a_dictionary_and_unique_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_options();
    let block_rows = options.block_rows;
    let rt = runtime();

    // Forty traces of ~100 lines each, a third of the rows without one.
    let mut repeated = records(5, 6000);
    for (i, record) in repeated.iter_mut().enumerate() {
        record.trace_id = (i % 3 != 0).then(|| format!("{:032x}", (i * 7919) % 40));
    }
    let written = write_segment(dir.path(), &repeated, options.clone());
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let dictionaries = dictionary_pages(&reader, schema::TRACE_ID);
    assert!(dictionaries.len() > 2, "rows span row groups");
    assert!(dictionaries.iter().all(|&d| d), "{dictionaries:?}");
    // The values read back are the ones written, whole and row by row.
    let sorted = read_all(&reader);
    let mut want: Vec<Option<String>> = repeated.iter().map(|r| r.trace_id.clone()).collect();
    let mut got: Vec<Option<String>> = sorted
        .column_by_name(schema::TRACE_ID)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let rows = [0, 511, 512, 2999, sorted.num_rows() as u64 - 1];
    let picked = rt.block_on(reader.read_rows(&rows)).unwrap();
    let picked = concat_batches(&log_schema(), &picked).unwrap();
    let indices = arrow::array::UInt64Array::from(rows.to_vec());
    assert_eq!(
        picked,
        arrow::compute::take_record_batch(&sorted, &indices).unwrap()
    );
    // Every trace is found in exactly the blocks that hold it.
    let expected = brute_postings(&row_terms(&sorted), block_rows);
    for trace in 0..40 {
        let term = Term::keyword("trace_id", &format!("{trace:032x}"));
        let got = rt.block_on(reader.lookup(&term)).unwrap();
        assert_eq!(Some(&got), expected.get(term.as_bytes()), "trace {trace}");
    }

    // Ids that never repeat stay plain: a dictionary would only add a page to every read.
    let dir = tempfile::tempdir().unwrap();
    let written = write_segment(dir.path(), &records(5, 6000), options);
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let dictionaries = dictionary_pages(&reader, schema::TRACE_ID);
    assert!(dictionaries.iter().all(|&d| !d), "{dictionaries:?}");
}

/// The encodings of each row group's `trace_id` chunk.
fn trace_id_encodings(reader: &SegmentReader) -> Vec<Vec<parquet::basic::Encoding>> {
    chunks_of(reader, schema::TRACE_ID)
        .iter()
        .map(|c| c.encodings().collect())
        .collect()
}

#[test]
fn a_trace_id_dictionary_is_chosen_only_when_it_fits_one_page() {
    // Parquet stores a dictionary entry as a four-byte length and the bytes: 32 bytes for each
    // 28-character id, and it falls back to plain pages once the page reaches 1 MiB, so 32,768
    // ids must not get one.
    let limit = 1 << 20;
    let rt = runtime();
    for (distinct, dictionary) in [(limit / 32 - 1, true), (limit / 32, false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = records(9, distinct * 2);
        for (i, record) in rows.iter_mut().enumerate() {
            record.trace_id = Some(format!("{:028x}", i % distinct));
        }
        let written = write_segment(dir.path(), &rows, SegmentWriterOptions::default());
        let reader = rt
            .block_on(SegmentReader::open_local(&written.path))
            .unwrap();
        let encodings = trace_id_encodings(&reader);
        assert_eq!(encodings.len(), 1, "one row group");
        let has = |e| encodings[0].contains(&e);
        // A dictionary that never falls back: no page of the fallback encoding.
        assert_eq!(
            has(parquet::basic::Encoding::RLE_DICTIONARY),
            dictionary,
            "{distinct} ids: {encodings:?}"
        );
        assert_eq!(
            has(parquet::basic::Encoding::DELTA_LENGTH_BYTE_ARRAY),
            !dictionary,
            "{distinct} ids: {encodings:?}"
        );
        let ids = read_all(&reader);
        let ids = ids
            .column_by_name(schema::TRACE_ID)
            .unwrap()
            .as_string::<i32>();
        let distinct_read: BTreeSet<&str> = ids.iter().flatten().collect();
        assert_eq!(distinct_read.len(), distinct);
    }
}

#[test]
fn timestamps_of_whole_seconds_are_compressed_and_finer_ones_are_not() {
    let rt = runtime();
    // About ten lines a second, in the time units of a syslog, a Java and a Go logger; then
    // whole seconds but for every tenth or every eleventh line (lines given their arrival time).
    for (unit, off_every, compressed) in [
        (1_000_000_000, 0, true),
        (1_000_000, 0, false),
        (1, 0, false),
        (1_000_000_000, 11, true),
        (1_000_000_000, 9, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = records(13, 3000);
        for (i, record) in rows.iter_mut().enumerate() {
            let ns = 1_700_000_000_000_000_000 + i as i64 * 97_345_678;
            let off = off_every > 0 && i % off_every == 0;
            record.timestamp = Some(if off { ns + 1 } else { ns / unit * unit });
        }
        let written = write_segment(dir.path(), &rows, SegmentWriterOptions::default());
        let reader = rt
            .block_on(SegmentReader::open_local(&written.path))
            .unwrap();
        let codec = chunks_of(&reader, schema::TIMESTAMP)[0].compression();
        assert_eq!(
            codec != parquet::basic::Compression::UNCOMPRESSED,
            compressed,
            "unit {unit} ns, every {off_every}th off: {codec:?}"
        );
        let mut want: Vec<i64> = rows.iter().map(|r| r.timestamp.unwrap()).collect();
        let mut got: Vec<i64> = read_all(&reader)
            .column_by_name(schema::TIMESTAMP)
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
            .values()
            .to_vec();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "unit {unit} ns");
    }
}

#[test]
fn free_text_and_ids_use_zstd_level_1_at_the_default_levels() {
    // A footer records the codec but not its level, so the level shows in the sizes: at
    // levels 1 and 3 `message` is compressed alike (level 1), at 9 differently.
    let rt = runtime();
    let records = records(17, 4000);
    let message_bytes = |level| {
        let dir = tempfile::tempdir().unwrap();
        let options = SegmentWriterOptions {
            compression: SegmentCompression::Zstd { level },
            ..Default::default()
        };
        let written = write_segment(dir.path(), &records, options);
        let reader = rt
            .block_on(SegmentReader::open_local(&written.path))
            .unwrap();
        let chunk = chunks_of(&reader, schema::MESSAGE).remove(0);
        assert!(matches!(
            chunk.compression(),
            parquet::basic::Compression::ZSTD(_)
        ));
        chunk.compressed_size()
    };
    let (one, three, nine) = (message_bytes(1), message_bytes(3), message_bytes(9));
    assert_eq!(one, three);
    assert_ne!(one, nine);
}

#[test]
fn read_rows_returns_exactly_the_rows_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let records = records(11, 5000);
    let written = write_segment(dir.path(), &records, small_options());
    let rt = runtime();
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    assert!(
        reader.metadata().num_row_groups() > 2,
        "rows span row groups"
    );
    let sorted = read_all(&reader);
    let n = sorted.num_rows() as u64;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    let cases: Vec<Vec<u64>> = vec![
        vec![0],
        vec![n - 1],
        (0..n).collect(),
        // Neighbours (one range), both sides of every row-group boundary, and random rows.
        vec![10, 11, 12, 13],
        {
            let mut rows = Vec::new();
            let mut start = 0u64;
            for rg in 0..reader.metadata().num_row_groups() {
                start += reader.metadata().row_group(rg).num_rows() as u64;
                if start < n {
                    rows.extend([start - 1, start]);
                }
            }
            rows
        },
        {
            let mut rows: Vec<u64> = (0..40).map(|_| rng.random_range(0..n)).collect();
            rows.sort_unstable();
            rows.dedup();
            rows
        },
    ];
    for rows in cases {
        let batches = rt.block_on(reader.read_rows(&rows)).unwrap();
        let got = concat_batches(&log_schema(), &batches).unwrap();
        let indices = arrow::array::UInt64Array::from(rows.clone());
        let want = arrow::compute::take_record_batch(&sorted, &indices).unwrap();
        assert_eq!(got, want, "rows {rows:?}");
    }
    assert!(rt.block_on(reader.read_rows(&[])).unwrap().is_empty());
}

#[test]
fn object_store_needle_fetches_a_small_part_of_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = records(9, 40_000);
    records[12_345].message = "the needle xq7needle is here".into();
    let written = write_segment(dir.path(), &records, SegmentWriterOptions::default());
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let key = written
        .path
        .strip_prefix(dir.path())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let rt = runtime();
    let file = rt
        .block_on(SegmentFile::open_object(store, key.as_str().into()))
        .unwrap();
    let reader = rt.block_on(SegmentReader::open(file)).unwrap();
    let index_len = reader.footer().index_length;
    let sections = reader.directory().blocks.len() + reader.directory().filters.len();
    assert!(
        sections > 4,
        "the index should have several sections, has {sections}"
    );

    let before = reader.bytes_read();
    let blocks = rt
        .block_on(reader.lookup(&Term::message_token("xq7needle")))
        .unwrap();
    let lookup_bytes = reader.bytes_read() - before;
    assert!(!blocks.is_empty() && blocks.len() <= 2, "{blocks:?}");
    let largest_block = reader
        .directory()
        .blocks
        .iter()
        .map(|b| b.length)
        .max()
        .unwrap_or(0);
    let largest_partition = reader
        .directory()
        .filters
        .iter()
        .map(|b| b.length)
        .max()
        .unwrap_or(0);
    assert!(
        lookup_bytes <= largest_block + largest_partition,
        "a look-up reads one term block and one fingerprint partition ({lookup_bytes} bytes)"
    );
    assert!(
        lookup_bytes * 4 < index_len,
        "needle read {lookup_bytes} of {index_len} index bytes"
    );

    let rows = rt
        .block_on(reader.read(Some(&["message"]), Some(&blocks)))
        .unwrap();
    let messages: Vec<String> = rows
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|m| m.unwrap().to_string())
        })
        .collect();
    assert!(messages.iter().any(|m| m.contains("xq7needle")));
    assert!(
        reader.bytes_read() < written.bytes / 4,
        "a needle read most of the file"
    );
}

#[test]
fn long_tokens_and_values_stay_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let long_token = format!("token{}", "x".repeat(200));
    let long_value = format!("v{}", "y".repeat(1000));
    let records = vec![LogRecord {
        timestamp: Some(1),
        message: format!("before {long_token} after"),
        attributes: vec![("blob".into(), long_value.clone())],
        ..Default::default()
    }];
    let written = write_segment(dir.path(), &records, small_options());
    let rt = runtime();
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    assert_eq!(
        rt.block_on(reader.lookup(&Term::message_token(&long_token)))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        rt.block_on(reader.lookup(&Term::attribute("blob", &long_value)))
            .unwrap()
            .len(),
        1
    );
    assert!(normalize_keyword(&long_value).len() < long_value.len());
}

#[test]
fn wrong_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "x",
        arrow::datatypes::DataType::Int32,
        false,
    )]);
    let batch = RecordBatch::try_new(
        Arc::new(other),
        vec![Arc::new(arrow::array::Int32Array::from(vec![1]))],
    )
    .unwrap();
    let mut writer = silt_storage::segment::SegmentWriter::new(
        dir.path().join("x.parquet"),
        labels(),
        small_options(),
    );
    let err = writer.push(batch).unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
    let empty = silt_storage::segment::SegmentWriter::new(
        dir.path().join("y.parquet"),
        labels(),
        small_options(),
    );
    assert!(empty.finish().is_err());
}

/// `(key, value)` entries of each row of `batch`'s attributes, by `_seq`.
fn attributes_by_seq(batch: &RecordBatch) -> BTreeMap<u64, Vec<(String, Option<String>)>> {
    let seq = batch
        .column_by_name(schema::SEQ)
        .unwrap()
        .as_primitive::<arrow::datatypes::UInt64Type>();
    let attrs = batch.column_by_name(schema::ATTRIBUTES).unwrap().as_map();
    (0..batch.num_rows())
        .map(|row| {
            let entries = attrs.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let list = (0..keys.len())
                .map(|i| {
                    (
                        keys.value(i).to_owned(),
                        values.is_valid(i).then(|| values.value(i).to_owned()),
                    )
                })
                .collect();
            (seq.value(row), list)
        })
        .collect()
}

/// A record's attributes as [`attributes_by_seq`] lists them.
fn entries_of(record: &LogRecord) -> Vec<(String, Option<String>)> {
    record
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect()
}

/// The top-level column names a segment stores.
fn stored_columns(reader: &SegmentReader) -> Vec<String> {
    reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect()
}

#[test]
fn frequent_attribute_keys_get_columns_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let n = 3000;
    let mut rows = records(21, n);
    for (i, record) in rows.iter_mut().enumerate() {
        let region = ["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"][i % 4];
        let request = format!(
            "req-{:016x}",
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        record.attributes = if i % 10 == 3 && i < n / 3 {
            // Another order: read back with the shredded keys first.
            vec![
                ("request_id".into(), request),
                ("region".into(), region.into()),
            ]
        } else {
            vec![
                ("region".into(), region.into()),
                ("request_id".into(), request),
            ]
        };
        if i % 3 == 1 {
            // An empty key names no column (`attributes.` is no key's): it stays in the map.
            record.attributes.push((String::new(), "e".into()));
        }
        if i % 50 == 7 {
            // In 2% of the rows: stays in the map.
            record.attributes.push(("rare".into(), format!("r{i}")));
        }
        if i % 7 == 0 {
            // A key repeated within a row: the first is the column's, the second the map's.
            record.attributes.push(("region".into(), "again".into()));
        }
    }
    let written = write_segment(dir.path(), &rows, small_options());
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    assert_eq!(reader.shredded_keys(), ["region", "request_id"]);
    let columns = stored_columns(&reader);
    assert_eq!(
        &columns[log_schema().fields().len()..],
        ["attributes.region", "attributes.request_id"]
    );
    // Four regions get a dictionary, unique request ids none.
    assert!(
        dictionary_pages(&reader, "attributes.region")
            .iter()
            .all(|&d| d)
    );
    assert!(
        dictionary_pages(&reader, "attributes.request_id")
            .iter()
            .all(|&d| !d)
    );

    // Every row reads back with its entries: in the written order where the shredded keys
    // came first, and all of them in any case.
    let all = read_all(&reader);
    assert_eq!(all.schema(), log_schema());
    let got = attributes_by_seq(&all);
    assert_eq!(got.len(), n);
    for (i, record) in rows.iter().enumerate() {
        let want = entries_of(record);
        let row = &got[&(i as u64 + 1)];
        if i % 10 == 3 && i < n / 3 {
            let (mut a, mut b) = (row.clone(), want.clone());
            a.sort();
            b.sort();
            assert_eq!(a, b, "row {i}");
        } else {
            assert_eq!(row, &want, "row {i}");
        }
    }

    // Projections: `attributes` brings its columns along; other projections never show them.
    let projected = rt
        .block_on(reader.read(Some(&["_seq", "attributes"]), None))
        .unwrap();
    let projected = concat_batches(&projected[0].schema(), &projected).unwrap();
    assert_eq!(
        projected
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["attributes", "_seq"]
    );
    assert_eq!(attributes_by_seq(&projected), got);
    let narrow = rt
        .block_on(reader.read(Some(&["_seq", "message"]), None))
        .unwrap();
    assert_eq!(narrow[0].num_columns(), 2);

    // Single rows, and the index, built from the rows as written.
    let picks = [0, 63, 64, 1500, n as u64 - 1];
    let picked = rt.block_on(reader.read_rows(&picks)).unwrap();
    let picked = concat_batches(&log_schema(), &picked).unwrap();
    let indices = arrow::array::UInt64Array::from(picks.to_vec());
    assert_eq!(
        picked,
        arrow::compute::take_record_batch(&all, &indices).unwrap()
    );
    let expected = brute_postings(&row_terms(&all), small_options().block_rows);
    for (key, value) in [
        ("region", "us-west-2"),
        ("region", "again"),
        ("rare", "r57"),
    ] {
        let term = Term::attribute(key, value);
        let found = rt.block_on(reader.lookup(&term)).unwrap();
        assert_eq!(Some(&found), expected.get(term.as_bytes()), "{key}={value}");
    }
}

#[test]
fn at_most_64_attribute_keys_get_columns() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut rows = records(22, 500);
    for (i, record) in rows.iter_mut().enumerate() {
        record.attributes = (0..70)
            .map(|k| (format!("k{k:02}"), format!("{}", (i * k) % 13)))
            .collect();
    }
    let written = write_segment(dir.path(), &rows, small_options());
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    let want: Vec<String> = (0..64).map(|k| format!("k{k:02}")).collect();
    assert_eq!(reader.shredded_keys(), want);
    let got = attributes_by_seq(&read_all(&reader));
    for (i, record) in rows.iter().enumerate() {
        let want = entries_of(record);
        assert_eq!(got[&(i as u64 + 1)], want, "row {i}");
    }
}

#[test]
fn shredded_columns_take_the_layout_that_compresses_their_values_best() {
    // Pod names share a long prefix within a service's cluster: `DELTA_BYTE_ARRAY` stores it
    // once. Random ids share nothing: they stay plain.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut rng = <rand::rngs::SmallRng as SeedableRng>::seed_from_u64(23);
    let mut rows = records(23, 4000);
    for record in rows.iter_mut() {
        let service = record.service.clone().unwrap_or_default();
        record.attributes = vec![
            (
                "pod".into(),
                format!(
                    "{service}-deployment-canary-{:05x}",
                    rng.random_range(0..0xfffffu32)
                ),
            ),
            ("id".into(), format!("{:032x}", rng.random::<u128>())),
        ];
    }
    let written = write_segment(dir.path(), &rows, small_options());
    let reader = rt
        .block_on(SegmentReader::open_local(&written.path))
        .unwrap();
    assert_eq!(reader.shredded_keys(), ["pod", "id"]);
    let encodings = |path: &str| -> Vec<parquet::basic::Encoding> {
        chunks_of(&reader, path)[0].encodings().collect()
    };
    use parquet::basic::Encoding;
    assert!(
        encodings("attributes.pod").contains(&Encoding::DELTA_BYTE_ARRAY),
        "{:?}",
        encodings("attributes.pod")
    );
    assert!(
        !encodings("attributes.id").contains(&Encoding::DELTA_BYTE_ARRAY),
        "{:?}",
        encodings("attributes.id")
    );
    // Whatever the layout, the values read back.
    let got = attributes_by_seq(&read_all(&reader));
    for (i, record) in rows.iter().enumerate() {
        let want = entries_of(record);
        assert_eq!(got[&(i as u64 + 1)], want, "row {i}");
    }
}
