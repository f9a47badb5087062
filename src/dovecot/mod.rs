//! Dovecot 2.3's `imap-login` log lines, parsed: who tried to log in, from where, whether it
//! worked, and whether the session was secured. The IMAPAuthFailureSpike runbook counts these.
//! The formats are the ones a real Dovecot writes (`tests/fixtures/dovecot/`, recorded by
//! `scripts/record-dovecot-fixtures.sh` with Cabalmail's settings), not the ones runbooks quote:
//!
//! - `imap-login: Info: Login: user=<alice>, method=PLAIN, rip=…, lip=…, mpid=…, TLS, session=<…>`
//! - `imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in
//!   2 secs): user=<admin>, method=PLAIN, rip=…, TLS, …`: a wrong password; with a wrong master
//!   password the user is the master user's name.
//! - the same without `method=` and without `TLS`: LOGIN before STARTTLS, refused by
//!   `disable_plaintext_auth` (Dovecot counts it as an auth failure, so it does reach the alert).
//! - `Disconnected: Internal login failure (pid=… id=1): user=<ghost>, …`: a master login for an
//!   account the user database does not have.
//! - `Disconnected: Connection closed (disconnected before auth was ready, …): user=<>, …`.
//!
//! The user name is the client's text: it may hold `>, rip=…`. The real fields come after it, so
//! the parser takes the last `, rip=` and reads the user up to there. Never panics.

mod fixture_tests;

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;

/// What happened to a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginOutcome {
    /// `Login:`.
    Success,
    /// `auth failed` over a secured session (TLS or a trusted network).
    AuthFailed,
    /// `auth failed` on a session that never started TLS and named no mechanism: LOGIN before
    /// STARTTLS, refused before any credential was checked.
    PlaintextRefused,
    /// `Internal login failure`: the credentials passed, the user database has no such account.
    InternalFailure,
    /// The session ended without an authentication attempt.
    NoAuth,
}

/// One `imap-login` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginLine {
    pub outcome: LoginOutcome,
    /// The login name as the client sent it (`alice`, or `alice*admin` for a master login); the
    /// master user's own name when a master password was wrong. Empty when none was sent.
    pub user: String,
    pub method: Option<String>,
    /// The client's address (`rip=`).
    pub rip: Option<IpAddr>,
    /// TLS, or a trusted (`secured`) connection.
    pub secured: bool,
}

impl LoginLine {
    /// The account a master login is for (`alice` of `alice*admin`), else the user.
    pub fn account(&self) -> &str {
        self.user.split('*').next().unwrap_or("")
    }

    /// `alice*admin`: a login with the master user.
    pub fn is_master_login(&self) -> bool {
        self.user.contains('*')
    }

    /// A failed attempt of any kind (what the alert counts, plus internal failures).
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            LoginOutcome::AuthFailed
                | LoginOutcome::PlaintextRefused
                | LoginOutcome::InternalFailure
        )
    }
}

const MARKER: &str = "imap-login: ";
/// The entrypoint's user sync prints lines starting with this (`docker/shared/sync-users.sh`).
pub const SYNC_USERS_MARKER: &str = "[sync-users]";

/// Whether a line is the user sync's.
pub fn is_sync_users_line(line: &str) -> bool {
    line.contains(SYNC_USERS_MARKER)
}

/// Where the parts of an `imap-login` line are, as byte offsets into it.
struct LoginFields<'a> {
    /// The text between the marker (and its level) and `user=<`.
    head: &'a str,
    /// The user name's byte range in the line.
    user: std::ops::Range<usize>,
    method: Option<&'a str>,
    /// What follows the last `, rip=`.
    tail: &'a str,
}

fn login_fields(line: &str) -> Option<LoginFields<'_>> {
    let at = line.find(MARKER)?;
    let rest = &line[at + MARKER.len()..];
    let rest = rest
        .strip_prefix("Info: ")
        .or_else(|| rest.strip_prefix("Warning: "))
        .unwrap_or(rest);
    let rest_at = line.len() - rest.len();
    let user_at = rest.find("user=<")?;
    let head = &rest[..user_at];
    let fields = &rest[user_at..];
    let user_start = rest_at + user_at + "user=<".len();
    // The real rip= is the last one: anything before it may be the client's user name.
    let rip_at = fields.rfind(", rip=");
    let (user_part, tail) = match rip_at {
        Some(i) => (&fields["user=<".len()..i], &fields[i + ", rip=".len()..]),
        None => (&fields["user=<".len()..], ""),
    };
    let (user_len, method) = match user_part.rfind(">, method=") {
        Some(i) => (i, Some(&user_part[i + ">, method=".len()..])),
        None => (user_part.strip_suffix('>').unwrap_or(user_part).len(), None),
    };
    Some(LoginFields {
        head,
        user: user_start..user_start + user_len,
        method,
        tail,
    })
}

