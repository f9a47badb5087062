//! Opening an ECS Exec session: the `ExecuteCommand` call behind a small trait, so that the data
//! channel logic is tested against a fake ECS endpoint and callers can inject their own client.
//!
//! `ExecuteCommand` is an AWS call like any other: its errors are classified by
//! `aws::error::classify` (the same sentences, the same idea of throttled and transient) and it
//! is retried by `aws::retry::call` with the probes' throttling backoff, within the exec's
//! deadline. Only the two answers that are about ECS Exec itself (not enabled on the task, agent
//! not connected) are refined into `ExecError`'s own sentences afterwards.

use async_trait::async_trait;

use super::ExecError;
use crate::aws::error::{classify, CallContext};
use crate::aws::retry;
use crate::config::Secret;
use crate::timing::{Backoff, Deadline};

/// The IAM action of the call, as error messages and the policy name it.
pub const EXECUTE_COMMAND: &str = "ecs:ExecuteCommand";

/// What `ExecuteCommand` is asked to run. `command` is the full string the agent splits and
/// runs (already wrapped by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub cluster: String,
    pub task: String,
    pub container: String,
    pub command: String,
}

/// A session ECS opened: connect to `stream_url` at once, the token is short-lived.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub session_id: String,
    /// Used byte for byte; never rebuilt from parts.
    pub stream_url: String,
    pub token: Secret,
}

/// Starts an ECS Exec session, by `deadline` at the latest.
#[async_trait]
pub trait ExecSessionStarter: Send + Sync {
    async fn start(
        &self,
        request: &StartRequest,
        deadline: Deadline,
    ) -> Result<StartedSession, ExecError>;
}

/// The real thing: ECS `ExecuteCommand` (`interactive = true`, the only mode ECS supports)
/// through the client the caller configured, retried like every other AWS call.
#[derive(Debug, Clone)]
pub struct EcsSessionStarter {
    client: aws_sdk_ecs::Client,
    /// The endpoint override, named in "cannot reach" errors.
    endpoint: Option<String>,
    /// Pauses between throttled attempts (`probes.throttle_backoff_*`).
    backoff: Backoff,
}

impl EcsSessionStarter {
    pub fn new(client: aws_sdk_ecs::Client, endpoint: Option<String>, backoff: Backoff) -> Self {
        EcsSessionStarter {
            client,
            endpoint,
            backoff,
        }
    }
}

#[async_trait]
impl ExecSessionStarter for EcsSessionStarter {
    async fn start(
        &self,
        request: &StartRequest,
        deadline: Deadline,
    ) -> Result<StartedSession, ExecError> {
        let resource = format!("task {} in cluster {}", request.task, request.cluster);
        let ctx = CallContext {
            iam_action: EXECUTE_COMMAND,
            resource: Some(&resource),
            endpoint: self.endpoint.as_deref(),
        };
        let response = retry::call(&ctx.action(), deadline, self.backoff, || async {
            self.client
                .execute_command()
                .cluster(&request.cluster)
                .task(&request.task)
                .container(&request.container)
                .command(&request.command)
                .interactive(true)
                .send()
                .await
                .map_err(|error| classify(ctx, error))
        })
        .await
        .map_err(|error| ExecError::from_start(error, &request.task))?;
        let session = response.session.ok_or(ExecError::MissingSession {
            missing: "a session",
        })?;
        let non_empty = |value: Option<String>, missing| {
            value
                .filter(|v| !v.is_empty())
                .ok_or(ExecError::MissingSession { missing })
        };
        Ok(StartedSession {
            session_id: session.session_id.unwrap_or_default(),
            stream_url: non_empty(session.stream_url, "a stream URL")?,
            token: Secret::new(non_empty(session.token_value, "a session token")?),
        })
    }
}
