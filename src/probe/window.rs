//! The log-scan window (pure): it ends now and starts at the alert's `startsAt` minus the
//! lookback, or `min_window` before now, whichever is earlier (the longer window), but never
//! more than `max_window` before now (an alert that has fired for days would otherwise ask
//! CloudWatch for days of logs).

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::ProbesConfig;

use super::snapshot::Window;

/// The window for an alert that started at `starts_at` (None: unknown, use the last
/// `min_window`). A `starts_at` in the future (clock skew) counts as now.
pub fn log_window(
    now: OffsetDateTime,
    starts_at: Option<OffsetDateTime>,
    probes: &ProbesConfig,
) -> Window {
    let lookback = Duration::from_secs(probes.log_lookback_before_start_secs);
    let min_window = Duration::from_secs(probes.log_min_window_secs);
    let max_window = Duration::from_secs(probes.log_max_window_secs);
    let floor = now - max_window;
    let mut from = now - min_window;
    if let Some(start) = starts_at {
        let start = start.min(now);
        let candidate = start.checked_sub(lookback.try_into().unwrap_or(time::Duration::MAX));
        if let Some(candidate) = candidate {
            from = from.min(candidate);
        } else {
            from = floor;
        }
    }
    Window {
        from: from.max(floor),
        to: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn probes() -> ProbesConfig {
        ProbesConfig::default()
    }

    #[test]
    fn recent_alert_gets_the_last_thirty_minutes() {
        let now = datetime!(2026-11-28 20:15 UTC);
        let w = log_window(now, Some(datetime!(2026-11-28 20:10 UTC)), &probes());
        assert_eq!(w.from, datetime!(2026-11-28 19:45 UTC));
        assert_eq!(w.to, now);
    }

    #[test]
    fn older_alert_reaches_fifteen_minutes_before_its_start() {
        let now = datetime!(2026-11-28 20:15 UTC);
        let w = log_window(now, Some(datetime!(2026-11-28 19:58:30 UTC)), &probes());
        assert_eq!(w.from, datetime!(2026-11-28 19:43:30 UTC));
    }

    #[test]
    fn long_running_alert_is_capped_and_future_start_is_now() {
        let now = datetime!(2026-11-28 20:15 UTC);
        let w = log_window(now, Some(datetime!(2026-11-20 00:00 UTC)), &probes());
        assert_eq!(w.from, datetime!(2026-11-28 17:15 UTC));
        let w = log_window(now, Some(datetime!(2026-11-29 00:00 UTC)), &probes());
        assert_eq!(w.from, datetime!(2026-11-28 19:45 UTC));
        let w = log_window(now, None, &probes());
        assert_eq!(w.from, datetime!(2026-11-28 19:45 UTC));
    }

    proptest! {
        #[test]
        fn window_is_always_within_bounds(start in -4_000_000_000i64..4_000_000_000i64) {
            let now = datetime!(2026-11-28 20:15 UTC);
            let starts_at = OffsetDateTime::from_unix_timestamp(start).ok();
            let w = log_window(now, starts_at, &probes());
            prop_assert_eq!(w.to, now);
            prop_assert!(now - w.from >= time::Duration::minutes(30));
            prop_assert!(now - w.from <= time::Duration::hours(3));
        }
    }
}
