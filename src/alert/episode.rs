//! The episode: one occurrence of one alert, the unit that is triaged and annotated once.
//!
//! Alertmanager re-sends the whole group on every `group_interval` tick, on `repeat_interval`,
//! on retries and from every HA peer. The key (groupKey, fingerprint, startsAt) is the same in all
//! of those, and changes when the same label set fires again (new `startsAt`).

use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The identity of one alert episode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EpisodeKey {
    pub group_key: String,
    pub fingerprint: String,
    /// Normalised to UTC so that an offset other than `Z` names the same instant.
    pub starts_at: OffsetDateTime,
}

impl EpisodeKey {
    pub fn new(group_key: &str, fingerprint: &str, starts_at: OffsetDateTime) -> Self {
        EpisodeKey {
            group_key: group_key.to_string(),
            fingerprint: fingerprint.to_ascii_lowercase(),
            // `parse_webhook` refuses instants outside UTC's range; should one arrive anyway it
            // keeps its own offset rather than panic.
            starts_at: starts_at
                .checked_to_offset(time::UtcOffset::UTC)
                .unwrap_or(starts_at),
        }
    }

    /// A stable, URL-safe id: the first 20 hex digits of SHA-256 over the key's parts. Stable
    /// ids let every replica (and a replay) name the same episode without coordination.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.group_key.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.fingerprint.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.starts_at_text().as_bytes());
        let digest = hasher.finalize();
        format!("ep-{}", &hex::encode(digest)[..20])
    }

    /// `startsAt` in UTC RFC 3339 with the nanoseconds Alertmanager sent.
    pub fn starts_at_text(&self) -> String {
        self.starts_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.starts_at.unix_timestamp_nanos().to_string())
    }
}

/// The PagerDuty `dedup_key` / `incident_key` Alertmanager's PagerDuty integration uses for the
/// same group: the lowercase hex SHA-256 of the group key's UTF-8 bytes.
pub fn pagerduty_dedup_key(group_key: &str) -> String {
    hex::encode(Sha256::digest(group_key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dedup_key_matches_alertmanager() {
        assert_eq!(
            pagerduty_dedup_key("{}/{severity=\"critical\"}:{alertname=\"X\"}"),
            "996f61b35f9cc67a661419d586d08c5083ef83c566f201e1d864cf3eb99161bb"
        );
    }

    #[test]
    fn same_instant_in_other_offset_is_same_episode() {
        let a = EpisodeKey::new("g", "AB", datetime!(2026-11-28 20:00:00 UTC));
        let b = EpisodeKey::new("g", "ab", datetime!(2026-11-28 22:00:00 +02:00));
        assert_eq!(a.id(), b.id());
        let c = EpisodeKey::new("g", "ab", datetime!(2026-11-28 20:00:01 UTC));
        assert_ne!(a.id(), c.id());
        let d = EpisodeKey::new("h", "ab", datetime!(2026-11-28 20:00:00 UTC));
        assert_ne!(a.id(), d.id());
    }
}
