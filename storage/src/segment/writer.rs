//! Writes one segment: orders rows by service, level and time, picks encodings from the rows,
//! writes the row groups, appends the term index, then closes, fsyncs and renames into place.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::shred::{SHREDDED_PAGE_BYTES, ShredPlan, shred_column};
use super::{
    DEFAULT_ROW_GROUP_ROWS, SEGMENT_FORMAT_VERSION, STATISTICS_TRUNCATE_BYTES, STRIPE_BYTES,
    footer_digest, footer_keys,
};
use crate::error::{IoResultExt, Result, StorageError};
use crate::index::{DEFAULT_BLOCK_ROWS, INDEX_VERSION, IndexStats, TermIndexBuilder};
use crate::layout::temp_path_for;
use crate::schema::{self, log_schema};
use crate::tokenizer::TOKENIZER_VERSION;

/// Page compression of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentCompression {
    /// zstd at `level`; at levels 1-3, `message`, `trace_id` and `span_id` use level 1
    /// (smaller and faster for them, docs/format.md "Rows").
    Zstd {
        level: i32,
    },
    Lz4,
}

impl Default for SegmentCompression {
    fn default() -> Self {
        SegmentCompression::Zstd { level: 3 }
    }
}

/// The zstd level of `message`, `trace_id` and `span_id` when the segment's is `level`: 1 for
/// levels 1-3. On their 32 KiB pages level 1 compresses them smaller than 2 or 3, and faster:
/// `message` of the loghub samples and the benchmark corpus took 0.7-6.4% fewer bytes than at
/// level 3 (pyarrow, 32 KiB pages), the benchmark's ids 0.2-1.7%. The attribute values do not
/// follow: level 1 took 2.7% more for them.
fn text_zstd_level(level: i32) -> i32 {
    if (1..=3).contains(&level) { 1 } else { level }
}

#[derive(Debug, Clone)]
pub struct SegmentWriterOptions {
    pub compression: SegmentCompression,
    pub row_group_rows: usize,
    /// Rows per posting block and per data page.
    pub block_rows: u32,
}

impl Default for SegmentWriterOptions {
    fn default() -> Self {
        Self {
            compression: SegmentCompression::default(),
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            block_rows: DEFAULT_BLOCK_ROWS,
        }
    }
}

/// Where a segment belongs; recorded in its footer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentLabels {
    pub tenant: String,
    pub stream: String,
    pub partition: String,
}

/// What [`SegmentWriter::finish`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenSegment {
    pub path: PathBuf,
    pub rows: u64,
    /// Size of the file.
    pub bytes: u64,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    /// blake3 of the whole file, as written.
    pub blake3: [u8; 32],
    /// crc32c of the Parquet page index (the bytes between the term index and the footer),
    /// which no checksum inside the file covers: the catalog keeps it for verified opens.
    pub page_index_crc32c: u32,
    pub index_offset: u64,
    pub index: IndexStats,
}

/// Buffers record batches of one tenant, stream and partition and writes them as one segment.
pub struct SegmentWriter {
    path: PathBuf,
    labels: SegmentLabels,
    options: SegmentWriterOptions,
    batches: Vec<RecordBatch>,
}

impl SegmentWriter {
    /// A writer for the segment at `path` (its final name; it is written under a temp name).
    pub fn new(
        path: impl Into<PathBuf>,
        labels: SegmentLabels,
        options: SegmentWriterOptions,
    ) -> Self {
        Self {
            path: path.into(),
            labels,
            options,
            batches: Vec::new(),
        }
    }

    /// Adds rows. The batch must have the log schema ([`schema::log_schema`]).
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.schema().fields() != log_schema().fields() {
            return Err(StorageError::invalid_input(format!(
                "segment {}: batch schema does not match the log schema: {:?}",
                self.path.display(),
                batch.schema()
            )));
        }
        if batch.num_rows() > 0 {
            self.batches.push(batch);
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Sorts, writes, fsyncs and renames the segment into place, then fsyncs its directory.
    pub fn finish(self) -> Result<WrittenSegment> {
        let location = self.path.display().to_string();
        if self.batches.is_empty() {
            return Err(StorageError::invalid_input(format!(
                "segment {location}: no rows to write"
            )));
        }
        let started = std::time::Instant::now();
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        let (order, whole_seconds) = row_order(&batches);
        let sorted = started.elapsed();
        let rows = SortedRows {
            batches: &batches,
            order: &order,
            whole_seconds,
        };

        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).at(&dir.to_path_buf(), "create directory")?;
        }
        let temp = temp_path_for(&self.path);
        let result = std::thread::scope(|scope| {
            // The index is built on a second thread while Parquet encodes the same rows; the
            // channel holds nothing, so at most two slices' copies are alive.
            let (to_index, slices) = std::sync::mpsc::sync_channel(0);
            let block_rows = self.options.block_rows;
            let total_rows = order.len();
            let index = scope.spawn(move || build_index(slices, block_rows, total_rows));
            write_file(&temp, rows, &self.labels, &self.options, to_index, index)
        });
        let (blake3, bytes, index_offset, index, page_index_crc32c) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        let written = started.elapsed();
        std::fs::rename(&temp, &self.path).at(&self.path, "rename segment into place")?;
        fsync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        tracing::debug!(
            path = %self.path.display(),
            rows = order.len(),
            bytes,
            sort_ms = sorted.as_millis() as u64,
            write_ms = (written - sorted).as_millis() as u64,
            rename_ms = (started.elapsed() - written).as_millis() as u64,
            "segment written"
        );

