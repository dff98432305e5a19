//! The server's configuration: defaults, overlaid by a TOML file, then `SILT_…` environment
//! variables, then command-line flags; `silt config` prints the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Address `silt serve` listens on unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// Everything `silt serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the WAL, segments, catalog and API keys live (created if missing).
    pub data_dir: PathBuf,
    /// `host:port` to listen on; port 0 picks a free one.
    pub listen: String,
    /// Serve without API keys on a non-loopback address (everyone is tenant `default`).
    pub insecure: bool,
    /// Ingest body bytes the server reads and parses at once, all tenants together; beyond,
    /// ingest answers 503 with `Retry-After`.
    pub ingest_inflight_bytes: u64,
    /// Limits of every tenant, unless `[tenants.<name>]` says otherwise.
    pub limits: Limits,
    /// Per-tenant overrides of `limits`, e.g. `[tenants.acme] ingest_lines_per_second = 50000`.
    pub tenants: BTreeMap<String, toml::Table>,
    pub engine: EngineConfig,
    /// Syslog listeners (off unless an address is set).
    pub syslog: SyslogConfig,
}

/// Syslog over UDP and TCP (RFC 5424 and RFC 3164; TCP with octet counting or newlines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` for UDP datagrams, e.g. `0.0.0.0:514`; empty = off.
    pub udp: String,
    /// `host:port` for TCP streams; empty = off.
    pub tcp: String,
    /// Tenant and stream the messages go to.
    pub tenant: String,
    pub stream: String,
    /// A longer message (datagram or frame) is rejected and counted.
    pub max_message_bytes: u64,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            udp: String::new(),
            tcp: String::new(),
            tenant: silt_engine::DEFAULT_TENANT.to_string(),
            stream: "syslog".to_string(),
            max_message_bytes: 64 << 10,
        }
    }
}

/// Request and tenant limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, after decompression; bigger gets 413.
    pub max_body_bytes: u64,
    /// Sustained ingest rate per tenant (token bucket); 0 = unlimited.
    pub ingest_lines_per_second: u64,
    pub ingest_bytes_per_second: u64,
    /// How many seconds of the rates a tenant may send at once.
    pub ingest_burst_seconds: f64,
    /// A query running longer is cancelled (504).
    pub query_timeout_seconds: f64,
    /// Queries of one tenant running at once; more get 429.
    pub max_concurrent_queries: usize,
    /// Rows one SQL answer may hold; a longer result is cut and says `truncated: true`.
    pub max_result_rows: u64,
    /// Largest `limit` of one search page.
    pub max_search_limit: usize,
}

/// Engine tuning (see `EngineOptions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// A tenant's memtable is flushed to a segment at this size …
    pub flush_bytes: u64,
    /// … or when its oldest row is this old.
    pub flush_age_seconds: f64,
    /// Ingest is refused with 503 while all memtables together hold more than this.
    pub memtable_limit_bytes: u64,
    /// Memory all queries together may use before they spill or fail.
    pub query_memory_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("silt-data"),
            listen: DEFAULT_LISTEN.to_string(),
            insecure: false,
            ingest_inflight_bytes: 1 << 30,
            limits: Limits::default(),
            tenants: BTreeMap::new(),
            engine: EngineConfig::default(),
            syslog: SyslogConfig::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 20,
            ingest_lines_per_second: 1_000_000,
            ingest_bytes_per_second: 512 << 20,
            ingest_burst_seconds: 2.0,
            query_timeout_seconds: 30.0,
            max_concurrent_queries: 8,
            max_result_rows: 1_000_000,
            max_search_limit: 10_000,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        let engine = silt_engine::EngineOptions::new("");
        Self {
            flush_bytes: engine.flush_bytes as u64,
            flush_age_seconds: engine.flush_age.as_secs_f64(),
            memtable_limit_bytes: engine.memtable_limit_bytes as u64,
            query_memory_bytes: engine.query.memory_limit_bytes as u64,
        }
    }
}

/// The flags every command that reads the configuration takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "SILT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (created if missing) [default: silt-data].
    #[arg(long, env = "SILT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Environment variables that are flags of their own, not `section__key` paths.
const FLAG_VARIABLES: [&str; 4] = [
    "SILT_CONFIG",
    "SILT_DATA_DIR",
    "SILT_LISTEN",
    "SILT_INSECURE",
];

