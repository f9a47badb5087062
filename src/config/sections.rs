//! The configuration sections, each with its defaults and its own validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};
use crate::timing::Backoff;

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`CABAL_TRIAGE_LISTEN`).
    pub listen: String,
    /// Largest accepted webhook body in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Most alerts accepted in one webhook payload; more get 413 with a clear error.
    pub max_alerts_per_payload: usize,
    /// Base URL under which operators reach this service, used for links in annotations.
    pub public_url: Option<String>,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a webhook body (408 past it).
    pub body_read_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:9095".into(),
            body_limit_bytes: 1024 * 1024,
            max_alerts_per_payload: 10_000,
            public_url: None,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_connections: 512,
        }
    }
}

impl ServerConfig {
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| {
            ConfigError::invalid(
                "server.listen",
                format!(
                    "{:?} is not an address:port ({e}); for example 127.0.0.1:9095",
                    self.listen
                ),
            )
        })
    }

    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.body_read_timeout_secs)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        for (key, secs) in [
            (
                "server.header_read_timeout_secs",
                self.header_read_timeout_secs,
            ),
            ("server.body_read_timeout_secs", self.body_read_timeout_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(ConfigError::invalid(
                    key,
                    "must be between 1 and 3600 seconds",
                ));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "server.max_connections",
                "must be at least 1 (a cap of 0 would serve nothing)",
            ));
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid(
                "server.body_limit_bytes",
                "must be at least 1024 bytes",
            ));
        }
        if self.max_alerts_per_payload == 0 {
            return Err(ConfigError::invalid(
                "server.max_alerts_per_payload",
                "must be at least 1",
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "server.public_url",
                    "must start with http:// or https://",
                ));
            }
        }
        Ok(())
    }
}

/// `[log]`: the service's own logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `cabal_triage=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// `[ledger]`: where episodes, jobs, reports and deliveries are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// `sqlite` (one process) or `dynamodb` (several replicas).
    pub backend: LedgerBackend,
    /// SQLite file (`CABAL_TRIAGE_LEDGER`).
    pub path: PathBuf,
    /// DynamoDB table name (`CABAL_TRIAGE_LEDGER_TABLE`).
    pub table: String,
    /// Create the DynamoDB table at start when it is absent.
    pub create_table: bool,
    /// Episodes, reports and deliveries older than this many days are purged.
    pub retention_days: u32,
    /// How often the purge runs, in seconds.
    pub purge_interval_secs: u64,
    /// Largest size of the SQLite file in MiB (0: no cap). Past it, writes fail and the webhook
    /// answers 503 (Alertmanager retries) instead of filling a disk the mail system may share.
    pub max_size_mib: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            backend: LedgerBackend::Sqlite,
            path: PathBuf::from("./cabal-triage.db"),
            table: "cabal-triage".into(),
            create_table: false,
            retention_days: 30,
            purge_interval_secs: 3600,
            max_size_mib: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerBackend {
    Sqlite,
    Dynamodb,
}

impl LedgerConfig {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.retention_days == 0 {
            return Err(ConfigError::invalid(
                "ledger.retention_days",
                "must be at least 1",
            ));
        }
        if self.purge_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "ledger.purge_interval_secs",
                "must be at least 1",
            ));
        }
        match self.backend {
            LedgerBackend::Sqlite if self.path.as_os_str().is_empty() => {
                Err(ConfigError::invalid("ledger.path", "must not be empty"))
            }
            LedgerBackend::Dynamodb if self.table.is_empty() => {
                Err(ConfigError::invalid("ledger.table", "must not be empty"))
            }
            _ => Ok(()),
        }
    }
}

