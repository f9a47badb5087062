//! Starts dynalite (npm `dynalite` 4.0.0, a DynamoDB implementation that answers concurrent
//! requests concurrently, with DynamoDB's atomic conditional writes) in memory on a free
//! loopback port, waits until it answers, and kills it when dropped. `scripts/test.sh` installs
//! it into `.test-deps/dynalite` (pinned by `tests/dynalite/package-lock.json`);
//! `CABAL_TRIAGE_DYNALITE` may name another `cli.js`. The ledger's unit tests include this file
//! too (`src/ledger/dynamodb/test_dynalite.rs`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dynalite {
    child: Child,
    pub endpoint: String,
}

/// The dynalite program to run.
fn program() -> String {
    std::env::var("CABAL_TRIAGE_DYNALITE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/.test-deps/dynalite/node_modules/dynalite/cli.js"
        )
        .to_string()
    })
}

/// Whether `GET /` on 127.0.0.1:port answers 200 (dynalite's health check).
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}

impl Dynalite {
    /// Starts a fresh, empty dynalite and waits (up to 30 s) until it answers.
    pub fn start() -> Dynalite {
        let program = program();
        assert!(
            std::path::Path::new(&program).exists(),
            "dynalite is not installed at {program}: run scripts/test.sh (it installs tests/dynalite into .test-deps/) or set CABAL_TRIAGE_DYNALITE"
        );
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("no free loopback port");
            let mut child = Command::new("node")
                .arg(&program)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                // Tables are ACTIVE at once instead of after half a second.
                .args(["--createTableMs", "0", "--deleteTableMs", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot run node: install Node.js 20 or later (Debian's nodejs)");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if answers(port) {
                    return Dynalite {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: the port was taken meanwhile? try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("dynalite did not start on 127.0.0.1 ({program})");
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
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
