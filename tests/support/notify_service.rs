//! Runs the real `cabal-triage serve` binary (built with `--all-features`, so the test runbook
//! `CabalTriageTest` exists) on an ephemeral loopback port, and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const TOKEN: &str = "test-webhook-token-0123456789";

pub struct Service {
    pub addr: SocketAddr,
    child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts the binary with the ledger in `dir` and `env` on top of fast test settings.
    pub fn start(dir: &Path, env: &[(&str, String)]) -> Service {
        let mut command = Command::new(
            std::env::var("CABAL_TRIAGE_TEST_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_cabal-triage").to_string()),
        );
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CABAL_TRIAGE_LISTEN", "127.0.0.1:0")
            .env("CABAL_TRIAGE_LEDGER", dir.join("ledger.db"))
            .env("CABAL_TRIAGE_WEBHOOK_TOKEN", TOKEN)
            .env("CABAL_TRIAGE_PUBLIC_URL", "https://triage.example")
            .env("CABAL_TRIAGE__WORKER__POLL_INTERVAL_MS", "50")
            .env("CABAL_TRIAGE__WORKER__SHUTDOWN_GRACE_SECS", "1")
            .env("CABAL_TRIAGE__DELIVERY__POLL_INTERVAL_MS", "50")
            .env("CABAL_TRIAGE__DELIVERY__INITIAL_BACKOFF_MS", "100")
            .env("CABAL_TRIAGE__DELIVERY__MAX_BACKOFF_MS", "400")
            .env("CABAL_TRIAGE__DELIVERY__HTTP_TIMEOUT_MS", "500")
            .env("CABAL_TRIAGE__DELIVERY__LEASE_SECS", "30")
            .env("CABAL_TRIAGE_LOG_LEVEL", "cabal_triage=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start cabal-triage");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("cabal-triage listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no listening line; log: {:?}", log.lock().unwrap()))
            .parse()
            .unwrap();
        Service { addr, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub async fn post_alert(&self, payload: &Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("http://{}/api/v1/alerts", self.addr))
            .bearer_auth(TOKEN)
            .json(payload)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202, "{}", self.log_text());
        response.json().await.unwrap()
    }

    pub async fn episode(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(format!("http://{}/api/v1/episodes/{id}", self.addr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The episode's deliveries as (destination, kind, state).
    pub async fn deliveries(&self, id: &str) -> Vec<(String, String, String)> {
        self.episode(id).await["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|d| {
                (
                    d["destination"].as_str().unwrap_or("").to_string(),
                    d["kind"].as_str().unwrap_or("").to_string(),
                    d["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Waits until no delivery of the episode is pending or sending, and at least `count` exist.
    pub async fn settled(&self, id: &str, count: usize) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.deliveries(id).await;
            if rows.len() >= count
                && rows
                    .iter()
                    .all(|(_, _, state)| state != "pending" && state != "sending")
            {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries did not settle: {rows:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for `condition`, failing with `what` after 30 s.
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub const GROUP_KEY: &str = "{}/{severity=\"critical\"}:{alertname=\"CabalTriageTest\"}";

/// An Alertmanager v4 notification with one CabalTriageTest alert.
pub fn payload(status: &str, extra_labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Value {
    let mut labels = json!({"alertname": "CabalTriageTest", "severity": "critical"});
    for (k, v) in extra_labels {
        labels[*k] = json!(v);
    }
    let mut notes = json!({});
    for (k, v) in annotations {
        notes[*k] = json!(v);
    }
    let ends_at = if status == "resolved" {
        "2026-11-28T20:30:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "triage",
        "groupLabels": {"alertname": "CabalTriageTest"},
        "commonLabels": labels,
        "commonAnnotations": notes,
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": notes,
            "startsAt": "2026-11-28T20:00:00.123Z",
            "endsAt": ends_at,
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "1a2b3c4d5e6f7081"
        }]
    })
}

/// The PagerDuty incident key Alertmanager derives from the group key.
pub fn incident_key() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(GROUP_KEY.as_bytes()))
}