/// `[auth]`: who may post alerts and read episodes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accepted webhook secrets (several at once, for rotation). Prefer `webhook_tokens_file`
    /// or `CABAL_TRIAGE_WEBHOOK_TOKEN`: a secret in this file is a warning.
    pub webhook_tokens: Vec<Secret>,
    /// A file with one accepted webhook secret per line.
    pub webhook_tokens_file: Option<PathBuf>,
    /// Secrets that may read `/api/v1/episodes*` but not post alerts.
    pub read_tokens: Vec<Secret>,
    /// A file with one read secret per line.
    pub read_tokens_file: Option<PathBuf>,
    /// Accept requests without a secret. Only for a listener nobody else can reach.
    pub allow_unauthenticated: bool,
}

/// The fewest distinct characters a token may have.
pub const MIN_DISTINCT_TOKEN_CHARS: usize = 8;

fn distinct_chars(text: &str) -> usize {
    let mut seen: Vec<char> = text.chars().collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .webhook_tokens
            .iter()
            .any(|t| t.expose().trim().is_empty())
        {
            return Err(ConfigError::invalid(
                "auth.webhook_tokens",
                "a token is empty",
            ));
        }
        if self
            .webhook_tokens
            .iter()
            .chain(&self.read_tokens)
            .any(|t| t.expose().len() < 16)
        {
            return Err(ConfigError::invalid(
                "auth.webhook_tokens",
                "a token is shorter than 16 characters; use a long random secret (openssl rand -hex 32)",
            ));
        }
        // Length alone lets `aaaaaaaaaaaaaaaa` through; a random token of 16 characters has
        // far more than 8 distinct ones.
        for (key, tokens) in [
            ("auth.webhook_tokens", &self.webhook_tokens),
            ("auth.read_tokens", &self.read_tokens),
        ] {
            if tokens
                .iter()
                .any(|t| distinct_chars(t.expose()) < MIN_DISTINCT_TOKEN_CHARS)
            {
                return Err(ConfigError::invalid(
                    key,
                    format!("a token has fewer than {MIN_DISTINCT_TOKEN_CHARS} distinct characters; use a random secret (openssl rand -hex 32)"),
                ));
            }
        }
        Ok(())
    }

    /// `serve` refuses to start without a webhook secret unless unauthenticated use is explicit.
    pub fn require_for_serve(&self) -> Result<(), ConfigError> {
        if self.webhook_tokens.is_empty() && !self.allow_unauthenticated {
            return Err(ConfigError::invalid(
                "auth.webhook_tokens",
                "no webhook secret configured: set CABAL_TRIAGE_WEBHOOK_TOKEN or auth.webhook_tokens_file (or auth.allow_unauthenticated = true on a private listener)",
            ));
        }
        Ok(())
    }
}

/// `[worker]`: the triage worker pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Triage jobs that run at the same time.
    pub concurrency: usize,
    /// Attempts per job before it ends `failed`.
    pub max_attempts: u32,
    /// How long a leased job stays with its worker without a heartbeat, in seconds.
    pub lease_secs: u64,
    /// How often an idle worker looks for work (new work also wakes it at once), in ms.
    pub poll_interval_ms: u64,
    /// On SIGTERM, how long running jobs may take to finish, in seconds.
    pub shutdown_grace_secs: u64,
    /// Overall time budget of one triage, in seconds.
    pub triage_budget_secs: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            max_attempts: 3,
            lease_secs: 60,
            poll_interval_ms: 1000,
            shutdown_grace_secs: 20,
            triage_budget_secs: 25,
        }
    }
}

impl WorkerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::invalid(
                "worker.concurrency",
                "must be between 1 and 256",
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::invalid(
                "worker.max_attempts",
                "must be between 1 and 100",
            ));
        }
        if self.lease_secs == 0 {
            return Err(ConfigError::invalid(
                "worker.lease_secs",
                "must be at least 1",
            ));
        }
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::invalid(
                "worker.poll_interval_ms",
                "must be at least 1",
            ));
        }
        if self.triage_budget_secs == 0 {
            return Err(ConfigError::invalid(
                "worker.triage_budget_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    pub fn triage_budget(&self) -> Duration {
        Duration::from_secs(self.triage_budget_secs)
    }
}

/// The three mail tiers, in the order reports list them.
pub const TIER_NAMES: [&str; 3] = ["imap", "smtp-in", "smtp-out"];

/// `[cabalmail]`: names of the Cabalmail environment (never hard-coded in the runbooks).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CabalmailConfig {
    /// ECS cluster name.
    pub cluster: String,
    /// One entry per tier: `imap`, `smtp-in`, `smtp-out`.
    pub tiers: BTreeMap<String, TierConfig>,
}

