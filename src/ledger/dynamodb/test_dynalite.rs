//! For the ledger's unit tests: dynalite (tests/support/dynalite.rs, installed by
//! scripts/test.sh) on a free loopback port, killed when dropped, and DynamoDB ledgers on fresh
//! tables in it, each opened as one replica would open it.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

use super::DynamoLedger;
use crate::config::AwsConfig;
use crate::ledger::Route;

#[allow(dead_code)] // pause and resume serve the integration tests
#[path = "../../../tests/support/dynalite.rs"]
mod engine;

pub use engine::Dynalite;

/// The `[aws]` settings and static test credentials that reach a DynamoDB endpoint.
pub fn aws_for(endpoint: &str) -> (AwsConfig, SharedCredentialsProvider) {
    let aws = AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.to_string()),
        ..AwsConfig::default()
    };
    let credentials = SharedCredentialsProvider::new(Credentials::new(
        "AKIDTEST",
        "test-secret",
        None,
        None,
        "static",
    ));
    (aws, credentials)
}

impl Dynalite {
    /// The `[aws]` settings and static test credentials that reach this server.
    pub fn aws(&self) -> (AwsConfig, SharedCredentialsProvider) {
        aws_for(&self.endpoint)
    }

    /// A ledger on `table` (created when absent), as one replica would open it.
    pub async fn ledger(&self, table: &str, routes: Vec<Route>) -> DynamoLedger {
        let (aws, credentials) = self.aws();
        DynamoLedger::connect(
            &aws,
            table,
            true,
            routes,
            Duration::from_secs(30 * 86_400),
            Some(credentials),
        )
        .await
        .expect("DynamoDB ledger on dynalite")
    }
}
