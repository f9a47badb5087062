//! The settings of issue 22 ("where the operator is"): whether alerts without a runbook get a
//! message (`[notify]`), and the phone destinations Cabalmail's own `alert_sink` uses, a
//! self-hosted ntfy server (`[ntfy]`) and Pushover (`[pushover]`). Kept apart from `sections`
//! so that each destination's settings and their checks sit together.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::ConfigError;

/// `[notify]`: what is posted besides runbook verdicts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// An alert whose alertname has no runbook: one message per episode, or nothing.
    pub unknown_alerts: UnknownAlerts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownAlerts {
    /// One message per episode ("no automatic diagnosis for this alert"), updated on resolve.
    #[default]
    Post,
    /// Recorded in the ledger only.
    Ignore,
}

/// `[ntfy]`: a self-hosted ntfy server (JSON publish to the base URL).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NtfyConfig {
    /// The server, e.g. `https://ntfy.example.com`; ntfy is off without it and `topic`.
    pub base_url: Option<String>,
    pub topic: Option<String>,
    /// Access token (`Authorization: Bearer`); prefer `token_file` or `CABAL_TRIAGE_NTFY_TOKEN`.
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    /// Basic auth instead of a token: the user, and the password (a secret).
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// ntfy priorities (1-5) by severity and for the resolution.
    pub priority_critical: u8,
    pub priority_warning: u8,
    pub priority_resolved: u8,
}

impl Default for NtfyConfig {
    fn default() -> Self {
        NtfyConfig {
            base_url: None,
            topic: None,
            token: None,
            token_file: None,
            username: None,
            password: None,
            password_file: None,
            priority_critical: 5,
            priority_warning: 3,
            priority_resolved: 2,
        }
    }
}

impl NtfyConfig {
    pub fn enabled(&self) -> bool {
        self.base_url.is_some() && self.topic.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.base_url {
            super::sections::validate_base_url("ntfy.base_url", url)?;
        }
        if let Some(topic) = &self.topic {
            // ntfy topics: letters, digits, `_` and `-`, up to 64 characters.
            if topic.is_empty()
                || topic.len() > 64
                || !topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::invalid(
                    "ntfy.topic",
                    "must be 1 to 64 letters, digits, '_' or '-' (what ntfy accepts)",
                ));
            }
        }
        for (key, value) in [
            ("ntfy.priority_critical", self.priority_critical),
            ("ntfy.priority_warning", self.priority_warning),
            ("ntfy.priority_resolved", self.priority_resolved),
        ] {
            if !(1..=5).contains(&value) {
                return Err(ConfigError::invalid(
                    key,
                    "must be 1 to 5 (ntfy's priorities)",
                ));
            }
        }
        if self.token.is_some() && self.password.is_some() {
            return Err(ConfigError::invalid(
                "ntfy.token",
                "set either a token or a username and password, not both",
            ));
        }
        if self.password.is_some() != self.username.is_some() {
            return Err(ConfigError::invalid(
                "ntfy.username",
                "basic auth needs both ntfy.username and ntfy.password (or ntfy.password_file)",
            ));
        }
        Ok(())
    }
}

/// `[pushover]`: the Pushover Messages API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushoverConfig {
    pub api_base_url: String,
    /// The application's API token; prefer `app_token_file` or `CABAL_TRIAGE_PUSHOVER_APP_TOKEN`.
    pub app_token: Option<Secret>,
    pub app_token_file: Option<PathBuf>,
    /// The user (or group) key to notify.
    pub user_key: Option<Secret>,
    pub user_key_file: Option<PathBuf>,
    /// Severities sent (the `severity` label); critical only by default, as Cabalmail's
    /// `alert_sink` does.
    pub severities: Vec<String>,
    /// Pushover priorities (-2 to 1; 2, emergency, needs acknowledgement handling and is
    /// refused) by severity and for the resolution.
    pub priority_critical: i8,
    pub priority_warning: i8,
    pub priority_resolved: i8,
}

impl Default for PushoverConfig {
    fn default() -> Self {
        PushoverConfig {
            api_base_url: "https://api.pushover.net".into(),
            app_token: None,
            app_token_file: None,
            user_key: None,
            user_key_file: None,
            severities: vec!["critical".into()],
            priority_critical: 1,
            priority_warning: 0,
            priority_resolved: -1,
        }
    }
}

impl PushoverConfig {
    pub fn enabled(&self) -> bool {
        self.app_token.is_some() && self.user_key.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        super::sections::validate_base_url("pushover.api_base_url", &self.api_base_url)?;
        for (key, value) in [
            ("pushover.priority_critical", self.priority_critical),
            ("pushover.priority_warning", self.priority_warning),
            ("pushover.priority_resolved", self.priority_resolved),
        ] {
            if !(-2..=1).contains(&value) {
                return Err(ConfigError::invalid(
                    key,
                    "must be -2 to 1 (emergency priority 2 needs receipts, which cabal-triage does not handle)",
                ));
            }
        }
        Ok(())
    }
}

/// `[alertmanager]`: the Alertmanager operators use (links to its silence page). From
/// configuration only: the webhook's `externalURL` is not trusted to choose a URL.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// e.g. `https://alertmanager.example.com`; no silence link and no silences without it.
    pub url: Option<String>,
    /// Bearer token for its API (silences), when a proxy in front of it asks for one; prefer
    /// `token_file` or `CABAL_TRIAGE_ALERTMANAGER_TOKEN`.
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
}

impl AlertmanagerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match &self.url {
            Some(url) => super::sections::validate_base_url("alertmanager.url", url),
            None => Ok(()),
        }
    }
}

/// `[links]`: links to the evidence besides the CloudWatch Logs Insights query and the
/// silence page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Dashboards, each a label and a URL template; `{tier}`, `{from_ms}`, `{to_ms}` and
    /// `{episode}` are filled in from the verdict (never from the alert's labels).
    pub dashboards: Vec<DashboardLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardLink {
    pub label: String,
    pub url: String,
}

impl LinksConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for dashboard in &self.dashboards {
            super::sections::validate_base_url("links.dashboards[].url", &dashboard.url)?;
            if dashboard.label.trim().is_empty() || dashboard.label.chars().count() > 40 {
                return Err(ConfigError::invalid(
                    "links.dashboards[].label",
                    "must be 1 to 40 characters",
                ));
            }
        }
        Ok(())
    }
}
