//! What a write that fails its condition works from next. DynamoDB returns the item with the
//! failure (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), and the ledger uses it without a
//! read of its own; dynalite, the tests' engine, returns nothing, and the ledger reads the item
//! instead. The first is checked on a small fake endpoint that answers as DynamoDB documents,
//! the second on dynalite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::change::Change;
use super::item::{episode_pk, n, s, EPISODE_SK, PK, SK};
use super::test_dynalite::{aws_for, Dynalite};
use super::{DynamoLedger, WriteOutcome};

/// A DynamoDB endpoint that knows one table, fails every `UpdateItem` on its condition with
/// the item attached (as DynamoDB does under `ALL_OLD`), and records the operations it was asked.
async fn conflicting_endpoint(item: serde_json::Value) -> (String, Arc<Mutex<Vec<String>>>) {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let (asked, item) = (Arc::clone(&seen), item.clone());
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim_start_matches("DynamoDB_20120810.")
                .to_string();
            asked.lock().unwrap().push(target.clone());
            let (status, body) = match target.as_str() {
                "DescribeTable" => (
                    StatusCode::OK,
                    serde_json::json!({"Table": {"TableName": "t", "TableStatus": "ACTIVE"}}),
                ),
                "UpdateItem" => (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({
                        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                        "message": "The conditional request failed",
                        "Item": item,
                    }),
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"__type": "com.amazon.coral.service#UnknownOperationException"}),
                ),
            };
            (
                status,
                [("content-type", "application/x-amz-json-1.0")],
                body.to_string(),
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (endpoint, asked)
}

fn stale_change() -> Change {
    Change::new().set("state", s("running")).when(
        "#version = :expected_version",
        &["version"],
        vec![(":expected_version", n(0))],
    )
}

#[tokio::test]
async fn a_failed_condition_works_from_the_item_dynamodb_returned_without_a_read() {
    let id = "ep-00000000000000000001";
    let (endpoint, asked) = conflicting_endpoint(serde_json::json!({
        "pk": {"S": episode_pk(id)}, "sk": {"S": EPISODE_SK}, "version": {"N": "7"},
    }))
    .await;
    let (aws, credentials) = aws_for(&endpoint);
    let ledger = DynamoLedger::connect(
        &aws,
        "t",
        false,
        Vec::new(),
        Duration::from_secs(86_400),
        Some(credentials),
    )
    .await
    .unwrap();
    match ledger.write(id, stale_change()).await.unwrap() {
        WriteOutcome::Conflict(Some(now)) => assert_eq!(now.get("version"), Some(&n(7))),
        WriteOutcome::Conflict(None) => panic!("the item DynamoDB returned was dropped"),
        WriteOutcome::Applied(_) => panic!("the fake fails every update"),
    }
    let after_start: Vec<String> = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|operation| *operation != "DescribeTable")
        .cloned()
        .collect();
    assert_eq!(
        after_start,
        ["UpdateItem"],
        "no read after a failure that carried the item"
    );
}

#[tokio::test]
async fn a_failed_condition_on_an_engine_that_returns_no_item_reads_it() {
    let dynalite = Dynalite::start();
    let ledger = dynalite.ledger("conflict", Vec::new()).await;
    let id = "ep-00000000000000000002";
    let item = HashMap::from([
        (PK.to_string(), s(episode_pk(id))),
        (SK.to_string(), s(EPISODE_SK)),
        ("version".to_string(), n(3)),
    ]);
    assert!(ledger.put_new(id, item).await.unwrap().is_ok());
    ledger.remember(id, None, false);
    match ledger.write(id, stale_change()).await.unwrap() {
        WriteOutcome::Conflict(Some(now)) => assert_eq!(now.get("version"), Some(&n(3))),
        WriteOutcome::Conflict(None) => panic!("an existing episode taken for a missing one"),
        WriteOutcome::Applied(_) => panic!("version 0 expected, 3 stored: the write must fail"),
    }
    // And the put of an episode that exists finds the one there.
    let again = HashMap::from([
        (PK.to_string(), s(episode_pk(id))),
        (SK.to_string(), s(EPISODE_SK)),
        ("version".to_string(), AttributeValue::N("0".into())),
    ]);
    match ledger.put_new(id, again).await.unwrap() {
        Err(Some(existing)) => assert_eq!(existing.get("version"), Some(&n(3))),
        other => panic!("{other:?}"),
    }
}
