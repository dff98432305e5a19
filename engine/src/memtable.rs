//! The memtable: acknowledged rows not yet in segments, as Arrow batches per stream and hour.
//! Requests enter it in WAL order (each one's rows grouped by cluster, see [`grouped_order`]); a
//! frozen memtable holds exactly one contiguous `_seq` range.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use arrow::array::RecordBatch;
use silt_storage::record::LogRecord;
use silt_storage::schema::LogBatchBuilder;

/// An active builder is sealed into a batch after this many rows, so queries can share it.
pub const SEAL_ROWS: usize = 8192;
/// Rows reserved by an hour's first builder; it grows as rows come. Sparse input (an old file
/// with a line an hour) makes thousands of hours, each of which must cost little memory: a full
/// [`SEAL_ROWS`] builder reserves ~1.3 MB, which the allocator and transparent huge pages make
/// resident (17,520 hourly lines took 19.6 GB).
const FIRST_BUILDER_ROWS: usize = 16;
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// The rows of one stream and hour.
#[derive(Default)]
pub struct HourBuffer {
    pub sealed: Vec<RecordBatch>,
    active: Option<LogBatchBuilder>,
    pub rows: usize,
}

impl HourBuffer {
    fn append(&mut self, record: &LogRecord, seq: u64, observed_ns: i64) {
        let sealed = &self.sealed;
        let builder = self.active.get_or_insert_with(|| match sealed.last() {
            // An hour that filled one builder is dense: later builders are reserved whole,
            // for rows like the last batch's.
            Some(last) => LogBatchBuilder::sized_like(last),
            None => LogBatchBuilder::with_capacity(FIRST_BUILDER_ROWS),
        });
        builder.append(record, seq, observed_ns);
        self.rows += 1;
        if builder.len() >= SEAL_ROWS {
            let batch = builder.finish();
            self.sealed.push(batch);
            // `finish` leaves the builder empty and unreserved: the next row starts a new one,
            // reserved whole, rather than growing this one by doubling again.
            self.active = None;
        }
    }

    /// All rows so far as batches, leaving the buffer as it is (for queries).
    pub fn snapshot(&self) -> Vec<RecordBatch> {
        let mut out = self.sealed.clone();
        if let Some(builder) = self.active.as_ref().filter(|b| !b.is_empty()) {
            out.push(builder.finish_cloned());
        }
        out
    }

    /// All rows as batches (seals the active builder).
    pub fn into_batches(mut self) -> Vec<RecordBatch> {
        if let Some(mut builder) = self.active.take()
            && !builder.is_empty()
        {
            self.sealed.push(builder.finish());
        }
        self.sealed
    }
}

/// Rows of one stream and hour in a frozen memtable.
#[derive(Debug, Clone)]
pub struct FrozenHour {
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
}

/// A memtable being flushed: immutable batches covering one contiguous `_seq` range. It stays
/// readable (and in the WAL) until the catalog commit of its segments.
#[derive(Debug)]
pub struct FrozenMemtable {
    pub hours: BTreeMap<(String, i64), FrozenHour>,
    pub seq: (u64, u64),
    pub rows: usize,
    pub bytes: usize,
}

/// Rows of one tenant waiting for a flush.
pub struct Memtable {
    /// (stream, hour since the epoch) → rows.
    pub hours: BTreeMap<(String, i64), HourBuffer>,
    rows: usize,
    bytes: usize,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    created: Instant,
}

impl Default for Memtable {
    fn default() -> Self {
        Self {
            hours: BTreeMap::new(),
            rows: 0,
            bytes: 0,
            first_seq: None,
            last_seq: None,
            created: Instant::now(),
        }
    }
}

