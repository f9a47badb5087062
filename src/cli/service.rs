//! `cabal-triage serve`: loads and checks the configuration, starts logging, the runtime and the
//! signal handling (`shutdown`), and runs the service (`app::run`) until SIGTERM/SIGINT; on
//! SIGHUP the service re-reads its secrets from the same configuration file and environment.
//! `--listen` overrides `server.listen`; `--config` may come from `CABAL_TRIAGE_CONFIG`.

use std::path::Path;
use std::sync::Arc;

use super::CliError;
use crate::app::{self, AppError};
use crate::config::Config;
use crate::shutdown::Shutdown;

pub fn run(path: Option<&Path>, listen: Option<String>) -> Result<(), CliError> {
    let mut config = Config::load(path).map_err(|e| CliError::Input(e.to_string()))?;
    if let Some(listen) = listen {
        config.server.listen = listen;
        config
            .server
            .listen_addr()
            .map_err(|e| CliError::Input(format!("--listen: {e}")))?;
    }
    config
        .auth
        .require_for_serve()
        .map_err(|e| CliError::Input(e.to_string()))?;
    crate::telemetry::init(&config.log, config.privacy.show_local_parts);
    let file_text = path.and_then(|p| std::fs::read_to_string(p).ok());
    for warning in config.warnings(file_text.as_deref()) {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(async {
            let shutdown = Shutdown::new();
            shutdown.listen_for_signals(config.worker.shutdown_grace());
            let path = path.map(Path::to_path_buf);
            let reload: app::ConfigSource =
                Arc::new(move || Config::load(path.as_deref()).map_err(|e| e.to_string()));
            app::run(Arc::new(config), shutdown, Some(reload)).await
        })
        .map_err(CliError::from)
}

impl From<AppError> for CliError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Config(_) => CliError::Input(error.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}
