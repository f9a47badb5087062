//! The parser against the lines a real Dovecot wrote (`tests/fixtures/dovecot/`).
#![cfg(test)]

use super::*;

const RECORDED: &str = include_str!("../../tests/fixtures/dovecot/recorded-imap-login.log");

fn by_source(ip: &str) -> Vec<LoginLine> {
    RECORDED
        .lines()
        .filter_map(parse_login)
        .filter(|l| l.rip == Some(ip.parse().unwrap()))
        .collect()
}

#[test]
fn every_recorded_line_parses() {
    let lines: Vec<&str> = RECORDED.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.len() >= 15, "{}", lines.len());
    for line in lines {
        assert!(parse_login(line).is_some(), "{line}");
    }
}

#[test]
fn successes_wrong_passwords_and_the_master_user() {
    // The Lambda-like source: its logins work (the master login shows the account's name).
    let lambda = by_source("127.0.0.2");
    assert!(!lambda.is_empty());
    assert!(lambda
        .iter()
        .all(|l| l.outcome == LoginOutcome::Success && l.secured));
    // A wrong user password.
    let wrong = by_source("127.0.0.3");
    assert_eq!(wrong[0].outcome, LoginOutcome::AuthFailed);
    assert_eq!(wrong[0].user, "alice");
    // A wrong master password: Dovecot logs the master user's name, not the account's.
    let master = by_source("127.0.0.4");
    assert_eq!(master.len(), 2);
    assert!(master
        .iter()
        .all(|l| l.outcome == LoginOutcome::AuthFailed && l.user == "admin"));
}

#[test]
fn a_missing_account_plaintext_and_a_guessing_source() {
    let ghost = by_source("127.0.0.5");
    assert_eq!(ghost[0].outcome, LoginOutcome::InternalFailure);
    assert_eq!(ghost[0].account(), "ghost");
    let plain = by_source("127.0.0.6");
    assert_eq!(plain[0].outcome, LoginOutcome::PlaintextRefused);
    assert!(!plain[0].secured && plain[0].is_master_login());
    let guessing = by_source("127.0.0.9");
    let mut users: Vec<&str> = guessing.iter().map(|l| l.user.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users.len(), 8);
    // The readiness check: no attempt.
    assert_eq!(by_source("127.0.0.1")[0].outcome, LoginOutcome::NoAuth);
}
