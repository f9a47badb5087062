//! One AWS endpoint on 127.0.0.1 in front of the fakes, so the service under test needs a single
//! `aws.endpoint_url`: ECS `ListTasks`/`DescribeTasks` are answered by a `fake_aws::FakeEcs`
//! control plane (tasks with ECS Exec enabled and their agents), `ExecuteCommand` is passed to the
//! fake ECS Exec endpoint (`fake_ecs.rs`, which opens sessions on the fake agent), and everything
//! else (CloudWatch Logs, EC2) is passed to moto. Every call can be delayed (`latency`, for the
//! latency benchmark), and every call is recorded with its start and end.
//!
//! The delay is added after the upstream has answered (a call takes its upstream's time plus
//! `latency`, never less): that way moto (Python, the slowest part of the harness) does its work
//! while the service waits, not later, when it would compete for the CPU with the service's
//! next burst of calls. The fake ECS Exec endpoint can also be called in process (its axum
//! router, without a socket), which spares the harness an HTTP round trip per session.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::fake_aws::FakeEcs as EcsControlPlane;

/// One call through the front.
#[derive(Debug, Clone)]
pub struct Call {
    /// `ecs:ListTasks`, `logs:FilterLogEvents`, `ec2:DescribeInstances`, ...
    pub action: String,
    pub started: Instant,
    pub ended: Instant,
}

pub struct AwsFront {
    pub endpoint: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Where `ExecuteCommand` goes.
pub enum ExecUpstream {
    /// An HTTP endpoint (`http://127.0.0.1:port`).
    Url(String),
    /// A router called in process, with the same request and answer as over HTTP.
    InProcess(axum::Router),
}

struct Upstreams {
    moto: String,
    exec: ExecUpstream,
    control: EcsControlPlane,
    latency: Duration,
    client: reqwest::Client,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl AwsFront {
    pub async fn start(
        moto: &str,
        exec: &str,
        control: EcsControlPlane,
        latency: Duration,
    ) -> AwsFront {
        Self::start_with(moto, ExecUpstream::Url(exec.to_string()), control, latency).await
    }

    pub async fn start_with(
        moto: &str,
        exec: ExecUpstream,
        control: EcsControlPlane,
        latency: Duration,
    ) -> AwsFront {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let upstreams = Arc::new(Upstreams {
            moto: moto.to_string(),
            exec,
            control,
            latency,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            calls: calls.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let upstreams = upstreams.clone();
                async move { upstreams.handle(method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AwsFront {
            endpoint,
            calls,
            task,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for AwsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn action_of(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, action) = target.split_once('.').unwrap_or(("", target));
        let service = if service.starts_with("AmazonEC2ContainerService") {
            "ecs"
        } else if service.starts_with("Logs") {
            "logs"
        } else {
            service
        };
        return format!("{service}:{action}");
    }
    // EC2's query protocol: Action=DescribeInstances&...
    let text = String::from_utf8_lossy(body);
    let action = text
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("unknown");
    format!("ec2:{action}")
}

impl Upstreams {
    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let started = Instant::now();
        let action = action_of(&headers, &body);
        let response = match action.as_str() {
            "ecs:ListTasks" | "ecs:DescribeTasks" => {
                let request: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                let (status, answer) = self
                    .control
                    .handle(action.trim_start_matches("ecs:"), &request);
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/x-amz-json-1.1")],
                    answer.to_string(),
                )
                    .into_response()
            }
            "ecs:ExecuteCommand" => match &self.exec {
                ExecUpstream::Url(url) => self.forward(url, method, &uri, &headers, body).await,
                ExecUpstream::InProcess(router) => {
                    in_process(router, method, uri, headers, body).await
                }
            },
            _ => self.forward(&self.moto, method, &uri, &headers, body).await,
        };
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.calls.lock().unwrap().push(Call {
            action,
            started,
            ended: Instant::now(),
        });
        response
    }

    async fn forward(
        &self,
        base: &str,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut request = self
            .client
            .request(method, format!("{base}{path}"))
            .body(body);
        for (name, value) in headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status();
                let content_type = answer
                    .headers()
                    .get("content-type")
                    .cloned()
                    .unwrap_or_else(|| "application/octet-stream".parse().unwrap());
                let bytes = answer.bytes().await.unwrap_or_default();
                (status, [("content-type", content_type)], bytes).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
}

/// The request through `router` without a socket; the answer as it would have come over HTTP.
async fn in_process(
    router: &axum::Router,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use tower::ServiceExt;
    let mut request = axum::http::Request::new(axum::body::Body::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
