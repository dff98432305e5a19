//! A consistent view of one tenant's rows for one query: catalog segments plus memtable batches,
//! with no row in both, and the `_seq` mark that cursors use to keep later pages stable.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use silt_storage::StorageError;
use silt_storage::catalog::SegmentEntry;
use silt_storage::schema::{HOST, KEYWORD_COLUMNS, LEVEL, SERVICE, log_schema};
use silt_storage::segment::SegmentReader;

use crate::search::STREAM;

/// Opens (and may cache) the reader of a catalog segment.
#[async_trait]
pub trait SegmentOpener: Send + Sync + Debug {
    async fn open(&self, entry: &SegmentEntry) -> Result<Arc<SegmentReader>, StorageError>;
}

/// Acknowledged rows not yet in a segment, with the stream they were ingested into.
#[derive(Debug, Clone)]
pub struct MemBatch {
    pub stream: Arc<str>,
    pub batch: RecordBatch,
}

/// What one query reads. Segments and memtable batches never hold the same row.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub tenant: String,
    pub segments: Vec<SegmentEntry>,
    pub memtable: Vec<MemBatch>,
    pub opener: Arc<dyn SegmentOpener>,
    /// Largest `_seq` visible; rows ingested later have larger ones.
    pub max_seq: Option<u64>,
}

static TABLE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = log_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(STREAM, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
});

/// The `logs` table: the segment schema plus the virtual `stream` column (last).
pub fn table_schema() -> SchemaRef {
    TABLE_SCHEMA.clone()
}

static SQL_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = table_schema()
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            if DICTIONARY_COLUMNS.contains(&name) {
                let dictionary =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                f.as_ref().clone().with_data_type(dictionary)
            } else if KEYWORD_COLUMNS.contains(&name) {
                f.as_ref().clone().with_data_type(DataType::Utf8View)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
});

static SQL_FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let columns: Vec<usize> = (0..log_schema().fields().len()).collect();
    Arc::new(
        sql_schema()
            .project(&columns)
            .expect("the SQL schema starts with the file columns"),
    )
});

/// The segment columns of [`sql_schema`] (without `stream`): the types to have the Parquet
/// reader decode a segment's columns as.
pub fn sql_file_schema() -> SchemaRef {
    SQL_FILE_SCHEMA.clone()
}

/// Columns cheap to read in full: integers and small dictionaries (most stored uncompressed,
/// docs/format.md), and the virtual `stream`.
const NARROW_COLUMNS: [&str; 8] = [
    silt_storage::schema::TIMESTAMP,
    silt_storage::schema::OBSERVED_TIMESTAMP,
    silt_storage::schema::SEQ,
    silt_storage::schema::PATTERN_ID,
    LEVEL,
    SERVICE,
    HOST,
    STREAM,
];

/// True for a column that is cheap to read for every row; the others (`message`, the ids,
/// `attributes`) are worth reading only for rows that passed the narrow conditions.
pub(crate) fn is_narrow_column(name: &str) -> bool {
    NARROW_COLUMNS.contains(&name)
}

/// True for an expression that reads only narrow columns.
pub(crate) fn is_narrow(expr: &datafusion::logical_expr::Expr) -> bool {
    expr.column_refs().iter().all(|c| is_narrow_column(&c.name))
}

/// Keyword columns of few distinct values, dictionary-encoded in every segment.
const DICTIONARY_COLUMNS: [&str; 3] = [LEVEL, SERVICE, HOST];

/// The `logs` table as SQL and aggregations see it: [`table_schema`] with `level`, `service`
/// and `host` as `Dictionary(Int32, Utf8)` read straight from their dictionary pages, so
/// `level = 'ERROR'` compares a handful of values rather than a string per row, and the ids
/// `trace_id` and `span_id` as `Utf8View` (DataFusion's default for Parquet strings).
pub fn sql_schema() -> SchemaRef {
    SQL_SCHEMA.clone()
}

impl MemBatch {
    /// The batch with its `stream` column, in the table schema.
    pub fn with_stream(&self) -> RecordBatch {
        let stream: ArrayRef = Arc::new(StringArray::from(vec![
            self.stream.as_ref();
            self.batch.num_rows()
        ]));
        let mut columns = self.batch.columns().to_vec();
        columns.push(stream);
        RecordBatch::try_new(table_schema(), columns).expect("memtable batches have the log schema")
    }

    /// The batch with its `stream` column, in [`sql_schema`].
    pub fn with_stream_for_sql(&self) -> RecordBatch {
        let schema = sql_schema();
        let columns = self
            .with_stream()
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    column.clone()
                } else {
                    cast(column, field.data_type()).expect("Utf8 casts to views and dictionaries")
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("columns cast to the SQL schema")
    }
}
