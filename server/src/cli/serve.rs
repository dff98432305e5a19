//! `silt serve`: opens the data directory behind the HTTP API and runs until SIGTERM/SIGINT,
//! then stops accepting, finishes in-flight requests, flushes and fsyncs.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use silt_engine::Engine;

use crate::config::{Config, ConfigArgs};
use crate::http::{self, AppState, KeyRing};
use crate::keys;

/// File in the data directory naming the address of the server that owns it.
pub const SERVER_ADDR_FILE: &str = "server.addr";

/// The flags of `silt serve` (and of `silt config`, which prints what they amount to).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on [default: 127.0.0.1:8480].
    #[arg(long, env = "SILT_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Allow serving without API keys on a non-loopback address.
    #[arg(long, env = "SILT_INSECURE")]
    insecure: bool,
}

impl ServeArgs {
    /// The configuration `silt serve` runs with: the file and variables, then these flags.
    pub fn effective_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(&self.config)?;
        if let Some(listen) = &self.listen {
            config.listen = listen.clone();
        }
        config.insecure |= self.insecure;
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.effective_config()?;
    std::fs::create_dir_all(config.data_dir())
        .with_context(|| format!("cannot create {}", config.data_dir().display()))?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("silt-http")
        .enable_all()
        .build()?;
    let query_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("silt-query")
        .enable_all()
        .build()?;
    let result = server_rt.block_on(serve(config, query_rt.handle().clone()));
    query_rt.shutdown_background();
    result
}

async fn serve(config: Config, queries: tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    let (listener, addr) = http::bind(&config.listen).await?;
    let keys_path = keys::keys_path(config.data_dir());
    let open = addr.ip().is_loopback() || config.insecure;
    let keys = KeyRing::load(keys_path.clone(), open)?;
    if keys.is_open() {
        if !open {
            bail!(
                "refusing to serve {addr} without API keys: create one with `silt keys create --tenant T --role admin`, \
                 listen on loopback, or pass --insecure"
            );
        }
        tracing::warn!(
            "no API keys in {}: serving tenant 'default' to anyone who can reach {addr}",
            keys_path.display()
        );
    }
    let state = Arc::new(AppState::new(config.clone(), keys, queries));
    let syslog = crate::syslog::start(&config.syslog, state.clone()).await?;
    let syslog_note: String = [
        syslog.udp.map(|a| format!(" syslog udp://{a}")),
        syslog.tcp.map(|a| format!(" syslog tcp://{a}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!(
        "silt listening on http://{addr} (data dir {}){syslog_note}",
        config.data_dir().display()
    );
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opener = {
        let state = state.clone();
        let options = config.engine_options();
        let data_dir = config.data_dir().to_path_buf();
        let stop_tx = stop_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            match Engine::open(options) {
                Ok((engine, report)) => {
                    tracing::info!(
                        replayed_records = report.wal_records_replayed,
                        replayed_rows = report.wal_rows_replayed,
                        took_ms = started.elapsed().as_millis() as u64,
                        "data directory open; serving"
                    );
                    let _ =
                        std::fs::write(data_dir.join(SERVER_ADDR_FILE), format!("http://{addr}\n"));
                    state.set_engine(Arc::new(engine));
                    Ok(())
                }
                Err(e) => {
                    let _ = stop_tx.send(true);
                    Err(anyhow::Error::new(e)
                        .context(format!("cannot open {}", data_dir.display())))
                }
            }
        })
    };

    let shutdown = {
        let mut stop_rx = stop_rx.clone();
        async move {
            tokio::select! {
                _ = terminate_signal() => tracing::info!("shutting down: finishing requests, then flushing"),
                _ = stop_rx.wait_for(|s| *s) => {}
            }
        }
    };
    http::serve(listener, state.clone(), shutdown).await?;
    opener.await??;
    // Messages the syslog listeners already received are stored before the final flush.
    syslog.shutdown(std::time::Duration::from_secs(10)).await;

    if let Some(engine) = state.opened_engine() {
        let data_dir = engine.data_dir().to_path_buf();
        flush_and_close(engine).await?;
        tracing::info!("flushed; bye");
        let _ = std::fs::remove_file(data_dir.join(SERVER_ADDR_FILE));
    }
    drop(stop_tx);
    Ok(ExitCode::SUCCESS)
}

/// Flushes every memtable to segments (the WAL is then truncated): a restart replays nothing.
async fn flush_and_close(engine: Arc<Engine>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || engine.flush_all().context("final flush")).await?
}

async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Where a running server that owns `data_dir` listens, if it said so.
pub fn server_of(data_dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(SERVER_ADDR_FILE))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
