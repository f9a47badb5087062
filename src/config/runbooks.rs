//! `[runbooks]`: the thresholds of the verdict rules (`runbook::rules`) and the fixed command the
//! bounced runbook runs over ECS Exec. Every rule reads its numbers from here, so an operator can
//! tune what "stands out" without a rebuild; `docs/runbooks.md` explains each one.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[runbooks]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbooksConfig {
    /// A tier's queue stands out from this many requests (`mailq`'s `Total requests`).
    pub queue_threshold: u64,
    /// A tier's deferred lines in the window stand out from this many.
    pub deferred_threshold: u64,
    /// A tier's bounced (`dsn=5`) lines in the window stand out from this many.
    pub bounced_threshold: u64,
    /// The dominant DSN class is "clear" (full confidence) from this share of failing lines.
    pub dominant_share: f64,
    /// 4.7 deferrals (or smtp-out bounces) are concentrated on one provider from this share...
    pub provider_concentration: f64,
    /// ...and this many lines at that provider.
    pub provider_min_lines: u64,
    /// Remote replies that say they greylist (`Greylisted`, postgrey's text) decide the action
    /// from this share of the tier's deferred lines, whatever their code.
    pub greylist_reply_share: f64,
    /// 4.7 deferrals are "short" (greylisting) while their longest `delay=` stays under this.
    pub greylist_max_delay_secs: u64,
    /// smtp-out shows a 4.4 wave (a NAT problem) from this share of its failing lines...
    pub nat_wave_share: f64,
    /// ...and this many 4.4 lines.
    pub nat_wave_min_lines: u64,
    /// A tier's log group whose newest event (any line) is older than this while its queue
    /// stands out has stopped shipping logs: said in the summary, confidence lowered.
    pub log_silence_gap_secs: u64,
    /// Shell text run in each smtp-in task by the bounced runbook: it must print the line count
    /// of the virtusertable, then its modification time in epoch seconds. Only this setting
    /// chooses the command; no alert field can.
    pub virtusertable_command: String,
    /// The virtusertable is stale (the reconfigure loop is stuck) past this age.
    pub virtusertable_max_age_secs: u64,
    /// The deferred runbook's follow-up checks over ECS Exec, beside `mailq` (`runbook::followup`):
    /// smtp-out's egress, smtp-in's relay to imap, imap's spool and procmail.
    pub followup_checks: bool,
    /// The name smtp-out resolves and opens TCP/25 to (a big provider's MX host).
    pub egress_check_host: String,
    /// The name smtp-in relays to (resolved, TCP/25 opened).
    pub relay_check_host: String,
    /// Deadline of the name lookup and of the TCP connection in those checks, each.
    pub connect_check_timeout_secs: u64,
    /// imap's mail spool (EFS mounted at /home in Cabalmail's imap task): its free space is read.
    pub spool_path: String,
    /// The local delivery agent imap's sendmail runs: present and executable?
    pub procmail_path: String,
    /// The spool is full from this share of its space used, in percent.
    pub spool_max_used_percent: u64,
    /// Greylisting is not transient once the ledger holds this many earlier episodes of the same
    /// alert with the `greylisting-transient` verdict in the last 7 days ("concerning if
    /// recurring", the runbook says): the third time this week is a reputation question.
    pub recurring_episodes: u64,
    /// A firing episode is triaged again when Alertmanager repeats it and its verdict is older
    /// than this (fresh verdicts); 0: never.
    pub retriage_after_secs: u64,
}

impl Default for RunbooksConfig {
    fn default() -> Self {
        RunbooksConfig {
            queue_threshold: 5,
            deferred_threshold: 10,
            bounced_threshold: 5,
            dominant_share: 0.6,
            provider_concentration: 0.6,
            provider_min_lines: 5,
            greylist_reply_share: 0.5,
            greylist_max_delay_secs: 1800,
            nat_wave_share: 0.5,
            nat_wave_min_lines: 10,
            log_silence_gap_secs: 600,
            virtusertable_command:
                "wc -l /etc/mail/virtusertable && date -r /etc/mail/virtusertable +%s".into(),
            virtusertable_max_age_secs: 7200,
            followup_checks: true,
            egress_check_host: "gmail-smtp-in.l.google.com".into(),
            relay_check_host: "imap.cabal.internal".into(),
            connect_check_timeout_secs: 3,
            spool_path: "/home".into(),
            procmail_path: "/usr/bin/procmail".into(),
            spool_max_used_percent: 95,
            recurring_episodes: 2,
            retriage_after_secs: 3600,
        }
    }
}

