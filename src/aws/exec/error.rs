//! `ExecError`: every way an ECS Exec can fail, each message telling an operator what is wrong
//! and what to check (the prerequisites are listed in `docs/ecs-exec.md`).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("ECS Exec is not enabled on task {task} or its ExecuteCommandAgent is not running: the task must be started with enableExecuteCommand=true (it cannot be turned on for a running task) and DescribeTasks must show managedAgents[ExecuteCommandAgent].lastStatus=RUNNING ({message})")]
    ExecNotEnabled { task: String, message: String },
    #[error("the ECS Exec agent of task {task} is not connected to Session Manager: check that the task role allows ssmmessages:CreateControlChannel/CreateDataChannel/OpenControlChannel/OpenDataChannel and that the task can reach ssmmessages (route or VPC endpoint) ({message})")]
    TargetNotConnected { task: String, message: String },
    #[error("ecs:ExecuteCommand was denied for this service's credentials: grant ecs:ExecuteCommand on the cluster and task ({message})")]
    AccessDenied { message: String },
    #[error("ECS cluster not found: check cabalmail.cluster ({message})")]
    ClusterNotFound { message: String },
    #[error("ECS ExecuteCommand failed: {message}")]
    Api { message: String },
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