/// `[cabalmail.tiers.<tier>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// ECS service running the tier.
    pub service: String,
    /// Container in the task that runs sendmail.
    pub container: String,
    /// CloudWatch log group of the tier.
    pub log_group: String,
    /// Whether all tasks of the tier share one mail queue (smtp-out's and smtp-in's queues live
    /// on EFS), so the queue depth counts once instead of adding up across tasks.
    #[serde(default)]
    pub shared_queue: bool,
}

impl Default for CabalmailConfig {
    fn default() -> Self {
        let tier = |name: &str, shared_queue: bool| TierConfig {
            service: format!("cabal-{name}"),
            container: name.to_string(),
            log_group: format!("/ecs/cabal-{name}"),
            shared_queue,
        };
        CabalmailConfig {
            cluster: "cabal-mail".into(),
            tiers: BTreeMap::from([
                ("imap".to_string(), tier("imap", false)),
                ("smtp-in".to_string(), tier("smtp-in", true)),
                ("smtp-out".to_string(), tier("smtp-out", true)),
            ]),
        }
    }
}

impl CabalmailConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.is_empty() {
            return Err(ConfigError::invalid(
                "cabalmail.cluster",
                "must not be empty",
            ));
        }
        for name in self.tiers.keys() {
            if !TIER_NAMES.contains(&name.as_str()) {
                return Err(ConfigError::invalid(
                    &format!("cabalmail.tiers.{name}"),
                    "unknown tier; the tiers are imap, smtp-in and smtp-out",
                ));
            }
        }
        for (name, tier) in &self.tiers {
            for (field, value) in [
                ("service", &tier.service),
                ("container", &tier.container),
                ("log_group", &tier.log_group),
            ] {
                if value.is_empty() {
                    return Err(ConfigError::invalid(
                        &format!("cabalmail.tiers.{name}.{field}"),
                        "must not be empty",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The configured tiers in report order.
    pub fn tiers_in_order(&self) -> impl Iterator<Item = (&str, &TierConfig)> {
        TIER_NAMES
            .iter()
            .filter_map(|name| self.tiers.get(*name).map(|tier| (*name, tier)))
    }
}

/// `[aws]`: how the AWS SDK is reached.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region; the SDK's default chain when unset.
    pub region: Option<String>,
    /// Named profile; the SDK's default chain when unset.
    pub profile: Option<String>,
    /// Endpoint for every AWS service (`CABAL_TRIAGE_AWS_ENDPOINT_URL`); tests point it at moto and
    /// dynalite.
    pub endpoint_url: Option<String>,
    /// Per-service endpoint overrides, by service: `logs`, `ec2`, `ecs`, `dynamodb`.
    pub endpoints: BTreeMap<String, String>,
}

impl AwsConfig {
    /// The endpoint for one service: its own override, else the global one.
    pub fn endpoint_for(&self, service: &str) -> Option<&str> {
        self.endpoints
            .get(service)
            .or(self.endpoint_url.as_ref())
            .map(String::as_str)
    }
}

/// `[nat]`: how the NAT in front of smtp-out is found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatConfig {
    /// `Name` tag pattern of NAT instances and NAT gateways.
    pub tag_pattern: String,
    /// `Name` tag pattern of the private route tables (one per zone) whose default route goes
    /// through the NAT of their zone.
    pub route_table_pattern: String,
    /// `Name` tag pattern of the NATs' Elastic IPs (looked up whether associated or not, so a
    /// stopped NAT's address is still checked against blocklists).
    pub address_pattern: String,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            tag_pattern: "cabal-nat-*".into(),
            route_table_pattern: "cabal-private-rt-*".into(),
            address_pattern: "cabal-nat-eip-*".into(),
        }
    }
}