/// The login attempt a line records; None for anything else (other processes, malformed).
pub fn parse_login(line: &str) -> Option<LoginLine> {
    let LoginFields {
        head,
        user,
        method,
        tail,
    } = login_fields(line)?;
    let user = &line[user];
    let method = method.map(str::to_string);
    let rip = tail
        .split(',')
        .next()
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
    let flags: Vec<&str> = tail.split(", ").map(str::trim).collect();
    let secured = flags.iter().any(|f| *f == "TLS" || *f == "secured")
        || flags.iter().any(|f| f.starts_with("TLS "));
    let outcome = if head.starts_with("Login:") {
        LoginOutcome::Success
    } else if head.contains("auth failed") {
        if !secured && method.is_none() {
            LoginOutcome::PlaintextRefused
        } else {
            LoginOutcome::AuthFailed
        }
    } else if head.contains("Internal login failure") {
        LoginOutcome::InternalFailure
    } else if head.contains("Plaintext authentication disallowed") {
        LoginOutcome::PlaintextRefused
    } else if head.starts_with("Disconnected") || head.starts_with("Aborted login") {
        LoginOutcome::NoAuth
    } else {
        return None;
    };
    Some(LoginLine {
        outcome,
        user: user.to_string(),
        method,
        rip,
        secured,
    })
}

/// The stored form of a login name: its first character, `~`, and 8 hex digits of a keyed hash
/// of it. Distinct names stay distinct (and so do the counts a replay makes of them), the first
/// character keeps the report's masked form (`a***`), and the name itself is not stored. Each
/// part of a master login (`alice*admin`) is replaced on its own, so the account stays apart.
/// Already replaced names are left as they are: redacting twice changes nothing.
pub fn pseudonymize_users<'a>(line: &'a str, key: &[u8]) -> Cow<'a, str> {
    let Some(fields) = login_fields(line) else {
        return Cow::Borrowed(line);
    };
    let user = &line[fields.user.clone()];
    if user.is_empty() {
        return Cow::Borrowed(line);
    }
    let replaced: Vec<String> = user.split('*').map(|part| pseudonym(part, key)).collect();
    let replaced = replaced.join("*");
    if replaced == user {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    out.push_str(&line[..fields.user.start]);
    out.push_str(&replaced);
    out.push_str(&line[fields.user.end..]);
    Cow::Owned(out)
}

const PSEUDONYM_HEX: usize = 8;

