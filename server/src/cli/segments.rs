//! `silt segments`: lists the catalog's segments (readable while another process owns the
//! data directory).

use std::process::ExitCode;

use anyhow::Context;
use silt_storage::catalog::Catalog;
use silt_storage::layout::DataDir;

use super::{DataDirArgs, ReportFormat, format};

#[derive(Debug, clap::Args)]
pub struct SegmentsArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Only this tenant's segments.
    #[arg(long)]
    tenant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

pub fn run(args: SegmentsArgs) -> anyhow::Result<ExitCode> {
    let dir = DataDir::new(args.data.dir());
    let state = Catalog::read_only(&dir.catalog_dir())
        .with_context(|| format!("cannot read the catalog of {}", dir.root().display()))?;
    let mut segments: Vec<_> = state
        .segments
        .values()
        .filter(|s| args.tenant.as_ref().is_none_or(|t| &s.tenant == t))
        .collect();
    segments.sort_by(|a, b| {
        (&a.tenant, &a.stream, a.min_timestamp, &a.id).cmp(&(
            &b.tenant,
            &b.stream,
            b.min_timestamp,
            &b.id,
        ))
    });
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&segments)?),
        ReportFormat::Text => {
            println!(
                "{:<32}  {:<12} {:<12} {:<14} {:>10} {:>10}  {:<24}  {:<24}  tier",
                "id",
                "tenant",
                "stream",
                "partition",
                "rows",
                "size",
                "min_timestamp",
                "max_timestamp"
            );
            for s in &segments {
                println!(
                    "{:<32}  {:<12} {:<12} {:<14} {:>10} {:>10}  {:<24}  {:<24}  {}",
                    s.id,
                    s.tenant,
                    s.stream,
                    s.partition,
                    s.rows,
                    format::bytes(s.bytes),
                    format::timestamp(s.min_timestamp),
                    format::timestamp(s.max_timestamp),
                    serde_json::to_value(s.tier)?.as_str().unwrap_or_default()
                );
            }
            let rows: u64 = segments.iter().map(|s| s.rows).sum();
            let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
            eprintln!(
                "{} segments, {rows} rows, {}",
                segments.len(),
                format::bytes(bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
