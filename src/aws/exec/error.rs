//! `ExecError`: every way an ECS Exec can fail, each message telling an operator what is wrong
//! and what to check (the prerequisites are listed in `docs/ecs-exec.md`). A failed
//! `ExecuteCommand` is an `AwsError` like any other AWS call's (`Start`), refined only where the
//! answer is about ECS Exec itself.

use std::time::Duration;

use crate::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("ECS Exec is not enabled on task {task} or its ExecuteCommandAgent is not running: the task must be started with enableExecuteCommand=true (it cannot be turned on for a running task) and DescribeTasks must show managedAgents[ExecuteCommandAgent].lastStatus=RUNNING ({message})")]
    ExecNotEnabled { task: String, message: String },
    #[error("the ECS Exec agent of task {task} is not connected to Session Manager: check that the task role allows ssmmessages:CreateControlChannel/CreateDataChannel/OpenControlChannel/OpenDataChannel and that the task can reach ssmmessages (route or VPC endpoint) ({message})")]
    TargetNotConnected { task: String, message: String },
    /// `ExecuteCommand` failed, classified as every AWS call is (access denied, cluster not
    /// found, throttled until the deadline, endpoint unreachable, ...).
    #[error(transparent)]
    Start(AwsError),
    #[error("ECS ExecuteCommand answered without {missing}; cannot open the data channel")]
    MissingSession { missing: &'static str },
    #[error("the stream URL returned by ECS is not a ws:// or wss:// URL")]
    InvalidStreamUrl,
    #[error("cannot open the Session Manager data channel: {reason}; check that this host can reach ssmmessages.<region>.amazonaws.com on port 443")]
    Connect { reason: String },
    #[error("the data channel was rejected: the socket closed before any message, which is how Session Manager refuses an invalid, expired or reused token; run the command again (the token is single-use and short-lived)")]
    TokenRejected,
    #[error("the data channel dropped after {received_bytes} bytes of output and before the session ended (no channel_closed): network loss or a Session Manager restart; the command may still be running")]
    ConnectionLost { received_bytes: u64 },
    #[error("the agent sent nothing within {0:?} after the data channel opened: the ECS Exec agent may be unable to reach ssmmessages, overloaded or paused")]
    FirstMessageTimeout(Duration),
    #[error("the command did not finish within its deadline of {deadline:?} ({received_bytes} bytes of output so far); the command may still be running in the container")]
    Deadline {
        deadline: Duration,
        received_bytes: u64,
    },
    #[error("this cluster requires KMS-encrypted ECS Exec sessions, which cabal-triage does not support; remove the KMS key from the cluster's executeCommandConfiguration or use the AWS CLI{}", agent_output.as_deref().map(|o| format!(" (agent: {})", o.trim())).unwrap_or_default())]
    KmsRequested { agent_output: Option<String> },
    #[error("the agent ended the session with an error: {output}{hint}")]
    AgentError { output: String, hint: &'static str },
    #[error("the agent stopped acknowledging this client's messages for {0:?}; giving up")]
    RetransmitGaveUp(Duration),
    #[error("data channel protocol error: {0}")]
    Protocol(String),
}

impl ExecError {
    /// The error of a failed `ExecuteCommand`: the two answers about ECS Exec itself get their
    /// own sentence, the deadline is the exec's deadline, anything else stays the AWS error.
    pub fn from_start(error: AwsError, task: &str) -> ExecError {
        match error {
            AwsError::Service { code, message, .. }
                if code == "InvalidParameterException"
                    && message.to_ascii_lowercase().contains("execute command") =>
            {
                ExecError::ExecNotEnabled {
                    task: task.to_string(),
                    message,
                }
            }
            AwsError::Service { code, message, .. } if code == "TargetNotConnectedException" => {
                ExecError::TargetNotConnected {
                    task: task.to_string(),
                    message,
                }
            }
            AwsError::Timeout { budget, .. } => ExecError::Deadline {
                deadline: budget,
                received_bytes: 0,
            },
            other => ExecError::Start(other),
        }
    }

    /// The agent's `channel_closed` error text, with a hint for the failures the note knows.
    pub fn agent_error(output: &str) -> ExecError {
        let hint = if output.contains("Plugin with name") && output.contains("not found") {
            " (an agent-side problem seen with a full /tmp or stale tasks: restart the task)"
        } else if output.contains("Failed to start pty") || output.contains("no such file") {
            " (the command's program is missing from the container image)"
        } else if output.contains("Handshake timed out") {
            " (the client's handshake answer did not reach the agent in time)"
        } else {
            ""
        };
        ExecError::AgentError {
            output: output.trim().to_string(),
            hint,
        }
    }

    /// Whether the error is the per-command deadline.
    pub fn is_deadline(&self) -> bool {
        matches!(
            self,
            ExecError::Deadline { .. } | ExecError::FirstMessageTimeout(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::error::{classify_code, CallContext};

    const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b";

    fn answered(code: &str, message: &str, status: u16) -> ExecError {
        let ctx = CallContext {
            iam_action: "ecs:ExecuteCommand",
            resource: Some("task 0a1b in cluster cabal-mail"),
            endpoint: None,
        };
        let error = classify_code(&ctx, ctx.action(), code, message.to_string(), status);
        ExecError::from_start(error, TASK)
    }

    #[test]
    fn execute_command_answers_use_the_aws_vocabulary() {
        let not_enabled = answered(
            "InvalidParameterException",
            "The execute command failed because execute command was not enabled when the task was run",
            400,
        );
        assert!(
            matches!(not_enabled, ExecError::ExecNotEnabled { .. }),
            "{not_enabled}"
        );
        let not_connected = answered("TargetNotConnectedException", "agent offline", 400);
        assert!(
            matches!(not_connected, ExecError::TargetNotConnected { .. }),
            "{not_connected}"
        );
        // Other invalid parameters are the AWS error as it is.
        let invalid = answered("InvalidParameterException", "bad container", 400);
        assert!(
            matches!(invalid, ExecError::Start(AwsError::Service { .. })),
            "{invalid}"
        );

        let denied = answered("AccessDeniedException", "no", 400);
        assert_eq!(
            denied.to_string(),
            "ecs:ExecuteCommand on task 0a1b in cluster cabal-mail: access denied (no); grant ecs:ExecuteCommand to the service's role (deploy/iam/cabal-triage-policy.json)"
        );
        assert!(matches!(
            answered("ClusterNotFoundException", "gone", 400),
            ExecError::Start(AwsError::NotFound { .. })
        ));
        let throttled = answered("ThrottlingException", "Rate exceeded", 400);
        assert!(
            matches!(&throttled, ExecError::Start(e) if e.is_throttling()),
            "{throttled}"
        );
        assert!(matches!(
            answered("ServerException", "oops", 500),
            ExecError::Start(e) if e.is_transient()
        ));
    }

    #[test]
    fn running_out_of_time_while_starting_is_the_exec_deadline() {
        let error = ExecError::from_start(
            AwsError::Timeout {
                action: "ecs:ExecuteCommand".into(),
                budget: Duration::from_secs(3),
            },
            TASK,
        );
        assert!(error.is_deadline(), "{error}");
    }
}
