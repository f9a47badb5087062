//! The ledger table's schema, and creating it at start when `ledger.create_table` says so (the
//! Terraform in `deploy/terraform/ledger_table.tf` creates the same table for production).

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::item::{
    EXPIRES_AT, LIST_PK, LIST_SK, OUTBOX_INDEX, OUTBOX_PK, OUTBOX_SK, PK, QUEUE_INDEX, QUEUE_PK,
    QUEUE_SK, RECENT_INDEX, RECENT_PROJECTION, SK,
};
use super::sdk_error;
use crate::ledger::LedgerError;

fn build_error(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("cannot describe the ledger table: {e}"))
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, LedgerError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, LedgerError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

/// Checks that `table` exists (creating it when `create` and it does not) and waits until it is
/// active.
pub async fn ensure(client: &Client, table: &str, create: bool) -> Result<(), LedgerError> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => {}
        Err(error) => {
            let not_found = error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception());
            if !not_found {
                return Err(sdk_error("DescribeTable", table, error));
            }
            if !create {
                return Err(LedgerError::Unavailable(format!(
                    "DynamoDB table {table} does not exist; create it (deploy/terraform/ledger_table.tf) or set ledger.create_table = true"
                )));
            }
            create_table(client, table).await?;
        }
    }
    wait_active(client, table).await
}

async fn create_table(client: &Client, table: &str) -> Result<(), LedgerError> {
    let queue = GlobalSecondaryIndex::builder()
        .index_name(QUEUE_INDEX)
        .key_schema(key(QUEUE_PK, KeyType::Hash)?)
        .key_schema(key(QUEUE_SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    let outbox = GlobalSecondaryIndex::builder()
        .index_name(OUTBOX_INDEX)
        .key_schema(key(OUTBOX_PK, KeyType::Hash)?)
        .key_schema(key(OUTBOX_SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    let mut recent_projection = Projection::builder().projection_type(ProjectionType::Include);
    for attribute in RECENT_PROJECTION {
        recent_projection = recent_projection.non_key_attributes(attribute);
    }
    let recent = GlobalSecondaryIndex::builder()
        .index_name(RECENT_INDEX)
        .key_schema(key(LIST_PK, KeyType::Hash)?)
        .key_schema(key(LIST_SK, KeyType::Range)?)
        .projection(recent_projection.build())
        .build()
        .map_err(build_error)?;
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(queue)
        .global_secondary_indexes(outbox)
        .global_secondary_indexes(recent);
    for name in [
        PK, SK, QUEUE_PK, QUEUE_SK, OUTBOX_PK, OUTBOX_SK, LIST_PK, LIST_SK,
    ] {
        request = request.attribute_definitions(string_attribute(name)?);
    }
    match request.send().await {
        Ok(_) => {}
        // Another replica created it at the same moment.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(sdk_error("CreateTable", table, error)),
    }
    wait_active(client, table).await?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
        .map_err(build_error)?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => match error.as_service_error() {
            // Already enabled (by the replica that won the creation race).
            Some(e) if e.to_string().contains("already enabled") => Ok(()),
            // An engine without TTL (dynalite, the tests' DynamoDB). In production the
            // Terraform enables TTL; the purge deletes old episodes either way.
            Some(e) if e.code() == Some("UnknownOperationException") => {
                tracing::warn!(
                    table,
                    "this DynamoDB endpoint does not know UpdateTimeToLive; TTL on {EXPIRES_AT} is not enabled, old episodes are removed by the ledger's purge only (production: enable TTL with deploy/terraform/ledger_table.tf)"
                );
                Ok(())
            }
            _ => Err(sdk_error("UpdateTimeToLive", table, error)),
        },
    }
}

async fn wait_active(client: &Client, table: &str) -> Result<(), LedgerError> {
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", table, e))?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(LedgerError::Unavailable(format!(
        "DynamoDB table {table} did not become ACTIVE within 60 s"
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::instrument::WithSubscriber;

    use super::super::test_dynalite::Dynalite;

    /// What a test's tracing subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_endpoint_without_ttl_is_tolerated_with_one_warning() {
        let dynalite = Dynalite::start();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        async {
            // The first replica creates the table (dynalite answers UpdateTimeToLive with
            // UnknownOperationException); the second finds it.
            dynalite.ledger("ttl", Vec::new()).await;
            dynalite.ledger("ttl", Vec::new()).await;
        }
        .with_subscriber(subscriber)
        .await;
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("UpdateTimeToLive"))
            .collect();
        assert_eq!(warnings.len(), 1, "{text}");
        assert!(
            warnings[0].contains("WARN") && warnings[0].contains("terraform"),
            "{text}"
        );
    }
}
