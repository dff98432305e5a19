//! `silt tail QUERY`: follows a running server's live tail (`GET /v1/logs/tail`, WebSocket)
//! and prints each matching row as it is acknowledged, until interrupted.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use super::DataDirArgs;
use super::remote::ServerArgs;
use super::serve::SERVER_ADDR_FILE;

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Search-language query; only matching rows are printed. Empty: every row.
    #[arg(default_value = "")]
    query: String,
    #[command(flatten)]
    server: ServerArgs,
    /// Without --server: the data directory whose running server to follow (its `server.addr`).
    #[command(flatten)]
    data: DataDirArgs,
    /// `table`: one log line per row; `ndjson`: the rows as the server sends them.
    #[arg(long, value_enum, default_value = "table")]
    format: TailFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TailFormat {
    Table,
    Ndjson,
}

pub fn run(args: TailArgs) -> anyhow::Result<ExitCode> {
    let base = match &args.server.server {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let file = args.data.dir().join(SERVER_ADDR_FILE);
            std::fs::read_to_string(&file)
                .with_context(|| {
                    format!(
                        "no --server given and no running server found ({} is missing)",
                        file.display()
                    )
                })?
                .trim()
                .trim_end_matches('/')
                .to_owned()
        }
    };
    let ws_base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("https://") {
        bail!("silt tail speaks plain ws:// only; put it on the server's host or tunnel it");
    } else {
        base.clone()
    };
    let query = serde_urlencoded::to_string([("q", args.query.as_str())])?;
    let url = format!("{ws_base}/v1/logs/tail?{query}");
    let mut request = url
        .as_str()
        .into_client_request()
        .with_context(|| format!("invalid server URL {base}"))?;
    if let Some(key) = &args.server.api_key {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {key}").parse()?);
    }
    let (mut socket, _) = match tungstenite::connect(request) {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            let reason = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["reason"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            eprintln!("error: {reason} (HTTP {status})");
            return Ok(
                if (400..500).contains(&status) && status != 401 && status != 403 {
                    ExitCode::from(2)
                } else {
                    ExitCode::FAILURE
                },
            );
        }
        Err(e) => return Err(e).with_context(|| format!("cannot reach {url}")),
    };
    eprintln!("following {base} (Ctrl-C to stop)");
    let mut out = std::io::stdout().lock();
    loop {
        let message = match socket.read() {
            Ok(message) => message,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(e) => return Err(e).context("the live tail connection failed"),
        };
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                break;
            }
            continue;
        };
        let row: Value = serde_json::from_str(text.as_str())
            .context("the server sent a row that is not JSON")?;
        if let Some(dropped) = row.get("dropped") {
            eprintln!("… {dropped} rows dropped: this terminal fell behind");
            continue;
        }
        if let Some(error) = row.get("error") {
            bail!("the server ended the tail: {}", error["reason"]);
        }
        match (args.format, &row) {
            (TailFormat::Table, Value::Object(object)) => {
                writeln!(out, "{}", crate::render::log_line(object))?
            }
            _ => writeln!(out, "{row}")?,
        }
        out.flush()?;
    }
    eprintln!("the server closed the tail");
    Ok(ExitCode::SUCCESS)
}
