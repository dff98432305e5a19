//! `silt config`: prints the configuration `silt serve` would run with (defaults, file,
//! `SILT_…` variables and flags applied), as TOML that `--config` reads back.

use std::process::ExitCode;

use super::serve::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    print!("{}", args.effective_config()?.to_toml()?);
    Ok(ExitCode::SUCCESS)
}
