//! The harness the server's end-to-end tests share: a real `silt serve` on a loopback port,
//! requests over real sockets, API keys made with the real CLI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const SILT: &str = env!("CARGO_BIN_EXE_silt");

/// A running `silt serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// The line `silt serve` printed first (its addresses).
    pub banner: String,
}

impl Server {
    pub fn start(dir: &Path, envs: &[(&str, &str)]) -> Server {
        Self::start_on(dir, "127.0.0.1:0", envs)
    }

    pub fn start_on(dir: &Path, listen: &str, envs: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(SILT);
        cmd.args(["serve", "--listen", listen])
            .arg("--data-dir")
            .arg(dir)
            .env_remove("SILT_CONFIG")
            .env("SILT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start silt serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let server = Server {
            child,
            url,
            banner: line.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server.get("/health", None).0 == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "server never became healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into()
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = Self::agent().get(format!("{}{path}", self.url));
        if let Some(key) = key {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        match req.call() {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_vec().unwrap()),
            Err(_) => (0, Vec::new()),
        }
    }

    /// POST with headers; returns status, headers of interest and body.
    pub fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Option<String>, Vec<u8>) {
        let mut req = Self::agent().post(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut r = req.send(body).expect("request");
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap();
        (r.status().as_u16(), retry, body)
    }

    pub fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let (status, _, body) = self.post_raw(path, &headers, &serde_json::to_vec(body).unwrap());
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, value)
    }

    pub fn search(&self, key: Option<&str>, query: &str) -> Value {
        let (status, body) = self.post_json(
            "/v1/logs/search",
            key,
            &json!({"query": query, "limit": 10000}),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn sql(&self, key: Option<&str>, query: &str) -> Vec<Vec<Value>> {
        let (status, body) = self.post_json("/v1/sql", key, &json!({"query": query}));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["truncated"], false);
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect()
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).unwrap();
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ingest(
    server: &Server,
    key: Option<&str>,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Value {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", content_type)];
    headers.extend_from_slice(extra);
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let (status, _, body) = server.post_raw("/v1/logs/ingest", &headers, body);
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 202, "{value}");
    value
}

/// Sends `request` as written on a fresh connection and returns the whole answer.
pub fn raw_http(url: &str, request: &str) -> String {
    use std::io::Read;
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

pub fn create_key(dir: &Path, tenant: &str, role: &str) -> String {
    let out = Command::new(SILT)
        .args([
            "keys",
            "create",
            "--tenant",
            tenant,
            "--role",
            role,
            "--data-dir",
        ])
        .arg(dir)
        .env_remove("SILT_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn total(v: &Value) -> u64 {
    v["total"].as_u64().unwrap()
}
