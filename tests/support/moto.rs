//! Starts `moto` in server mode (PyPI `moto[server]`, see tests/requirements.txt), unpatched, on
//! a free loopback port for CloudWatch Logs, EC2 and ECS (DynamoDB runs on dynalite:
//! `dynalite.rs`), waits until it answers, seeds it with `seed_moto.py`, and kills it when
//! dropped. Its stderr is kept: that is the access log (one line per request), so tests can see
//! how far a client got before they pull the plug.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    log: tempfile::NamedTempFile,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// One HTTP/1.0 request to 127.0.0.1:port; the status code, or None when nothing answers.
pub fn http_status(port: u16, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

impl Moto {
    /// Starts a fresh moto server and waits (up to 60 s) until it answers.
    pub fn start() -> Moto {
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("temp file");
            let child = Command::new("python3")
                .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.reopen().expect("reopen log"))
                .spawn()
                .expect("cannot run python3 -m moto.server: install tests/requirements.txt (scripts/test.sh does)");
            let mut moto = Moto {
                child: Some(child),
                port,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
            };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                if http_status(port, "GET", "/moto-api/", "") == Some(200) {
                    return moto;
                }
                if let Some(child) = moto.child.as_mut() {
                    if child.try_wait().ok().flatten().is_some() {
                        break; // exited: port taken? try another
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            moto.stop();
        }
        panic!("moto did not start on 127.0.0.1");
    }

    /// Runs `seed_moto.py SCENARIO` against this server; returns what it printed.
    pub fn seed(&self, scenario: &str, now_ms: i64) -> serde_json::Value {
        let script: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests",
            "support",
            "seed_moto.py",
        ]
        .iter()
        .collect();
        let out = Command::new("python3")
            .arg(script)
            .args([&self.endpoint, scenario, &now_ms.to_string()])
            .output()
            .expect("cannot run seed_moto.py");
        assert!(
            out.status.success(),
            "seed_moto.py {scenario} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("seed_moto.py printed no JSON")
    }

    /// From now on moto checks every request against IAM (its INITIAL_NO_AUTH_ACTION_COUNT
    /// setting, set to 0 and the request count reset, through /moto-api/reset-auth).
    pub fn enforce_iam(&self) {
        assert_eq!(
            http_status(self.port, "POST", "/moto-api/reset-auth", "0"),
            Some(200)
        );
    }

    /// AWS API requests moto has answered so far (lines of its access log).
    pub fn requests_answered(&self) -> usize {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"POST / HTTP/1.1\""))
            .count()
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
