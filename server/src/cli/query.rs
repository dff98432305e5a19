//! `silt search` and `silt sql`: queries against a data directory, printed as a table, log
//! lines, JSON, NDJSON or CSV. Data goes to stdout; messages go to stderr.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use silt_engine::{DEFAULT_TENANT, Engine, EngineOptions};
use silt_query::{SearchRequest, TimeRange};

use super::DataDirArgs;
use crate::render;
use crate::timespec::{parse_duration, parse_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchFormat {
    Table,
    Json,
    Ndjson,
}

/// Order of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortArg {
    /// Newest first.
    Desc,
    /// Oldest first.
    Asc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqlFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DataDirArgs,
    #[command(flatten)]
    remote: super::remote::ServerArgs,
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Only rows newer than this (e.g. 15m, 1h, 7d).
    #[arg(long, conflicts_with_all = ["from", "to"], value_name = "DURATION")]
    since: Option<String>,
    /// Only rows at or after this time (RFC 3339, `YYYY-MM-DD[ HH:MM:SS]` in UTC, or epoch seconds/ms/µs/ns).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Only rows before this time.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Hits per page, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue after a previous page (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
    /// Newest (desc) or oldest (asc) hits first.
    #[arg(long, value_enum, default_value_t = SortArg::Desc)]
    sort: SortArg,
    #[arg(long, value_enum, default_value_t = SearchFormat::Table)]
    format: SearchFormat,
    /// The search (see docs/search.md); empty or `*` matches every row.
    #[arg(default_value = "")]
    query: String,
}

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    #[command(flatten)]
    data: DataDirArgs,
    #[command(flatten)]
    remote: super::remote::ServerArgs,
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
    /// One SQL statement over the table `logs`.
    query: String,
}

/// With `--server` the API key decides the tenant.
fn warn_tenant_ignored(tenant: &str) {
    if tenant != DEFAULT_TENANT {
        eprintln!("warning: --tenant is ignored with --server: the API key decides the tenant");
    }
}

fn rfc3339_nanos(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Opens the data directory for reading, with a clear message when a server owns it.
fn open_engine(data: &DataDirArgs) -> anyhow::Result<Engine> {
    if !data.dir().exists() {
        bail!(
            "no data directory at {} (ingest first, or pass --data-dir)",
            data.dir().display()
        );
    }
    let mut options = EngineOptions::new(data.dir());
    options.background_flush = false;
    let (engine, _) = Engine::open(options)
        .map_err(|e| match &e {
            silt_engine::EngineError::Storage(s) if s.kind == silt_storage::ErrorKind::Locked => {
                match super::serve::server_of(data.dir()) {
                    Some(url) => anyhow::anyhow!(
                        "{e}\nhint: a silt server at {url} owns this data directory; query it with --server {url}"
                    ),
                    None => anyhow::anyhow!(
                        "{e}\nhint: another silt process owns this data directory: a server (query it with --server URL) or an ingest (retry when it is done)"
                    ),
                }
            }
            _ => anyhow::Error::new(e),
        })
        .with_context(|| format!("cannot open {}", data.dir().display()))?;
    Ok(engine)
}

fn time_range(args: &SearchArgs) -> anyhow::Result<TimeRange> {
    if let Some(since) = &args.since {
        let now = now_ns();
        return Ok(TimeRange::from_bounds(
            Some(now - parse_duration(since)?),
            None,
        ));
    }
    let from = args.from.as_deref().map(parse_time).transpose()?;
    let to = args.to.as_deref().map(parse_time).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        bail!("--from must be before --to");
    }
    Ok(TimeRange::from_bounds(from, to))
}

