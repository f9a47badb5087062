//! Configuration: one TOML file (every key optional, defaults embedded), environment overrides,
//! and secrets from the environment or from files.
//!
//! Loading is one path: the TOML is read into a table, environment overrides are written into
//! that table, and the result is deserialized with unknown keys refused, so a typo in a key is an
//! error that names the key instead of a silently ignored setting. `validate` then checks values
//! and reads secret files. Every key is documented, with its default, in `config/cabal-triage.toml`.

mod env;
mod reach;
mod runbooks;
mod secret;
mod sections;
mod services;

use std::path::{Path, PathBuf};

pub use env::{apply_env_overrides, ENV_PREFIX};
pub use reach::{
    AlertmanagerConfig, DashboardLink, LinksConfig, NotifyConfig, NtfyConfig, PushoverConfig,
    UnknownAlerts,
};
pub use runbooks::RunbooksConfig;
pub use secret::{RotatingSecret, Rotation, Secret};
pub use sections::*;
pub use services::{ImapAuthConfig, RestartLoopConfig, ServiceConfig, Services};

use serde::{Deserialize, Serialize};

/// A configuration problem, with the key at fault and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
}

impl ConfigError {
    pub fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// The whole configuration. Field names are the TOML section names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub ledger: LedgerConfig,
    pub auth: AuthConfig,
    pub worker: WorkerConfig,
    pub cabalmail: CabalmailConfig,
    pub aws: AwsConfig,
    pub nat: NatConfig,
    pub probes: ProbesConfig,
    pub dnsbl: DnsblConfig,
    pub slack: SlackConfig,
    pub pagerduty: PagerDutyConfig,
    pub privacy: PrivacyConfig,
    pub providers: ProvidersConfig,
    pub exec: ExecConfig,
    pub delivery: DeliveryConfig,
    pub runbooks: RunbooksConfig,
    pub notify: NotifyConfig,
    pub ntfy: NtfyConfig,
    pub pushover: PushoverConfig,
    pub restart_loop: RestartLoopConfig,
    pub imap_auth: ImapAuthConfig,
    /// `[[services]]`: the ECS services the restart-loop runbook knows.
    pub services: Services,
    pub alertmanager: AlertmanagerConfig,
    pub links: LinksConfig,
}

