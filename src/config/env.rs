//! Environment overrides. The variables named in `docs/contracts.md` ("Essential settings") map to their
//! keys exactly; any other key can be set as `CABAL_TRIAGE__<SECTION>__<KEY>` (double
//! underscores, case-insensitive), for example `CABAL_TRIAGE__WORKER__CONCURRENCY=8`, at any
//! depth: `CABAL_TRIAGE__CABALMAIL__TIERS__SMTP_OUT__LOG_GROUP=/ecs/mail-out` sets
//! `cabalmail.tiers.smtp-out.log_group` (an `_` in a name also matches a `-` of an existing or
//! default key). A table below the section that the file does not have starts from its default,
//! so setting one tier's log group keeps the other tiers.

use super::secret::{is_secret_list, SECRET_KEYS};
use super::ConfigError;

pub const ENV_PREFIX: &str = "CABAL_TRIAGE_";

/// How a variable's text becomes a TOML value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Bool,
    /// Comma-separated list; replaces the key's list.
    List,
    /// One element appended to the key's list (one more accepted secret).
    Append,
}

/// The named variables (`docs/contracts.md`, "Essential settings", plus a few conveniences).
const NAMED: &[(&str, &str, &str, Kind)] = &[
    ("CABAL_TRIAGE_LISTEN", "server", "listen", Kind::Text),
    (
        "CABAL_TRIAGE_PUBLIC_URL",
        "server",
        "public_url",
        Kind::Text,
    ),
    ("CABAL_TRIAGE_LEDGER", "ledger", "path", Kind::Text),
    (
        "CABAL_TRIAGE_LEDGER_BACKEND",
        "ledger",
        "backend",
        Kind::Text,
    ),
    ("CABAL_TRIAGE_LEDGER_TABLE", "ledger", "table", Kind::Text),
    (
        "CABAL_TRIAGE_LEDGER_CREATE_TABLE",
        "ledger",
        "create_table",
        Kind::Bool,
    ),
    (
        "CABAL_TRIAGE_WEBHOOK_TOKEN",
        "auth",
        "webhook_tokens",
        Kind::Append,
    ),
    (
        "CABAL_TRIAGE_READ_TOKEN",
        "auth",
        "read_tokens",
        Kind::Append,
    ),
    ("CABAL_TRIAGE_AWS_REGION", "aws", "region", Kind::Text),
    (
        "CABAL_TRIAGE_AWS_ENDPOINT_URL",
        "aws",
        "endpoint_url",
        Kind::Text,
    ),
    ("CABAL_TRIAGE_DNSBL_ZONES", "dnsbl", "zones", Kind::List),
    (
        "CABAL_TRIAGE_DNSBL_NAMESERVERS",
        "dnsbl",
        "nameservers",
        Kind::List,
    ),
    (
        "CABAL_TRIAGE_SLACK_API_BASE_URL",
        "slack",
        "api_base_url",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_SLACK_BOT_TOKEN",
        "slack",
        "bot_token",
        Kind::Text,
    ),
    ("CABAL_TRIAGE_SLACK_CHANNEL", "slack", "channel", Kind::Text),
    (
        "CABAL_TRIAGE_SLACK_WEBHOOK_URL",
        "slack",
        "webhook_url",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_PAGERDUTY_API_BASE_URL",
        "pagerduty",
        "api_base_url",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_PAGERDUTY_API_TOKEN",
        "pagerduty",
        "api_token",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_PAGERDUTY_FROM",
        "pagerduty",
        "from_email",
        Kind::Text,
    ),
    ("CABAL_TRIAGE_NTFY_BASE_URL", "ntfy", "base_url", Kind::Text),
    ("CABAL_TRIAGE_NTFY_TOPIC", "ntfy", "topic", Kind::Text),
    ("CABAL_TRIAGE_NTFY_TOKEN", "ntfy", "token", Kind::Text),
    (
        "CABAL_TRIAGE_PUSHOVER_API_BASE_URL",
        "pushover",
        "api_base_url",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_PUSHOVER_APP_TOKEN",
        "pushover",
        "app_token",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_PUSHOVER_USER_KEY",
        "pushover",
        "user_key",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_UNKNOWN_ALERTS",
        "notify",
        "unknown_alerts",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_ALERTMANAGER_URL",
        "alertmanager",
        "url",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_SLACK_APP_TOKEN",
        "slack",
        "app_token",
        Kind::Text,
    ),
    (
        "CABAL_TRIAGE_ALERTMANAGER_TOKEN",
        "alertmanager",
        "token",
        Kind::Text,
    ),
    ("CABAL_TRIAGE_LOG_FORMAT", "log", "format", Kind::Text),
    ("CABAL_TRIAGE_LOG_LEVEL", "log", "level", Kind::Text),
];