/// `[dnsbl]`: blocklists checked for the NAT's public IPs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsblConfig {
    /// Zones queried (`CABAL_TRIAGE_DNSBL_ZONES`, comma-separated).
    pub zones: Vec<String>,
    /// Resolvers as `ip:port`; empty means the system resolver (`CABAL_TRIAGE_DNSBL_NAMESERVERS`).
    pub nameservers: Vec<String>,
    /// Deadline of each blocklist query, in ms.
    pub timeout_ms: u64,
    /// File holding a Spamhaus Data Query Service key: `zen.spamhaus.org` is then queried as
    /// `<ip>.<key>.zen.dq.spamhaus.net` (Spamhaus refuses queries from public and cloud resolvers
    /// without one). Answers are still reported under `zen.spamhaus.org`; the key never leaves.
    pub spamhaus_dqs_key_file: Option<PathBuf>,
    /// The key read from `spamhaus_dqs_key_file` (never from the TOML or serialized).
    #[serde(skip)]
    pub spamhaus_dqs_key: Option<Secret>,
}

impl Default for DnsblConfig {
    fn default() -> Self {
        DnsblConfig {
            zones: vec![
                "zen.spamhaus.org".into(),
                "bl.spamcop.net".into(),
                "b.barracudacentral.org".into(),
            ],
            nameservers: Vec::new(),
            timeout_ms: 3000,
            spamhaus_dqs_key_file: None,
            spamhaus_dqs_key: None,
        }
    }
}

impl DnsblConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for server in &self.nameservers {
            server.parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid(
                    "dnsbl.nameservers",
                    format!("{server:?} is not ip:port, for example 127.0.0.1:53"),
                )
            })?;
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "dnsbl.timeout_ms",
                "must be at least 1",
            ));
        }
        if let Some(key) = &self.spamhaus_dqs_key {
            let key = key.expose();
            if !key.bytes().all(|b| b.is_ascii_alphanumeric()) || key.len() > 63 {
                return Err(ConfigError::invalid(
                    "dnsbl.spamhaus_dqs_key_file",
                    "the file must hold the Data Query Service key alone (letters and digits)",
                ));
            }
        }
        if let Some(zone) = self.zones.iter().find(|z| z.is_empty() || z.contains(' ')) {
            return Err(ConfigError::invalid(
                "dnsbl.zones",
                format!("{zone:?} is not a DNS zone name"),
            ));
        }
        Ok(())
    }
}

/// `[slack]`: the Slack destination, through the Web API with a bot token (one message per
/// episode, edited in place, with a thread) or through an incoming webhook (one post per
/// finished triage).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// `bot` (Web API with `bot_token`) or `webhook` (incoming webhook at `webhook_url`).
    pub mode: SlackMode,
    pub api_base_url: String,
    /// Bot token (`xoxb-…`); prefer `bot_token_file` or `CABAL_TRIAGE_SLACK_BOT_TOKEN`.
    pub bot_token: Option<Secret>,
    pub bot_token_file: Option<PathBuf>,
    /// Channel id (`C…`) or name.
    pub channel: Option<String>,
    /// Incoming webhook URL (a secret); prefer `webhook_url_file` or `CABAL_TRIAGE_SLACK_WEBHOOK_URL`.
    pub webhook_url: Option<Secret>,
    pub webhook_url_file: Option<PathBuf>,
    /// Channel routing by alert label, first match wins; `channel` otherwise (bot mode only).
    pub routes: Vec<SlackRoute>,
    /// App-level token (`xapp-…`, scope `connections:write`) for Socket Mode: the buttons on
    /// the verdict message (silence, re-run). Off without it. Prefer `app_token_file` or
    /// `CABAL_TRIAGE_SLACK_APP_TOKEN`.
    pub app_token: Option<Secret>,
    pub app_token_file: Option<PathBuf>,
    /// Slack user ids (`U…`) who may press the buttons; nobody when empty.
    pub allowed_users: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    #[default]
    Bot,
    Webhook,
}