        let timestamps = || {
            batches
                .iter()
                .map(|b| b.column(0).as_primitive::<TimestampNanosecondType>())
        };
        let seqs = || {
            batches.iter().map(|b| {
                b.column_by_name(schema::SEQ)
                    .expect("log schema")
                    .as_primitive::<UInt64Type>()
            })
        };
        Ok(WrittenSegment {
            path: self.path,
            rows: order.len() as u64,
            bytes,
            min_timestamp: timestamps()
                .filter_map(arrow::compute::min)
                .min()
                .expect("rows"),
            max_timestamp: timestamps()
                .filter_map(arrow::compute::max)
                .max()
                .expect("rows"),
            min_seq: seqs().filter_map(arrow::compute::min).min().unwrap_or(0),
            max_seq: seqs().filter_map(arrow::compute::max).max().unwrap_or(0),
            blake3,
            page_index_crc32c,
            index_offset,
            index,
        })
    }
}

/// Rows of several batches in segment order ([`row_order`]), as `(batch, row)` pairs: they are
/// copied a slice at a time, for Parquet and the index builder both, so a flush holds two slices'
/// copies rather than a sorted copy of the whole segment.
#[derive(Clone, Copy)]
struct SortedRows<'a> {
    batches: &'a [&'a RecordBatch],
    order: &'a [(usize, usize)],
    /// [`timestamps_are_whole_seconds`], which decided the order.
    whole_seconds: bool,
}

/// The value of the footer key [`footer_keys::ROW_ORDER`] for the order [`row_order`] writes
/// when the segment's timestamps are whole seconds ([`timestamps_are_whole_seconds`]).
pub const ROW_ORDER: &str = "service,level,timestamp,_seq";
/// The value of [`footer_keys::ROW_ORDER`] for [`row_order`]'s order by template.
pub const ROW_ORDER_BY_TEMPLATE: &str =
    "service,level,timestamp/10min,message_template,timestamp,_seq";

/// Inside a cluster, rows are grouped by ten minutes of event time, then by message template.
const TEMPLATE_BUCKET_NS: i64 = 600 * 1_000_000_000;
/// The bytes of a message that decide its template.
const TEMPLATE_PREFIX_BYTES: usize = 96;

/// A hash of `message`'s template: its first [`TEMPLATE_PREFIX_BYTES`] bytes with each run of
/// ASCII letters and digits that holds a digit (a number, an id, an address's parts, a hex
/// string) standing for one placeholder. `order 4912601 created for user u-249` and `order 17
/// created for user u-5` share one.
fn template_of(message: &[u8]) -> u32 {
    let m = &message[..message.len().min(TEMPLATE_PREFIX_BYTES)];
    let mut masked = [0u8; TEMPLATE_PREFIX_BYTES];
    let mut len = 0;
    let mut i = 0;
    while i < m.len() {
        if !m[i].is_ascii_alphanumeric() {
            masked[len] = m[i];
            len += 1;
            i += 1;
            continue;
        }
        let start = i;
        let mut digit = false;
        while i < m.len() && m[i].is_ascii_alphanumeric() {
            digit |= m[i].is_ascii_digit();
            i += 1;
        }
        if digit {
            // Not a byte of any UTF-8 text.
            masked[len] = 0xff;
            len += 1;
        } else {
            masked[len..len + i - start].copy_from_slice(&m[start..i]);
            len += i - start;
        }
    }
    crc32c::crc32c(&masked[..len])
}

/// Where a level sorts inside its service's cluster: none first, then the normalised levels
/// from TRACE to FATAL (so `level:>=WARN` is one run), then any other word.
fn level_rank(level: Option<&str>) -> (u8, &str) {
    match level {
        None => (0, ""),
        Some(word) => match crate::record::LEVELS.iter().position(|l| *l == word) {
            Some(i) => (1 + i as u8, ""),
            None => (u8::MAX, word),
        },
    }
}

/// A row's `(service, level)`: the cluster it belongs to.
type Cluster<'a> = (Option<&'a str>, Option<&'a str>);

