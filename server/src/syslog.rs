//! Syslog listeners: UDP datagrams and TCP streams (octet counting or newline framing) of
//! RFC 5424 / RFC 3164 messages, batched into the engine like any other ingest.
//!
//! Messages are parsed where they arrive and handed to one batcher, which stores up to
//! [`BATCH_ROWS`] at a time (or what came within [`BATCH_WAIT`]) as one WAL record. When the
//! batcher falls behind, TCP readers wait (back-pressure to the sender) and UDP datagrams are
//! dropped and counted: UDP syslog has no way to slow a sender down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use silt_engine::parse::ParseOptions;
use silt_engine::parse::syslog::{SyslogFramer, parse_syslog_message};
use silt_storage::record::LogRecord;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::config::SyslogConfig;
use crate::http::AppState;
use crate::http::metrics::TenantLabel;

/// Records stored as one WAL record at most.
const BATCH_ROWS: usize = 2000;
/// How long the first record of a batch waits for company.
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// After shutdown begins, a TCP connection is read until it has been quiet this long.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Records parsed but not yet stored, all listeners together.
const QUEUE_RECORDS: usize = 65_536;

/// The running listeners: where they are bound (port 0 in the configuration resolved) and
/// how to stop them.
#[derive(Debug, Default)]
pub struct SyslogAddrs {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    stop: Option<watch::Sender<bool>>,
    batcher: Option<tokio::task::JoinHandle<()>>,
}

impl SyslogAddrs {
    /// Stops listening and stores every message already received (for at most `grace`):
    /// a TCP sender's bytes that reached the server are not lost to a graceful shutdown.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(batcher) = self.batcher.take()
            && tokio::time::timeout(grace, batcher).await.is_err()
        {
            tracing::warn!("syslog messages still queued {grace:?} after shutdown began; dropped");
        }
    }
}

/// Binds the configured listeners and runs them, and their batcher, for the life of the
/// server. Nothing is bound when neither address is set.
pub async fn start(config: &SyslogConfig, state: Arc<AppState>) -> anyhow::Result<SyslogAddrs> {
    let mut addrs = SyslogAddrs::default();
    if config.udp.is_empty() && config.tcp.is_empty() {
        return Ok(addrs);
    }
    let (queue, queued) = mpsc::channel(QUEUE_RECORDS);
    let (stop, stopped) = watch::channel(false);
    addrs.stop = Some(stop);
    let max = config.max_message_bytes as usize;
    if !config.udp.is_empty() {
        let socket = UdpSocket::bind(&config.udp)
            .await
            .with_context(|| format!("cannot listen for syslog on udp {}", config.udp))?;
        addrs.udp = Some(socket.local_addr()?);
        tokio::spawn(until_stopped(
            stopped.clone(),
            udp_listener(
                socket,
                max,
                queue.clone(),
                state.clone(),
                config.tenant.clone(),
            ),
        ));
    }
    if !config.tcp.is_empty() {
        let listener = TcpListener::bind(&config.tcp)
            .await
            .with_context(|| format!("cannot listen for syslog on tcp {}", config.tcp))?;
        addrs.tcp = Some(listener.local_addr()?);
        tokio::spawn(until_stopped(
            stopped.clone(),
            tcp_listener(
                listener,
                max,
                queue.clone(),
                state.clone(),
                config.tenant.clone(),
                stopped.clone(),
            ),
        ));
    }
    drop(queue);
    addrs.batcher = Some(tokio::spawn(batcher(
        queued,
        state,
        config.tenant.clone(),
        config.stream.clone(),
    )));
    Ok(addrs)
}

/// Runs `task` until the stop signal; dropping it drops its queue handle.
async fn until_stopped(
    mut stopped: watch::Receiver<bool>,
    task: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        () = task => {}
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

/// Counts a message that was not stored, and says why at debug level.
fn reject(state: &AppState, tenant: &str, reason: &str) {
    tracing::debug!(reason, "syslog message rejected");
    state
        .metrics
        .ingest_rejected_lines
        .get_or_create(&TenantLabel {
            tenant: tenant.to_owned(),
        })
        .inc();
}

async fn udp_listener(
    socket: UdpSocket,
    max: usize,
    queue: mpsc::Sender<LogRecord>,
    state: Arc<AppState>,
    tenant: String,
) {
    // One byte more than allowed: a datagram that fills it was too long (and truncated).
    let mut buf = vec![0u8; max + 1];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                tracing::warn!(error = %e, "syslog udp receive failed");
                continue;
            }
        };
        if len > max {
            reject(
                &state,
                &tenant,
                &format!("datagram from {peer} over {max} bytes"),
            );
            continue;
        }
        match parse_syslog_message(&buf[..len], &ParseOptions::default()) {
            Ok(record) => {
                if queue.try_send(record).is_err() {
                    reject(&state, &tenant, "syslog queue full: datagram dropped");
                }
            }
            Err(e) => reject(&state, &tenant, &e.to_string()),
        }
    }
}