/// Writes the overrides found in `vars` into `table`.
pub fn apply_env_overrides(
    table: &mut toml::Table,
    vars: &mut dyn Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = vars.filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    // Deterministic order: generic keys after named ones, each sorted.
    vars.sort();
    for (var, value) in &vars {
        if let Some((_, section, key, kind)) = NAMED.iter().find(|(name, ..)| name == var) {
            set(table, var, section, key, value, *kind)?;
        }
    }
    for (var, value) in &vars {
        let Some(rest) = var.strip_prefix("CABAL_TRIAGE__") else {
            continue;
        };
        let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if parts.len() < 2 || parts.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var: var.clone(),
                reason: "expected CABAL_TRIAGE__<SECTION>__<KEY> (or deeper: __<TABLE>__<KEY>)"
                    .into(),
            });
        }
        let (key, tables) = parts.split_last().expect("at least two parts");
        // A secret is text whatever it looks like: guessing `123…` as an integer would only
        // produce a type error (and serde's would quote the value). Secret keys sit directly in
        // their section.
        let secret = |section: &str| tables.len() == 1 && tables[0] == section;
        let guessed = if is_secret_list(&tables[0], key) && secret(&tables[0]) {
            toml::Value::Array(split_list(value))
        } else if SECRET_KEYS.contains(&(tables[0].as_str(), key.as_str())) && secret(&tables[0]) {
            toml::Value::String(value.to_string())
        } else {
            guess_value(value)
        };
        let mut current = section_table(table, var, &tables[0])?;
        let mut path = vec![tables[0].clone()];
        for name in &tables[1..] {
            let name = existing_or_default_name(current, &path, name);
            if !current.contains_key(&name) {
                let start = default_at(&path, &name).unwrap_or_default();
                current.insert(name.clone(), toml::Value::Table(start));
            }
            path.push(name.clone());
            current = current
                .get_mut(&name)
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| ConfigError::Env {
                    var: var.clone(),
                    reason: format!("`{}` in the config file is not a table", path.join(".")),
                })?;
        }
        let key = existing_or_default_name(current, &path, key);
        // A list setting (in the file or the defaults) takes a comma-separated list: one value
        // alone would be a type error (`slack.allowed_users = "U1"`).
        let list = current
            .get(&key)
            .map(toml::Value::is_array)
            .unwrap_or_else(|| {
                default_table_at(&path)
                    .and_then(|defaults| defaults.get(&key).map(toml::Value::is_array))
                    .unwrap_or(false)
            });
        let guessed = if list && !guessed.is_array() {
            toml::Value::Array(split_list(value))
        } else {
            guessed
        };
        current.insert(key, guessed);
    }
    Ok(())
}

/// The name under which `segment` (lowercased, from an environment variable) is known at
/// `path`: an existing key of `table` or of the defaults that equals it with `-` read as `_`, else
/// `segment` itself.
fn existing_or_default_name(table: &toml::Table, path: &[String], segment: &str) -> String {
    let matches = |k: &String| k.replace('-', "_") == segment;
    if let Some(found) = table.keys().find(|k| matches(k)) {
        return found.clone();
    }
    default_table_at(path)
        .and_then(|defaults| defaults.keys().find(|k| matches(k)).cloned())
        .unwrap_or_else(|| segment.to_string())
}

/// The default value of the table `path` + `name`, when the defaults have one.
fn default_at(path: &[String], name: &str) -> Option<toml::Table> {
    default_table_at(path)?.get(name)?.as_table().cloned()
}

/// The defaults' table at `path` (the built-in configuration, as TOML).
fn default_table_at(path: &[String]) -> Option<toml::Table> {
    let mut value = toml::Value::try_from(super::Config::default()).ok()?;
    for name in path {
        value = value.as_table()?.get(name)?.clone();
    }
    value.as_table().cloned()
}

fn section_table<'a>(
    table: &'a mut toml::Table,
    var: &str,
    section: &str,
) -> Result<&'a mut toml::Table, ConfigError> {
    table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| ConfigError::Env {
            var: var.to_string(),
            reason: format!("`{section}` in the config file is not a table"),
        })
}

fn set(
    table: &mut toml::Table,
    var: &str,
    section: &str,
    key: &str,
    value: &str,
    kind: Kind,
) -> Result<(), ConfigError> {
    let section = section_table(table, var, section)?;
    let new_value = match kind {
        Kind::Text => toml::Value::String(value.to_string()),
        Kind::Bool => toml::Value::Boolean(parse_bool(value).ok_or_else(|| ConfigError::Env {
            var: var.to_string(),
            reason: format!("{value:?} is not a boolean (true/false)"),
        })?),
        Kind::List => toml::Value::Array(split_list(value)),
        Kind::Append => {
            let mut items = match section.remove(key) {
                Some(toml::Value::Array(items)) => items,
                _ => Vec::new(),
            };
            if !value.trim().is_empty() {
                items.push(toml::Value::String(value.trim().to_string()));
            }
            toml::Value::Array(items)
        }
    };
    section.insert(key.to_string(), new_value);
    Ok(())
}

fn split_list(value: &str) -> Vec<toml::Value> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| toml::Value::String(s.to_string()))
        .collect()
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// For generic overrides the target type is unknown here: integers and booleans are taken as
/// such, anything else as text (a wrong type is then reported by deserialization, with the key).
fn guess_value(value: &str) -> toml::Value {
    if let Ok(n) = value.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    if let Some(b) = parse_bool(value).filter(|_| !value.chars().all(|c| c.is_ascii_digit())) {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(value.to_string())
}