/// The order of a segment's rows, as `(batch, row)` pairs: clustered by `service`, then by
/// `level` (see [`level_rank`]); inside each cluster, `by_template`, by ten minutes of event
/// time, by message template ([`template_of`]); then by `(timestamp, _seq)`. A search for a
/// service's errors then reads a few adjacent pages instead of some of every page, and lines
/// of one template sit together for the compressor (docs/format.md, "Rows"); page statistics
/// still prune time ranges to the ten minutes around them. Not `by_template`, each cluster is
/// in time order: whole-second timestamps in time order take almost no room, and plain-text
/// lines, which begin with their time, compress better in it. Rows are `by_template` unless
/// [`timestamps_are_whole_seconds`], which is returned with the order.
fn row_order(batches: &[&RecordBatch]) -> (Vec<(usize, usize)>, bool) {
    let whole_seconds = timestamps_are_whole_seconds(batches);
    let by_template = !whole_seconds;
    let column = |b: &RecordBatch, name: &str| {
        b.column_by_name(name)
            .expect("log schema")
            .as_string::<i32>()
            .clone()
    };
    let mut clusters: std::collections::HashMap<Cluster<'_>, u32> =
        std::collections::HashMap::new();
    let services: Vec<_> = batches.iter().map(|b| column(b, schema::SERVICE)).collect();
    let levels: Vec<_> = batches.iter().map(|b| column(b, schema::LEVEL)).collect();
    let messages: Vec<_> = batches.iter().map(|b| column(b, schema::MESSAGE)).collect();
    let total = batches.iter().map(|b| b.num_rows()).sum();
    // (cluster, timestamp, _seq, batch, row) and, in the same order, each row's template.
    let mut keys: Vec<(u32, i64, u64, u32, u32)> = Vec::with_capacity(total);
    let mut templates: Vec<Vec<u32>> = Vec::with_capacity(batches.len());
    for (b, batch) in batches.iter().enumerate() {
        let ts = batch.column(0).as_primitive::<TimestampNanosecondType>();
        let seq = batch
            .column_by_name(schema::SEQ)
            .expect("log schema")
            .as_primitive::<UInt64Type>();
        let (service, level, message) = (&services[b], &levels[b], &messages[b]);
        let mut last: Option<(Cluster<'_>, u32)> = None;
        for row in 0..batch.num_rows() {
            let key = (
                service.is_valid(row).then(|| service.value(row)),
                level.is_valid(row).then(|| level.value(row)),
            );
            let cluster = match last {
                Some((k, c)) if k == key => c,
                _ => {
                    let next = clusters.len() as u32;
                    let c = *clusters.entry(key).or_insert(next);
                    last = Some((key, c));
                    c
                }
            };
            keys.push((cluster, ts.value(row), seq.value(row), b as u32, row as u32));
        }
        if by_template {
            templates.push(
                (0..batch.num_rows())
                    .map(|row| template_of(message.value(row).as_bytes()))
                    .collect(),
            );
        }
    }
    // Rank the clusters, then sort the rows by rank: one small sort of strings, one of integers.
    let mut named: Vec<(Cluster<'_>, u32)> = clusters.into_iter().collect();
    named.sort_unstable_by(|(a, _), (b, _)| (a.0, level_rank(a.1)).cmp(&(b.0, level_rank(b.1))));
    let mut rank = vec![0u32; named.len()];
    for (r, (_, cluster)) in named.iter().enumerate() {
        rank[*cluster as usize] = r as u32;
    }
    for key in &mut keys {
        key.0 = rank[key.0 as usize];
    }
    // A stable sort, because it finds runs already in order and merges them: the engine's
    // memtable groups each request's rows by service and level, so a flush's rows are a few
    // hundred such runs.
    keys.sort();
    if !by_template {
        let order = keys
            .into_iter()
            .map(|(.., b, row)| (b as usize, row as usize))
            .collect();
        return (order, whole_seconds);
    }
    // Then a stable counting sort by (cluster, ten minutes, template), which keeps each group's
    // rows in (timestamp, _seq) order: a few thousand groups, one hash look-up a row.
    type Group = (u32, i64, u32);
    // Seeded per process: the templates come from the senders' messages.
    let mut groups: HashMap<Group, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut group_of = Vec::with_capacity(keys.len());
    let mut named_groups: Vec<Group> = Vec::new();
    for &(cluster, time, _, b, row) in &keys {
        let group = (
            cluster,
            time.div_euclid(TEMPLATE_BUCKET_NS),
            templates[b as usize][row as usize],
        );
        let id = *groups.entry(group).or_insert_with(|| {
            named_groups.push(group);
            named_groups.len() as u32 - 1
        });
        group_of.push(id);
    }
    let mut by_key: Vec<u32> = (0..named_groups.len() as u32).collect();
    by_key.sort_unstable_by_key(|&g| named_groups[g as usize]);
    // Start of each group's rows in the output.
    let mut start = vec![0usize; named_groups.len()];
    for &g in &group_of {
        start[g as usize] += 1;
    }
    let mut next = 0;
    for &g in &by_key {
        let count = start[g as usize];
        start[g as usize] = next;
        next += count;
    }
    let mut order = vec![(0usize, 0usize); keys.len()];
    for (&(.., b, row), &g) in keys.iter().zip(&group_of) {
        order[start[g as usize]] = (b as usize, row as usize);
        start[g as usize] += 1;
    }
    (order, whole_seconds)
}

/// Sorts rows into the order a segment stores them in ([`ROW_ORDER`] or
/// [`ROW_ORDER_BY_TEMPLATE`]).
///
/// Gathered with `interleave`, which sizes each output buffer before copying: `take` grows the
/// attribute map's buffers by doubling.
pub fn sort_for_segment(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    arrow::compute::interleave_record_batch(&[batch], &row_order(&[batch]).0)
}

/// The columns of one batch the index reads.
struct IndexedColumns<'a> {
    message: &'a arrow::array::StringArray,
    keywords: Vec<(&'static str, &'a arrow::array::StringArray)>,
    attributes: &'a arrow::array::MapArray,
    keys: &'a arrow::array::StringArray,
    values: &'a arrow::array::StringArray,
}

impl<'a> IndexedColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Self {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .expect("log schema")
                .as_string::<i32>()
        };
        let attributes = batch
            .column_by_name(schema::ATTRIBUTES)
            .expect("log schema")
            .as_map();
        Self {
            message: col(schema::MESSAGE),
            keywords: schema::KEYWORD_COLUMNS
                .iter()
                .map(|name| (*name, col(name)))
                .collect(),
            attributes,
            keys: attributes.keys().as_string::<i32>(),
            values: attributes.values().as_string::<i32>(),
        }
    }
}