fn is_pseudonym(part: &str) -> bool {
    let mut chars = part.chars();
    chars.next().is_some()
        && chars.next() == Some('~')
        && chars.as_str().len() == PSEUDONYM_HEX
        && chars
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn pseudonym(part: &str, key: &[u8]) -> String {
    let Some(first) = part.chars().next() else {
        return String::new();
    };
    if is_pseudonym(part) {
        return part.to_string();
    }
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key);
    hash.update(part.as_bytes());
    let digest = hash.finalize();
    format!("{first}~{}", &hex::encode(digest)[..PSEUDONYM_HEX])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stored_names_are_pseudonyms_that_keep_distinctness_master_logins_and_the_mask() {
        let key = b"test-key";
        let line = |user: &str| {
            format!("2026-12-07 16:24:40 imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip=10.64.3.7, lip=10.64.1.5, TLS, session=<a>")
        };
        let alice = pseudonymize_users(&line("alice"), key).into_owned();
        let adam = pseudonymize_users(&line("adam"), key).into_owned();
        let master = pseudonymize_users(&line("alice*admin"), key).into_owned();
        for stored in [&alice, &adam, &master] {
            assert!(
                !stored.contains("alice") && !stored.contains("adam"),
                "{stored}"
            );
        }
        let (a, b, m) = (
            parse_login(&alice).unwrap(),
            parse_login(&adam).unwrap(),
            parse_login(&master).unwrap(),
        );
        assert_ne!(a.user, b.user);
        assert!(a.user.starts_with("a~") && b.user.starts_with("a~"));
        assert!(m.is_master_login());
        assert_eq!(
            m.account(),
            a.user,
            "the account of a master login keeps its pseudonym"
        );
        assert_eq!(
            (a.rip, a.outcome),
            (
                parse_login(&line("alice")).unwrap().rip,
                LoginOutcome::AuthFailed
            )
        );
        // Twice is once; an empty name and other lines are left alone.
        assert_eq!(pseudonymize_users(&alice, key), alice.as_str());
        assert_eq!(pseudonymize_users(&alice, b"another-key"), alice.as_str());
        assert!(matches!(
            pseudonymize_users(&line(""), key),
            Cow::Borrowed(_)
        ));
        let other = "imap(alice): Info: Logged out in=0 out=0";
        assert!(matches!(pseudonymize_users(other, key), Cow::Borrowed(_)));
        // A hostile name cannot move the real fields.
        let forged = line("x>, method=PLAIN, rip=10.64.9.9, lip=1.1.1.1, TLS");
        let stored = pseudonymize_users(&forged, key);
        assert_eq!(
            parse_login(&stored).unwrap().rip,
            Some("10.64.3.7".parse().unwrap())
        );
        assert!(!stored.contains("10.64.9.9"), "{stored}");
    }

    #[test]
    fn a_forged_rip_in_the_user_name_is_part_of_the_name() {
        let line = "2026-12-07 16:24:40 imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=10.64.9.9, lip=1.1.1.1, TLS>, method=PLAIN, rip=10.64.3.7, lip=10.64.1.5, TLS, session=<a>";
        let parsed = parse_login(line).unwrap();
        assert_eq!(parsed.rip, Some("10.64.3.7".parse().unwrap()));
        assert_eq!(parsed.outcome, LoginOutcome::AuthFailed);
        assert!(parsed.user.contains("rip=10.64.9.9"));
    }

    #[test]
    fn malformed_lines_are_none_or_partial_never_a_panic() {
        for line in [
            "",
            "imap-login: ",
            "imap-login: Info: Login:",
            "imap-login: Info: Login: user=<",
            "imap-login: Info: Something else: user=<a>, rip=1.2.3.4",
            "imap(alice): Info: Logged out in=0 out=0",
            "imap-login: Info: Disconnected: user=<a>, rip=not-an-ip, lip=x",
            "imap-login: user=<>, rip=",
            "\u{0}imap-login: \u{fffd}user=<\u{202e}>, rip=::1, TLS",
        ] {
            let _ = parse_login(line);
        }
        assert_eq!(parse_login("imap(alice): Info: Logged out"), None);
        let partial =
            parse_login("imap-login: Info: Disconnected: user=<a>, rip=not-an-ip, lip=x").unwrap();
        assert_eq!((partial.outcome, partial.rip), (LoginOutcome::NoAuth, None));
        let v6 =
            parse_login("imap-login: Info: Login: user=<a>, method=PLAIN, rip=::1, lip=::1, TLS")
                .unwrap();
        assert_eq!(v6.rip, Some("::1".parse().unwrap()));
    }

    #[test]
    fn oversized_lines_parse_in_linear_time() {
        let user = "a>, rip=1.1.1.1".repeat(20_000);
        let line = format!(
            "imap-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip=10.0.0.1, TLS"
        );
        let parsed = parse_login(&line).unwrap();
        assert_eq!(parsed.rip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(parsed.outcome, LoginOutcome::AuthFailed);
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,400}") {
            let _ = parse_login(&line);
        }

        #[test]
        fn pseudonyms_never_panic_and_keep_every_other_field(line in ".{0,300}") {
            let stored = pseudonymize_users(&line, b"k");
            prop_assert_eq!(pseudonymize_users(&stored, b"k"), stored.clone());
            let (before, after) = (parse_login(&line), parse_login(&stored));
            prop_assert_eq!(before.is_some(), after.is_some());
            if let (Some(before), Some(after)) = (before, after) {
                prop_assert_eq!((before.rip, before.outcome, before.secured), (after.rip, after.outcome, after.secured));
                prop_assert_eq!(before.is_master_login(), after.is_master_login());
            }
        }

        #[test]
        fn never_panics_near_the_format(user in "[^\n]{0,40}", rest in "[ -~]{0,80}") {
            let line = format!("imap-login: Info: Disconnected: x (auth failed): user=<{user}>{rest}");
            let _ = parse_login(&line);
        }
    }
}
