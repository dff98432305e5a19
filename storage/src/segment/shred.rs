//! Attribute shredding: a segment stores each of its frequent attribute keys as a column of its
//! own (`attributes.<key>`) and the other entries in the `attributes` map; readers fold them back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, MapArray, MapBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::schema::{self, log_schema, map_field_names};

/// Column-name prefix of a shredded attribute key: key `http.status` is column
/// `attributes.http.status`. No column of the log schema starts with it.
pub const SHRED_PREFIX: &str = "attributes.";

/// Most keys one segment shreds; the rest stay in the map.
pub const MAX_SHREDDED_KEYS: usize = 64;

/// A key is shredded when at least this fraction (1/N) of the segment's rows carry it: a column
/// mostly of nulls costs a few bytes a page, but each one is a column chunk in the footer.
const SHRED_MIN_ROWS_DIVISOR: usize = 20;

/// Values sampled per key to decide whether its column gets a dictionary.
const DICTIONARY_SAMPLE_VALUES: usize = 4096;

/// The column that stores attribute `key` in a segment.
pub fn shred_column(key: &str) -> String {
    format!("{SHRED_PREFIX}{key}")
}

/// The attribute key stored in column `name`, if it is a shredded attribute.
pub fn shredded_key(name: &str) -> Option<&str> {
    name.strip_prefix(SHRED_PREFIX).filter(|k| !k.is_empty())
}

/// The columns a segment shreds its attributes into, in column order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShredPlan {
    pub columns: Vec<ShreddedColumn>,
}

/// One shredded attribute key and how its column stores the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShreddedColumn {
    pub key: String,
    /// `None`: a dictionary. Otherwise the layout of the values, [`ValueLayout::PLAIN`] until
    /// [`ShredPlan::choose_layouts`] picks one.
    pub layout: Option<ValueLayout>,
}

/// The column of shredded attribute `key`, as segments store it and readers read it.
pub fn shred_field(key: &str) -> Field {
    Field::new(shred_column(key), DataType::Utf8, true)
}

/// How a shredded column without a dictionary stores its values: an encoding, and the zstd
/// level its pages get. Which is smallest depends on the values (benchmark corpus, pyarrow, bytes
/// a row, 8 KiB pages): random ids with a shared prefix (`req-8f3a…`) and names sharing a prefix
/// within a cluster (`u-56222`) as `DELTA_BYTE_ARRAY` at level 1 (8.51 against 8.76 plain, 3.07
/// against 3.27 at level 3), numbers of varying length as `DELTA_LENGTH_BYTE_ARRAY` at level 1
/// (durations, 3.02 against 3.16 at level 3), paths ending in an id plain at level 5 (5.30
/// against 6.09 at level 3: the levels from 5 on search for the repeated prefix lazily).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValueLayout {
    pub encoding: ValueEncoding,
    pub level: ValueLevel,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValueEncoding {
    #[default]
    Plain,
    DeltaLength,
    DeltaPrefix,
}

/// The zstd level of a shredded column's pages, relative to the segment's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValueLevel {
    /// The segment's level.
    #[default]
    Segment,
    /// Level 1.
    Fast,
    /// At least [`TIGHT_ZSTD_LEVEL`]: 2-3 times level 3's CPU for these pages, so taken only
    /// when it saves [`TIGHT_MIN_SAVING_PERCENT`] of the best cheaper layout's bytes.
    Tight,
}

/// The zstd level of [`ValueLevel::Tight`] (unless the segment's is higher).
const TIGHT_ZSTD_LEVEL: i32 = 5;
/// What [`ValueLevel::Tight`] must save, in percent of the best layout at level 1 or the
/// segment's, to be chosen.
const TIGHT_MIN_SAVING_PERCENT: usize = 10;

impl ValueLayout {
    pub const PLAIN: ValueLayout = ValueLayout {
        encoding: ValueEncoding::Plain,
        level: ValueLevel::Segment,
    };

    /// Every layout.
    const ALL: [ValueLayout; 9] = {
        use ValueEncoding::*;
        use ValueLevel::*;
        const fn layout(encoding: ValueEncoding, level: ValueLevel) -> ValueLayout {
            ValueLayout { encoding, level }
        }
        [
            layout(Plain, Segment),
            layout(Plain, Fast),
            layout(DeltaLength, Segment),
            layout(DeltaLength, Fast),
            layout(DeltaPrefix, Segment),
            layout(DeltaPrefix, Fast),
            layout(Plain, Tight),
            layout(DeltaLength, Tight),
            layout(DeltaPrefix, Tight),
        ]
    };

