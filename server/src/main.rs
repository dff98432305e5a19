//! The `silt` binary: the HTTP server and the command-line interface over the engine.
//! Parses arguments, sets up logging, and reports errors with context.

/// mimalloc: ingest allocates row strings on the parser thread and frees them on another, which
/// glibc's malloc serves slowly (consolidation and chunk unlinking were ~10% of `silt ingest`).
/// Version 2: it returns freed memory to the system after 10 ms where version 3 waits a second,
/// which held `silt ingest`'s peak RSS ~70 MiB higher at the same speed. It asks for transparent
/// huge pages (`MADV_HUGEPAGE`), which queries gain from and `silt ingest` turns off
/// (`cli::ingest`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod config;
mod http;
mod keys;
mod render;
mod syslog;
mod timespec;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let default_level = if cli.is_server() { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SILT_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated like `{:#}`, leaving out a cause that the message
/// before it already ends with after a `: ` (storage errors name their source in their message).
fn chain_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if text != cause && !text.ends_with(&format!(": {cause}")) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
