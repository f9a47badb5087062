//! Who may call the API. Alertmanager's `http_config` can send `Authorization: Bearer <secret>`
//! or HTTP basic auth; both are accepted (for basic auth the password is the secret, the user
//! name is not checked). Several secrets are accepted at once so they can be rotated.
//!
//! Comparison is constant-time: each presented secret is hashed and the digest compared with
//! every configured digest using `subtle`, without stopping at the first match, so neither the
//! position nor the length of a match leaks through timing.
//!
//! The accepted secrets can be replaced while the service runs ([`Authenticator::replace`], on
//! SIGHUP), so a rotated `auth.webhook_tokens_file` takes effect without a restart.

use std::sync::{PoisonError, RwLock};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::AuthConfig;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Post alerts (webhook secrets only).
    Webhook,
    /// Read episodes (webhook or read secrets).
    Read,
}

pub struct Authenticator {
    keys: RwLock<AcceptedSecrets>,
}

/// The digests of the secrets accepted now.
struct AcceptedSecrets {
    webhook: Vec<[u8; 32]>,
    read: Vec<[u8; 32]>,
    allow_unauthenticated: bool,
}

impl AcceptedSecrets {
    fn of(config: &AuthConfig) -> Self {
        let digest = |s: &crate::config::Secret| -> [u8; 32] {
            Sha256::digest(s.expose().as_bytes()).into()
        };
        AcceptedSecrets {
            webhook: config.webhook_tokens.iter().map(digest).collect(),
            read: config.read_tokens.iter().map(digest).collect(),
            allow_unauthenticated: config.allow_unauthenticated,
        }
    }
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Self {
        Authenticator {
            keys: RwLock::new(AcceptedSecrets::of(config)),
        }
    }

    /// Accepts the secrets of `config` from now on, and no others (a rotation: the operator
    /// keeps the old secret in the list until Alertmanager sends the new one).
    pub fn replace(&self, config: &AuthConfig) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = AcceptedSecrets::of(config);
    }

    /// Whether the `Authorization` header value grants `scope`.
    pub fn allows(&self, authorization: Option<&[u8]>, scope: Scope) -> bool {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        if keys.allow_unauthenticated {
            return true;
        }
        let Some(secret) = authorization.and_then(presented_secret) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(&secret).into();
        let mut granted = Choice::from(0);
        for known in &keys.webhook {
            granted |= known.ct_eq(&presented);
        }
        if scope == Scope::Read {
            for known in &keys.read {
                granted |= known.ct_eq(&presented);
            }
        }
        granted.into()
    }
}

/// The secret inside a `Bearer` or `Basic` header value.
fn presented_secret(header: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        (!rest.is_empty()).then(|| rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        let password = decoded[colon + 1..].to_vec();
        (!password.is_empty()).then_some(password)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn auth() -> Authenticator {
        Authenticator::new(&AuthConfig {
            webhook_tokens: vec![
                Secret::new("old-secret-0123456789"),
                Secret::new("new-secret-0123456789"),
            ],
            read_tokens: vec![Secret::new("read-secret-0123456789")],
            ..Default::default()
        })
    }

    #[test]
    fn bearer_basic_rotation_and_scopes() {
        let auth = auth();
        assert!(auth.allows(Some(b"Bearer old-secret-0123456789"), Scope::Webhook));
        assert!(auth.allows(Some(b"bearer new-secret-0123456789"), Scope::Webhook));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alertmanager:new-secret-0123456789")
        );
        assert!(auth.allows(Some(basic.as_bytes()), Scope::Webhook));
        assert!(!auth.allows(Some(b"Bearer read-secret-0123456789"), Scope::Webhook));
        assert!(auth.allows(Some(b"Bearer read-secret-0123456789"), Scope::Read));
        assert!(auth.allows(Some(b"Bearer old-secret-0123456789"), Scope::Read));
    }

    #[test]
    fn replaced_secrets_take_over_at_once() {
        let auth = auth();
        auth.replace(&AuthConfig {
            webhook_tokens: vec![Secret::new("newer-secret-0123456789")],
            ..Default::default()
        });
        assert!(auth.allows(Some(b"Bearer newer-secret-0123456789"), Scope::Webhook));
        assert!(!auth.allows(Some(b"Bearer old-secret-0123456789"), Scope::Webhook));
        assert!(!auth.allows(Some(b"Bearer read-secret-0123456789"), Scope::Read));
    }

    #[test]
    fn refusals() {
        let auth = auth();
        for header in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer old-secret-012345678",
            b"Bearer old-secret-01234567890",
            b"Token old-secret-0123456789",
            b"old-secret-0123456789",
            b"Basic !!!",
            b"Basic b2xkLXNlY3JldA==",
            b"\xff\xfe",
        ] {
            assert!(!auth.allows(Some(header), Scope::Webhook), "{header:?}");
        }
        assert!(!auth.allows(None, Scope::Webhook));
        let open = Authenticator::new(&AuthConfig {
            allow_unauthenticated: true,
            ..Default::default()
        });
        assert!(open.allows(None, Scope::Webhook));
    }
}