    pub fn encoding(self) -> parquet::basic::Encoding {
        use parquet::basic::Encoding;
        match self.encoding {
            ValueEncoding::Plain => Encoding::PLAIN,
            ValueEncoding::DeltaLength => Encoding::DELTA_LENGTH_BYTE_ARRAY,
            ValueEncoding::DeltaPrefix => Encoding::DELTA_BYTE_ARRAY,
        }
    }

    /// The zstd level, given the segment's.
    pub fn zstd_level(self, level: i32) -> i32 {
        match self.level {
            ValueLevel::Segment => level,
            ValueLevel::Fast => 1,
            ValueLevel::Tight => level.max(TIGHT_ZSTD_LEVEL),
        }
    }

    /// The values as this layout lays them out on a page, near enough for zstd to size them:
    /// Parquet's delta encodings bit-pack their lengths, here one or two bytes each.
    fn lay_out(self, values: &[&str], out: &mut Vec<u8>) {
        let short = |n: usize, out: &mut Vec<u8>| out.extend_from_slice(&(n as u16).to_le_bytes());
        match self.encoding {
            ValueEncoding::Plain => {
                for v in values {
                    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    out.extend_from_slice(v.as_bytes());
                }
            }
            ValueEncoding::DeltaLength => {
                for v in values {
                    short(v.len(), out);
                }
                for v in values {
                    out.extend_from_slice(v.as_bytes());
                }
            }
            ValueEncoding::DeltaPrefix => {
                let mut previous: &[u8] = &[];
                let mut suffixes = Vec::new();
                for v in values {
                    let v = v.as_bytes();
                    let prefix = previous.iter().zip(v).take_while(|(a, b)| a == b).count();
                    short(prefix, out);
                    short(v.len() - prefix, out);
                    suffixes.extend_from_slice(&v[prefix..]);
                    previous = v;
                }
                out.extend_from_slice(&suffixes);
            }
        }
    }
}

/// Rows sampled, in segment order, to choose each column's [`ValueLayout`]: runs of
/// [`LAYOUT_SAMPLE_RUN`] consecutive rows spread over the segment, since a value's neighbours
/// (a cluster's shared prefixes) decide what compresses.
const LAYOUT_SAMPLE_RUNS: usize = 8;
const LAYOUT_SAMPLE_RUN: usize = 512;
/// Page size limit (uncompressed bytes) of a shredded attribute column. Fetching a hit's row
/// decompresses one page of each such column: nine 32 KiB pages on the benchmark corpus, where
/// the map had been one, took one-hit needles from 0.38 to 0.54 of ClickHouse's time (issue
/// 4's must: 0.50). 8 KiB pages (~512 values of ~20 bytes, the size being checked every
/// 256 values by the writer) cost those columns 5% more bytes (pyarrow: 23.4 -> 24.8 B/row).
pub const SHREDDED_PAGE_BYTES: usize = 8 * 1024;

