//! For the ledger's unit tests: a `moto` server (PyPI `moto[server]`, tests/requirements.txt) on
//! a free loopback port, killed when dropped, and DynamoDB ledgers on fresh tables in it.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

use super::DynamoLedger;
use crate::config::AwsConfig;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free loopback port");
        // moto with one request at a time: DynamoDB's conditional writes are atomic, moto's
        // threaded ones are not (tests/support/moto_serialized.py says more).
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/moto_serialized.py"
        );
        let mut child = Command::new("python3")
            .args([script, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run python3 -m moto.server: install tests/requirements.txt (scripts/test.sh does)");
        let started = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if started.elapsed() > Duration::from_secs(60)
                || child.try_wait().ok().flatten().is_some()
            {
                let _ = child.kill();
                panic!("moto did not start on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A ledger on `table` (created when absent), as one replica would open it.
    pub async fn ledger(&self, table: &str, destinations: Vec<String>) -> DynamoLedger {
        let aws = AwsConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(self.endpoint.clone()),
            ..AwsConfig::default()
        };
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "static",
        ));
        DynamoLedger::connect(
            &aws,
            table,
            true,
            destinations,
            Duration::from_secs(30 * 86_400),
            Some(credentials),
        )
        .await
        .expect("DynamoDB ledger on moto")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
