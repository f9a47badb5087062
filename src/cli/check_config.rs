//! `cabal-triage check-config`: validate the configuration and print the effective values with
//! secrets masked, plus warnings (secrets in clear in the file, unauthenticated listener).

use std::path::Path;

use super::CliError;
use crate::config::Config;

pub fn run(path: Option<&Path>) -> Result<(), CliError> {
    let config = Config::load(path).map_err(|e| CliError::Input(e.to_string()))?;
    let file_text = path.and_then(|p| std::fs::read_to_string(p).ok());
    for warning in config.warnings(file_text.as_deref()) {
        eprintln!("warning: {warning}");
    }
    if let Err(error) = config.auth.require_for_serve() {
        eprintln!("warning: `serve` would refuse to start: {error}");
    }
    print!("{}", config.to_masked_toml());
    Ok(())
}
