//! Silt's query layer: the `logs` table over segments and memtable (DataFusion), index-pruned
//! search with cursors, the search language, SQL and aggregations. Knows nothing of HTTP.

pub mod access_plan;
pub mod hits;
pub mod pruning;
pub mod row_filter;
pub mod search;
pub mod shredded;
pub mod snapshot;
pub mod sql;
pub mod table;
pub mod text_match;
pub mod udf;

pub use hits::{Cursor, SearchRequest, SearchResult, SearchStats, SortOrder, search};
pub use pruning::TimeRange;
pub use row_filter::{BatchTerms, RowFilter};
pub use snapshot::{MemBatch, SegmentOpener, TableSnapshot, sql_schema, table_schema};
pub use sql::{AggregateRequest, Bucket, Metric, QueryOptions, aggregate, plan_sql, session, sql};

/// Any failure of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The search text does not parse; says what and where.
    #[error("{0}")]
    Search(#[from] search::SearchError),
    #[error("invalid cursor '{0}'")]
    InvalidCursor(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Storage(#[from] silt_storage::StorageError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// True when the caller's input is at fault (a 400, not a 500).
    pub fn is_user_error(&self) -> bool {
        use datafusion::error::DataFusionError as D;
        match self {
            QueryError::Search(_)
            | QueryError::InvalidCursor(_)
            | QueryError::InvalidRequest(_) => true,
            // Statements that do not plan, and ones that fail on the data they read (division
            // by zero, a cast that does not fit, a query over its memory budget): the caller's
            // to fix. I/O and storage failures stay server errors.
            QueryError::DataFusion(e) => match e.find_root() {
                D::Plan(_)
                | D::SQL(..)
                | D::SchemaError(..)
                | D::NotImplemented(_)
                | D::Execution(_)
                | D::ResourcesExhausted(_) => true,
                D::ArrowError(a, _) => !matches!(
                    a.as_ref(),
                    datafusion::arrow::error::ArrowError::IoError(..)
                        | datafusion::arrow::error::ArrowError::ExternalError(_)
                ),
                _ => false,
            },
            _ => false,
        }
    }
}