pub fn run_search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let time = time_range(&args)?;
    if args.remote.server.is_some() {
        warn_tenant_ignored(&args.tenant);
        let mut range = serde_json::Map::new();
        // RFC 3339 with nanoseconds: unambiguous, unlike an epoch number whose unit the
        // server would infer from its size.
        if time.min != i64::MIN {
            range.insert("from".into(), rfc3339_nanos(time.min).into());
        }
        if time.max != i64::MAX {
            range.insert("to".into(), rfc3339_nanos(time.max + 1).into());
        }
        let body = serde_json::json!({
            "query": args.query,
            "time_range": range,
            "limit": args.limit,
            "cursor": args.cursor,
            "sort": match args.sort { SortArg::Desc => "desc", SortArg::Asc => "asc" },
        });
        return super::remote::run(
            &args.remote,
            "/v1/logs/search",
            &body,
            "application/json",
            |a| super::remote::print_search(a, args.format),
        );
    }
    let engine = open_engine(&args.data)?;
    let mut request = SearchRequest::new(args.query.clone());
    request.time = time;
    request.limit = args.limit;
    request.cursor = args.cursor.clone();
    request.order = match args.sort {
        SortArg::Desc => silt_query::SortOrder::NewestFirst,
        SortArg::Asc => silt_query::SortOrder::OldestFirst,
    };
    let started = std::time::Instant::now();
    let result = super::runtime()?.block_on(engine.search(&args.tenant, &request));
    let result = match result {
        Ok(r) => r,
        Err(e) if e.is_user_error() => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let took = started.elapsed();
    let mut out = std::io::stdout().lock();
    match args.format {
        SearchFormat::Ndjson => {
            for row in 0..result.hits.num_rows() {
                writeln!(
                    out,
                    "{}",
                    serde_json::Value::Object(render::row_object(&result.hits, row, true))
                )?;
            }
        }
        SearchFormat::Json => {
            let hits: Vec<_> = (0..result.hits.num_rows())
                .map(|r| serde_json::Value::Object(render::row_object(&result.hits, r, true)))
                .collect();
            let doc = serde_json::json!({
                "hits": hits,
                "total": result.total,
                "total_exact": result.total_exact,
                "next_cursor": result.next_cursor,
                "stats": {
                    "segments": result.stats.segments_scanned,
                    "segments_total": result.stats.segments_total,
                    "bytes_read": result.stats.bytes_read,
                    "took_ms": took.as_secs_f64() * 1000.0,
                }
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        SearchFormat::Table => render::log_lines(&mut out, &result.hits)?,
    }
    out.flush()?;
    let bound = if result.total_exact { "" } else { "at least " };
    eprintln!(
        "{} of {bound}{} hits in {:.1} ms ({} of {} segments read, {} read){}",
        result.hits.num_rows(),
        result.total,
        took.as_secs_f64() * 1000.0,
        result.stats.segments_scanned,
        result.stats.segments_total,
        super::format::bytes(result.stats.bytes_read),
        result
            .next_cursor
            .as_ref()
            .map_or(String::new(), |c| format!("; more with --cursor {c}")),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    if args.remote.server.is_some() {
        warn_tenant_ignored(&args.tenant);
        let accept = if args.format == SqlFormat::Csv {
            "text/csv"
        } else {
            "application/json"
        };
        let body = serde_json::json!({"query": args.query});
        return super::remote::run(&args.remote, "/v1/sql", &body, accept, |a| {
            super::remote::print_sql(a, args.format)
        });
    }
    let engine = open_engine(&args.data)?;
    let started = std::time::Instant::now();
    let runtime = super::runtime()?;
    let result = runtime.block_on(async {
        let ctx = engine.query_session(&args.tenant)?;
        let frame = silt_query::plan_sql(&ctx, &args.query).await?;
        let schema = frame.schema().as_arrow().clone();
        let batches = frame.collect().await?;
        Ok::<_, silt_query::QueryError>((schema, batches))
    });
    let (schema, batches) = match result {
        Ok(r) => r,
        Err(e) if e.is_user_error() => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut out = std::io::stdout().lock();
    match args.format {
        SqlFormat::Csv => render::write_csv(&mut out, &batches, &schema)?,
        SqlFormat::Json => {
            let mut data = Vec::with_capacity(rows);
            for batch in &batches {
                data.extend(
                    (0..batch.num_rows())
                        .map(|r| serde_json::Value::Array(render::row_array(batch, r))),
                );
            }
            let doc = serde_json::json!({"columns": render::columns_json(&schema), "rows": data});
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        SqlFormat::Table => {
            if batches.is_empty() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "{}", names.join(" | "))?;
            } else {
                writeln!(out, "{}", render::table(&batches))?;
            }
        }
    }
    out.flush()?;
    if std::io::stderr().is_terminal() || args.format == SqlFormat::Table {
        eprintln!(
            "{rows} rows in {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