/// `[[slack.routes]]`: alerts whose label `label` equals `value` go to `channel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackRoute {
    pub label: String,
    pub value: String,
    pub channel: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            mode: SlackMode::Bot,
            api_base_url: "https://slack.com/api".into(),
            bot_token: None,
            bot_token_file: None,
            channel: None,
            webhook_url: None,
            webhook_url_file: None,
            routes: Vec::new(),
            app_token: None,
            app_token_file: None,
            allowed_users: Vec::new(),
        }
    }
}

impl SlackConfig {
    /// Slack is on when the chosen mode's secret is configured.
    pub fn enabled(&self) -> bool {
        match self.mode {
            SlackMode::Bot => self.bot_token.is_some(),
            SlackMode::Webhook => self.webhook_url.is_some(),
        }
    }

    /// The channel for an alert with these labels: the first matching route, else `channel`.
    /// Labels only choose among configured channels, never name one.
    pub fn channel_for(&self, labels: &BTreeMap<String, String>) -> Option<&str> {
        self.routes
            .iter()
            .find(|route| labels.get(&route.label) == Some(&route.value))
            .map(|route| route.channel.as_str())
            .or(self.channel.as_deref())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        validate_base_url("slack.api_base_url", &self.api_base_url)?;
        if self.mode == SlackMode::Bot
            && self.enabled()
            && self.channel.as_deref().unwrap_or("").is_empty()
        {
            return Err(ConfigError::invalid(
                "slack.channel",
                "a bot token is configured but no channel: set slack.channel or CABAL_TRIAGE_SLACK_CHANNEL",
            ));
        }
        if self.mode == SlackMode::Webhook && self.webhook_url.is_none() {
            return Err(ConfigError::invalid(
                "slack.webhook_url",
                "slack.mode = \"webhook\" needs the incoming webhook URL: set slack.webhook_url_file or CABAL_TRIAGE_SLACK_WEBHOOK_URL",
            ));
        }
        if let Some(url) = &self.webhook_url {
            validate_base_url("slack.webhook_url", url.expose()).map_err(|_| {
                ConfigError::invalid("slack.webhook_url", "must start with http:// or https://")
            })?;
        }
        if self.app_token.is_some() && !(self.mode == SlackMode::Bot && self.enabled()) {
            return Err(ConfigError::invalid(
                "slack.app_token",
                "Socket Mode (the buttons) needs bot mode with slack.bot_token: the buttons sit on the bot's messages",
            ));
        }
        for route in &self.routes {
            if route.label.is_empty() || route.channel.is_empty() {
                return Err(ConfigError::invalid(
                    "slack.routes",
                    "every route needs a label and a channel",
                ));
            }
        }
        Ok(())
    }
}

/// `[pagerduty]`: the PagerDuty REST API destination (incident notes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerDutyConfig {
    pub api_base_url: String,
    /// REST API token; prefer `api_token_file` or `CABAL_TRIAGE_PAGERDUTY_API_TOKEN`.
    pub api_token: Option<Secret>,
    pub api_token_file: Option<PathBuf>,
    /// Email of the PagerDuty user the notes are written as (`From` header).
    pub from_email: Option<String>,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        PagerDutyConfig {
            api_base_url: "https://api.pagerduty.com".into(),
            api_token: None,
            api_token_file: None,
            from_email: None,
        }
    }
}

