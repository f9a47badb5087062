//! Runs the real `cabal-triage serve` binary on an ephemeral loopback port with a ledger in a
//! temporary directory, and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-webhook-secret-0123456789";

/// The binary under test. `CABAL_TRIAGE_TEST_BIN` overrides it: when several worktrees share one
/// target directory, its uplifted binary belongs to whichever built last, so a copy taken right
/// after the build keeps a test run on its own build.
pub fn binary() -> String {
    std::env::var("CABAL_TRIAGE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_cabal-triage").to_string())
}

/// A running service process.
pub struct Service {
    child: Child,
    pub addr: String,
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    stderr_lines: mpsc::Receiver<String>,
}

/// How to start the service.
#[derive(Clone)]
pub struct ServiceOptions {
    pub env: Vec<(String, String)>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            env: vec![
                ("CABAL_TRIAGE_WEBHOOK_TOKEN".into(), TOKEN.into()),
                (
                    "CABAL_TRIAGE__WORKER__POLL_INTERVAL_MS".into(),
                    "100".into(),
                ),
                // `serve` builds its AWS clients at start: a region keeps the SDK from asking
                // the instance metadata service (off loopback), and IMDS stays off.
                ("CABAL_TRIAGE_AWS_REGION".into(), "us-east-1".into()),
                ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ],
        }
    }
}

impl ServiceOptions {
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The DynamoDB ledger in `table` at `endpoint` (dynalite), created at start when absent,
    /// with static test credentials.
    pub fn dynamodb(self, endpoint: &str, table: &str) -> Self {
        self.with("CABAL_TRIAGE_LEDGER_BACKEND", "dynamodb")
            .with("CABAL_TRIAGE_LEDGER_TABLE", table)
            .with("CABAL_TRIAGE_LEDGER_CREATE_TABLE", "true")
            .with("CABAL_TRIAGE_AWS_ENDPOINT_URL", endpoint)
            .with("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .with("AWS_SECRET_ACCESS_KEY", "test-secret")
            .with("AWS_REGION", "us-east-1")
            .with("AWS_EC2_METADATA_DISABLED", "true")
    }
}

impl Service {
    /// Starts the service with its ledger in `data_dir` (kept across restarts by the caller).
    pub async fn start_in(data_dir: &Path, options: ServiceOptions) -> Service {
        let mut env = options.env.clone();
        if !env.iter().any(|(k, _)| k == "CABAL_TRIAGE_LEDGER") {
            env.push((
                "CABAL_TRIAGE_LEDGER".into(),
                data_dir.join("ledger.db").display().to_string(),
            ));
        }
        env.push(("CABAL_TRIAGE_LISTEN".into(), "127.0.0.1:0".into()));
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start cabal-triage");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = mpsc::channel();
        // `CABAL_TRIAGE_TEST_LOG_DIR=DIR` keeps each process's log as DIR/service-PID.log, for
        // long runs (the full-size storm) whose temporary directories are gone when they fail.
        let mut kept_log = std::env::var_os("CABAL_TRIAGE_TEST_LOG_DIR").map(|dir| {
            let path = Path::new(&dir).join(format!("service-{}.log", child.id()));
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CABAL_TRIAGE_TEST_ECHO").is_some() {
                    eprintln!("[service] {line}");
                }
                if let Some(file) = kept_log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
                if sender.send(line).is_err() {
                    // The test no longer listens; keep draining so the pipe never fills.
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        let addr = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("cabal-triage listening on ") {
                        break addr.trim().to_string();
                    }
                    seen.push(line);
                }
                Err(_) => panic!("service did not start; stderr so far:\n{}", seen.join("\n")),
            }
        };
        Service {
            child,
            base: format!("http://{addr}"),
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            data_dir: data_dir.to_path_buf(),
            env: options.env,
            stderr_lines: receiver,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status and how long it took.
    pub fn terminate(mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        self.signal_and_wait("TERM", within)
    }

    /// Sends `signal` (a `kill` name such as `HUP`) and waits for the exit, keeping the service
    /// value so its stderr can still be read; returns the exit status and how long it took.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        within: Duration,
    ) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!("service did not stop within {within:?} after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines the service wrote to stderr since the last call.
    pub fn drain_stderr(&self) -> Vec<String> {
        self.stderr_lines.try_iter().collect()
    }

    pub async fn post_alerts(&self, body: &str) -> (u16, serde_json::Value) {
        self.post_raw(
            body.as_bytes().to_vec(),
            "application/json",
            Some(&format!("Bearer {TOKEN}")),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        body: Vec<u8>,
        content_type: &str,
        authorization: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("{}/api/v1/alerts", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("POST /api/v1/alerts");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn episode(&self, id: &str) -> serde_json::Value {
        let (status, body) = self.get_json(&format!("/api/v1/episodes/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until every episode in `ids` is in one of `states`; returns the episodes.
    pub async fn wait_for_states(
        &self,
        ids: &[String],
        states: &[&str],
        within: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let mut episodes = Vec::with_capacity(ids.len());
            for id in ids {
                episodes.push(self.episode(id).await);
            }
            if episodes
                .iter()
                .all(|e| states.contains(&e["state"].as_str().unwrap_or("")))
            {
                return episodes;
            }
            if Instant::now() > deadline {
                let summary: Vec<String> = episodes
                    .iter()
                    .map(|e| format!("{} {}", e["id"], e["state"]))
                    .collect();
                panic!("episodes did not reach {states:?} within {within:?}: {summary:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
