//! `silt keys create|list|revoke`: API keys of a data directory. A key is printed once, at
//! creation; only its hash is stored. A running server picks changes up within a second.

use std::io::Write;
use std::process::ExitCode;

use crate::config::{Config, ConfigArgs};
use crate::keys::{self, Role};

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create a key for a tenant and print it (the only time it is shown).
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// The tenant whose data the key reaches (created on first ingest).
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List keys: id, tenant, role, creation time (never the keys).
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, value_enum, default_value_t = super::ReportFormat::Text)]
        format: super::ReportFormat,
    },
    /// Revoke a key by its id.
    Revoke {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
    },
}

pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match args.command {
        KeysCommand::Create {
            config,
            tenant,
            role,
        } => {
            let path = keys::keys_path(Config::load(&config)?.data_dir());
            let (entry, key) = keys::create(&path, &tenant, role)?;
            writeln!(out, "{key}")?;
            eprintln!(
                "created key {} for tenant '{}' with role {}; store it now, it is not shown again",
                entry.id,
                entry.tenant,
                entry.role.as_str()
            );
        }
        KeysCommand::List { config, format } => {
            let path = keys::keys_path(Config::load(&config)?.data_dir());
            let entries = keys::list(&path)?;
            match format {
                super::ReportFormat::Json => {
                    let rows: Vec<_> = entries
                        .iter()
                        .map(|e| serde_json::json!({"id": e.id, "tenant": e.tenant, "role": e.role, "created": e.created}))
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                }
                super::ReportFormat::Text => {
                    writeln!(out, "{:<14} {:<24} {:<8} CREATED", "ID", "TENANT", "ROLE")?;
                    for e in &entries {
                        writeln!(
                            out,
                            "{:<14} {:<24} {:<8} {}",
                            e.id,
                            e.tenant,
                            e.role.as_str(),
                            e.created
                        )?;
                    }
                }
            }
        }
        KeysCommand::Revoke { config, id } => {
            let path = keys::keys_path(Config::load(&config)?.data_dir());
            let entry = keys::revoke(&path, &id)?;
            eprintln!("revoked key {} of tenant '{}'", entry.id, entry.tenant);
        }
    }
    Ok(ExitCode::SUCCESS)
}
