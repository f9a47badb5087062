//! The alert's history as the ledger holds it: how many earlier episodes of the same alertname
//! were first seen in the last days, and their verdicts' actions. Gathered at the edge (the
//! worker asks the ledger, under a deadline) and handed to the runbook, which records it in the
//! replay snapshot (`history`) so that a replay decides the same, and reports it as
//! `evidence.history`. The rules read it ("the third greylisting episode this week is not
//! transient"); unknown history decides nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How far back the history looks, in days.
pub const HISTORY_DAYS: i64 = 7;

/// Earlier episodes of one alertname (the current one excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertHistory {
    /// Episodes first seen at or after this instant.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub since: Option<OffsetDateTime>,
    pub episodes: u64,
    /// Verdict action (`greylisting-transient`, …) -> episodes whose stored report has it;
    /// episodes without a report (not triaged yet, failed) are in `episodes` only.
    #[serde(default)]
    pub by_action: BTreeMap<String, u64>,
    /// Why the ledger could not answer; the counts are then zero and mean nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AlertHistory {
    /// A history that could not be read.
    pub fn unknown(error: String) -> AlertHistory {
        AlertHistory {
            error: Some(error),
            ..AlertHistory::default()
        }
    }

    /// Whether the counts are known.
    pub fn known(&self) -> bool {
        self.error.is_none()
    }

    /// Earlier episodes whose verdict was `action` (kebab-case), when known.
    pub fn with_action(&self, action: &str) -> Option<u64> {
        self.known()
            .then(|| self.by_action.get(action).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_unknown() {
        let history = AlertHistory {
            since: Some(time::macros::datetime!(2026-11-21 20:00 UTC)),
            episodes: 3,
            by_action: BTreeMap::from([("greylisting-transient".to_string(), 2)]),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&history).unwrap(),
            serde_json::json!({"since": "2026-11-21T20:00:00Z", "episodes": 3,
                "by_action": {"greylisting-transient": 2}})
        );
        assert_eq!(history.with_action("greylisting-transient"), Some(2));
        assert_eq!(history.with_action("nat-replace"), Some(0));
        let unknown = AlertHistory::unknown("ledger unavailable".into());
        assert_eq!(unknown.with_action("nat-replace"), None);
        let back: AlertHistory =
            serde_json::from_value(serde_json::to_value(&unknown).unwrap()).unwrap();
        assert_eq!(back, unknown);
    }
}
