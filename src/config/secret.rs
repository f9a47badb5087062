//! A secret string that never prints itself: `Debug`, `Display` and `Serialize` all mask it, so
//! a secret cannot reach a log line or `check-config` output by accident.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// The keys that hold secrets, as `(section, key)`. Their values never appear in an error
/// message or a warning, whatever went wrong with them.
pub const SECRET_KEYS: &[(&str, &str)] = &[
    ("auth", "webhook_tokens"),
    ("auth", "read_tokens"),
    ("slack", "bot_token"),
    ("slack", "webhook_url"),
    ("pagerduty", "api_token"),
    ("ntfy", "token"),
    ("ntfy", "password"),
    ("pushover", "app_token"),
    ("pushover", "user_key"),
    ("alertmanager", "token"),
    ("slack", "app_token"),
];

/// Whether a key path as serde reports it (`auth.webhook_tokens[0]`, `slack.bot_token`) is, or
/// is inside, a secret key.
pub fn is_secret_path(path: &str) -> bool {
    SECRET_KEYS.iter().any(|(section, key)| {
        path.strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_prefix(key))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('[') || rest.starts_with('.'))
    })
}

/// Whether a secret key holds a list of secrets (several tokens for rotation).
pub fn is_secret_list(section: &str, key: &str) -> bool {
    section == "auth" && (key == "webhook_tokens" || key == "read_tokens")
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths() {
        assert!(is_secret_path("auth.webhook_tokens"));
        assert!(is_secret_path("auth.webhook_tokens[0]"));
        assert!(is_secret_path("slack.bot_token"));
        assert!(!is_secret_path("slack.bot_token_file"));
        assert!(!is_secret_path("slack.channel"));
    }

    #[test]
    fn never_prints_itself() {
        let secret = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{secret:?} {secret}"), "\"***\" ***");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"***\"");
        assert_eq!(secret.expose(), "xoxb-very-secret");
    }
}
