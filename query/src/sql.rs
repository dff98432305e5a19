//! SQL and aggregations over one tenant's `logs`: the DataFusion session (Silt's functions, the
//! `search()` rewrite, the memory budget) and the bucketed aggregations the API offers.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, ScalarValue, plan_err};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::analyzer::{Analyzer, AnalyzerRule};
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};

use crate::QueryError;
use crate::pruning::TimeRange;
use crate::search::{self, Field};
use crate::snapshot::TableSnapshot;
use crate::table::LogsTable;
use crate::udf::{SEARCH, match_udf, search_udf};

/// Rewrites `search('query')` into the expression the search language gives it, before type
/// coercion, so the term index and DataFusion's pruning see ordinary predicates.
#[derive(Debug, Default)]
pub struct SearchRewrite;

/// Qualifies the columns of a compiled search with the table they resolve to in `schema` (the
/// node's input), so optimizer rules never see `attributes` next to `logs.attributes`.
fn qualify(expr: Expr, schema: Option<&datafusion::common::DFSchema>) -> DfResult<Expr> {
    let Some(schema) = schema else {
        return Ok(expr);
    };
    expr.transform_up(|e| match &e {
        Expr::Column(c) if c.relation.is_none() => {
            match schema.qualified_field_with_unqualified_name(&c.name) {
                Ok((Some(qualifier), _)) => Ok(Transformed::yes(Expr::Column(
                    datafusion::common::Column::new(Some(qualifier.clone()), c.name.clone()),
                ))),
                _ => Ok(Transformed::no(e)),
            }
        }
        _ => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

fn rewrite_search(
    expr: Expr,
    schema: Option<&datafusion::common::DFSchema>,
) -> DfResult<Transformed<Expr>> {
    expr.transform_up(|e| match &e {
        Expr::ScalarFunction(f) if f.name() == SEARCH => match f.args.as_slice() {
            [
                Expr::Literal(
                    ScalarValue::Utf8(Some(text))
                    | ScalarValue::Utf8View(Some(text))
                    | ScalarValue::LargeUtf8(Some(text)),
                    _,
                ),
            ] => match search::compile(text) {
                Ok(rewritten) => Ok(Transformed::yes(qualify(rewritten, schema)?)),
                Err(e) => plan_err!("search query: {e}"),
            },
            _ => plan_err!("search() takes one string literal, e.g. search('level:ERROR timeout')"),
        },
        _ => Ok(Transformed::no(e)),
    })
}

impl AnalyzerRule for SearchRewrite {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let input = node.inputs().first().map(|i| i.schema().clone());
            node.map_expressions(|e| rewrite_search(e, input.as_deref()))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "silt_search_rewrite"
    }
}

/// Limits of one query session.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Memory DataFusion may hold for a query before spilling or failing.
    pub memory_limit_bytes: usize,
    pub target_partitions: usize,
    pub spill_dir: Option<std::path::PathBuf>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            memory_limit_bytes: 512 << 20,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            spill_dir: None,
        }
    }
}

/// A session whose only table is the snapshot's `logs`.
pub fn session(
    snapshot: Arc<TableSnapshot>,
    options: &QueryOptions,
    pool: Option<Arc<dyn MemoryPool>>,
) -> Result<SessionContext, QueryError> {
    let pool = pool.unwrap_or_else(|| Arc::new(FairSpillPool::new(options.memory_limit_bytes)));
    let mut runtime = RuntimeEnvBuilder::new().with_memory_pool(pool);
    if let Some(dir) = &options.spill_dir {
        runtime = runtime.with_temp_file_path(dir.clone());
    }
    let config = SessionConfig::new()
        .with_target_partitions(options.target_partitions)
        .with_information_schema(true);
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(SearchRewrite)];
    rules.extend(Analyzer::new().rules);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime.build_arc()?)
        .with_default_features()
        .with_analyzer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_udf(match_udf().as_ref().clone());
    ctx.register_udf(search_udf().as_ref().clone());
    ctx.register_table("logs", Arc::new(LogsTable::new(snapshot)))?;
    Ok(ctx)
}

/// Plans one read-only SQL statement: queries only. DDL (`CREATE EXTERNAL TABLE` would read
/// any file the server can), DML (`COPY … TO` would write one) and `SET` are refused, so a
/// caller sees nothing but its own `logs`.
pub async fn plan_sql(
    ctx: &SessionContext,
    text: &str,
) -> Result<datafusion::dataframe::DataFrame, QueryError> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    Ok(ctx.sql_with_options(text, options).await?)
}

/// Runs one read-only SQL statement over `logs` (see [`plan_sql`]).
pub async fn sql(ctx: &SessionContext, text: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let frame = plan_sql(ctx, text).await?;
    Ok(frame.collect().await?)
}

/// What each bucket of an aggregation computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Count,
    /// Average / percentile of a numeric attribute (non-numbers are skipped).
    Avg(String),
    Percentile(String, f64),
}

