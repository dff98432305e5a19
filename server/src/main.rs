//! The `silt` binary: the HTTP server and the command-line interface over the engine.
//! Parses arguments, sets up logging, and reports errors with context.

/// mimalloc: ingest allocates row strings on the parser thread and frees them on another, which
/// glibc's malloc serves slowly (consolidation and chunk unlinking were ~10% of `silt ingest`).
/// Version 2, with its purge delay set by [`set_allocator_purge_delay`]. It asks for transparent
/// huge pages (`MADV_HUGEPAGE`), which queries gain from and `silt ingest` turns off
/// (`cli::ingest`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (version 2), which libmimalloc-sys does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long freed memory stays mapped before mimalloc returns it to the system, in ms (its own
/// default is 10). Every flush frees a memtable's builders and the next one allocates as much:
/// returned after 10 ms, those pages were faulted in again, and the kernel's page faults were
/// ~9% of `silt ingest`'s CPU. At 100 ms: `ingest-bench`, three alternating runs, 229.0k ->
/// 241.8k lines/s, system CPU 1.36 -> 0.76 s, peak RSS 657 -> 799 MiB.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless the environment sets it
/// (`MIMALLOC_PURGE_DELAY`, read by mimalloc itself).
fn set_allocator_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it when it next purges.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
        };
    }
}

mod cli;
mod config;
mod http;
mod keys;
mod render;
mod syslog;
mod timespec;

use clap::Parser;

fn main() -> std::process::ExitCode {
    set_allocator_purge_delay();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// libmimalloc-sys does not name the option, so check that 15 is the purge delay: its
    /// default is 10 ms, and setting it is what `main` does.
    #[test]
    fn option_fifteen_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: reads an integer option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 10);
        set_allocator_purge_delay();
        assert_eq!(get(), PURGE_DELAY_MS);
    }
}
