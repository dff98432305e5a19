//! Subcommands of `silt` and their shared options.
//! Each subcommand lives in its own module; output goes to stdout, messages to stderr.

mod config;
pub(crate) mod format;
mod ingest;
mod inspect;
mod keys;
mod query;
mod remote;
mod segments;
pub(crate) mod serve;
mod tail;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "silt",
    version,
    about = "Silt: a log database that keeps its data in Parquet"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (ingest, search, aggregate, SQL) over a data directory.
    Serve(serve::ServeArgs),
    /// Ingest log files (NDJSON or plain text) into a data directory.
    Ingest(ingest::IngestArgs),
    /// List the segments in a data directory's catalog.
    Segments(segments::SegmentsArgs),
    /// Describe one segment file: rows, time range, row groups, schema, index and checksums.
    Inspect(inspect::InspectArgs),
    /// Search logs with the search language; hits newest first.
    Search(query::SearchArgs),
    /// Run SQL over the `logs` table.
    Sql(query::SqlArgs),
    /// Follow a running server's live tail: print matching rows as they are ingested.
    Tail(tail::TailArgs),
    /// Create, list and revoke API keys.
    Keys(keys::KeysArgs),
    /// Print the effective server configuration as TOML.
    Config(serve::ServeArgs),
}

impl Cli {
    /// Whether the command is the long-running server (which logs at info by default).
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }

    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => serve::run(args),
            Command::Keys(args) => keys::run(args),
            Command::Config(args) => config::run(args),
            Command::Ingest(args) => ingest::run(args),
            Command::Segments(args) => segments::run(args),
            Command::Inspect(args) => inspect::run(args),
            Command::Search(args) => query::run_search(args),
            Command::Sql(args) => query::run_sql(args),
            Command::Tail(args) => tail::run(args),
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    /// Data directory (created if missing).
    #[arg(
        long,
        env = "SILT_DATA_DIR",
        default_value = "silt-data",
        value_name = "DIR"
    )]
    data_dir: std::path::PathBuf,
}

impl DataDirArgs {
    pub fn dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

/// Output format of commands that print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
