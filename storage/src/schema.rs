//! The `logs` table's Arrow schema (column names are the API) and a builder that turns
//! [`LogRecord`]s into record batches of that schema.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, MapBuilder, MapFieldNames, RecordBatch, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::record::LogRecord;

pub const TIMESTAMP: &str = "timestamp";
pub const OBSERVED_TIMESTAMP: &str = "observed_timestamp";
pub const LEVEL: &str = "level";
pub const SERVICE: &str = "service";
pub const HOST: &str = "host";
pub const TRACE_ID: &str = "trace_id";
pub const SPAN_ID: &str = "span_id";
pub const MESSAGE: &str = "message";
pub const ATTRIBUTES: &str = "attributes";
pub const SEQ: &str = "_seq";
pub const PATTERN_ID: &str = "pattern_id";

/// Keyword columns: exact-match strings indexed as `field=value` terms.
pub const KEYWORD_COLUMNS: [&str; 5] = [LEVEL, SERVICE, HOST, TRACE_ID, SPAN_ID];

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The field names of the `attributes` map's entries (see [`attributes_type`]).
pub fn map_field_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

/// `attributes`: Map<Utf8, Utf8>, keys unsorted.
pub fn attributes_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

static LOG_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(TIMESTAMP, timestamp_type(), false),
        Field::new(OBSERVED_TIMESTAMP, timestamp_type(), false),
        Field::new(LEVEL, DataType::Utf8, true),
        Field::new(SERVICE, DataType::Utf8, true),
        Field::new(HOST, DataType::Utf8, true),
        Field::new(TRACE_ID, DataType::Utf8, true),
        Field::new(SPAN_ID, DataType::Utf8, true),
        Field::new(MESSAGE, DataType::Utf8, false),
        Field::new(ATTRIBUTES, attributes_type(), true),
        Field::new(SEQ, DataType::UInt64, false),
        Field::new(PATTERN_ID, DataType::UInt64, true),
    ]))
});

/// The schema of the `logs` table as written by this version (segment format v1).
pub fn log_schema() -> SchemaRef {
    LOG_SCHEMA.clone()
}

/// Accumulates rows and produces [`RecordBatch`]es of [`log_schema`].
pub struct LogBatchBuilder {
    timestamp: TimestampNanosecondBuilder,
    observed: TimestampNanosecondBuilder,
    level: StringBuilder,
    service: StringBuilder,
    host: StringBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    message: StringBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    seq: UInt64Builder,
    pattern_id: UInt64Builder,
    rows: usize,
    /// Approximate bytes of string data appended so far.
    bytes: usize,
}

