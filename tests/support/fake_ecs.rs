//! A fake ECS endpoint answering `ExecuteCommand` (awsJson1_1, `X-Amz-Target:
//! AmazonEC2ContainerServiceV20141113.ExecuteCommand`) on 127.0.0.1, because moto does not
//! implement it. Each call registers a session with the fake agent and answers with its stream
//! URL and a fresh token, as ECS does; tasks can be marked exec-disabled, the token can be
//! answered wrong (to test rejection), the first calls can be throttled, and a per-call latency
//! can be added.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use uuid::Uuid;

use super::fake_agent::{AgentScript, FakeAgent, SessionPlan};

const TARGET: &str = "AmazonEC2ContainerServiceV20141113.ExecuteCommand";
const LIST_TASKS: &str = "AmazonEC2ContainerServiceV20141113.ListTasks";

/// Behaviour of the fake ECS.
#[derive(Default)]
pub struct EcsBehaviour {
    /// Script given to every session...
    pub script: AgentScript,
    /// ...but these tasks' (ids), which get their own (an agent that never answers).
    pub scripts_by_task: std::collections::HashMap<String, AgentScript>,
    /// Tasks (ids or ARNs) started without enableExecuteCommand.
    pub exec_disabled: HashSet<String>,
    /// Answer a token the agent will not accept.
    pub wrong_token: bool,
    /// Delay before answering.
    pub latency: Duration,
    /// The first this many ExecuteCommand calls are answered `ThrottlingException` (HTTP 400,
    /// as ECS answers a rate limit).
    pub throttle_first: u32,
    /// ListTasks answer: the running task ARNs of (cluster, service).
    pub running_tasks: Vec<(String, String, String)>,
}

#[derive(Clone)]
pub struct FakeEcs {
    pub endpoint: String,
    pub agent: FakeAgent,
    inner: Arc<Inner>,
    router: Router,
}

struct Inner {
    agent: FakeAgent,
    behaviour: Mutex<EcsBehaviour>,
    requests: Mutex<Vec<serde_json::Value>>,
}

impl FakeEcs {
    pub async fn start(behaviour: EcsBehaviour) -> FakeEcs {
        let agent = FakeAgent::start().await;
        let inner = Arc::new(Inner {
            agent: agent.clone(),
            behaviour: Mutex::new(behaviour),
            requests: Mutex::default(),
        });
        let app = Router::new()
            .route("/", post(execute_command))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let served = app.clone();
        tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
        FakeEcs {
            endpoint: format!("http://{addr}"),
            agent,
            inner,
            router: app,
        }
    }

    /// The endpoint's router, to be called in process (`aws_front::ExecUpstream::InProcess`).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// An `aws_sdk_ecs::Client` pointed at this endpoint with static test credentials and, as
    /// the service's own clients, without the SDK's retries (the service retries itself).
    pub fn client(&self) -> aws_sdk_ecs::Client {
        let config = aws_sdk_ecs::Config::builder()
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_ecs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "AKIDTEST",
                "secret-test",
                None,
                None,
                "test",
            ))
            .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
            .behavior_version_latest()
            .build();
        aws_sdk_ecs::Client::from_conf(config)
    }

    /// Every ExecuteCommand request body received.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.inner.requests.lock().unwrap().clone()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        serde_json::json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

async fn execute_command(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !headers.contains_key("authorization") {
        return error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "no signature",
        );
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "bad JSON",
        );
    };
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if target == Some(LIST_TASKS) {
        let behaviour = inner.behaviour.lock().unwrap();
        let arns: Vec<&String> = behaviour
            .running_tasks
            .iter()
            .filter(|(cluster, service, _)| {
                request["cluster"] == cluster.as_str() && request["serviceName"] == service.as_str()
            })
            .map(|(_, _, arn)| arn)
            .collect();
        return (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            serde_json::json!({ "taskArns": arns }).to_string(),
        )
            .into_response();
    }
    if target != Some(TARGET) {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "unknown operation",
        );
    }
    inner.requests.lock().unwrap().push(request.clone());
    let (script, disabled, wrong_token, latency) = {
        let mut behaviour = inner.behaviour.lock().unwrap();
        if behaviour.throttle_first > 0 {
            behaviour.throttle_first -= 1;
            return error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            );
        }
        let task = request["task"].as_str().unwrap_or("");
        let id = task.rsplit('/').next().unwrap_or(task);
        (
            behaviour
                .scripts_by_task
                .get(id)
                .unwrap_or(&behaviour.script)
                .clone(),
            behaviour.exec_disabled.contains(task),
            behaviour.wrong_token,
            behaviour.latency,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if request["interactive"] != true {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "Interactive is the only mode supported currently.",
        );
    }
    let (Some(task), Some(command)) = (request["task"].as_str(), request["command"].as_str())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "task and command are required",
        );
    };
    if disabled {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running. Wait and try again or run a new task with execute command enabled and try again.",
        );
    }
    let session_id = format!("ecs-execute-command-{}", Uuid::new_v4().simple());
    let token = format!("AAEAA{}", Uuid::new_v4().simple());
    let stream_url = inner.agent.register(
        &session_id,
        SessionPlan {
            token: token.clone(),
            command: command.to_string(),
            script,
            env: vec![
                (
                    "FAKE_ECS_TASK".into(),
                    task.rsplit('/').next().unwrap_or(task).into(),
                ),
                (
                    "FAKE_ECS_CONTAINER".into(),
                    request["container"].as_str().unwrap_or("").into(),
                ),
            ],
        },
    );
    let cluster = request["cluster"].as_str().unwrap_or("default");
    let body = serde_json::json!({
        "clusterArn": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}"),
        "containerArn": "arn:aws:ecs:us-east-1:123456789012:container/c1",
        "containerName": request["container"],
        "interactive": true,
        "taskArn": task,
        "session": {
            "sessionId": session_id,
            "streamUrl": stream_url,
            "tokenValue": if wrong_token { "AAEAAexpired".to_string() } else { token },
        }
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}