impl PagerDutyConfig {
    /// PagerDuty is on when a token is configured.
    pub fn enabled(&self) -> bool {
        self.api_token.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        validate_base_url("pagerduty.api_base_url", &self.api_base_url)?;
        if self.enabled() && !self.from_email.as_deref().unwrap_or("").contains('@') {
            return Err(ConfigError::invalid(
                "pagerduty.from_email",
                "an API token is configured but no valid From address: set pagerduty.from_email or CABAL_TRIAGE_PAGERDUTY_FROM",
            ));
        }
        Ok(())
    }
}

/// `[delivery]`: the outbox that sends to Slack and PagerDuty, and its one retry policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Deliveries sent at the same time (rows of one episode always go one after the other).
    pub concurrency: usize,
    /// How often the outbox looks for due deliveries, in ms.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery stays with this process without an answer, in seconds.
    pub lease_secs: u64,
    /// Timeout of one HTTP request to Slack or PagerDuty, in ms.
    pub http_timeout_ms: u64,
    /// Attempts per delivery before it ends `failed`.
    pub max_attempts: u32,
    /// Ceiling of the first retry delay, in ms; doubles per attempt, each delay drawn between
    /// half and all of its ceiling.
    pub initial_backoff_ms: u64,
    /// Longest delay between attempts, in ms (a longer `Retry-After` is still honoured).
    pub max_backoff_ms: u64,
    /// Total time a delivery may keep retrying, in seconds, counted from its creation.
    pub budget_secs: u64,
    /// Wake the outbox in-process when this process writes a delivery row (the poll still
    /// finds rows other replicas wrote). Off only to measure the poll alone.
    pub wake_on_write: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 4,
            poll_interval_ms: 500,
            lease_secs: 120,
            http_timeout_ms: 10_000,
            max_attempts: 12,
            initial_backoff_ms: 1000,
            max_backoff_ms: 60_000,
            budget_secs: 3600,
            wake_on_write: true,
        }
    }
}

impl DeliveryConfig {
    /// The pauses between attempts (`timing::Backoff`; equal jitter: the attempts are counted,
    /// so each pause keeps half of its ceiling).
    pub fn backoff(&self) -> Backoff {
        Backoff::equal_jitter(
            Duration::from_millis(self.initial_backoff_ms),
            Duration::from_millis(self.max_backoff_ms),
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("delivery.concurrency", self.concurrency as u64),
            ("delivery.poll_interval_ms", self.poll_interval_ms),
            ("delivery.lease_secs", self.lease_secs),
            ("delivery.http_timeout_ms", self.http_timeout_ms),
            ("delivery.max_attempts", u64::from(self.max_attempts)),
            ("delivery.initial_backoff_ms", self.initial_backoff_ms),
            ("delivery.budget_secs", self.budget_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return Err(ConfigError::invalid(
                "delivery.max_backoff_ms",
                "must not be smaller than delivery.initial_backoff_ms",
            ));
        }
        if self.lease_secs * 1000 < self.http_timeout_ms * 4 {
            return Err(ConfigError::invalid(
                "delivery.lease_secs",
                "must cover at least four HTTP timeouts (a delivery can make several requests)",
            ));
        }
        Ok(())
    }
}

/// `[privacy]`: what of people's addresses may leave the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Show email local parts in annotations and samples (`j***@gmail.com` when false).
    pub show_local_parts: bool,
}

pub(super) fn validate_base_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::invalid(
            key,
            format!("{url:?} must start with http:// or https://"),
        ));
    }
    Ok(())
}