impl Memtable {
    /// Adds the rows of one request; they get `_seq` from `first_seq` on.
    pub fn insert(
        &mut self,
        stream: &str,
        records: &[LogRecord],
        first_seq: u64,
        observed_ns: i64,
    ) {
        if records.is_empty() {
            return;
        }
        if self.rows == 0 {
            self.created = Instant::now();
        }
        let hour_of = |r: &LogRecord| r.timestamp.unwrap_or(observed_ns).div_euclid(HOUR_NS);
        let order = grouped_order(records, hour_of);
        // One buffer look-up per run of rows in the same hour, not one per row.
        let mut start = 0;
        while start < order.len() {
            let hour = hour_of(&records[order[start]]);
            let run = order[start..]
                .iter()
                .position(|&i| hour_of(&records[i]) != hour)
                .unwrap_or(order.len() - start);
            let buffer = self.hours.entry((stream.to_string(), hour)).or_default();
            for &i in &order[start..start + run] {
                let record = &records[i];
                buffer.append(record, first_seq + i as u64, observed_ns);
                self.bytes += approximate_bytes(record);
            }
            start += run;
        }
        self.rows += records.len();
        self.first_seq.get_or_insert(first_seq);
        self.last_seq = Some(first_seq + records.len() as u64 - 1);
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes reserved by the active builders of every hour (see
    /// [`LogBatchBuilder::reserved_bytes`]).
    pub fn reserved_bytes(&self) -> usize {
        self.hours
            .values()
            .filter_map(|h| h.active.as_ref())
            .map(LogBatchBuilder::reserved_bytes)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate memory held, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Time since the first row arrived.
    pub fn age(&self) -> std::time::Duration {
        self.created.elapsed()
    }

    /// Seals every builder; `None` when empty.
    pub fn freeze(self) -> Option<FrozenMemtable> {
        let seq = self.seq_range()?;
        let hours = self
            .hours
            .into_iter()
            .map(|(key, buffer)| {
                let rows = buffer.rows;
                (
                    key,
                    FrozenHour {
                        batches: buffer.into_batches(),
                        rows,
                    },
                )
            })
            .collect();
        Some(FrozenMemtable {
            hours,
            seq,
            rows: self.rows,
            bytes: self.bytes,
        })
    }

    /// The inclusive `_seq` range of the rows, if any.
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        Some((self.first_seq?, self.last_seq?))
    }
}

/// The order in which a request's rows enter the memtable: grouped by hour, `service` and
/// `level`, the groups in order of first appearance and each group's rows in arrival order.
///
/// A flush writes a segment's rows clustered by service and level
/// ([`silt_storage::segment::ROW_ORDER`]). With each request's clusters already in runs, it
/// gathers a run at a time instead of one row here and one there across the whole memtable (a
/// cache miss per value of every column): `interleave` fell from 4.7% to 1.0% of `silt ingest`'s
/// CPU samples on the benchmark corpus.
fn grouped_order(records: &[LogRecord], hour_of: impl Fn(&LogRecord) -> i64) -> Vec<usize> {
    type Group<'a> = (i64, Option<&'a str>, Option<&'a str>);
    // foldhash, not SipHash (0.7% of `silt ingest`'s CPU samples): one look-up per run of rows.
    // Seeded per process like SipHash, since the keys are the senders' own labels.
    let mut groups: HashMap<Group<'_>, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut group_of = Vec::with_capacity(records.len());
    let mut sizes: Vec<usize> = Vec::new();
    let mut last: Option<(Group<'_>, usize)> = None;
    for record in records {
        let key = (
            hour_of(record),
            record.service.as_deref(),
            record.level.as_deref(),
        );
        let group = match last {
            Some((k, group)) if k == key => group,
            _ => {
                let next = sizes.len();
                let group = *groups.entry(key).or_insert(next);
                if group == next {
                    sizes.push(0);
                }
                last = Some((key, group));
                group
            }
        };
        sizes[group] += 1;
        group_of.push(group);
    }
    let mut next: Vec<usize> = sizes
        .iter()
        .scan(0, |start, &size| {
            let first = *start;
            *start += size;
            Some(first)
        })
        .collect();
    let mut order = vec![0; records.len()];
    for (row, group) in group_of.into_iter().enumerate() {
        let slot = &mut next[group];
        order[*slot] = row;
        *slot += 1;
    }
    order
}

/// Bytes a record costs in the memtable: its strings plus fixed per-row overhead.
pub fn approximate_bytes(record: &LogRecord) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    64 + record.message.len()
        + opt(&record.level)
        + opt(&record.service)
        + opt(&record.host)
        + opt(&record.trace_id)
        + opt(&record.span_id)
        + record
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    fn record(hour: i64) -> LogRecord {
        LogRecord {
            timestamp: Some(hour * HOUR_NS + 1),
            message: format!("nightly job {hour} finished"),
            ..LogRecord::default()
        }
    }

    /// A request's rows enter the memtable grouped by hour, service and level, each group in
    /// arrival order, and keep the `_seq` of their place in the request.
    #[test]
    fn rows_enter_grouped_by_hour_and_cluster_keeping_their_seq() {
        let row = |hour: i64, service: &str, level: &str, n: usize| LogRecord {
            timestamp: Some(hour * HOUR_NS + n as i64),
            service: Some(service.to_owned()),
            level: Some(level.to_owned()),
            message: format!("row {n}"),
            ..LogRecord::default()
        };
        let records = vec![
            row(7, "api", "INFO", 0),
            row(7, "db", "INFO", 1),
            row(7, "api", "ERROR", 2),
            row(8, "api", "INFO", 3),
            row(7, "api", "INFO", 4),
            row(7, "db", "INFO", 5),
            row(7, "api", "INFO", 6),
        ];
        let hour_of = |r: &LogRecord| r.timestamp.unwrap().div_euclid(HOUR_NS);
        assert_eq!(grouped_order(&records, hour_of), [0, 4, 6, 1, 5, 2, 3]);

        let mut memtable = Memtable::default();
        memtable.insert("default", &records, 100, 0);
        let batches = memtable.freeze().unwrap().hours;
        let column = |hour: i64, name: &str| {
            let batch = &batches[&("default".to_string(), hour)].batches[0];
            batch.column_by_name(name).unwrap().clone()
        };
        let seqs = column(7, silt_storage::schema::SEQ);
        let seqs = seqs.as_primitive::<arrow::datatypes::UInt64Type>();
        assert_eq!(seqs.values(), &[100, 104, 106, 101, 105, 102]);
        let messages = column(7, silt_storage::schema::MESSAGE);
        assert_eq!(messages.as_string::<i32>().value(1), "row 4");
        let seqs = column(8, silt_storage::schema::SEQ);
        assert_eq!(
            seqs.as_primitive::<arrow::datatypes::UInt64Type>().values(),
            &[103]
        );
    }

    /// An old file with a line an hour must not reserve a full builder per hour: 17,520 such
    /// lines once took 18.8 GB (`ingest-bench --sparse`).
    #[test]
    fn sparse_hours_reserve_little() {
        let mut memtable = Memtable::default();
        let hours = 5_000;
        let records: Vec<LogRecord> = (0..hours).map(record).collect();
        memtable.insert("default", &records, 0, 0);
        assert_eq!(memtable.hours.len(), hours as usize);
        let per_hour = memtable.reserved_bytes() / hours as usize;
        assert!(
            per_hour < 8 * 1024,
            "{per_hour} bytes reserved per sparse hour"
        );

        // A dense hour still ends up with full-size builders once it has filled one: sized
        // for the rows and message bytes of the batch it sealed.
        let dense: Vec<LogRecord> = (0..SEAL_ROWS + 1).map(|_| record(hours)).collect();
        memtable.insert("default", &dense, hours as u64, 0);
        let buffer = &memtable.hours[&("default".to_string(), hours)];
        assert_eq!(buffer.sealed.len(), 1);
        let active = buffer.active.as_ref().expect("a second builder");
        let message_bytes = buffer.sealed[0]
            .column_by_name(silt_storage::schema::MESSAGE)
            .expect("log schema")
            .as_string::<i32>()
            .value_data()
            .len();
        assert!(message_bytes >= SEAL_ROWS * 10, "{message_bytes}");
        assert!(
            active.reserved_bytes() >= SEAL_ROWS * (8 * 4 + 4 * 6) + message_bytes,
            "{}",
            active.reserved_bytes()
        );
    }
}