impl Config {
    /// Reads the file (when given), applies the environment, reads secret files and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &mut std::env::vars())
    }

    /// As `load`, with the environment passed in (tests use this).
    pub fn load_with_env(
        path: Option<&Path>,
        vars: &mut dyn Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "(embedded defaults)".to_string()),
        };
        Self::from_toml_str(&text, &origin, vars)
    }

    /// Parses TOML text, applies the environment, resolves secrets and validates.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        vars: &mut dyn Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: match e.span() {
                        Some(span) => format!("{origin}:{}", line_of(text, span.start)),
                        None => origin.to_string(),
                    },
                    message: e.message().trim().replace('\n', " "),
                })?;
        apply_env_overrides(&mut table, vars)?;
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                let message = e.inner().message().trim().replace('\n', " ");
                let reason = if secret::is_secret_path(&key) {
                    secret_type_error(&message)
                } else {
                    message
                };
                ConfigError::Invalid {
                    key: if key == "." {
                        "(top level)".to_string()
                    } else {
                        key
                    },
                    reason: format!("{reason} (in {origin})"),
                }
            })?;
        config.resolve_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.auth.webhook_tokens_file {
            self.auth
                .webhook_tokens
                .extend(read_token_lines(path, "auth.webhook_tokens_file")?);
        }
        if let Some(path) = &self.auth.read_tokens_file {
            self.auth
                .read_tokens
                .extend(read_token_lines(path, "auth.read_tokens_file")?);
        }
        if let Some(path) = &self.slack.bot_token_file {
            self.slack.bot_token = Some(read_single_secret(path, "slack.bot_token_file")?);
        }
        if let Some(path) = &self.slack.webhook_url_file {
            self.slack.webhook_url = Some(read_single_secret(path, "slack.webhook_url_file")?);
        }
        if let Some(path) = &self.dnsbl.spamhaus_dqs_key_file {
            self.dnsbl.spamhaus_dqs_key =
                Some(read_single_secret(path, "dnsbl.spamhaus_dqs_key_file")?);
        }
        if let Some(path) = &self.pagerduty.api_token_file {
            self.pagerduty.api_token = Some(read_single_secret(path, "pagerduty.api_token_file")?);
        }
        if let Some(path) = &self.ntfy.token_file {
            self.ntfy.token = Some(read_single_secret(path, "ntfy.token_file")?);
        }
        if let Some(path) = &self.ntfy.password_file {
            self.ntfy.password = Some(read_single_secret(path, "ntfy.password_file")?);
        }
        if let Some(path) = &self.pushover.app_token_file {
            self.pushover.app_token = Some(read_single_secret(path, "pushover.app_token_file")?);
        }
        if let Some(path) = &self.pushover.user_key_file {
            self.pushover.user_key = Some(read_single_secret(path, "pushover.user_key_file")?);
        }
        if let Some(path) = &self.slack.app_token_file {
            self.slack.app_token = Some(read_single_secret(path, "slack.app_token_file")?);
        }
        if let Some(path) = &self.alertmanager.token_file {
            self.alertmanager.token = Some(read_single_secret(path, "alertmanager.token_file")?);
        }
        Ok(())
    }

    /// Checks every value that can be wrong in a way the types do not catch.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.ledger.validate()?;
        self.worker.validate()?;
        self.auth.validate()?;
        self.cabalmail.validate()?;
        self.dnsbl.validate()?;
        self.probes.validate()?;
        self.slack.validate()?;
        self.pagerduty.validate()?;
        self.providers.validate()?;
        self.exec.validate()?;
        self.delivery.validate()?;
        self.runbooks.validate()?;
        self.ntfy.validate()?;
        self.pushover.validate()?;
        self.restart_loop.validate()?;
        self.imap_auth.validate()?;
        self.services.validate()?;
        self.alertmanager.validate()?;
        self.links.validate()?;
        Ok(())
    }

    /// Things that work but that an operator should change: secrets written in the TOML in
    /// clear, for example. `serve` logs them and `check-config` prints them.
    pub fn warnings(&self, file_text: Option<&str>) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(text) = file_text {
            if let Ok(table) = text.parse::<toml::Table>() {
                for &(section, key) in secret::SECRET_KEYS {
                    // An empty list (`webhook_tokens = []`, as in the shipped file) holds no secret.
                    if table
                        .get(section)
                        .and_then(|s| s.as_table())
                        .and_then(|s| s.get(key))
                        .is_some_and(|v| v.as_array().is_none_or(|items| !items.is_empty()))
                    {
                        warnings.push(format!(
                            "{section}.{key} is written in the config file in clear: move it to {section}.{key}_file or the environment"
                        ));
                    }
                }
            }
        }
        for (key, path) in self.secret_files() {
            if let Some(mode) = readable_by_others(path) {
                warnings.push(format!(
                    "{key}: {} can be read by group or others (mode {mode:04o}): chmod 600 it",
                    path.display()
                ));
            }
        }
        if self.auth.allow_unauthenticated {
            warnings.push("auth.allow_unauthenticated = true: anyone who can reach the listener can post alerts and read episodes".into());
        }
        warnings
    }

    /// Every `*_file` secret setting that is set, with its key.
    fn secret_files(&self) -> Vec<(&'static str, &Path)> {
        [
            ("auth.webhook_tokens_file", &self.auth.webhook_tokens_file),
            ("auth.read_tokens_file", &self.auth.read_tokens_file),
            ("slack.bot_token_file", &self.slack.bot_token_file),
            ("slack.webhook_url_file", &self.slack.webhook_url_file),
            ("pagerduty.api_token_file", &self.pagerduty.api_token_file),
            ("alertmanager.token_file", &self.alertmanager.token_file),
            ("slack.app_token_file", &self.slack.app_token_file),
        ]
        .into_iter()
        .filter_map(|(key, path)| path.as_deref().map(|path| (key, path)))
        .collect()
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// The message for a secret key that failed to deserialize. serde quotes the value
/// (`invalid type: integer `1234…`, expected a string`); only what was expected is kept, which
/// serde writes last, after the value.
fn secret_type_error(message: &str) -> String {
    match message.rfind(", expected ") {
        Some(at) => format!(
            "wrong type (the value is a secret and is not shown); expected {}",
            &message[at + ", expected ".len()..]
        ),
        None => "invalid value (the value is a secret and is not shown)".to_string(),
    }
}

/// The permission bits of the file at `path` when group or others may read it (or write or run
/// it); None when only its owner may, or when it cannot be looked at (reading it said why).
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// The 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Reads a file of tokens, one per line; blank lines and `#` comments are skipped.
fn read_token_lines(path: &Path, key: &str) -> Result<Vec<Secret>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let tokens: Vec<Secret> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(Secret::new)
        .collect();
    if tokens.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("{} holds no token", path.display()),
        ));
    }
    Ok(tokens)
}

/// Reads a file holding one secret; surrounding white space (a trailing newline) is dropped.
fn read_single_secret(path: &Path, key: &str) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests;
