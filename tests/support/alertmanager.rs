//! Runs the real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) on 127.0.0.1 for
//! the end-to-end tests: one instance or a gossiping pair, each with its own storage directory,
//! ephemeral web and cluster ports, and a configuration shaped like Cabalmail's (group by
//! alertname and severity, webhook to cabal-triage with a bearer token and `send_resolved`, and a
//! PagerDuty receiver in the same route so the dedup key is Alertmanager's own).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where the Alertmanager binary is: `CABAL_TRIAGE_ALERTMANAGER_BIN`, then `alertmanager` on
/// `PATH`, then Debian's `/usr/bin/prometheus-alertmanager`.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("CABAL_TRIAGE_ALERTMANAGER_BIN") {
        return Some(PathBuf::from(explicit));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("alertmanager"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/prometheus-alertmanager");
        debian.is_file().then_some(debian)
    })
}

/// The binary, or `None` after a loud message when it is absent on a developer machine. Under CI
/// (`CI=true`) or `scripts/test.sh` (`CABAL_TRIAGE_REQUIRE_ALERTMANAGER=1`), absence fails the test.
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(binary) = find_binary() {
        return Some(binary);
    }
    let required = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("CABAL_TRIAGE_REQUIRE_ALERTMANAGER").is_ok_and(|v| v == "1");
    let message = format!(
        "{test}: Alertmanager is not installed (no `alertmanager` on PATH, no \
         /usr/bin/prometheus-alertmanager); install it with `apt-get install \
         prometheus-alertmanager` or run scripts/test.sh, which does"
    );
    if required {
        panic!("{message}");
    }
    eprintln!("SKIPPED (not passed): {message}");
    None
}

/// Route timing, short for tests (Cabalmail runs 30s / 5m / 6h).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

/// What the configuration points at.
#[derive(Debug, Clone)]
pub struct Receivers {
    /// cabal-triage's webhook URL (`.../api/v1/alerts`).
    pub webhook_url: String,
    pub bearer_token: String,
    /// The fake PagerDuty's Events API v2 URL (`.../v2/enqueue`).
    pub pagerduty_events_url: String,
    pub pagerduty_routing_key: String,
}

/// The configuration file, grouped like Cabalmail's.
pub fn config_yaml(receivers: &Receivers, timing: Timing) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    format!(
        r#"route:
  receiver: cabal-triage
  group_by: [alertname, severity]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: {repeat_interval}
receivers:
  - name: cabal-triage
    webhook_configs:
      - url: "{webhook}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{token}"
    pagerduty_configs:
      - routing_key: "{routing_key}"
        url: "{pagerduty}"
        send_resolved: true
"#,
        group_wait = ms(timing.group_wait),
        group_interval = ms(timing.group_interval),
        repeat_interval = ms(timing.repeat_interval),
        webhook = receivers.webhook_url,
        token = receivers.bearer_token,
        routing_key = receivers.pagerduty_routing_key,
        pagerduty = receivers.pagerduty_events_url,
    )
}

/// A free loopback port (bound, then released for the child process to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Gossip settings of one member of a loopback cluster.
#[derive(Debug, Clone)]
pub struct ClusterMember {
    pub listen_port: u16,
    pub peers: Vec<u16>,
    /// How long a later peer waits for an earlier one before sending itself.
    pub peer_timeout: Duration,
}

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    pub base: String,
    pub name: String,
    log: Arc<Mutex<Vec<String>>>,
    _storage: tempfile::TempDir,
    client: reqwest::Client,
}

impl Alertmanager {
    /// Starts an instance with `config` (YAML); `cluster: None` disables gossip.
    pub async fn start(
        binary: &Path,
        name: &str,
        config: &str,
        cluster: Option<&ClusterMember>,
    ) -> Alertmanager {
        let storage = tempfile::tempdir().unwrap();
        let config_path = storage.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let web_port = free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                storage.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg(format!("--web.external-url=http://127.0.0.1:{web_port}"))
            .arg("--log.level=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match cluster {
            None => {
                command.arg("--cluster.listen-address=");
            }
            Some(member) => {
                command
                    .arg(format!(
                        "--cluster.listen-address=127.0.0.1:{}",
                        member.listen_port
                    ))
                    .arg(format!(
                        "--cluster.advertise-address=127.0.0.1:{}",
                        member.listen_port
                    ))
                    .arg(format!(
                        "--cluster.peer-timeout={}ms",
                        member.peer_timeout.as_millis()
                    ))
                    .arg("--cluster.gossip-interval=50ms")
                    .arg("--cluster.pushpull-interval=1s")
                    .arg("--cluster.settle-timeout=5s");
                for peer in &member.peers {
                    command.arg(format!("--cluster.peer=127.0.0.1:{peer}"));
                }
            }
        }
        let mut child = command.spawn().expect("start alertmanager");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        let echo = std::env::var_os("CABAL_TRIAGE_TEST_ECHO").is_some();
        let tag = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[{tag}] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let alertmanager = Alertmanager {
            child,
            base: format!("http://127.0.0.1:{web_port}"),
            name: name.to_string(),
            log,
            _storage: storage,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        alertmanager.wait_ready().await;
        alertmanager
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self
                .client
                .get(format!("{}/-/ready", self.base))
                .send()
                .await
            {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become ready; log:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `POST /api/v2/alerts`, the way Prometheus pushes alerts.
    pub async fn push(&self, alerts: &Value) {
        let response = self
            .client
            .post(format!("{}/api/v2/alerts", self.base))
            .json(alerts)
            .send()
            .await
            .expect("POST /api/v2/alerts");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{} refused the alerts: {status} {body}",
            self.name
        );
    }

    /// Members of the gossip cluster as this instance sees them (`GET /api/v2/status`).
    pub async fn cluster_peers(&self) -> usize {
        let status: Value = self
            .client
            .get(format!("{}/api/v2/status", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status["cluster"]["peers"].as_array().map_or(0, Vec::len)
    }

    /// The sum of a counter over the series whose labels contain `integration="<integration>"`.
    pub async fn counter(&self, name: &str, integration: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sum_counter(&text, name, integration)
    }

    /// Webhook notifications (flushes of a group) this instance attempted, retries not counted.
    pub async fn webhook_notifications(&self) -> f64 {
        self.counter("alertmanager_notifications_total", "webhook")
            .await
    }

    /// Webhook requests that failed (5xx answers, refused connections), retries included.
    pub async fn webhook_failures(&self) -> f64 {
        self.counter("alertmanager_notification_requests_failed_total", "webhook")
            .await
    }
}

/// Sums the samples of counter `name` whose label set has `integration="<integration>"`.
pub fn sum_counter(exposition: &str, name: &str, integration: &str) -> f64 {
    let wanted = format!("integration=\"{integration}\"");
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = rest.strip_prefix('{')?.split_once('}')?;
            labels
                .split(',')
                .any(|pair| pair == wanted)
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