/// Rows per copy of the segment's rows handed to Parquet and the index builder.
const COPY_SLICE_ROWS: usize = 8192;

/// Builds the index from the slices of rows `write_file` sends, each a contiguous copy of its rows
/// in segment order: read in place, the rows of a cluster would be gathered from all over the
/// memtable's batches, and the cache misses cost ingest about a tenth of its speed.
fn build_index(
    slices: std::sync::mpsc::Receiver<RecordBatch>,
    block_rows: u32,
    total_rows: usize,
) -> TermIndexBuilder {
    let mut builder = TermIndexBuilder::for_rows(block_rows, total_rows);
    for batch in slices {
        let c = IndexedColumns::of(&batch);
        let mut keywords: Vec<(&str, Option<&str>)> =
            Vec::with_capacity(schema::KEYWORD_COLUMNS.len());
        for row in 0..batch.num_rows() {
            keywords.clear();
            keywords.extend(
                c.keywords
                    .iter()
                    .map(|(name, array)| (*name, array.is_valid(row).then(|| array.value(row)))),
            );
            let range = if c.attributes.is_valid(row) {
                let offsets = c.attributes.value_offsets();
                offsets[row] as usize..offsets[row + 1] as usize
            } else {
                0..0
            };
            builder.add_row(
                c.message.value(row),
                &keywords,
                range.map(|i| {
                    (
                        c.keys.value(i),
                        c.values.is_valid(i).then(|| c.values.value(i)),
                    )
                }),
            );
        }
    }
    builder
}

/// Page size limit (uncompressed bytes) of the wide columns: `message`, `trace_id`, `span_id` and
/// the attribute values. The writer checks it every [`WRITE_BATCH_VALUES`] values, so a page
/// ends within one batch past it (docs/format.md, "Rows").
const WIDE_PAGE_BYTES: usize = 32 * 1024;
/// Values the Parquet writer encodes between page-size checks. At 1,024 with 64 KiB pages,
/// `message` pages held 1,024 rows (~100 KiB) and a trace look-up decompressed ~180 KiB of wide
/// pages per hit; 256 with 32 KiB pages: trace look-ups 11.3-14.5 -> 9.2-10.6 ms, one-hit
/// needles 2.3-2.5 -> 2.3 ms, 1.2% more bytes on disk (benchmark corpus).
const WRITE_BATCH_VALUES: usize = 256;

/// Columns whose pages are stored uncompressed (docs/format.md, "Rows"). `host` is not among
/// them: a host per pod can outgrow the dictionary and fall back to plain strings. Nor is
/// `observed_timestamp`: one arrival time per request, so its deltas are zeros but for a jump
/// where a cluster's rows pass from one request to the next, and each jump widens its whole
/// 32-value miniblock. zstd takes it from 0.62 to 0.03 bytes a row, and few queries read it.
/// `timestamp` is compressed after all in a segment of (nearly all) whole seconds
/// ([`timestamps_are_whole_seconds`]).
const UNCOMPRESSED_COLUMNS: [&str; 5] = [
    schema::TIMESTAMP,
    schema::SEQ,
    schema::PATTERN_ID,
    schema::LEVEL,
    schema::SERVICE,
];

