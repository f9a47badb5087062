//! The Alertmanager side of the world: the webhook payload (version 4), the episode key that
//! makes one alert occurrence one unit of work, and the PagerDuty dedup key Alertmanager derives
//! from the group key, and the group's labels read back from that key (for silences). Pure data,
//! no I/O.

mod episode;
mod excerpt;
mod group_key;
mod webhook;

pub use episode::{pagerduty_dedup_key, EpisodeKey};
pub use excerpt::{excerpt, MAX_QUOTED_BYTES};
pub use group_key::{group_labels, group_matchers};
pub use webhook::{parse_webhook, AlertStatus, WebhookAlert, WebhookError, WebhookPayload};
