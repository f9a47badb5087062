//! A secret string that never prints itself: `Debug`, `Display` and `Serialize` all mask it, so
//! a secret cannot reach a log line or `check-config` output by accident.

use std::fmt;
use std::sync::{Arc, RwLock};

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

/// A destination's secret that the running service may replace: SIGHUP re-reads the `*_file`
/// secrets, and a destination reads its secret at each attempt, so a rotated token is in use from
/// the next attempt on without a restart. Clones share the one value.
#[derive(Clone)]
pub struct RotatingSecret(Arc<RwLock<Secret>>);

impl RotatingSecret {
    pub fn new(secret: Secret) -> Self {
        RotatingSecret(Arc::new(RwLock::new(secret)))
    }

    /// The secret in use now.
    pub fn current(&self) -> Secret {
        match self.0.read() {
            Ok(secret) => secret.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `secret` in use; says whether it differs from the one it replaces.
    pub fn rotate(&self, secret: &Secret) -> Rotation {
        let mut held = match self.0.write() {
            Ok(held) => held,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *held == *secret {
            return Rotation::Unchanged;
        }
        *held = secret.clone();
        Rotation::Rotated
    }

    /// What a re-read configuration means for this secret: `None` (the setting was removed, or
    /// its file is empty) keeps the one in use, since a destination cannot run without it.
    pub fn rotate_to(&self, secret: Option<&Secret>) -> Rotation {
        match secret {
            Some(secret) if !secret.is_empty() => self.rotate(secret),
            _ => Rotation::KeptMissing,
        }
    }
}

impl fmt::Debug for RotatingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// What re-reading the configuration did to one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// A new value is in use.
    Rotated,
    /// The configuration holds the value already in use.
    Unchanged,
    /// The configuration no longer holds one; the value in use stays until the next start.
    KeptMissing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotating_secret_is_shared_by_its_clones_and_keeps_its_value_when_the_new_one_is_missing() {
        let held = RotatingSecret::new(Secret::new("xoxb-before-0123"));
        let reader = held.clone();
        assert_eq!(
            held.rotate_to(Some(&Secret::new("xoxb-before-0123"))),
            Rotation::Unchanged
        );
        assert_eq!(
            held.rotate_to(Some(&Secret::new("xoxb-after-4567"))),
            Rotation::Rotated
        );
        assert_eq!(reader.current().expose(), "xoxb-after-4567");
        assert_eq!(held.rotate_to(None), Rotation::KeptMissing);
        assert_eq!(
            held.rotate_to(Some(&Secret::new(""))),
            Rotation::KeptMissing
        );
        assert_eq!(reader.current().expose(), "xoxb-after-4567");
        assert_eq!(format!("{held:?}"), "\"***\"");
    }

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
