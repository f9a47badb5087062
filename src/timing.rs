//! Time limits and the pauses between attempts, written once for the whole crate.
//!
//! A probe's [`Deadline`] is handed from the runbook down to every AWS call, so it belongs to
//! neither side. [`Backoff`] is the one formula for "wait, then try again": the AWS retry
//! (`aws::retry`), the outbox (`notify::retry`) and the worker pool (`worker`) each keep only
//! their decision of *what* is worth retrying and their own parameters.
//!
//! Why full jitter (a pause drawn uniformly between zero and the exponential ceiling) rather
//! than decorrelated jitter: it is what the AWS SDKs' standard retry mode does (whose retries
//! this crate turns off and replaces), it spreads a burst of callers that failed together over
//! the whole interval, which is the point when they failed because they were too many, and it
//! depends only on the attempt number, so the delay is a pure function tested exactly.
//! Decorrelated jitter needs the previous pause as state, which the outbox (whose attempts are
//! rows in the ledger, resumed by any replica) does not have.
//!
//! Full jitter is a share of 1 (`Backoff::jitter`). Where the number of attempts is bounded
//! (`delivery.max_attempts`, `worker.max_attempts`) rather than the time, a share of 1 would
//! make the time the attempts cover a matter of luck (half the sum of the ceilings on average,
//! and a dependency down for a minute could use up every attempt); those callers draw half of
//! each pause (`Backoff::equal_jitter`: between half and all of the ceiling), so their
//! attempts always cover at least half of it. The AWS retry is bounded by the probe's deadline
//! instead, and uses full jitter.
//!
//! This module imports nothing from the crate: everything else may depend on it.

use std::time::Duration;

use tokio::time::Instant;

/// The moment a probe must stop, and the budget it was given (for messages).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// What is left of it (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }
}

/// Exponential backoff with jitter: before retry `n` (0 = the first retry) the ceiling is
/// `initial * 2^n`, capped at `max`, and the pause is drawn below it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first pause.
    pub initial: Duration,
    /// No pause is longer than this.
    pub max: Duration,
    /// The share of the ceiling that is drawn at random, from 0 (no jitter: always the
    /// ceiling) to 1 (full jitter: anywhere between zero and the ceiling).
    pub jitter: f64,
}

impl Backoff {
    /// Exponential backoff from `initial` up to `max` with full jitter: each pause anywhere
    /// between zero and its ceiling. For retries bounded by a deadline.
    pub const fn full_jitter(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            jitter: 1.0,
        }
    }

    /// Exponential backoff from `initial` up to `max`, each pause between half and all of its
    /// ceiling. For retries bounded by a number of attempts (see the module documentation).
    pub const fn equal_jitter(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            jitter: 0.5,
        }
    }

    /// The ceiling of the pause before retry `retry` (0-based): `initial * 2^retry`, capped.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The pause before retry `retry` (0-based), given `unit` in [0, 1): the ceiling times
    /// `1 - jitter * unit`, so between `(1 - jitter) * ceiling` and the ceiling. Pure, so it
    /// is tested exactly; out-of-range or non-finite inputs are clamped, never a panic.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        let share = clamp_unit(self.jitter) * clamp_unit(unit);
        // In whole nanoseconds, rounded; a ceiling too long for that (centuries) is
        // returned as it is rather than overflow.
        let nanos = (ceiling.as_nanos() as f64 * (1.0 - share)).round();
        if nanos >= u64::MAX as f64 {
            return ceiling;
        }
        Duration::from_nanos(nanos as u64).min(ceiling)
    }

    /// The pause before retry `retry`, with the jitter drawn now.
    pub fn pause(&self, retry: u32) -> Duration {
        self.delay(retry, rand::random::<f64>())
    }
}

/// `value` within [0, 1]; NaN counts as 0.
fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn full() -> Backoff {
        Backoff::full_jitter(MS(100), MS(1000))
    }

    #[test]
    fn the_ceiling_doubles_from_initial_and_is_capped() {
        let b = full();
        assert_eq!(b.ceiling(0), MS(100));
        assert_eq!(b.ceiling(1), MS(200));
        assert_eq!(b.ceiling(3), MS(800));
        assert_eq!(b.ceiling(4), MS(1000));
        assert_eq!(b.ceiling(31), MS(1000));
        assert_eq!(b.ceiling(u32::MAX), MS(1000));
        // A cap below the first pause caps that too.
        assert_eq!(Backoff::full_jitter(MS(500), MS(50)).ceiling(0), MS(50));
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let b = full();
        assert_eq!(b.delay(2, 0.0), MS(400));
        assert_eq!(b.delay(2, 0.5), MS(200));
        assert_eq!(b.delay(2, 0.75), MS(100));
        assert!(b.delay(2, 0.999_999) < MS(1));
        assert_eq!(b.delay(10, 0.0), MS(1000));
        assert_eq!(b.delay(10, 0.5), MS(500));
    }

    #[test]
    fn a_smaller_jitter_keeps_a_floor_and_none_is_exact() {
        let half = Backoff::equal_jitter(MS(100), MS(1000));
        assert_eq!(half.delay(1, 0.0), MS(200));
        assert_eq!(half.delay(1, 1.0), MS(100));
        let none = Backoff {
            jitter: 0.0,
            ..full()
        };
        assert_eq!(none.delay(1, 0.0), MS(200));
        assert_eq!(none.delay(1, 0.9), MS(200));
    }

    #[test]
    fn bad_inputs_are_clamped() {
        let b = full();
        assert_eq!(b.delay(0, f64::NAN), MS(100));
        assert_eq!(b.delay(0, -3.0), MS(100));
        assert_eq!(b.delay(0, 7.0), Duration::ZERO);
        let wild = Backoff {
            jitter: f64::INFINITY,
            ..full()
        };
        assert_eq!(wild.delay(0, 0.5), MS(50));
        assert_eq!(
            Backoff::full_jitter(Duration::MAX, Duration::MAX).delay(40, 0.0),
            Duration::MAX
        );
    }

    #[test]
    fn random_pauses_stay_within_the_bounds() {
        let b = full();
        for retry in 0..12 {
            let ceiling = b.ceiling(retry);
            let pauses: Vec<Duration> = (0..200).map(|_| b.pause(retry)).collect();
            assert!(
                pauses.iter().all(|p| *p <= ceiling),
                "retry {retry}: {pauses:?}"
            );
            // 200 uniform draws all in the upper half would mean the jitter is not applied.
            assert!(
                pauses.iter().any(|p| *p < ceiling / 2),
                "retry {retry}: no pause below half the ceiling"
            );
        }
    }

    #[tokio::test]
    async fn a_deadline_counts_down_and_expires() {
        let deadline = Deadline::after(MS(30));
        assert_eq!(deadline.budget, MS(30));
        assert!(!deadline.expired());
        assert!(deadline.remaining() <= MS(30));
        tokio::time::sleep(MS(40)).await;
        assert!(deadline.expired());
        assert_eq!(deadline.remaining(), Duration::ZERO);
    }
}