impl RunbooksConfig {
    /// How old a verdict may be before a repeat triages the episode again; None: never.
    pub fn retriage_after(&self) -> Option<std::time::Duration> {
        (self.retriage_after_secs > 0)
            .then(|| std::time::Duration::from_secs(self.retriage_after_secs))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("runbooks.dominant_share", self.dominant_share),
            (
                "runbooks.provider_concentration",
                self.provider_concentration,
            ),
            ("runbooks.greylist_reply_share", self.greylist_reply_share),
            ("runbooks.nat_wave_share", self.nat_wave_share),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(ConfigError::invalid(
                    key,
                    "must be a share greater than 0 and at most 1 (0.6 means 60 %)",
                ));
            }
        }
        for (key, value) in [
            ("runbooks.deferred_threshold", self.deferred_threshold),
            ("runbooks.bounced_threshold", self.bounced_threshold),
            ("runbooks.log_silence_gap_secs", self.log_silence_gap_secs),
            ("runbooks.recurring_episodes", self.recurring_episodes),
            (
                "runbooks.virtusertable_max_age_secs",
                self.virtusertable_max_age_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self.virtusertable_command.trim().is_empty() {
            return Err(ConfigError::invalid(
                "runbooks.virtusertable_command",
                "must not be empty; the default is \"wc -l /etc/mail/virtusertable && date -r /etc/mail/virtusertable +%s\"",
            ));
        }
        self.validate_followup()
    }

    /// The follow-up checks' names and paths go into shell text: only the characters of a host
    /// name or of a plain absolute path are accepted.
    fn validate_followup(&self) -> Result<(), ConfigError> {
        for (key, host) in [
            ("runbooks.egress_check_host", &self.egress_check_host),
            ("runbooks.relay_check_host", &self.relay_check_host),
        ] {
            if !is_host_name(host) {
                return Err(ConfigError::invalid(
                    key,
                    "must be a host name (letters, digits, '-' and '.'), for example gmail-smtp-in.l.google.com",
                ));
            }
        }
        for (key, path) in [
            ("runbooks.spool_path", &self.spool_path),
            ("runbooks.procmail_path", &self.procmail_path),
        ] {
            if !is_plain_path(path) {
                return Err(ConfigError::invalid(
                    key,
                    "must be an absolute path of letters, digits, '/', '.', '_' and '-', for example /home",
                ));
            }
        }
        if !(1..=30).contains(&self.connect_check_timeout_secs) {
            return Err(ConfigError::invalid(
                "runbooks.connect_check_timeout_secs",
                "must be between 1 and 30 (keep it under exec.task_deadline_secs / 2)",
            ));
        }
        if !(1..=100).contains(&self.spool_max_used_percent) {
            return Err(ConfigError::invalid(
                "runbooks.spool_max_used_percent",
                "must be between 1 and 100",
            ));
        }
        Ok(())
    }
}

/// A DNS name: labels of letters, digits and `-`, not starting with `-`, at most 253 bytes.
pub fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An absolute path without shell metacharacters or `..`.
pub fn is_plain_path(text: &str) -> bool {
    text.starts_with('/')
        && text.len() <= 255
        && !text.split('/').any(|part| part == "..")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_the_key() {
        RunbooksConfig::default().validate().unwrap();
        let bad = RunbooksConfig {
            provider_concentration: 1.5,
            ..RunbooksConfig::default()
        };
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.contains("runbooks.provider_concentration"), "{error}");
        let bad = RunbooksConfig {
            virtusertable_command: " ".into(),
            ..RunbooksConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("runbooks.virtusertable_command"));
        for (bad, key) in [
            (
                RunbooksConfig {
                    egress_check_host: "gmail.com; rm -rf /".into(),
                    ..RunbooksConfig::default()
                },
                "runbooks.egress_check_host",
            ),
            (
                RunbooksConfig {
                    relay_check_host: "-imap".into(),
                    ..RunbooksConfig::default()
                },
                "runbooks.relay_check_host",
            ),
            (
                RunbooksConfig {
                    spool_path: "/home/$(id)".into(),
                    ..RunbooksConfig::default()
                },
                "runbooks.spool_path",
            ),
            (
                RunbooksConfig {
                    procmail_path: "usr/bin/procmail".into(),
                    ..RunbooksConfig::default()
                },
                "runbooks.procmail_path",
            ),
            (
                RunbooksConfig {
                    connect_check_timeout_secs: 0,
                    ..RunbooksConfig::default()
                },
                "runbooks.connect_check_timeout_secs",
            ),
            (
                RunbooksConfig {
                    spool_max_used_percent: 101,
                    ..RunbooksConfig::default()
                },
                "runbooks.spool_max_used_percent",
            ),
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
        assert!(is_host_name("imap.cabal.internal."));
        assert!(!is_host_name("a..b"));
        assert!(!is_plain_path("/home/../etc"));
        let bad = RunbooksConfig {
            nat_wave_share: f64::NAN,
            ..RunbooksConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