/// Largest `trace_id` dictionary page (bytes as Parquet stores it: a four-byte length and the
/// bytes of each id) the writer chooses; the same value is the column's page limit, so a
/// dictionary it chooses never falls back to plain pages part-way.
const TRACE_DICTIONARY_BYTES: usize = 1 << 20;

/// Whether the segment's `trace_id` column gets a dictionary: when its ids repeat (on average
/// at least twice, as a trace logs a line per span and more) and all of them fit one dictionary
/// page of [`TRACE_DICTIONARY_BYTES`]. The rows are clustered by service and a trace crosses
/// services, so its lines rarely share a page and zstd cannot find the repeats: plain ids took
/// 11.6 bytes a row on the benchmark corpus (~16 lines a trace), a dictionary ~3 (pyarrow).
fn trace_ids_repeat(batches: &[&RecordBatch]) -> bool {
    let mut distinct: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
    let (mut ids, mut dictionary_bytes) = (0usize, 0usize);
    for batch in batches {
        let column = batch
            .column_by_name(schema::TRACE_ID)
            .and_then(|c| c.as_string_opt::<i32>());
        for id in column.into_iter().flatten().flatten() {
            ids += 1;
            if distinct.insert(id) {
                dictionary_bytes += 4 + id.len();
                // Parquet falls back once the page reaches its limit, not only past it.
                if dictionary_bytes >= TRACE_DICTIONARY_BYTES {
                    return false;
                }
            }
        }
    }
    ids > 0 && distinct.len() * 2 <= ids
}

/// Whether at least 90% of the segment's `timestamp`s are whole seconds, as in most plain-text
/// logs (syslog, Apache, HDFS, OpenSSH; the rest may be lines without a time of their own, given
/// their arrival time). Delta packing then stores multiples of 10^9 in ~30 bits a row, which zstd
/// shrinks 4-7x: the loghub samples' `timestamp` went from 4.5-6.0 to 0.8-2.7 bytes a row, and
/// with 20% of the values off the second it still saves 42%. Finer times gain 3.5%
/// (microseconds, the benchmark corpus) to 16% (milliseconds, Zookeeper): not worth a
/// decompression in every time-range read.
fn timestamps_are_whole_seconds(batches: &[&RecordBatch]) -> bool {
    let (mut rows, mut whole) = (0usize, 0usize);
    for batch in batches {
        if let Some(times) = batch
            .column_by_name(schema::TIMESTAMP)
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        {
            rows += times.len();
            whole += times
                .values()
                .iter()
                .filter(|&&t| t % 1_000_000_000 == 0)
                .count();
        }
    }
    rows > 0 && whole * 10 >= rows * 9
}

/// What [`writer_properties`] decides from the rows themselves.
#[derive(Debug, Clone, Copy)]
struct DataChoices {
    /// `trace_id` gets a dictionary ([`trace_ids_repeat`]).
    trace_dictionary: bool,
    /// `timestamp` is compressed ([`timestamps_are_whole_seconds`]).
    whole_seconds: bool,
}

