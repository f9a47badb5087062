//! The one retry stage every destination shares: what is worth another attempt (a destination's
//! `Transient` error, never a `Permanent` one) and when. The pause is the crate's one backoff
//! (`timing::Backoff`: the ceiling doubling from `delivery.initial_backoff_ms`, capped at
//! `delivery.max_backoff_ms`, each delay drawn between half and all of it so that many
//! deliveries failing together do not retry together, while the attempts still cover a known
//! time); a destination's `Retry-After` is a minimum; and a budget
//! (`delivery.max_attempts`, `delivery.budget_secs`) after which the row ends `failed` with the
//! last error. Pure: the caller passes the attempt, the age and the random number.

use std::time::Duration;

use super::DeliveryError;
use crate::config::DeliveryConfig;
use crate::timing::Backoff;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
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
            backoff: config.backoff(),
            max_attempts: config.max_attempts,
            budget: Duration::from_secs(config.budget_secs),
        }
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
        // Attempt 1 failed: the first retry (0 for the backoff).
        let delay = self
            .backoff
            .delay(attempt.saturating_sub(1), unit)
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
            backoff: Backoff::equal_jitter(Duration::from_secs(1), Duration::from_secs(60)),
            max_attempts: 5,
            budget: Duration::from_secs(600),
        }
    }

    fn retry_in(decision: Decision) -> Duration {
        match decision {
            Decision::RetryAfter(delay) => delay,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn the_delay_is_the_shared_backoff_of_the_attempt() {
        let p = policy();
        let failed = DeliveryError::transient("HTTP 500");
        // unit 0 draws the ceiling: 1 s after the first attempt, doubling, capped at 60 s.
        for (attempt, ceiling) in [(1, 1), (2, 2), (3, 4), (4, 8)] {
            assert_eq!(
                retry_in(p.decide(attempt, Duration::ZERO, &failed, 0.0)),
                Duration::from_secs(ceiling),
                "attempt {attempt}"
            );
        }
        assert_eq!(
            retry_in(p.decide(3, Duration::ZERO, &failed, 0.5)),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_in(p.decide(3, Duration::ZERO, &failed, 1.0)),
            Duration::from_secs(2),
            "never below half the ceiling"
        );
        let capped = RetryPolicy {
            max_attempts: 100,
            budget: Duration::from_secs(100_000),
            ..policy()
        };
        assert_eq!(
            retry_in(capped.decide(40, Duration::ZERO, &failed, 0.0)),
            Duration::from_secs(60)
        );
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
            policy().decide(3, Duration::ZERO, &short, 0.0),
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
            p.decide(2, Duration::from_secs(599), &transient, 0.0),
            Decision::GiveUp(reason) if reason.contains("budget")
        ));
        assert!(matches!(
            p.decide(4, Duration::ZERO, &transient, 0.5),
            Decision::RetryAfter(_)
        ));
    }
}
