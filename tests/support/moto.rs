//! Starts `moto` in server mode (PyPI `moto[server]`, see tests/requirements.txt) on a free
//! loopback port, waits until it answers, seeds it with `seed_moto.py`, and kills it when
//! dropped. Its stderr is kept: for plain `moto.server` that is the access log (one line per
//! request), so tests can see how far a client got before they pull the plug; the serialized
//! server (`moto_serialized.py`) logs only errors and counts requests at `/_counts` instead.

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
        Moto::start_with(&["-m", "moto.server"])
    }

    /// Starts moto handling one request at a time (`moto_serialized.py`): what the ledger's
    /// tests need, because DynamoDB applies each conditional write atomically and moto's
    /// threaded server does not.
    pub fn start_serialized() -> Moto {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/moto_serialized.py"
        );
        Moto::start_with(&[script])
    }

    fn start_with(program: &[&str]) -> Moto {
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("temp file");
            let mut args: Vec<String> = program.iter().map(|a| a.to_string()).collect();
            if program.len() == 1 {
                args.extend(["127.0.0.1".to_string(), port.to_string()]);
            } else {
                args.extend([
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ]);
            }
            let child = Command::new("python3")
                .args(&args)
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

    /// AWS API requests plain `moto.server` has answered so far (lines of its access log).
    pub fn requests_answered(&self) -> usize {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"POST / HTTP/1.1\""))
            .count()
    }

    /// DynamoDB (and other JSON-protocol) requests answered so far, by operation (`PutItem`, ...),
    /// as counted by `moto_serialized.py` (empty for the plain `moto.server`).
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else {
            return Default::default();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let request = format!(
            "GET /_counts HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        let mut response = String::new();
        if stream.write_all(request.as_bytes()).is_err()
            || stream.read_to_string(&mut response).is_err()
        {
            return Default::default();
        }
        response
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or_default()
    }

    /// Stops the server (SIGSTOP): connections are accepted by the kernel but never answered,
    /// as with a hung dependency. `resume` continues it with its data.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("moto runs").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
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