fn writer_properties(
    labels: &SegmentLabels,
    options: &SegmentWriterOptions,
    choices: DataChoices,
    shreds: &ShredPlan,
) -> WriterProperties {
    let compression = match options.compression {
        SegmentCompression::Zstd { level } => {
            Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
        }
        SegmentCompression::Lz4 => Compression::LZ4_RAW,
    };
    let page_rows = options.block_rows as usize;
    let mut props = WriterProperties::builder()
        .set_created_by(format!("silt {}", env!("CARGO_PKG_VERSION")))
        .set_compression(compression)
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows.min(WRITE_BATCH_VALUES))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_statistics_truncate_length(Some(STATISTICS_TRUNCATE_BYTES))
        .set_column_index_truncate_length(Some(STATISTICS_TRUNCATE_BYTES))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(footer_keys::TENANT.into(), labels.tenant.clone()),
            KeyValue::new(footer_keys::STREAM.into(), labels.stream.clone()),
            KeyValue::new(footer_keys::PARTITION.into(), labels.partition.clone()),
            KeyValue::new(
                footer_keys::ROW_ORDER.into(),
                if choices.whole_seconds {
                    ROW_ORDER
                } else {
                    ROW_ORDER_BY_TEMPLATE
                }
                .to_string(),
            ),
        ]));
    // Integers increasing within each cluster: delta encoding beats dictionaries.
    for column in [schema::TIMESTAMP, schema::OBSERVED_TIMESTAMP, schema::SEQ] {
        let path = ColumnPath::from(column);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
    }
    // Mostly-unique strings: a dictionary would be abandoned after its first page anyway.
    // `trace_id` is chosen per segment (`trace_ids_repeat`).
    for column in [schema::MESSAGE, schema::SPAN_ID] {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    let trace = ColumnPath::from(schema::TRACE_ID);
    props = props
        .set_column_dictionary_enabled(trace.clone(), choices.trace_dictionary)
        .set_column_dictionary_page_size_limit(trace, TRACE_DICTIONARY_BYTES);
    // Ids of one length: with their lengths packed apart, zstd sees only the random hex, not a
    // four-byte length between every two ids (docs/format.md, "Rows"). With a dictionary, this
    // is `trace_id`'s fallback encoding, which the size check of `trace_ids_repeat` leaves unused.
    for column in [schema::TRACE_ID, schema::SPAN_ID] {
        props =
            props.set_column_encoding(ColumnPath::from(column), Encoding::DELTA_LENGTH_BYTE_ARRAY);
    }
    // Attribute values mix ids with enums; their dictionary grows to the 1 MiB limit in every
    // row group, and a needle read would have to load it for one page of values.
    let values = ColumnPath::new(vec![
        schema::ATTRIBUTES.into(),
        "entries".into(),
        "value".into(),
    ]);
    props = props.set_column_dictionary_enabled(values.clone(), false);
    // The wide columns: free text and random ids (`text`), and the attribute values.
    let wide = [
        (ColumnPath::from(schema::MESSAGE), true),
        (ColumnPath::from(schema::TRACE_ID), true),
        (ColumnPath::from(schema::SPAN_ID), true),
        (values, false),
    ];
    for (path, text) in wide {
        if let (true, SegmentCompression::Zstd { level }) = (text, options.compression) {
            let level = ZstdLevel::try_new(text_zstd_level(level)).unwrap_or_default();
            props = props.set_column_compression(path.clone(), Compression::ZSTD(level));
        }
        props = props
            // Min/max prune nothing (each page's range spans nearly all values), and searches
            // reach these rows through the term index: no statistics, so no column-index
            // entries. Their pages keep offset-index entries, which reading a page by row
            // number needs.
            .set_column_statistics_enabled(path.clone(), EnabledStatistics::None)
            // Small pages: fetching one hit decompresses a whole page of every column, and a
            // 4,096-row page of these is 80-550 KiB.
            .set_column_data_page_size_limit(path, WIDE_PAGE_BYTES);
    }
    // Shredded attributes (docs/format.md, "Shredded attributes"): a dictionary for the
    // few-valued keys, the layout chosen by trial for the others; no statistics either, and
    // smaller pages still, since a hit's row reads a page of each of them where it read one of
    // the map.
    for column in &shreds.columns {
        let path = ColumnPath::from(shred_column(&column.key));
        props = props
            .set_column_dictionary_enabled(path.clone(), column.layout.is_none())
            .set_column_statistics_enabled(path.clone(), EnabledStatistics::None)
            .set_column_data_page_size_limit(path.clone(), SHREDDED_PAGE_BYTES);
        if let Some(layout) = column.layout {
            props = props.set_column_encoding(path.clone(), layout.encoding());
            if let SegmentCompression::Zstd { level } = options.compression {
                let level = ZstdLevel::try_new(layout.zstd_level(level)).unwrap_or_default();
                props = props.set_column_compression(path, Compression::ZSTD(level));
            }
        }
    }
    // Delta-packed integers and small dictionaries' indices: zstd saves about 1.5% of these
    // columns (0.2 bytes a row in all), while a zstd column costs every read a codec and a
    // decompression. Aggregations read little else.
    for column in UNCOMPRESSED_COLUMNS {
        if column == schema::TIMESTAMP && choices.whole_seconds {
            continue;
        }
        props = props.set_column_compression(ColumnPath::from(column), Compression::UNCOMPRESSED);
    }
    props.build()
}

