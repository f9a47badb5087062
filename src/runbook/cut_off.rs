//! When the bot itself is cut off (pure): on Cabalmail the service's own egress to AWS usually
//! leaves through the same NAT whose failure it is asked about. When every AWS step failed by a
//! timeout or an unreachable endpoint, the report says so in one line ahead of what it still
//! knows, so "unknown" everywhere is not read as "nothing is wrong"; the outbox delivers the
//! report when egress returns.

use crate::report::{Step, StepOutcome};

/// The line the summary opens with when AWS could not be reached at all.
pub const CUT_OFF_LINE: &str = "cabal-triage cannot reach AWS: its own egress (on Cabalmail, usually through the same NAT) or AWS's endpoints are down; every AWS call timed out or could not connect, so what follows is only what it knew without them.";

/// Whether every AWS step (all but the DNSBL lookups) failed by timing out or by not reaching
/// the endpoint. No AWS step at all is not "cut off".
pub fn aws_unreachable(steps: &[Step]) -> bool {
    let aws: Vec<&Step> = steps.iter().filter(|s| s.name != "dnsbl").collect();
    !aws.is_empty() && aws.iter().all(|s| cut_off(s))
}

fn cut_off(step: &Step) -> bool {
    let error = step.error.as_deref().unwrap_or_default();
    match step.outcome {
        StepOutcome::TimedOut => true,
        StepOutcome::Failed => {
            error.contains("cannot reach the AWS endpoint") || error.contains("timed out")
        }
        // A step skipped because discovery found nothing (no task) is no answer from AWS either
        // way; one skipped for another reason says AWS answered.
        StepOutcome::Skipped => error.starts_with("task discovery failed"),
        StepOutcome::Ok => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, outcome: StepOutcome, error: Option<&str>) -> Step {
        Step {
            name: name.into(),
            outcome,
            ms: 8000,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn every_aws_step_unreachable_or_timed_out_is_cut_off() {
        let unreachable = "ecs:ListTasks on service cabal-imap in cluster cabal-mail: cannot reach the AWS endpoint https://ecs.us-east-1.amazonaws.com (dispatch failure); check aws.endpoint_url";
        let steps = vec![
            step("tasks imap", StepOutcome::Failed, Some(unreachable)),
            step(
                "mailq imap",
                StepOutcome::Failed,
                Some(&format!("task discovery failed: {unreachable}")),
            ),
            step("log scan imap", StepOutcome::TimedOut, Some("timed out")),
            step(
                "nat",
                StepOutcome::Failed,
                Some("ec2:DescribeInstances: timed out, the probe's deadline of 8 s ran out"),
            ),
            step(
                "dnsbl",
                StepOutcome::Skipped,
                Some("no NAT public IP to check"),
            ),
        ];
        assert!(aws_unreachable(&steps));
        // One AWS answer (even a refusal) means AWS is reachable.
        let mut answered = steps.clone();
        answered[3] = step(
            "nat",
            StepOutcome::Failed,
            Some("ec2:DescribeInstances: access denied"),
        );
        assert!(!aws_unreachable(&answered));
        let mut fine = steps.clone();
        fine[2] = step("log scan imap", StepOutcome::Ok, None);
        assert!(!aws_unreachable(&fine));
        assert!(!aws_unreachable(&[]));
        assert!(!aws_unreachable(&steps[4..]));
    }
}