impl Metric {
    /// `count`, `avg:<attribute>`, `p50:<attribute>`, `p95:…`, `p99:…`.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let bad = || {
            QueryError::InvalidRequest(format!(
                "unknown metric '{text}' (count, avg:KEY, p50:KEY, p95:KEY, p99:KEY)"
            ))
        };
        if text == "count" {
            return Ok(Metric::Count);
        }
        let (kind, key) = text.split_once(':').ok_or_else(bad)?;
        let key = key.strip_prefix("attributes.").unwrap_or(key).to_string();
        if key.is_empty() {
            return Err(bad());
        }
        match kind {
            "avg" => Ok(Metric::Avg(key)),
            "p50" => Ok(Metric::Percentile(key, 0.5)),
            "p90" => Ok(Metric::Percentile(key, 0.9)),
            "p95" => Ok(Metric::Percentile(key, 0.95)),
            "p99" => Ok(Metric::Percentile(key, 0.99)),
            _ => Err(bad()),
        }
    }
}

/// An aggregation request: buckets by time interval and/or a field, newest/biggest first.
#[derive(Debug, Clone)]
pub struct AggregateRequest {
    pub query: String,
    pub time: TimeRange,
    /// Field to group by (search-language field names: `level`, `service`, `attributes.k` …).
    pub group_by: Option<String>,
    /// Bucket width in nanoseconds.
    pub interval_ns: Option<i64>,
    pub metric: Metric,
    /// Keep the `top` groups with the largest counts (per whole range).
    pub top: Option<usize>,
}

/// One bucket: its start time and/or group value, its row count and the metric's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub time: Option<i64>,
    pub group: Option<String>,
    pub count: u64,
    pub value: Option<f64>,
}

fn field_expr(name: &str) -> Result<Expr, QueryError> {
    match search::parse(&format!("{name}:*"))? {
        search::Query::Match { field, .. } => Ok(search::column_of(&field)),
        _ => Err(QueryError::InvalidRequest(format!(
            "cannot group by '{name}'"
        ))),
    }
}

/// A group column as strings, whatever string type it was grouped in.
fn as_strings(
    column: &datafusion::arrow::array::ArrayRef,
) -> Option<datafusion::arrow::array::StringArray> {
    let utf8 =
        datafusion::arrow::compute::cast(column, &datafusion::arrow::datatypes::DataType::Utf8)
            .ok()?;
    utf8.as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .cloned()
}

/// The start of the `interval_ns` bucket of `timestamp`, counted from the epoch, as a timestamp:
/// `t - ((t % i) + i) % i` on the nanoseconds, which floors before 1970 too. It is what
/// `date_bin(interval, timestamp, epoch)` returns, in three vectorised integer kernels rather
/// than a calendar-aware function call per row. Intervals so long that `(t % i) + i` could
/// overflow use `date_bin` itself. Rows in the first interval after the earliest nanosecond
/// timestamp (1677-09-21) have no representable bucket start; theirs wraps.
fn time_bucket(interval_ns: i64) -> Expr {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    use datafusion::logical_expr::cast;
    let as_timestamp = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    if interval_ns > i64::MAX / 2 {
        let bucket = datafusion::functions::datetime::expr_fn::date_bin(
            lit(ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, 0, interval_ns),
            ))),
            col("timestamp"),
            lit(ScalarValue::TimestampNanosecond(
                Some(0),
                Some("UTC".into()),
            )),
        );
        return cast(bucket, as_timestamp);
    }
    let t = cast(col("timestamp"), DataType::Int64);
    let i = || lit(interval_ns);
    cast(t.clone() - ((t % i()) + i()) % i(), as_timestamp)
}

/// Most buckets one aggregation answers with.
pub const MAX_BUCKETS: usize = 100_000;

