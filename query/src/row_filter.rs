//! A search-language query compiled once and applied to batches as they arrive: what live tail
//! uses to pick the rows of each acknowledged ingest that a subscriber asked for.
//!
//! Like a segment's term index, a batch's [`BatchTerms`] (built once, shared by every filter)
//! lets a filter whose index condition the batch cannot meet skip it without evaluating a row.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;

use silt_storage::index::{MESSAGE_FIELD, Term};
use silt_storage::schema::KEYWORD_COLUMNS;
use silt_storage::tokenizer;

use crate::QueryError;
use crate::hits::PLANNER;
use crate::pruning::IndexPredicate;
use crate::search;
use crate::snapshot::table_schema;

/// A compiled search query over the `logs` table (stream column included): the same meaning
/// as in search, evaluated row by row without an index.
#[derive(Debug, Clone)]
pub struct RowFilter {
    predicate: Arc<dyn PhysicalExpr>,
    /// What the terms of a batch must contain for any of its rows to match.
    index: IndexPredicate,
}

/// The distinct index terms of a batch of records: message tokens and keyword column values,
/// spelt as in a segment's term index.
#[derive(Debug, Default)]
pub struct BatchTerms {
    terms: HashSet<Vec<u8>, rustc_hash::FxBuildHasher>,
}

impl BatchTerms {
    /// The terms of records as ingest hands them over (not yet in Arrow form).
    pub fn from_records(records: &[silt_storage::record::LogRecord]) -> Self {
        let mut terms: HashSet<Vec<u8>, rustc_hash::FxBuildHasher> = HashSet::default();
        let mut term = Vec::with_capacity(128);
        let mut token_buf = Vec::new();
        for record in records {
            tokenizer::for_each_token(&record.message, &mut token_buf, |token| {
                term.clear();
                term.extend_from_slice(MESSAGE_FIELD.as_bytes());
                term.push(silt_storage::index::FIELD_SEPARATOR);
                term.extend_from_slice(token);
                if !terms.contains(&term) {
                    terms.insert(term.clone());
                }
            });
            let keywords = [
                &record.level,
                &record.service,
                &record.host,
                &record.trace_id,
                &record.span_id,
            ];
            for (field, value) in KEYWORD_COLUMNS.iter().zip(keywords) {
                if let Some(value) = value {
                    terms.insert(Term::keyword(field, value).as_bytes().to_vec());
                }
            }
        }
        Self { terms }
    }

    /// Whether some row of the batch may meet `index`; terms of fields not collected here
    /// (attributes) and prefixes and globs always may.
    fn may_meet(&self, index: &IndexPredicate) -> bool {
        match index {
            IndexPredicate::All | IndexPredicate::Prefix(_) | IndexPredicate::Glob { .. } => true,
            IndexPredicate::Term(term) => match term.field() {
                Some(field) if field == MESSAGE_FIELD || KEYWORD_COLUMNS.contains(&field) => {
                    self.terms.contains(term.as_bytes())
                }
                _ => true,
            },
            IndexPredicate::And(parts) => parts.iter().all(|p| self.may_meet(p)),
            IndexPredicate::Or(parts) => parts.iter().any(|p| self.may_meet(p)),
        }
    }
}

impl RowFilter {
    /// Compiles `query` (search language; empty or `*` matches everything).
    pub fn new(query: &str) -> Result<Self, QueryError> {
        let expr = search::compile(query)?;
        let schema = DFSchema::try_from(table_schema().as_ref().clone())?;
        Ok(Self {
            index: IndexPredicate::from_expr(&expr),
            predicate: PLANNER.create_physical_expr(expr, &schema)?,
        })
    }

    /// Whether rows of a batch with these terms may match; false means none does.
    pub fn may_match(&self, terms: &BatchTerms) -> bool {
        terms.may_meet(&self.index)
    }

    /// Whether the filter needs [`BatchTerms`] at all (it does not when every batch may match).
    pub fn uses_terms(&self) -> bool {
        !self.index.is_all()
    }

    /// The rows of `rows` (in the table schema, `stream` column included, as
    /// [`MemBatch::with_stream`] makes them) that match; `None` when none match.
    pub fn matching(&self, rows: &RecordBatch) -> Result<Option<RecordBatch>, QueryError> {
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
        Ok(Some(filter_record_batch(rows, mask)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::MemBatch;
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
            .matching(&batch.with_stream())
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
        let records = [
            record("ERROR", "api", "disk full on /var"),
            record("INFO", "api", "request served"),
            record("WARN", "db", "disk almost full"),
        ];
        let batch = MemBatch {
            stream: Arc::from("web"),
            batch: batch_from_records(&records, 10, 1_700_000_000_000_000_000),
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
        let terms = BatchTerms::from_records(&records);
        for (query, want) in cases {
            let filter = RowFilter::new(query).unwrap();
            assert_eq!(messages(&filter, &batch), want, "query {query:?}");
            // The terms never rule out a batch that has a match.
            assert!(
                filter.may_match(&terms) || want.is_empty(),
                "query {query:?}"
            );
        }
        for query in [
            "nosuchword",
            "service:nosuch",
            "level:fatal",
            "disk service:nosuch",
        ] {
            let filter = RowFilter::new(query).unwrap();
            assert!(
                !filter.may_match(&terms),
                "query {query:?} should skip the batch"
            );
            assert_eq!(messages(&filter, &batch), Vec::<String>::new());
        }
        assert!(!RowFilter::new("").unwrap().uses_terms());
        assert!(RowFilter::new("level:(").is_err());
    }
}
