//! `silt config`: prints the configuration `silt serve` would run with (defaults, file,
//! `SILT_…` variables and flags applied), as TOML that `--config` reads back.

use std::process::ExitCode;

use crate::config::ConfigArgs;

#[derive(Debug, clap::Args)]
pub struct ConfigCmdArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// As `silt serve --listen`.
    #[arg(long, env = "SILT_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// As `silt serve --insecure`.
    #[arg(long, env = "SILT_INSECURE")]
    insecure: bool,
}

pub fn run(args: ConfigCmdArgs) -> anyhow::Result<ExitCode> {
    let config =
        super::serve::effective_config(&args.config, args.listen.as_deref(), args.insecure)?;
    print!("{}", config.to_toml()?);
    Ok(ExitCode::SUCCESS)
}