impl ShredPlan {
    /// The keys worth a column of their own in a segment of `batches` (log schema): those in at
    /// least one row in [`SHRED_MIN_ROWS_DIVISOR`], the [`MAX_SHREDDED_KEYS`] most frequent, in
    /// the order they first appear (so rows that all list the same keys read back in their
    /// order). A key's column gets a dictionary when at most a quarter of its first
    /// [`DICTIONARY_SAMPLE_VALUES`] values are distinct (levels, regions, status codes), and
    /// none when they are mostly unique (request ids), where a dictionary would be abandoned.
    pub fn choose(batches: &[&RecordBatch]) -> Self {
        // (key, rows carrying it, sampled values, distinct sampled values)
        let mut seen: Vec<(
            &str,
            usize,
            usize,
            HashSet<&str, foldhash::fast::RandomState>,
        )> = Vec::new();
        let mut ids: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut last = PositionCache::default();
        let mut rows = 0usize;
        for batch in batches {
            let Some(map) = attributes_of(batch) else {
                continue;
            };
            rows += batch.num_rows();
            let keys = map.keys().as_string::<i32>();
            let values = map.values().as_string::<i32>();
            let offsets = map.value_offsets();
            for row in 0..map.len() {
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                for (position, i) in (start..end).enumerate() {
                    let key = keys.value(i);
                    let id = last.get(position, key, |key| {
                        *ids.entry(key).or_insert_with(|| {
                            seen.push((key, 0, 0, HashSet::default()));
                            seen.len() - 1
                        })
                    });
                    let entry = &mut seen[id];
                    entry.1 += 1;
                    if entry.2 < DICTIONARY_SAMPLE_VALUES && values.is_valid(i) {
                        entry.2 += 1;
                        entry.3.insert(values.value(i));
                    }
                }
            }
        }
        let min_rows = rows.div_ceil(SHRED_MIN_ROWS_DIVISOR).max(1);
        // An empty key would name the column `attributes.`, which is no key's: it stays in the map.
        let mut frequent: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i].1 >= min_rows && !seen[i].0.is_empty())
            .collect();
        // Most frequent first (first seen among equals), then back to first-seen order.
        frequent.sort_by_key(|&i| (std::cmp::Reverse(seen[i].1), i));
        frequent.truncate(MAX_SHREDDED_KEYS);
        frequent.sort_unstable();
        let columns = frequent
            .iter()
            .map(|&i| {
                let (key, _, sampled, distinct) = &seen[i];
                let dictionary = *sampled > 0 && distinct.len() * 4 <= *sampled;
                ShreddedColumn {
                    key: (*key).to_owned(),
                    layout: (!dictionary).then_some(ValueLayout::PLAIN),
                }
            })
            .collect();
        Self { columns }
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Chooses the [`ValueLayout`] of each column without a dictionary by compressing a sample
    /// of its values (rows in segment order, as `(batch, row)` of `batches`) in each layout
    /// (zstd at the layout's level given the segment's `zstd_level`) in pages of
    /// [`SHREDDED_PAGE_BYTES`]: the smallest at level 1 or the segment's, unless one at
    /// [`ValueLevel::Tight`] saves [`TIGHT_MIN_SAVING_PERCENT`] of its bytes.
    pub fn choose_layouts(
        &mut self,
        batches: &[&RecordBatch],
        order: &[(usize, usize)],
        zstd_level: i32,
    ) {
        let columns: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i].layout.is_some())
            .collect();
        if columns.is_empty() || order.is_empty() {
            return;
        }
        let slot: HashMap<&str, usize, foldhash::fast::RandomState> = columns
            .iter()
            .enumerate()
            .map(|(n, &i)| (self.columns[i].key.as_str(), n))
            .collect();
        let mut samples: Vec<Vec<&str>> = vec![Vec::new(); columns.len()];
        let runs = LAYOUT_SAMPLE_RUNS.min(order.len().div_ceil(LAYOUT_SAMPLE_RUN));
        for run in 0..runs {
            let start = order.len() * run / runs;
            for &(b, row) in &order[start..(start + LAYOUT_SAMPLE_RUN).min(order.len())] {
                let Some(map) = attributes_of(batches[b]) else {
                    continue;
                };
                let (keys, values) = (
                    map.keys().as_string::<i32>(),
                    map.values().as_string::<i32>(),
                );
                let offsets = map.value_offsets();
                let mut taken = vec![false; columns.len()];
                for i in offsets[row] as usize..offsets[row + 1] as usize {
                    if let Some(&n) = slot.get(keys.value(i))
                        && !taken[n]
                        && values.is_valid(i)
                    {
                        taken[n] = true;
                        samples[n].push(values.value(i));
                    }
                }
            }
        }
        let mut laid = Vec::new();
        for (n, &i) in columns.iter().enumerate() {
            let sizes = ValueLayout::ALL.map(|layout| {
                let mut compressed = 0usize;
                let mut start = 0;
                // One page at a time, as Parquet compresses them.
                while start < samples[n].len() {
                    let (mut end, mut bytes) = (start, 0);
                    while end < samples[n].len() && bytes < SHREDDED_PAGE_BYTES {
                        bytes += samples[n][end].len() + 4;
                        end += 1;
                    }
                    laid.clear();
                    layout.lay_out(&samples[n][start..end], &mut laid);
                    compressed += zstd::bulk::compress(&laid, layout.zstd_level(zstd_level))
                        .map_or(usize::MAX, |c| c.len());
                    start = end;
                }
                (compressed, layout)
            });
            let smallest = |tight: bool| {
                sizes
                    .iter()
                    .copied()
                    .filter(|(_, l)| (l.level == ValueLevel::Tight) == tight)
                    .min_by_key(|(size, _)| *size)
            };
            let best = match (smallest(false), smallest(true)) {
                (Some((cheap_size, cheap)), Some((tight_size, tight))) => {
                    let saved = cheap_size.saturating_sub(tight_size);
                    if saved * 100 >= cheap_size * TIGHT_MIN_SAVING_PERCENT && tight_size > 0 {
                        tight
                    } else {
                        cheap
                    }
                }
                (best, _) => best.map_or(ValueLayout::PLAIN, |(_, l)| l),
            };
            self.columns[i].layout = Some(best);
        }
    }

    /// The schema a segment with these shredded keys stores: the log schema, then one nullable
    /// string column per key.
    pub fn file_schema(&self) -> SchemaRef {
        if self.columns.is_empty() {
            return log_schema();
        }
        let mut fields: Vec<Field> = log_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(self.columns.iter().map(|c| shred_field(&c.key)));
        Arc::new(Schema::new(fields))
    }

    /// Splits `batch` (log schema) into the columns of `file_schema`, this plan's
    /// [`file_schema`](Self::file_schema) (made once per segment, not per batch): the first
    /// entry of a shredded key in a row goes to its column; other keys, a key repeated within a
    /// row, and a key whose first entry is null stay in the map.
    pub fn shred(
        &self,
        batch: &RecordBatch,
        file_schema: &SchemaRef,
    ) -> Result<RecordBatch, ArrowError> {
        if self.columns.is_empty() {
            return Ok(batch.clone());
        }
        let map = attributes_of(batch)
            .ok_or_else(|| ArrowError::SchemaError("batch has no attributes map".into()))?;
        let slots: HashMap<&str, usize, foldhash::fast::RandomState> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.key.as_str(), i))
            .collect();
        let keys = map.keys().as_string::<i32>();
        let values = map.values().as_string::<i32>();
        let offsets = map.value_offsets();
        let rows = map.len();
        let mut columns: Vec<StringBuilder> = (0..self.columns.len())
            .map(|_| StringBuilder::with_capacity(rows, 0))
            .collect();
        let mut residual = MapBuilder::new(
            Some(map_field_names()),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        // Per column, this row's first entry of its key: `Some(Some(i))` when entry `i` went to
        // the column, `Some(None)` when it was null and stayed in the map with any later ones (so
        // `attributes['k']`, the first entry's value, reads the same either way).
        let mut row_values: Vec<Option<Option<usize>>> = vec![None; self.columns.len()];
        let mut last = PositionCache::default();
        for row in 0..rows {
            row_values.fill(None);
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            for (position, i) in (start..end).enumerate() {
                let key = keys.value(i);
                let slot = last.get(position, key, |key| slots.get(key).copied());
                let first = slot.filter(|&s| row_values[s].is_none());
                let valid = values.is_valid(i);
                if let Some(s) = first {
                    row_values[s] = Some(valid.then_some(i));
                }
                if first.is_none() || !valid {
                    residual.keys().append_value(key);
                    residual
                        .values()
                        .append_option(valid.then(|| values.value(i)));
                }
            }
            residual.append(map.is_valid(row))?;
            for (column, value) in columns.iter_mut().zip(&row_values) {
                column.append_option(value.flatten().map(|i| values.value(i)));
            }
        }
        let attributes_at = log_schema()
            .index_of(schema::ATTRIBUTES)
            .expect("log schema");
        let mut out: Vec<ArrayRef> = batch.columns().to_vec();
        out[attributes_at] = Arc::new(residual.finish());
        out.extend(columns.iter_mut().map(|c| Arc::new(c.finish()) as ArrayRef));
        RecordBatch::try_new(file_schema.clone(), out)
    }
}