impl Config {
    /// Defaults ← the file named by `args.config` ← `SILT_<SECTION>__<KEY>` variables ←
    /// `args.data_dir`. (`listen`/`insecure` flags are applied by `silt serve` itself.)
    pub fn load(args: &ConfigArgs) -> anyhow::Result<Config> {
        let mut table = toml::Table::try_from(Config::default()).context("default config")?;
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let file: toml::Table = text
                .parse()
                .with_context(|| format!("invalid TOML in {}", path.display()))?;
            merge(&mut table, file);
        }
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("SILT_") && k.contains("__"))
            .collect();
        merge(&mut table, env_table(&vars)?);
        let mut config: Config = table
            .try_into::<Config>()
            .context("invalid configuration (file or SILT_… variables)")?;
        if let Some(dir) = &args.data_dir {
            config.data_dir = dir.clone();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.limits.validate("limits")?;
        if !(self.engine.flush_age_seconds > 0.0
            && self.engine.flush_age_seconds <= 86_400.0 * 365.0)
        {
            bail!("engine.flush_age_seconds must be above 0 and at most a year");
        }
        silt_storage::layout::validate_name("tenant", &self.syslog.tenant)
            .context("syslog.tenant")?;
        silt_storage::layout::validate_name("stream", &self.syslog.stream)
            .context("syslog.stream")?;
        if !(1..=16 << 20).contains(&self.syslog.max_message_bytes) {
            bail!("syslog.max_message_bytes must be 1 to 16777216");
        }
        for name in self.tenants.keys() {
            self.tenant_limits(name)
                .and_then(|l| l.validate(&format!("tenants.{name}")))?;
        }
        Ok(())
    }

    /// The limits of `tenant`: `limits` with its `[tenants.<name>]` overrides.
    pub fn tenant_limits(&self, tenant: &str) -> anyhow::Result<Limits> {
        let Some(overrides) = self.tenants.get(tenant) else {
            return Ok(self.limits.clone());
        };
        let mut table = toml::Table::try_from(&self.limits).context("limits")?;
        merge(&mut table, overrides.clone());
        table
            .try_into::<Limits>()
            .with_context(|| format!("invalid [tenants.{tenant}]"))
    }

    pub fn engine_options(&self) -> silt_engine::EngineOptions {
        let mut options = silt_engine::EngineOptions::new(&self.data_dir);
        options.flush_bytes = self.engine.flush_bytes as usize;
        options.flush_age = Duration::from_secs_f64(self.engine.flush_age_seconds);
        options.memtable_limit_bytes = self.engine.memtable_limit_bytes as usize;
        options.query.memory_limit_bytes = self.engine.query_memory_bytes as usize;
        options
    }

    /// The effective configuration as TOML, as `silt config` prints it.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Limits {
    fn validate(&self, section: &str) -> anyhow::Result<()> {
        if self.max_body_bytes == 0 {
            bail!("{section}.max_body_bytes must be above 0");
        }
        // `contains` is false for NaN as well.
        if !(f64::MIN_POSITIVE..=86_400.0).contains(&self.ingest_burst_seconds) {
            bail!("{section}.ingest_burst_seconds must be above 0 and at most 86400");
        }
        if !(f64::MIN_POSITIVE..=86_400.0).contains(&self.query_timeout_seconds) {
            bail!("{section}.query_timeout_seconds must be above 0 and at most 86400");
        }
        if self.max_concurrent_queries == 0 {
            bail!("{section}.max_concurrent_queries must be at least 1");
        }
        if self.max_search_limit == 0 {
            bail!("{section}.max_search_limit must be at least 1");
        }
        Ok(())
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.query_timeout_seconds)
    }
}

/// Overlays `top` onto `base`, table by table.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `SILT_LIMITS__MAX_BODY_BYTES=1048576` → `{limits = {max_body_bytes = 1048576}}`; a value is
/// read as TOML (number, boolean, array) and otherwise taken as a string.
fn env_table(vars: &[(String, String)]) -> anyhow::Result<toml::Table> {
    let mut out = toml::Table::new();
    for (name, value) in vars {
        if FLAG_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let path: Vec<String> = name["SILT_".len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            bail!("invalid configuration variable {name}");
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let mut table = &mut out;
        for key in &path[..path.len() - 1] {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .with_context(|| format!("{name} conflicts with another variable"))?;
        }
        table.insert(path[path.len() - 1].clone(), parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let vars = vec![
            (
                "SILT_LIMITS__MAX_BODY_BYTES".to_string(),
                "1024".to_string(),
            ),
            (
                "SILT_TENANTS__ACME__MAX_CONCURRENT_QUERIES".to_string(),
                "2".to_string(),
            ),
            ("SILT_DATA_DIR".to_string(), "/ignored".to_string()),
        ];
        let mut table = toml::Table::try_from(Config::default()).unwrap();
        merge(&mut table, env_table(&vars).unwrap());
        let config: Config = table.try_into::<Config>().unwrap();
        assert_eq!(config.limits.max_body_bytes, 1024);
        assert_eq!(
            config.tenant_limits("acme").unwrap().max_concurrent_queries,
            2
        );
        assert_eq!(
            config
                .tenant_limits("other")
                .unwrap()
                .max_concurrent_queries,
            8
        );
        assert_eq!(config.data_dir, PathBuf::from("silt-data"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let mut table = toml::Table::try_from(Config::default()).unwrap();
        merge(&mut table, "[limits]\nmax_bodybytes = 1".parse().unwrap());
        let err = table.try_into::<Config>().unwrap_err();
        assert!(err.to_string().contains("max_bodybytes"), "{err:#}");
    }

    #[test]
    fn printed_config_reads_back_identically() {
        let mut config = Config::default();
        config.limits.max_concurrent_queries = 3;
        let text = config.to_toml().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
}
