//! `silt search` and `silt sql` against a running server (`--server URL`): the same requests
//! a user would send with curl, printed like the local commands print.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Query a running `silt serve` at this URL instead of opening the data directory.
    #[arg(long, env = "SILT_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API key for `--server` (sent as `Authorization: Bearer`).
    #[arg(long, env = "SILT_API_KEY", value_name = "KEY")]
    pub api_key: Option<String>,
}

/// The answer of a request: status and body. Errors of the API are turned into a message
/// and exit code 2 for user errors (4xx), 1 otherwise.
struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

fn post(args: &ServerArgs, path: &str, body: &Value, accept: &str) -> anyhow::Result<Answer> {
    let base = args
        .server
        .as_deref()
        .context("no --server")?
        .trim_end_matches('/');
    let url = format!("{base}{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut request = agent
        .post(&url)
        .header("Accept", accept)
        .header("Content-Type", "application/json");
    if let Some(key) = &args.api_key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let mut response = request
        .send(serde_json::to_vec(body)?.as_slice())
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .with_context(|| format!("reading the answer of {url}"))?;
    Ok(Answer { status, body })
}

/// Prints an error answer and picks the exit code, or returns the body of a success.
fn success(answer: Answer) -> Result<Vec<u8>, ExitCode> {
    if (200..300).contains(&answer.status) {
        return Ok(answer.body);
    }
    let reason = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v["error"]["reason"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
    eprintln!("error: {reason} (HTTP {})", answer.status);
    Err(
        if (400..500).contains(&answer.status)
            && answer.status != 401
            && answer.status != 403
            && answer.status != 429
        {
            ExitCode::from(2)
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Sends one request and prints a successful answer with `print`; an error answer is
/// reported and turned into the exit code (see [`success`]).
pub fn run(
    args: &ServerArgs,
    path: &str,
    body: &Value,
    accept: &str,
    print: impl FnOnce(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    Ok(match success(post(args, path, body, accept)?) {
        Ok(answer) => {
            print(&answer)?;
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}

/// Prints a search answer in the chosen format.
pub fn print_search(body: &[u8], format: super::query::SearchFormat) -> anyhow::Result<()> {
    let doc: Value = serde_json::from_slice(body).context("the server's answer is not JSON")?;
    let hits = doc["hits"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    match format {
        super::query::SearchFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?
        }
        super::query::SearchFormat::Ndjson => {
            for hit in &hits {
                writeln!(out, "{hit}")?;
            }
        }
        super::query::SearchFormat::Table => {
            for hit in &hits {
                if let Value::Object(obj) = hit {
                    writeln!(out, "{}", crate::render::log_line(obj))?;
                }
            }
        }
    }
    out.flush()?;
    let bound = if doc["total_exact"].as_bool() == Some(false) {
        "at least "
    } else {
        ""
    };
    eprintln!(
        "{} of {bound}{} hits in {:.1} ms{}",
        hits.len(),
        doc["total"],
        doc["stats"]["took_ms"].as_f64().unwrap_or(0.0),
        doc["next_cursor"]
            .as_str()
            .map_or(String::new(), |c| format!("; more with --cursor {c}")),
    );
    Ok(())
}

/// Prints a SQL answer (JSON from the server) as a table or JSON; CSV is passed through.
pub fn print_sql(body: &[u8], format: super::query::SqlFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == super::query::SqlFormat::Csv {
        out.write_all(body)?;
        return Ok(());
    }
    let doc: Value = serde_json::from_slice(body).context("the server's answer is not JSON")?;
    if let Some(err) = doc.get("error") {
        bail!("query failed mid-way: {}", err["reason"]);
    }
    match format {
        super::query::SqlFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
        _ => {
            let names: Vec<String> = doc["columns"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| c["name"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            writeln!(out, "{}", names.join(" | "))?;
            for row in doc["rows"].as_array().into_iter().flatten() {
                let cells: Vec<String> = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    })
                    .collect();
                writeln!(out, "{}", cells.join(" | "))?;
            }
        }
    }
    if doc["truncated"].as_bool() == Some(true) {
        eprintln!("warning: the result was cut at the server's row limit");
    }
    Ok(())
}
