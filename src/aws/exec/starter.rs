//! Opening an ECS Exec session: the `ExecuteCommand` call behind a small trait, so that the data
//! channel logic is tested against a fake ECS endpoint and callers can inject their own client.

use async_trait::async_trait;
use aws_sdk_ecs::error::{DisplayErrorContext, SdkError};
use aws_sdk_ecs::operation::execute_command::ExecuteCommandError;

use super::ExecError;
use crate::config::Secret;

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

/// Starts an ECS Exec session.
#[async_trait]
pub trait ExecSessionStarter: Send + Sync {
    async fn start(&self, request: &StartRequest) -> Result<StartedSession, ExecError>;
}

/// The real thing: ECS `ExecuteCommand` (`interactive = true`, the only mode ECS supports)
/// through the client the caller configured.
#[derive(Debug, Clone)]
pub struct EcsSessionStarter {
    client: aws_sdk_ecs::Client,
}

impl EcsSessionStarter {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        EcsSessionStarter { client }
    }
}

#[async_trait]
impl ExecSessionStarter for EcsSessionStarter {
    async fn start(&self, request: &StartRequest) -> Result<StartedSession, ExecError> {
        let response = self
            .client
            .execute_command()
            .cluster(&request.cluster)
            .task(&request.task)
            .container(&request.container)
            .command(&request.command)
            .interactive(true)
            .send()
            .await
            .map_err(|error| classify(error, &request.task))?;
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

fn classify<R: std::fmt::Debug>(error: SdkError<ExecuteCommandError, R>, task: &str) -> ExecError {
    let service_error = match error {
        SdkError::ServiceError(context) => context.into_err(),
        other => {
            return ExecError::Api {
                message: DisplayErrorContext(&other).to_string(),
            }
        }
    };
    let message = service_error
        .meta()
        .message()
        .unwrap_or("no message")
        .to_string();
    let task = task.to_string();
    match service_error {
        ExecuteCommandError::InvalidParameterException(_)
            if message.to_ascii_lowercase().contains("execute command") =>
        {
            ExecError::ExecNotEnabled { task, message }
        }
        ExecuteCommandError::TargetNotConnectedException(_) => {
            ExecError::TargetNotConnected { task, message }
        }
        ExecuteCommandError::AccessDeniedException(_) => ExecError::AccessDenied { message },
        ExecuteCommandError::ClusterNotFoundException(_) => ExecError::ClusterNotFound { message },
        other => ExecError::Api {
            message: format!("{}: {message}", other.meta().code().unwrap_or("error")),
        },
    }
}