/// Runs an aggregation over `logs` in `ctx`. With `top` and `group_by`, only the `top` groups
/// with the most rows over the whole range are kept (with `interval`, all their buckets).
pub async fn aggregate(
    ctx: &SessionContext,
    request: &AggregateRequest,
) -> Result<Vec<Bucket>, QueryError> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::functions_aggregate::expr_fn::{approx_percentile_cont, avg, count};
    use datafusion::logical_expr::{cast, expr::Sort};

    let query = search::compile(&request.query)?;
    let filter = crate::hits::search_filter(&query, request.time, None);
    let mut frame = ctx.table("logs").await?.filter(filter)?;
    let mut groups = Vec::new();
    if let Some(interval) = request.interval_ns {
        if interval <= 0 {
            return Err(QueryError::InvalidRequest(
                "interval must be positive".into(),
            ));
        }
        groups.push(time_bucket(interval).alias("bucket"));
    }
    if let Some(field) = &request.group_by {
        // Grouped as string views: DataFusion groups views column by column, while dictionaries
        // (level, service, host) would go through its slower row format.
        let group = cast(field_expr(field)?, DataType::Utf8View);
        if let (Some(top), Some(_)) = (request.top, request.interval_ns) {
            // Top groups over the whole range first, then their buckets.
            let winners = frame
                .clone()
                .aggregate(
                    vec![group.clone().alias("group")],
                    vec![count(lit(1)).alias("count")],
                )?
                .sort(vec![
                    col("count").sort(false, false),
                    col("group").sort(true, true),
                ])?
                .limit(0, Some(top))?
                .collect()
                .await?;
            let mut names = Vec::new();
            let mut with_null = false;
            for batch in &winners {
                let column = batch.column_by_name("group").and_then(as_strings);
                for value in column.iter().flatten() {
                    match value {
                        Some(v) => names.push(lit(v.to_string())),
                        None => with_null = true,
                    }
                }
            }
            let mut keep = group.clone().in_list(names, false);
            if with_null {
                keep = keep.or(group.clone().is_null());
            }
            frame = frame.filter(keep)?;
        }
        groups.push(group.alias("group"));
    }
    let numeric =
        |key: &str| search::as_number(search::column_of(&Field::Attribute(key.to_string())));
    let mut aggs = vec![count(lit(1)).alias("count")];
    match &request.metric {
        Metric::Count => {}
        Metric::Avg(key) => aggs.push(avg(numeric(key)).alias("value")),
        Metric::Percentile(key, p) => {
            let sort = Sort::new(numeric(key), true, false);
            aggs.push(approx_percentile_cont(sort, lit(*p), None).alias("value"));
        }
    }
    frame = frame.aggregate(groups, aggs)?;
    if let (Some(top), Some(_), None) = (request.top, &request.group_by, request.interval_ns) {
        frame = frame
            .sort(vec![
                col("count").sort(false, false),
                col("group").sort(true, true),
            ])?
            .limit(0, Some(top))?;
    }
    let batches = frame.collect().await?;
    let mut buckets = Vec::new();
    for batch in &batches {
        let time = batch.column_by_name("bucket").map(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::TimestampNanosecondArray>()
                .cloned()
        });
        let group = batch.column_by_name("group").map(as_strings);
        let count = batch.column_by_name("count").and_then(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .cloned()
        });
        let value = batch.column_by_name("value").and_then(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::Float64Array>()
                .cloned()
        });
        use datafusion::arrow::array::Array;
        for row in 0..batch.num_rows() {
            buckets.push(Bucket {
                time: time
                    .as_ref()
                    .and_then(|t| t.as_ref())
                    .and_then(|t| t.is_valid(row).then(|| t.value(row))),
                group: group
                    .as_ref()
                    .and_then(|g| g.as_ref())
                    .and_then(|g| g.is_valid(row).then(|| g.value(row).to_string())),
                count: count.as_ref().map_or(0, |c| c.value(row) as u64),
                value: value
                    .as_ref()
                    .and_then(|v| v.is_valid(row).then(|| v.value(row))),
            });
        }
    }
    if buckets.len() > MAX_BUCKETS {
        return Err(QueryError::InvalidRequest(format!(
            "the aggregation has {} buckets, more than {MAX_BUCKETS}: use a larger interval, a shorter time range or `top`",
            buckets.len()
        )));
    }
    if request.top.is_none() || request.interval_ns.is_some() {
        buckets.sort_by(|a, b| {
            a.time
                .cmp(&b.time)
                .then_with(|| b.count.cmp(&a.count))
                .then_with(|| a.group.cmp(&b.group))
        });
    }
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{AsArray, RecordBatch, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{
        DataType, Field, Schema, TimeUnit, TimestampNanosecondType,
    };
    use datafusion::prelude::SessionContext;

    use super::time_bucket;

    /// Buckets floor before and after the epoch, on and off their edges, for intervals that do
    /// and do not divide a day, and through `date_bin` for the longest intervals.
    #[tokio::test]
    async fn time_buckets_floor_like_euclidean_remainder() {
        let values: Vec<i64> = vec![
            -9_000_000_000_000_000_000,
            -90_000_000_001,
            -60_000_000_000,
            -1,
            0,
            1,
            59_999_999_999,
            60_000_000_000,
            1_795_219_200_123_456_789,
            i64::MAX,
        ];
        let schema = Arc::new(Schema::new(vec![Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        )]));
        let column = TimestampNanosecondArray::from(values.clone()).with_timezone("UTC");
        let batch = RecordBatch::try_new(schema, vec![Arc::new(column)]).unwrap();
        let ctx = SessionContext::new();
        ctx.register_batch("t", batch).unwrap();
        for interval in [
            1,
            7 * 60_000_000_000,
            60_000_000_000,
            86_400_000_000_000,
            i64::MAX / 2 + 1,
        ] {
            let out = ctx
                .table("t")
                .await
                .unwrap()
                .select(vec![time_bucket(interval).alias("bucket")])
                .unwrap()
                .collect()
                .await
                .unwrap();
            let got: Vec<i64> = out
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_primitive::<TimestampNanosecondType>()
                        .values()
                        .to_vec()
                })
                .collect();
            if interval > i64::MAX / 2 {
                // date_bin: only its row count and the epoch bucket are checked here.
                assert_eq!(got.len(), values.len());
                assert_eq!(got[4], 0);
                continue;
            }
            let want: Vec<i64> = values.iter().map(|t| t - t.rem_euclid(interval)).collect();
            assert_eq!(got, want, "interval {interval}");
        }
    }
}
