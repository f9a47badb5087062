//! A fake AWS JSON-protocol endpoint (awsJson 1.1, as ECS and CloudWatch Logs speak) on a
//! loopback port: the test supplies the answer to each `X-Amz-Target` action, and every request
//! is recorded. Used where moto falls short: ECS tasks with `enableExecuteCommand` and managed
//! agents, and throttling on demand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};

/// Answers one request: (action, body) -> (HTTP status, body).
pub type Handler = Arc<dyn Fn(&str, &Value) -> (u16, Value) + Send + Sync>;

pub struct FakeAws {
    pub endpoint: String,
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeAws {
    pub async fn start(handler: Handler) -> FakeAws {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let recorded = requests.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let handler = handler.clone();
            let recorded = recorded.clone();
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let action = target.rsplit('.').next().unwrap_or("").to_string();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                recorded
                    .lock()
                    .unwrap()
                    .push((action.clone(), body.clone()));
                let (status, answer) = handler(&action, &body);
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/x-amz-json-1.1")],
                    answer.to_string(),
                )
                    .into_response()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAws {
            endpoint,
            requests,
            task,
        }
    }

    /// The recorded requests of one action.
    pub fn requests_of(&self, action: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An AWS JSON error answer.
pub fn aws_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"__type": code, "message": message}))
}

/// A task of the fake ECS.
#[derive(Clone, Debug)]
pub struct FakeTask {
    pub id: String,
    pub desired_status: &'static str,
    pub exec_enabled: bool,
    pub container: String,
    /// `lastStatus` of the ExecuteCommandAgent; None: no agent.
    pub agent: Option<&'static str>,
}

/// The zone the fake places a task in: `us-east-1a` when the bytes of its id add up to an even
/// number, else `us-east-1b` (deterministic, two zones as Cabalmail's tasks spread).
pub fn fake_zone(id: &str) -> &'static str {
    if id.bytes().map(u32::from).sum::<u32>() % 2 == 0 {
        "us-east-1a"
    } else {
        "us-east-1b"
    }
}

/// A fake ECS control plane (ListTasks, DescribeTasks) for one cluster, `page_size` ARNs per
/// ListTasks page. A task whose desired status is `STOPPED` is described as a crash: stop code
/// `EssentialContainerExited`, its container's exit code 1.
#[derive(Clone, Debug)]
pub struct FakeEcs {
    pub region_account: &'static str,
    pub cluster: String,
    pub services: BTreeMap<String, Vec<FakeTask>>,
    pub page_size: usize,
}

impl FakeEcs {
    pub fn arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ecs:{}:task/{}/{id}",
            self.region_account, self.cluster
        )
    }

    fn cluster_matches(&self, body: &Value) -> bool {
        let c = body["cluster"].as_str().unwrap_or("default");
        c == self.cluster || c.ends_with(&format!(":cluster/{}", self.cluster))
    }

    pub fn handle(&self, action: &str, body: &Value) -> (u16, Value) {
        if !self.cluster_matches(body) {
            return aws_error(400, "ClusterNotFoundException", "Cluster not found.");
        }
        match action {
            "ListTasks" => {
                let service = body["serviceName"].as_str().unwrap_or("");
                let Some(tasks) = self.services.get(service) else {
                    return aws_error(400, "ServiceNotFoundException", "Service not found.");
                };
                let wanted = body["desiredStatus"].as_str();
                let arns: Vec<String> = tasks
                    .iter()
                    .filter(|t| wanted.is_none_or(|w| w == t.desired_status))
                    .map(|t| self.arn(&t.id))
                    .collect();
                let start: usize = body["nextToken"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let end = (start + self.page_size).min(arns.len());
                let mut answer = json!({"taskArns": arns[start.min(end)..end]});
                if end < arns.len() {
                    answer["nextToken"] = json!(end.to_string());
                }
                (200, answer)
            }
            "DescribeTasks" => {
                let mut tasks = Vec::new();
                let mut failures = Vec::new();
                for arn in body["tasks"].as_array().into_iter().flatten() {
                    let arn = arn.as_str().unwrap_or("");
                    let found = self
                        .services
                        .iter()
                        .flat_map(|(s, ts)| ts.iter().map(move |t| (s, t)))
                        .find(|(_, t)| self.arn(&t.id) == arn);
                    match found {
                        Some((service, t)) => {
                            let agents: Vec<Value> = t
                                .agent
                                .map(|status| {
                                    json!({"name": "ExecuteCommandAgent", "lastStatus": status})
                                })
                                .into_iter()
                                .collect();
                            let mut task = json!({
                                "taskArn": arn,
                                "clusterArn": format!("arn:aws:ecs:{}:cluster/{}", self.region_account, self.cluster),
                                "group": format!("service:{service}"),
                                "lastStatus": "RUNNING",
                                "desiredStatus": t.desired_status,
                                "enableExecuteCommand": t.exec_enabled,
                                "availabilityZone": fake_zone(&t.id),
                                "containers": [{
                                    "name": t.container,
                                    "lastStatus": "RUNNING",
                                    "managedAgents": agents,
                                }],
                            });
                            if t.desired_status == "STOPPED" {
                                // A crash loop's stopped task, as ECS describes it.
                                task["lastStatus"] = json!("STOPPED");
                                task["stopCode"] = json!("EssentialContainerExited");
                                task["stoppedReason"] = json!("Essential container in task exited");
                                task["containers"][0]["lastStatus"] = json!("STOPPED");
                                task["containers"][0]["exitCode"] = json!(1);
                            }
                            tasks.push(task);
                        }
                        None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                    }
                }
                (200, json!({"tasks": tasks, "failures": failures}))
            }
            other => aws_error(400, "UnknownOperationException", other),
        }
    }
}
