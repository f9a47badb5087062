//! The one retry stage every destination shares: exponential backoff (doubling from
//! `delivery.initial_backoff_ms`, capped at `delivery.max_backoff_ms`) with ±25 % jitter so that
//! many deliveries failing together do not retry together; a destination's `Retry-After` is a
//! minimum; and a budget (`delivery.max_attempts`, `delivery.budget_secs`) after which the row
//! ends `failed` with the last error. Pure: the caller passes the attempt, the age and the
//! random number.

use std::time::Duration;

use super::DeliveryError;
use crate::config::DeliveryConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max_interval: Duration,
    pub max_attempts: u32,
    pub budget: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop; the row ends `failed` with this error.
    GiveUp(String),
}

impl RetryPolicy {
    pub fn from_config(config: &DeliveryConfig) -> Self {
        RetryPolicy {
            initial: Duration::from_millis(config.initial_backoff_ms),
            max_interval: Duration::from_millis(config.max_backoff_ms),
            max_attempts: config.max_attempts,
            budget: Duration::from_secs(config.budget_secs),
        }
    }

    /// The backoff before attempt `attempt + 1`, with `unit` in [0, 1) choosing the jitter.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let doubling = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let base = (self.initial.as_secs_f64() * doubling).min(self.max_interval.as_secs_f64());
        let factor = 0.75 + 0.5 * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64(base * factor)
    }

    /// Decides after attempt number `attempt` (from 1) of a row created `age` ago failed.
    pub fn decide(
        &self,
        attempt: u32,
        age: Duration,
        error: &DeliveryError,
        unit: f64,
    ) -> Decision {
        let (reason, retry_after) = match error {
            DeliveryError::Permanent { reason } => return Decision::GiveUp(reason.clone()),
            DeliveryError::Transient {
                reason,
                retry_after,
            } => (reason, *retry_after),
        };
        if attempt >= self.max_attempts {
            return Decision::GiveUp(format!(
                "{reason} (gave up after {attempt} attempts: delivery.max_attempts)"
            ));
        }
        let delay = self
            .backoff(attempt, unit)
            .max(retry_after.unwrap_or_default());
        if age + delay > self.budget {
            return Decision::GiveUp(format!(
                "{reason} (gave up: the retry budget of {} s is used up: delivery.budget_secs)",
                self.budget.as_secs()
            ));
        }
        Decision::RetryAfter(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            max_attempts: 5,
            budget: Duration::from_secs(600),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = policy();
        assert_eq!(p.backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(p.backoff(2, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(4));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(3));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(40, 0.5), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_is_a_minimum() {
        let error = DeliveryError::Transient {
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            policy().decide(1, Duration::ZERO, &error, 0.5),
            Decision::RetryAfter(Duration::from_secs(30))
        );
        let short = DeliveryError::Transient {
            reason: "429".into(),
            retry_after: Some(Duration::from_millis(10)),
        };
        assert_eq!(
            policy().decide(3, Duration::ZERO, &short, 0.5),
            Decision::RetryAfter(Duration::from_secs(4))
        );
    }

    #[test]
    fn permanent_errors_and_spent_budgets_give_up() {
        let p = policy();
        assert_eq!(
            p.decide(
                1,
                Duration::ZERO,
                &DeliveryError::permanent("channel_not_found"),
                0.5
            ),
            Decision::GiveUp("channel_not_found".into())
        );
        let transient = DeliveryError::transient("HTTP 500");
        assert!(matches!(
            p.decide(5, Duration::ZERO, &transient, 0.5),
            Decision::GiveUp(reason) if reason.contains("after 5 attempts")
        ));
        assert!(matches!(
            p.decide(2, Duration::from_secs(599), &transient, 0.5),
            Decision::GiveUp(reason) if reason.contains("budget")
        ));
        assert!(matches!(
            p.decide(4, Duration::ZERO, &transient, 0.5),
            Decision::RetryAfter(_)
        ));
    }
}
