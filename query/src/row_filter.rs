//! A search-language query compiled once and applied to batches as they arrive: what live tail
//! uses to pick the rows of each acknowledged ingest that a subscriber asked for.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;

use crate::QueryError;
use crate::hits::PLANNER;
use crate::search;
use crate::snapshot::{MemBatch, table_schema};

/// A compiled search query over the `logs` table (stream column included): the same meaning
/// as in search, evaluated row by row without an index.
#[derive(Debug, Clone)]
pub struct RowFilter {
    predicate: Arc<dyn PhysicalExpr>,
}

impl RowFilter {
    /// Compiles `query` (search language; empty or `*` matches everything).
    pub fn new(query: &str) -> Result<Self, QueryError> {
        let expr = search::compile(query)?;
        let schema = DFSchema::try_from(table_schema().as_ref().clone())?;
        Ok(Self {
            predicate: PLANNER.create_physical_expr(expr, &schema)?,
        })
    }

    /// The rows of `batch` (a stream's rows in the log schema) that match, with the `stream`
    /// column added; `None` when none match.
    pub fn matching(&self, batch: &MemBatch) -> Result<Option<RecordBatch>, QueryError> {
        let rows = batch.with_stream();
        let mask = self
            .predicate
            .evaluate(&rows)?
            .into_array(rows.num_rows())?;
        let mask = mask.as_boolean_opt().ok_or_else(|| {
            QueryError::Internal("a search filter did not evaluate to booleans".to_owned())
        })?;
        if mask.true_count() == 0 {
            return Ok(None);
        }
        Ok(Some(filter_record_batch(&rows, mask)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silt_storage::record::LogRecord;
    use silt_storage::schema::batch_from_records;

    fn record(level: &str, service: &str, message: &str) -> LogRecord {
        LogRecord {
            timestamp: Some(1_700_000_000_000_000_000),
            level: Some(level.to_owned()),
            service: Some(service.to_owned()),
            message: message.to_owned(),
            attributes: vec![("http.status".to_owned(), "503".to_owned())],
            ..LogRecord::default()
        }
    }

    fn messages(filter: &RowFilter, batch: &MemBatch) -> Vec<String> {
        filter
            .matching(batch)
            .unwrap()
            .map(|b| {
                let column = b
                    .column_by_name("message")
                    .unwrap()
                    .as_string::<i32>()
                    .clone();
                column.iter().map(|m| m.unwrap().to_owned()).collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn filters_rows_with_the_search_language() {
        let batch = MemBatch {
            stream: Arc::from("web"),
            batch: batch_from_records(
                &[
                    record("ERROR", "api", "disk full on /var"),
                    record("INFO", "api", "request served"),
                    record("WARN", "db", "disk almost full"),
                ],
                10,
                1_700_000_000_000_000_000,
            ),
        };
        let cases = [
            ("disk", vec!["disk full on /var", "disk almost full"]),
            ("level:>=warn service:db", vec!["disk almost full"]),
            ("\"full on\"", vec!["disk full on /var"]),
            ("stream:web -disk", vec!["request served"]),
            ("stream:other", vec![]),
            (
                "attributes.http.status:503 level:error",
                vec!["disk full on /var"],
            ),
            (
                "",
                vec!["disk full on /var", "request served", "disk almost full"],
            ),
        ];
        for (query, want) in cases {
            let filter = RowFilter::new(query).unwrap();
            assert_eq!(messages(&filter, &batch), want, "query {query:?}");
        }
        assert!(RowFilter::new("level:(").is_err());
    }
}