/// Writes rows + index to `temp` and fsyncs it. Returns (blake3, file bytes, index offset, stats).
fn write_file(
    temp: &Path,
    rows: SortedRows<'_>,
    labels: &SegmentLabels,
    options: &SegmentWriterOptions,
    to_index: std::sync::mpsc::SyncSender<RecordBatch>,
    index: std::thread::ScopedJoinHandle<'_, TermIndexBuilder>,
) -> Result<([u8; 32], u64, u64, IndexStats, u32)> {
    let location = temp.display().to_string();
    let temp_buf = temp.to_path_buf();
    let file = File::create(temp).at(&temp_buf, "create segment")?;
    let sink = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        written: 0,
        stripes: Vec::new(),
        stripe_crc: 0,
        stripe_fill: 0,
    };
    let started = std::time::Instant::now();
    let choices = DataChoices {
        trace_dictionary: trace_ids_repeat(rows.batches),
        whole_seconds: rows.whole_seconds,
    };
    let mut shreds = ShredPlan::choose(rows.batches);
    if let SegmentCompression::Zstd { level } = options.compression {
        shreds.choose_layouts(rows.batches, rows.order, level);
    }
    let file_schema = shreds.file_schema();
    let props = writer_properties(labels, options, choices, &shreds);
    let parquet_err = |e| StorageError::write_failed(location.clone(), e);
    let planned = started.elapsed();
    let mut writer =
        ArrowWriter::try_new(sink, file_schema.clone(), Some(props)).map_err(parquet_err)?;
    for row_group in rows.order.chunks(options.row_group_rows.max(1)) {
        // Copied in slices: Parquet keeps a row group encoded, not as Arrow, so a flush holds
        // two slices' copies (the one encoded, the one indexed) rather than whole row groups.
        for slice in row_group.chunks(COPY_SLICE_ROWS) {
            let batch = arrow::compute::interleave_record_batch(rows.batches, slice)
                .map_err(|e| StorageError::invalid_input(format!("segment {location}: {e}")))?;
            if to_index.send(batch.clone()).is_err() {
                // The index thread ends early only by panicking: join it here, or the scope
                // would re-raise the panic in the caller instead of this error.
                let _ = index.join();
                return Err(StorageError::invalid_input("index builder thread panicked"));
            }
            let stored = shreds
                .shred(&batch, &file_schema)
                .map_err(|e| StorageError::invalid_input(format!("segment {location}: {e}")))?;
            writer.write(&stored).map_err(parquet_err)?;
        }
        writer.flush().map_err(parquet_err)?;
    }
    drop(to_index);
    // Push every row-group byte through to the sink so its stripe checksums cover them all.
    writer.sync().at(&temp_buf, "write")?;
    let stripes = writer.inner().stripe_checksums();
    debug_assert_eq!(writer.inner().written, writer.bytes_written() as u64);

    let parquet_schema = parquet::arrow::ArrowSchemaConverter::new()
        .convert(&file_schema)
        .map_err(parquet_err)?;
    let arrow_schema = parquet::arrow::encode_arrow_schema(&file_schema);
    let digest = footer_digest(&arrow_schema, &parquet_schema, writer.flushed_row_groups());
    let encoded = started.elapsed();
    let builder = index
        .join()
        .map_err(|_| StorageError::invalid_input("index builder thread panicked"))?;
    let indexed = started.elapsed();
    let (index_bytes, stats) = builder.finish(digest, STRIPE_BYTES, &stripes);
    let finished = started.elapsed();

    // The index goes through the writer (not its inner sink) so Parquet's offsets stay right.
    let index_offset = writer.bytes_written() as u64;
    writer
        .write_all(&index_bytes)
        .at(&temp_buf, "write index of")?;
    for (key, value) in [
        (
            footer_keys::FORMAT_VERSION,
            SEGMENT_FORMAT_VERSION.to_string(),
        ),
        (footer_keys::INDEX_VERSION, INDEX_VERSION.to_string()),
        (
            footer_keys::TOKENIZER_VERSION,
            TOKENIZER_VERSION.to_string(),
        ),
        (footer_keys::INDEX_OFFSET, index_offset.to_string()),
        (footer_keys::INDEX_LENGTH, index_bytes.len().to_string()),
        (
            footer_keys::INDEX_DIRECTORY_LENGTH,
            stats.directory_bytes.to_string(),
        ),
        (
            footer_keys::INDEX_DIRECTORY_CRC32C,
            format!("{:08x}", stats.directory_crc32c),
        ),
    ] {
        writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    let sink = writer.into_inner().map_err(parquet_err)?;
    let HashingWriter {
        inner,
        hasher,
        written,
        ..
    } = sink;
    let file = inner
        .into_inner()
        .map_err(|e| StorageError::path_io(temp, "flush segment", e.into_error()))?;
    file.sync_all().at(&temp_buf, "fsync segment")?;
    let page_index_start = index_offset + index_bytes.len() as u64;
    let page_index_crc32c = page_index_checksum(temp, page_index_start, written)?;
    tracing::debug!(
        plan_ms = planned.as_millis() as u64,
        encode_ms = (encoded - planned).as_millis() as u64,
        index_wait_ms = (indexed - encoded).as_millis() as u64,
        index_finish_ms = (finished - indexed).as_millis() as u64,
        fsync_ms = (started.elapsed() - finished).as_millis() as u64,
        "segment file written"
    );
    Ok((
        *hasher.finalize().as_bytes(),
        written,
        index_offset,
        stats,
        page_index_crc32c,
    ))
}

/// crc32c of `[page_index_start, footer start)` of a written file of `len` bytes.
fn page_index_checksum(path: &Path, page_index_start: u64, len: u64) -> Result<u32> {
    use std::io::{Read, Seek, SeekFrom};
    let buf = path.to_path_buf();
    let mut file = File::open(path).at(&buf, "reopen segment")?;
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::Start(len - 8))
        .and_then(|_| file.read_exact(&mut tail))
        .at(&buf, "read footer of")?;
    let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    let footer_start = len - 8 - footer_len;
    let mut region = vec![0u8; footer_start.saturating_sub(page_index_start) as usize];
    file.seek(SeekFrom::Start(page_index_start))
        .and_then(|_| file.read_exact(&mut region))
        .at(&buf, "read page index of")?;
    Ok(crc32c::crc32c(&region))
}