/// `[probes]`: deadlines and caps of the AWS probes (log scan, NAT, task discovery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbesConfig {
    /// Deadline of the whole CloudWatch Logs scan (the three tiers run in parallel), in seconds.
    pub log_scan_deadline_secs: u64,
    /// Deadline of the NAT probe (EC2 DescribeInstances + DescribeNatGateways), in seconds.
    pub nat_deadline_secs: u64,
    /// Deadline of ECS task discovery (ListTasks + DescribeTasks for every tier), in seconds.
    pub task_discovery_deadline_secs: u64,
    /// Most log events kept per tier; the scan stops there and reports `truncated`.
    pub log_max_events_per_tier: usize,
    /// Most bytes of log messages kept per tier; the scan stops there and reports `truncated`.
    pub log_max_bytes_per_tier: usize,
    /// `limit` of each FilterLogEvents request (1..=10000, AWS's maximum).
    pub log_page_limit: i32,
    /// The scan window starts this long before the alert's `startsAt`, in seconds...
    pub log_lookback_before_start_secs: u64,
    /// ...or this long before now, whichever is earlier (the longer window), in seconds.
    pub log_min_window_secs: u64,
    /// The window never reaches further back than this (an alert firing for days), in seconds.
    pub log_max_window_secs: u64,
    /// Ceiling of the first wait after a throttled AWS call, in ms; it doubles up to the max,
    /// and each wait is drawn between zero and its ceiling (full jitter).
    pub throttle_backoff_initial_ms: u64,
    /// Longest wait between two throttled attempts, in ms.
    pub throttle_backoff_max_ms: u64,
    /// TCP connect timeout of the AWS clients, in seconds.
    pub aws_connect_timeout_secs: u64,
}

impl Default for ProbesConfig {
    fn default() -> Self {
        ProbesConfig {
            log_scan_deadline_secs: 15,
            nat_deadline_secs: 8,
            task_discovery_deadline_secs: 8,
            log_max_events_per_tier: 20_000,
            log_max_bytes_per_tier: 8 * 1024 * 1024,
            log_page_limit: 10_000,
            log_lookback_before_start_secs: 15 * 60,
            log_min_window_secs: 30 * 60,
            log_max_window_secs: 3 * 3600,
            throttle_backoff_initial_ms: 200,
            throttle_backoff_max_ms: 5_000,
            aws_connect_timeout_secs: 3,
        }
    }
}

impl ProbesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("probes.log_scan_deadline_secs", self.log_scan_deadline_secs),
            ("probes.nat_deadline_secs", self.nat_deadline_secs),
            (
                "probes.task_discovery_deadline_secs",
                self.task_discovery_deadline_secs,
            ),
            ("probes.log_min_window_secs", self.log_min_window_secs),
            (
                "probes.aws_connect_timeout_secs",
                self.aws_connect_timeout_secs,
            ),
            (
                "probes.throttle_backoff_initial_ms",
                self.throttle_backoff_initial_ms,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self.log_max_events_per_tier == 0 || self.log_max_bytes_per_tier == 0 {
            return Err(ConfigError::invalid(
                "probes.log_max_events_per_tier",
                "the per-tier caps (log_max_events_per_tier, log_max_bytes_per_tier) must be at least 1",
            ));
        }
        if !(1..=10_000).contains(&self.log_page_limit) {
            return Err(ConfigError::invalid(
                "probes.log_page_limit",
                "must be between 1 and 10000 (FilterLogEvents' maximum)",
            ));
        }
        if self.log_max_window_secs < self.log_min_window_secs {
            return Err(ConfigError::invalid(
                "probes.log_max_window_secs",
                "must be at least probes.log_min_window_secs",
            ));
        }
        if self.throttle_backoff_max_ms < self.throttle_backoff_initial_ms {
            return Err(ConfigError::invalid(
                "probes.throttle_backoff_max_ms",
                "must be at least probes.throttle_backoff_initial_ms",
            ));
        }
        Ok(())
    }

    /// The pauses between throttled AWS calls (`timing::Backoff`, full jitter).
    pub fn throttle_backoff(&self) -> Backoff {
        Backoff::full_jitter(
            Duration::from_millis(self.throttle_backoff_initial_ms),
            Duration::from_millis(self.throttle_backoff_max_ms),
        )
    }

    pub fn log_scan_deadline(&self) -> Duration {
        Duration::from_secs(self.log_scan_deadline_secs)
    }
    pub fn nat_deadline(&self) -> Duration {
        Duration::from_secs(self.nat_deadline_secs)
    }
    pub fn task_discovery_deadline(&self) -> Duration {
        Duration::from_secs(self.task_discovery_deadline_secs)
    }
}