async fn tcp_listener(
    listener: TcpListener,
    max: usize,
    queue: mpsc::Sender<LogRecord>,
    state: Arc<AppState>,
    tenant: String,
    stopped: watch::Receiver<bool>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(tcp_connection(
                    stream,
                    peer,
                    max,
                    queue.clone(),
                    state.clone(),
                    tenant.clone(),
                    stopped.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "syslog tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn tcp_connection(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    max: usize,
    queue: mpsc::Sender<LogRecord>,
    state: Arc<AppState>,
    tenant: String,
    mut stopped: watch::Receiver<bool>,
) {
    let mut framer = SyslogFramer::new(max);
    let mut buf = vec![0u8; 64 << 10];
    let mut draining = false;
    loop {
        // Once the server stops, what the sender already sent is still read and stored, until
        // the connection is quiet for DRAIN_IDLE.
        let read = if draining {
            tokio::time::timeout(DRAIN_IDLE, stream.read(&mut buf))
                .await
                .unwrap_or(Ok(0))
        } else {
            tokio::select! {
                read = stream.read(&mut buf) => read,
                _ = stopped.wait_for(|stop| *stop) => {
                    draining = true;
                    continue;
                }
            }
        };
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "syslog tcp connection failed");
                0
            }
        };
        if read == 0 {
            if let Some(frame) = framer.finish() {
                deliver(frame.map_err(|e| e.to_string()), &queue, &state, &tenant).await;
            }
            return;
        }
        framer.push(&buf[..read]);
        while let Some(frame) = framer.next_frame() {
            if !deliver(frame.map_err(|e| e.to_string()), &queue, &state, &tenant).await {
                return;
            }
        }
    }
}

/// Parses one TCP frame and queues it, waiting for room. False once the server is stopping.
async fn deliver(
    frame: Result<Vec<u8>, String>,
    queue: &mpsc::Sender<LogRecord>,
    state: &AppState,
    tenant: &str,
) -> bool {
    let record = frame.and_then(|frame| {
        parse_syslog_message(&frame, &ParseOptions::default()).map_err(|e| e.to_string())
    });
    match record {
        Ok(record) => queue.send(record).await.is_ok(),
        Err(reason) => {
            reject(state, tenant, &reason);
            true
        }
    }
}

/// Stores what the listeners parsed, in batches; waits for the engine while it opens and
/// retries while it refuses (memory budget), so nothing queued is lost to a transient state.
async fn batcher(
    mut queued: mpsc::Receiver<LogRecord>,
    state: Arc<AppState>,
    tenant: String,
    stream: String,
) {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    loop {
        let Some(first) = queued.recv().await else {
            return;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH_ROWS {
            match tokio::time::timeout_at(deadline, queued.recv()).await {
                Ok(Some(record)) => batch.push(record),
                Ok(None) | Err(_) => break,
            }
        }
        let records = std::mem::take(&mut batch);
        store(&state, &tenant, &stream, records).await;
    }
}

async fn store(state: &Arc<AppState>, tenant: &str, stream: &str, records: Vec<LogRecord>) {
    let rows = records.len() as u64;
    let mut records = Some(records);
    let mut backoff = Duration::from_millis(50);
    loop {
        let engine = match state.engine() {
            Ok(engine) if !engine.over_memory_budget() => engine.clone(),
            _ => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let shared = state.clone();
        let (tenant_owned, stream_owned) = (tenant.to_owned(), stream.to_owned());
        let batch = records.take().unwrap_or_default();
        let result = tokio::task::spawn_blocking(move || {
            shared.append_blocking(&engine, &tenant_owned, stream_owned, batch)
        })
        .await;
        match result {
            Ok(Ok(_receipt)) => {
                let label = TenantLabel {
                    tenant: tenant.to_owned(),
                };
                state
                    .metrics
                    .ingest_lines
                    .get_or_create(&label)
                    .inc_by(rows);
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, rows, "syslog batch not stored; dropped");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, rows, "syslog batch task failed; dropped");
                return;
            }
        }
    }
}
