//! What the sendmail runbooks run with: the probes (AWS, replay or fakes), the configuration
//! (tiers, deadlines, thresholds, commands), the provider table and the clock. A replay's clock
//! is the snapshot's capture time, so a replay computes the same window and ages as the triage
//! that recorded it.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Config;
use crate::probe::ProbeSet;
use crate::sendmail::ProviderTable;

/// The time, injected.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

#[derive(Clone)]
pub struct Environment {
    pub probes: ProbeSet,
    pub config: Arc<Config>,
    pub providers: Arc<ProviderTable>,
    pub clock: Clock,
    /// The key of the pseudonyms that stand for login names in stored snapshots: one per
    /// process, so they cannot be looked up in a table of hashes of common names.
    pub user_key: [u8; 32],
}

impl Environment {
    /// `config.providers` must be valid (`Config::validate` checks it).
    pub fn new(probes: ProbeSet, config: Arc<Config>, clock: Clock) -> Environment {
        let providers = ProviderTable::from_config(&config.providers)
            .unwrap_or_else(|_| ProviderTable::builtin());
        Environment {
            probes,
            providers: Arc::new(providers),
            config,
            clock,
            user_key: rand::random(),
        }
    }

    /// The wall clock.
    pub fn system_clock() -> Clock {
        Arc::new(OffsetDateTime::now_utc)
    }

    /// A clock stopped at `at` (replays).
    pub fn fixed_clock(at: OffsetDateTime) -> Clock {
        Arc::new(move || at)
    }
}
