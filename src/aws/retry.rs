//! The retry of throttled AWS calls, within the probe's deadline.
//!
//! AWS answers "slow down" (ThrottlingException, RequestLimitExceeded) when the account's API
//! rate is used up, for example by a console open on the same log group. A careful operator
//! waits and tries again; so does `call`, with the crate's one backoff (`timing::Backoff`), but
//! never past the probe's deadline: the report must go out on time. Transient failures
//! (connection refused or reset, HTTP 5xx) get at most two more attempts. Everything else fails
//! at once. What counts as throttled or transient is `AwsError`'s to say (`error.rs`); every
//! AWS call goes through here, ECS Exec's `ExecuteCommand` included.

use std::future::Future;

use tokio::time::Instant;

use super::error::AwsError;
use crate::timing::{Backoff, Deadline};

/// Transient failures retried at most this many times (throttling: until the deadline).
pub const MAX_TRANSIENT_RETRIES: u32 = 2;

/// Runs `op` until it succeeds, fails for good, or the deadline comes. Throttling is retried
/// with backoff while the pause still fits before the deadline; when time runs out after a
/// throttled answer (during the pause or the next attempt) the error is `Throttled` with the
/// number of throttled answers, since throttling is what the operator must act on.
pub async fn call<T, F, Fut>(
    action: &str,
    deadline: Deadline,
    backoff: Backoff,
    mut op: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let mut throttled: u32 = 0;
    let mut transient: u32 = 0;
    loop {
        let outcome = match tokio::time::timeout_at(deadline.at, op()).await {
            // Out of time while retrying a throttled call: throttling is the cause to report.
            Err(_) if throttled > 0 => {
                return Err(AwsError::Throttled {
                    action: action.to_string(),
                    attempts: throttled,
                })
            }
            Err(_) => return Err(AwsError::timeout(action, &deadline)),
            Ok(outcome) => outcome,
        };
        let error = match outcome {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let pause = if error.is_throttling() {
            throttled += 1;
            backoff.pause(throttled - 1)
        } else if error.is_transient() && transient < MAX_TRANSIENT_RETRIES {
            transient += 1;
            backoff.pause(transient - 1)
        } else {
            return Err(error);
        };
        if Instant::now() + pause >= deadline.at {
            return Err(match error {
                AwsError::Throttled { action, .. } => AwsError::Throttled {
                    action,
                    attempts: throttled,
                },
                other => other,
            });
        }
        tracing::debug!(action, ?pause, %error, "retrying AWS call");
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Real time, kept short: the tests wait milliseconds.
    const FAST: Backoff = Backoff::full_jitter(Duration::from_millis(5), Duration::from_millis(40));

    fn throttled() -> AwsError {
        AwsError::Throttled {
            action: "logs:FilterLogEvents".into(),
            attempts: 1,
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result = call(
            "logs:FilterLogEvents",
            Deadline::after(Duration::from_secs(10)),
            FAST,
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(throttled())
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn throttling_gives_up_before_the_deadline_and_counts_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = call(
            "logs:FilterLogEvents",
            Deadline::after(Duration::from_millis(300)),
            FAST,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(throttled())
            },
        )
        .await;
        let attempts = calls.load(Ordering::SeqCst);
        assert!(attempts >= 3, "only {attempts} attempts in 300 ms");
        assert_eq!(
            result,
            Err(AwsError::Throttled {
                action: "logs:FilterLogEvents".into(),
                attempts
            })
        );
    }

    #[tokio::test]
    async fn a_hanging_call_ends_at_the_deadline() {
        let result: Result<(), _> = call(
            "ec2:DescribeInstances",
            Deadline::after(Duration::from_millis(150)),
            FAST,
            std::future::pending,
        )
        .await;
        let err = result.unwrap_err();
        assert!(err.is_timeout());
        assert!(err.to_string().contains("deadline of 150 ms"), "{err}");
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried_and_transient_ones_twice() {
        let calls = AtomicU32::new(0);
        let denied: Result<(), _> = call(
            "ecs:ListTasks",
            Deadline::after(Duration::from_secs(10)),
            FAST,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AwsError::AccessDenied {
                    action: "ecs:ListTasks".into(),
                    iam_action: "ecs:ListTasks".into(),
                    message: "no".into(),
                })
            },
        )
        .await;
        assert!(denied.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        calls.store(0, Ordering::SeqCst);
        let unreachable: Result<(), _> = call(
            "ecs:ListTasks",
            Deadline::after(Duration::from_secs(10)),
            FAST,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AwsError::EndpointUnreachable {
                    action: "ecs:ListTasks".into(),
                    endpoint: "http://127.0.0.1:1".into(),
                    detail: "connection refused".into(),
                })
            },
        )
        .await;
        assert!(unreachable.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1 + MAX_TRANSIENT_RETRIES);
    }
}