/// What was looked up for the key at each entry position of the previous row: rows from one
/// producer list the same keys in the same order, so most look-ups are one string comparison.
struct PositionCache<'a, T> {
    last: Vec<(&'a str, T)>,
}

impl<T> Default for PositionCache<'_, T> {
    fn default() -> Self {
        Self { last: Vec::new() }
    }
}

impl<'a, T: Copy> PositionCache<'a, T> {
    /// The value for `key` at entry `position` of a row (positions come 0, 1, 2, … in each row):
    /// the previous row's if it had the same key there, else `look_up(key)`.
    fn get(&mut self, position: usize, key: &'a str, look_up: impl FnOnce(&'a str) -> T) -> T {
        match self.last.get(position) {
            Some(&(k, value)) if crate::index::same_bytes(k.as_bytes(), key.as_bytes()) => value,
            _ => {
                let value = look_up(key);
                if position < self.last.len() {
                    self.last[position] = (key, value);
                } else {
                    self.last.push((key, value));
                }
                value
            }
        }
    }
}

fn attributes_of(batch: &RecordBatch) -> Option<&MapArray> {
    batch
        .column_by_name(schema::ATTRIBUTES)
        .and_then(|c| c.as_map_opt())
}

/// The `attributes` map of rows whose entries are split between `residual` (the stored map)
/// and `shreds` (`(key, column)`, each column strings of any Arrow string type): per row, the
/// shredded keys with a value, in column order, then the map's entries. A row is null only when
/// its stored map is null and no shredded key has a value.
pub fn fold_attributes(
    residual: &MapArray,
    shreds: &[(&str, &ArrayRef)],
) -> Result<MapArray, ArrowError> {
    let shreds: Vec<(&str, StringArray)> = shreds
        .iter()
        .map(|(k, column)| {
            let utf8 = arrow::compute::cast(column, &DataType::Utf8)?;
            Ok((*k, utf8.as_string::<i32>().clone()))
        })
        .collect::<Result<_, ArrowError>>()?;
    let keys = residual.keys().as_string_opt::<i32>().ok_or_else(|| {
        ArrowError::SchemaError("attributes map keys are not Utf8 strings".into())
    })?;
    let values = residual.values().as_string_opt::<i32>().ok_or_else(|| {
        ArrowError::SchemaError("attributes map values are not Utf8 strings".into())
    })?;
    let rows = residual.len();
    for (key, column) in &shreds {
        if column.len() != rows {
            return Err(ArrowError::InvalidArgumentError(format!(
                "shredded attribute {key} has {} rows, the map {rows}",
                column.len()
            )));
        }
    }
    let entries = keys.len()
        + shreds
            .iter()
            .map(|(_, c)| rows - c.null_count())
            .sum::<usize>();
    let value_bytes = values.value_data().len()
        + shreds
            .iter()
            .map(|(_, c)| c.value_data().len())
            .sum::<usize>();
    let mut out = MapBuilder::with_capacity(
        Some(map_field_names()),
        StringBuilder::with_capacity(entries, entries * 8),
        StringBuilder::with_capacity(entries, value_bytes),
        rows,
    );
    let offsets = residual.value_offsets();
    for row in 0..rows {
        let mut any = false;
        for (key, column) in &shreds {
            if column.is_valid(row) {
                out.keys().append_value(key);
                out.values().append_value(column.value(row));
                any = true;
            }
        }
        for i in offsets[row] as usize..offsets[row + 1] as usize {
            out.keys().append_value(keys.value(i));
            out.values()
                .append_option(values.is_valid(i).then(|| values.value(i)));
        }
        out.append(any || residual.is_valid(row))?;
    }
    Ok(out.finish())
}