/// `[providers]`: recipient providers beyond the built-in table of `sendmail::providers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// A domain (`"example.net"`), or `"*.example.net"` for its sub-domains such as relay
    /// hosts, mapped to a provider name. Entries override the built-in table.
    pub extra: BTreeMap<String, String>,
}

impl ProvidersConfig {
    /// The entries of `extra`, checked. The table itself is built by whoever reads recipients
    /// (`sendmail::ProviderTable::from_config`); configuration only holds the settings.
    pub fn entries(&self) -> Result<Vec<ProviderEntry>, ConfigError> {
        self.extra
            .iter()
            .map(|(pattern, provider)| {
                ProviderEntry::parse(pattern, provider)
                    .map_err(|e| ConfigError::invalid("providers.extra", e.to_string()))
            })
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.entries().map(|_| ())
    }
}

/// One `[providers] extra` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEntry {
    /// Lower case, without the trailing dot.
    pub domain: String,
    /// `*.domain`: the entry stands for the domain's sub-domains (relay hosts), not the domain.
    pub subdomains: bool,
    pub provider: String,
}

/// A `[providers] extra` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderEntryError {
    #[error("provider pattern {0:?} is not a domain or *.domain (for example \"example.net\" or \"*.mx.example.net\")")]
    BadPattern(String),
    #[error("provider name for {0:?} is empty or not made of letters, digits, '.', '-' and '_'")]
    BadName(String),
}

impl ProviderEntry {
    /// Reads `pattern` (`example.net` or `*.example.net`, any case, trailing dot allowed) and
    /// checks the provider name.
    pub fn parse(pattern: &str, provider: &str) -> Result<ProviderEntry, ProviderEntryError> {
        let name_ok = !provider.is_empty()
            && provider.len() <= 64
            && provider
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !name_ok {
            return Err(ProviderEntryError::BadName(pattern.to_string()));
        }
        let lower = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        let (subdomains, domain) = match lower.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, lower.as_str()),
        };
        if !is_domain(domain) {
            return Err(ProviderEntryError::BadPattern(pattern.to_string()));
        }
        Ok(ProviderEntry {
            domain: domain.to_string(),
            subdomains,
            provider: provider.to_string(),
        })
    }
}

fn is_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `[exec]`: ECS Exec, and the command the mail-queue probe runs. The command comes only from
/// here: no alert field can choose a command or a target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Shell text run in each tier's container by `/bin/sh -c` to read the mail queue.
    pub mailq_command: String,
    /// Deadline of one command in one task, in seconds (ExecuteCommand to end of output).
    pub task_deadline_secs: u64,
    /// Output kept per command, in bytes; the probe says when it was cut.
    pub output_cap_bytes: usize,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            mailq_command: "mailq | tail -1".into(),
            task_deadline_secs: 10,
            output_cap_bytes: 64 * 1024,
        }
    }
}

impl ExecConfig {
    pub fn task_deadline(&self) -> Duration {
        Duration::from_secs(self.task_deadline_secs)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.mailq_command.trim().is_empty() {
            return Err(ConfigError::invalid(
                "exec.mailq_command",
                "must not be empty; the default is \"mailq | tail -1\"",
            ));
        }
        if !(1..=1140).contains(&self.task_deadline_secs) {
            return Err(ConfigError::invalid(
                "exec.task_deadline_secs",
                "must be between 1 and 1140 (ECS Exec sessions end after 20 idle minutes)",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.output_cap_bytes) {
            return Err(ConfigError::invalid(
                "exec.output_cap_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        Ok(())
    }
}
