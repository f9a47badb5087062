//! Fuzzes the IMAPAuthFailureSpike path on untrusted log text: every line through Dovecot's
//! `imap-login` parser, then all of them as the imap tier's log events of a real bundled snapshot
//! through the runbook's evidence, its rules, and the redaction of what would be stored.
#![no_main]

use cabal_triage::config::Config;
use cabal_triage::dovecot::{is_sync_users_line, parse_login};
use cabal_triage::probe::snapshot::{self, LogEvent};
use cabal_triage::runbook::imap_auth::{evidence, rules};
use libfuzzer_sys::fuzz_target;

const BASE: &str = include_str!("../../examples/imap-auth-master-password-rotated/snapshot.json");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = is_sync_users_line(line);
        if let Some(login) = parse_login(line) {
            assert!(login.user.starts_with(login.account()));
            assert_eq!(login.is_master_login(), login.user.contains('*'));
            serde_json::to_string(&login).expect("a login line always serializes");
        }
    }
    let mut snap = snapshot::parse(BASE, "bundled snapshot").expect("the bundled snapshot parses");
    let start_ms = snap.window.as_ref().map_or(0, |w| w.from_ms());
    let events = text
        .lines()
        .enumerate()
        .map(|(i, line)| LogEvent {
            timestamp: start_ms.saturating_add(i as i64),
            message: line.to_string(),
            log_stream: "imap/fuzz".to_string(),
        })
        .collect();
    snap.tier_mut("imap").log_events = Some(events);
    let config = Config::default();
    let facts = evidence::build(&snap, &config);
    let verdict = rules::verdict(&facts, &config.imap_auth);
    serde_json::to_string(&verdict).expect("a verdict always serializes");
    snap.redact_local_parts(b"fuzz");
    serde_json::to_string(&snap).expect("a snapshot always serializes");
});