/// Folds the shredded attribute columns of `batch` (columns named `attributes.<key>`) into its
/// `attributes` map, returning a batch without them. A batch without shredded columns is
/// returned as it is; one with them but without `attributes` loses them.
pub fn fold_batch(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let shred_columns: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| shredded_key(schema.field(i).name()).is_some())
        .collect();
    if shred_columns.is_empty() {
        return Ok(batch);
    }
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !shred_columns.contains(i))
        .collect();
    let mut columns: Vec<ArrayRef> = keep.iter().map(|&i| batch.column(i).clone()).collect();
    let fields: Vec<Field> = keep
        .iter()
        .map(|&i| schema.field(i).as_ref().clone())
        .collect();
    if let Some(at) = fields.iter().position(|f| f.name() == schema::ATTRIBUTES) {
        let residual = columns[at]
            .as_map_opt()
            .ok_or_else(|| ArrowError::SchemaError("attributes column is not a map".into()))?;
        let shreds: Vec<(&str, &ArrayRef)> = shred_columns
            .iter()
            .map(|&i| {
                (
                    shredded_key(schema.field(i).name()).expect("filtered"),
                    batch.column(i),
                )
            })
            .collect();
        columns[at] = Arc::new(fold_attributes(residual, &shreds)?);
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rows: &[Option<&[(&str, &str)]>]) -> MapArray {
        let mut b = MapBuilder::new(
            Some(map_field_names()),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        for row in rows {
            for (k, v) in row.unwrap_or_default() {
                b.keys().append_value(k);
                b.values().append_value(v);
            }
            b.append(row.is_some()).unwrap();
        }
        b.finish()
    }

    fn entries(m: &MapArray, row: usize) -> Option<Vec<(String, String)>> {
        m.is_valid(row).then(|| {
            let e = m.value(row);
            let (k, v) = (
                e.column(0).as_string::<i32>(),
                e.column(1).as_string::<i32>(),
            );
            (0..k.len())
                .map(|i| (k.value(i).to_owned(), v.value(i).to_owned()))
                .collect()
        })
    }

    #[test]
    fn a_layout_at_the_tight_level_is_taken_only_where_it_saves_a_tenth() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let records: Vec<_> = (0..4096)
            .map(|_| {
                let path =
                    ["/api/v1/orders", "/api/v1/users", "/api/v2/search"][rng.random_range(0..3)];
                crate::record::LogRecord {
                    attributes: vec![
                        // A few prefixes, each followed by an id: levels from 5 on find the
                        // prefix where 1 and 3 spend a sequence on it.
                        (
                            "path".into(),
                            format!("{path}/{}", rng.random_range(0..5_000_000)),
                        ),
                        // Random: no level compresses it better.
                        ("id".into(), format!("{:016x}", rng.random::<u64>())),
                    ],
                    ..Default::default()
                }
            })
            .collect();
        let batch = crate::schema::batch_from_records(&records, 1, 0);
        let mut plan = ShredPlan::choose(&[&batch]);
        let order: Vec<(usize, usize)> = (0..records.len()).map(|row| (0, row)).collect();
        plan.choose_layouts(&[&batch], &order, 3);
        let level = |key: &str| {
            let column = plan.columns.iter().find(|c| c.key == key).unwrap();
            column.layout.unwrap().level
        };
        assert_eq!(level("path"), ValueLevel::Tight);
        assert_ne!(level("id"), ValueLevel::Tight);
        let tight = ValueLayout {
            level: ValueLevel::Tight,
            ..ValueLayout::PLAIN
        };
        assert_eq!(tight.zstd_level(3), TIGHT_ZSTD_LEVEL);
        assert_eq!(tight.zstd_level(9), 9);
    }

    #[test]
    fn a_key_whose_first_entry_is_null_stays_in_the_map() {
        // `attributes['k']` is the first entry's value: null here, not the later "x".
        let records = vec![crate::record::LogRecord::default(); 3];
        let batch = crate::schema::batch_from_records(&records, 1, 0);
        let mut b = MapBuilder::new(
            Some(map_field_names()),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        for row in [
            vec![("k", None), ("k", Some("x"))],
            vec![("k", Some("y"))],
            vec![],
        ] {
            for (k, v) in row {
                b.keys().append_value(k);
                b.values().append_option(v);
            }
            b.append(true).unwrap();
        }
        let original: ArrayRef = Arc::new(b.finish());
        let at = log_schema().index_of(schema::ATTRIBUTES).unwrap();
        let mut columns = batch.columns().to_vec();
        columns[at] = original.clone();
        let batch = RecordBatch::try_new(log_schema(), columns).unwrap();
        let plan = ShredPlan {
            columns: vec![ShreddedColumn {
                key: "k".into(),
                layout: Some(ValueLayout::PLAIN),
            }],
        };
        let stored = plan.shred(&batch, &plan.file_schema()).unwrap();
        let column = stored
            .column_by_name("attributes.k")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(column.iter().collect::<Vec<_>>(), [None, Some("y"), None]);
        let folded = fold_batch(stored).unwrap();
        assert_eq!(folded.column(at), &original);
    }

    #[test]
    fn fold_puts_shredded_keys_first_and_keeps_a_row_null_only_when_nothing_is_left() {
        let residual = map(&[Some(&[("b", "2")]), None, None, Some(&[])]);
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("1"), Some("x"), None, None]));
        let folded = fold_attributes(&residual, &[("a", &a)]).unwrap();
        let owned = |v: &[(&str, &str)]| -> Option<Vec<(String, String)>> {
            Some(
                v.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(entries(&folded, 0), owned(&[("a", "1"), ("b", "2")]));
        assert_eq!(entries(&folded, 1), owned(&[("a", "x")]));
        assert_eq!(entries(&folded, 2), None);
        assert_eq!(entries(&folded, 3), owned(&[]));
        // A column of another length is refused, not read past its end.
        let short: ArrayRef = Arc::new(StringArray::from(vec![Some("1")]));
        assert!(fold_attributes(&residual, &[("a", &short)]).is_err());
    }
}
