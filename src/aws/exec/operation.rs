//! The exec operation: cluster + task + container + shell command in, output and exit status
//! out. The command is wrapped with a sentinel that prints `$?` (the agent sends no exit code),
//! ECS opens the session, the data channel runs under one overall deadline.

use std::time::Duration;

use tokio::time::Instant;

use super::client::{run_data_channel, ChannelTimings};
use super::output::{normalise, Sentinel};
use super::session::SessionSettings;
use super::starter::{ExecSessionStarter, StartRequest};
use super::ExecError;
use crate::timing::Deadline;

/// One command to run. `command` is shell text, run by `/bin/sh -c` in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub cluster: String,
    pub task: String,
    pub container: String,
    pub command: String,
}

/// Limits of one exec.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Everything, from ExecuteCommand to the end of the channel.
    pub deadline: Duration,
    /// Output bytes kept (`truncated` says when more came).
    pub output_cap: usize,
    pub timings: ChannelTimings,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            deadline: Duration::from_secs(10),
            output_cap: 64 * 1024,
            timings: ChannelTimings::default(),
        }
    }
}

/// What the command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The pty's bytes as received (CR LF, escapes), without the sentinel line, capped.
    pub raw: Vec<u8>,
    /// `raw` normalised: LF line ends, control sequences stripped.
    pub text: String,
    /// `None` when the sentinel never arrived (the session ended without it).
    pub exit_status: Option<i32>,
    /// Output went past the cap and was cut.
    pub truncated: bool,
    /// Agent text that did not stop the command (for example a session-logging failure).
    pub warnings: Vec<String>,
    pub session_id: String,
}

/// Runs `request` over ECS Exec.
pub async fn exec(
    starter: &dyn ExecSessionStarter,
    request: &ExecRequest,
    options: &ExecOptions,
) -> Result<ExecOutput, ExecError> {
    let deadline = Instant::now() + options.deadline;
    let sentinel = Sentinel::random();
    let start = StartRequest {
        cluster: request.cluster.clone(),
        task: request.task.clone(),
        container: request.container.clone(),
        command: sentinel.wrap(&request.command),
    };
    let start_by = Deadline {
        at: deadline,
        budget: options.deadline,
    };
    // The starter retries throttling within the deadline; this bound holds whatever it does.
    let session = tokio::time::timeout_at(deadline, starter.start(&start, start_by))
        .await
        .map_err(|_| ExecError::Deadline {
            deadline: options.deadline,
            received_bytes: 0,
        })??;
    let settings = SessionSettings {
        output_cap: options.output_cap,
        ..SessionSettings::default()
    };
    let outcome = run_data_channel(
        &session.stream_url,
        &session.token,
        settings,
        &options.timings,
        Some(&sentinel),
        deadline,
        options.deadline,
    )
    .await?;

    let mut warnings = Vec::new();
    let output = &outcome.output;
    let tail = output.tail();
    // The command's own output ends where the sentinel line (with the line break before it)
    // begins; the sentinel is found in the tail, which is kept whatever the cap.
    let (command_len, exit_status) = match sentinel.exit_status(tail) {
        Some(status) => {
            let sentinel_len = (tail.len() - sentinel.strip(tail).len()) as u64;
            (output.total() - sentinel_len, Some(status))
        }
        None => (output.total(), outcome.agent_exit_code),
    };
    if exit_status.is_none() {
        warnings.push(
            "the session ended without the exit-status line: the exit status is unknown".into(),
        );
    }
    if let Some(closed) = &outcome.closed {
        if !closed.output.trim().is_empty() {
            warnings.push(format!(
                "the agent reported after the command: {}",
                closed.output.trim()
            ));
        }
    }
    let head = output.head();
    let kept = usize::try_from(command_len).map_or(head.len(), |len| len.min(head.len()));
    let raw = head[..kept].to_vec();
    let truncated = command_len > kept as u64;
    Ok(ExecOutput {
        text: normalise(&raw),
        raw,
        exit_status,
        truncated,
        warnings,
        session_id: session.session_id,
    })
}