impl Default for LogBatchBuilder {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl LogBatchBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        // Every builder is sized from `rows`: a memtable holds one builder per stream and hour,
        // and the builders' default capacities (1,024 values each) would cost a sparse hour
        // ~50 KB.
        let bytes = |column: &str| rows * if column == MESSAGE { 128 } else { 16 };
        Self::reserved(rows, bytes, rows, (rows * 16, rows * 16))
    }

    /// A builder reserved for a batch like `batch` (its rows and each column's bytes, plus an
    /// eighth): sized from the batch before it, a memtable's next builder fills without
    /// regrowing its buffers (each regrowth copies them and faults in fresh pages).
    pub fn sized_like(batch: &RecordBatch) -> Self {
        let with_slack = |bytes: usize| bytes + bytes / 8;
        let value_bytes =
            |array: &dyn Array| with_slack(array.as_string::<i32>().value_data().len());
        let column = |name: &str| batch.column_by_name(name).expect("log schema").as_ref();
        let attributes = column(ATTRIBUTES).as_map();
        Self::reserved(
            batch.num_rows(),
            |name| value_bytes(column(name)),
            with_slack(attributes.entries().len()),
            (
                value_bytes(attributes.keys()),
                value_bytes(attributes.values()),
            ),
        )
    }

    /// A builder with room for `rows` rows, `bytes(column)` bytes of each string column's
    /// values, and `entries` attribute entries of `key_bytes` and `value_bytes` in all.
    fn reserved(
        rows: usize,
        bytes: impl Fn(&str) -> usize,
        entries: usize,
        (key_bytes, value_bytes): (usize, usize),
    ) -> Self {
        let tz: Arc<str> = "UTC".into();
        let strings = |column: &str| StringBuilder::with_capacity(rows, bytes(column));
        Self {
            timestamp: TimestampNanosecondBuilder::with_capacity(rows).with_timezone(tz.clone()),
            observed: TimestampNanosecondBuilder::with_capacity(rows).with_timezone(tz),
            level: strings(LEVEL),
            service: strings(SERVICE),
            host: strings(HOST),
            trace_id: strings(TRACE_ID),
            span_id: strings(SPAN_ID),
            message: strings(MESSAGE),
            attributes: MapBuilder::with_capacity(
                Some(map_field_names()),
                StringBuilder::with_capacity(entries, key_bytes),
                StringBuilder::with_capacity(entries, value_bytes),
                rows,
            ),
            seq: UInt64Builder::with_capacity(rows),
            pattern_id: UInt64Builder::with_capacity(rows),
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends one row. A record without a timestamp gets `observed_ns` as its event time.
    pub fn append(&mut self, record: &LogRecord, seq: u64, observed_ns: i64) {
        self.timestamp
            .append_value(record.timestamp.unwrap_or(observed_ns));
        self.observed.append_value(observed_ns);
        let mut bytes = record.message.len() + 24;
        for (builder, value) in [
            (&mut self.level, &record.level),
            (&mut self.service, &record.service),
            (&mut self.host, &record.host),
            (&mut self.trace_id, &record.trace_id),
            (&mut self.span_id, &record.span_id),
        ] {
            bytes += value.as_ref().map_or(0, String::len);
            builder.append_option(value.as_deref());
        }
        self.message.append_value(&record.message);
        for (key, value) in &record.attributes {
            bytes += key.len() + value.len();
            self.attributes.keys().append_value(key);
            self.attributes.values().append_value(value);
        }
        // A row without attributes gets an empty map, not null: `attributes['k']` is then simply null.
        self.attributes
            .append(true)
            .expect("keys and values were appended in pairs");
        self.seq.append_value(seq);
        self.pattern_id.append_null();
        self.rows += 1;
        self.bytes += bytes;
    }

    /// Bytes the builder has reserved for its columns (not counting the attribute map): what a
    /// builder costs in memory whether or not rows fill it.
    pub fn reserved_bytes(&self) -> usize {
        let strings = [
            &self.level,
            &self.service,
            &self.host,
            &self.trace_id,
            &self.span_id,
            &self.message,
        ];
        let string_bytes: usize = strings
            .iter()
            .map(|b| b.values_capacity() + b.offsets_capacity() * 4)
            .sum();
        let integers = self.timestamp.capacity()
            + self.observed.capacity()
            + self.seq.capacity()
            + self.pattern_id.capacity();
        string_bytes + integers * 8
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate in-memory bytes of the rows appended so far.
    pub fn estimated_bytes(&self) -> usize {
        self.bytes
    }

    /// A batch of the rows appended so far; the builder keeps them (memtable snapshots).
    pub fn finish_cloned(&self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish_cloned()),
            Arc::new(self.observed.finish_cloned()),
            Arc::new(self.level.finish_cloned()),
            Arc::new(self.service.finish_cloned()),
            Arc::new(self.host.finish_cloned()),
            Arc::new(self.trace_id.finish_cloned()),
            Arc::new(self.span_id.finish_cloned()),
            Arc::new(self.message.finish_cloned()),
            Arc::new(self.attributes.finish_cloned()),
            Arc::new(self.seq.finish_cloned()),
            Arc::new(self.pattern_id.finish_cloned()),
        ];
        RecordBatch::try_new(log_schema(), columns).expect("builder columns match the log schema")
    }

    /// Builds a batch of the rows appended so far and resets the builder.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.observed.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.pattern_id.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(log_schema(), columns).expect("builder columns match the log schema")
    }
}

/// Builds one batch from records, numbering them from `first_seq`.
pub fn batch_from_records(records: &[LogRecord], first_seq: u64, observed_ns: i64) -> RecordBatch {
    let mut builder = LogBatchBuilder::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        builder.append(record, first_seq + i as u64, observed_ns);
    }
    builder.finish()
}