/// Fsyncs a directory so a rename or create inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at(&dir.to_path_buf(), "fsync directory")
}

/// A sequential writer that hashes everything it writes (the whole-file checksum) and keeps a
/// crc32c of every [`STRIPE_BYTES`] stripe (the data-region checksums stored in the index).
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
    stripes: Vec<u32>,
    stripe_crc: u32,
    stripe_fill: usize,
}

impl<W> HashingWriter<W> {
    /// Checksums of the stripes written so far, the last one possibly partial.
    fn stripe_checksums(&self) -> Vec<u32> {
        let mut out = self.stripes.clone();
        if self.stripe_fill > 0 {
            out.push(self.stripe_crc);
        }
        out
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut rest = &buf[..n];
        self.hasher.update(rest);
        self.written += n as u64;
        while !rest.is_empty() {
            let take = rest.len().min(STRIPE_BYTES as usize - self.stripe_fill);
            self.stripe_crc = crc32c::crc32c_append(self.stripe_crc, &rest[..take]);
            self.stripe_fill += take;
            rest = &rest[take..];
            if self.stripe_fill == STRIPE_BYTES as usize {
                self.stripes.push(self.stripe_crc);
                self.stripe_crc = 0;
                self.stripe_fill = 0;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LogRecord;

    #[test]
    fn a_template_is_the_message_with_its_numbers_and_ids_masked() {
        let t = |m: &str| template_of(m.as_bytes());
        assert_eq!(
            t("order 4912601 created for user u-249 total=658.42"),
            t("order 17 created for user u-5 total=1.00")
        );
        assert_eq!(
            t("GET /api/v1/users/1144511 200"),
            t("GET /api/v1/users/7 404")
        );
        assert_eq!(
            t("request_id=req-a4a14060d8"),
            t("request_id=req-0c9f3e2b1a")
        );
        assert_ne!(t("cache hit for key"), t("cache miss for key"));
        assert_ne!(t("user 5 logged in"), t("user 5 logged out"));
        // Only the first TEMPLATE_PREFIX_BYTES bytes count.
        let long = "x".repeat(TEMPLATE_PREFIX_BYTES);
        assert_eq!(
            t(&format!("{long} tail one")),
            t(&format!("{long} tail two"))
        );
    }

    /// Rows of one cluster, alternating two templates, `step_ns` apart.
    fn alternating(step_ns: i64) -> RecordBatch {
        let records: Vec<LogRecord> = (0..40)
            .map(|i| LogRecord {
                timestamp: Some(1_700_000_000_000_000_000 + i * step_ns),
                service: Some("api".into()),
                level: Some("INFO".into()),
                message: if i % 2 == 0 {
                    format!("GET /users/{i} 200")
                } else {
                    format!("cache hit for key {i}")
                },
                ..Default::default()
            })
            .collect();
        crate::schema::batch_from_records(&records, 1, 0)
    }

    fn messages(batch: &RecordBatch) -> Vec<String> {
        let sorted = sort_for_segment(batch).unwrap();
        let column = sorted
            .column_by_name(schema::MESSAGE)
            .unwrap()
            .as_string::<i32>();
        column.iter().map(|m| m.unwrap().to_owned()).collect()
    }

    #[test]
    fn rows_of_one_template_sit_together_unless_times_are_whole_seconds() {
        // Milliseconds apart: grouped by template, each group in time order.
        let grouped = messages(&alternating(1_000_000));
        let first_kind = grouped[0].starts_with("GET");
        assert!(
            grouped[..20]
                .iter()
                .all(|m| m.starts_with("GET") == first_kind)
        );
        assert!(
            grouped[20..]
                .iter()
                .all(|m| m.starts_with("GET") != first_kind)
        );
        let numbers = |ms: &[String]| -> Vec<u32> {
            ms.iter()
                .map(|m| {
                    m.split(' ')
                        .find_map(|w| w.rsplit('/').next()?.parse().ok())
                        .unwrap()
                })
                .collect()
        };
        assert!(numbers(&grouped[..20]).is_sorted());
        assert!(numbers(&grouped[20..]).is_sorted());
        let in_time_order = |ms: Vec<String>| {
            ms.iter()
                .enumerate()
                .all(|(i, m)| m.starts_with("GET") == (i % 2 == 0))
        };
        // Whole seconds apart: time order.
        assert!(in_time_order(messages(&alternating(1_000_000_000))));
        // Ten minutes of event time bound a group: rows an hour apart stay in time order.
        assert!(in_time_order(messages(&alternating(3_600_000_000_001))));
    }
}
