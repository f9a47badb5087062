//! The silence client (`notify::silence`) against the real Alertmanager of the e2e tests: the
//! silence it creates exists with one equality matcher per label of the alert, `createdBy` and a
//! comment linking the episode; it suppresses the alert's notifications; expiring it lets them
//! through again. Also what an operator sees when Alertmanager refuses or cannot be reached.

#[allow(dead_code)]
#[path = "support/alertmanager.rs"]
mod alertmanager;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use cabal_triage::config::{AlertmanagerConfig, Secret};
use cabal_triage::notify::silence::{SilenceClient, SilenceError, SilenceRequest};
use serde_json::{json, Value};

/// A webhook receiver that counts the notifications Alertmanager sends it.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let app = Router::new().route(
        "/hook",
        post(move || {
            let seen = Arc::clone(&seen);
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), count)
}

fn config(webhook: &str) -> String {
    format!(
        r#"route:
  receiver: hook
  group_by: [alertname, severity]
  group_wait: 100ms
  group_interval: 300ms
  repeat_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: "{webhook}"
        send_resolved: false
"#
    )
}

fn client(url: &str) -> SilenceClient {
    let config = AlertmanagerConfig {
        url: Some(url.to_string()),
        token: Some(Secret::new("not-checked-by-alertmanager")),
        token_file: None,
    };
    SilenceClient::from_config(reqwest::Client::new(), &config).expect("configured")
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_matches_the_alert_suppresses_it_and_expires() {
    let Some(binary) = alertmanager::binary_or_skip("silences") else {
        return;
    };
    let (webhook, notifications) = receiver().await;
    let am =
        alertmanager::Alertmanager::start(&binary, "am-silences", &config(&webhook), None).await;
    let labels = BTreeMap::from([
        ("alertname".to_string(), "SendmailDeferredSpike".to_string()),
        ("severity".to_string(), "warning".to_string()),
        ("tier".to_string(), "smtp-out".to_string()),
    ]);
    let silences = client(&am.base);
    let silence = silences
        .create(&SilenceRequest {
            labels: &labels,
            starts_at: time::OffsetDateTime::now_utc(),
            duration: Duration::from_secs(2 * 3600),
            created_by: "Jane Operator",
            episode_id: "ep-silenced",
            episode_url: Some("https://triage.example/api/v1/episodes/ep-silenced"),
        })
        .await
        .expect("silence created");

    let stored = get(&format!("{}/api/v2/silence/{}", am.base, silence.id)).await;
    assert_eq!(stored["status"]["state"], "active", "{stored}");
    assert_eq!(stored["createdBy"], "Jane Operator");
    assert!(stored["comment"]
        .as_str()
        .unwrap()
        .contains("https://triage.example/api/v1/episodes/ep-silenced"));
    let mut matchers: Vec<(String, String, bool, bool)> = stored["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["value"].as_str().unwrap().to_string(),
                m["isRegex"].as_bool().unwrap(),
                m["isEqual"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    matchers.sort();
    let expected: Vec<(String, String, bool, bool)> = labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), false, true))
        .collect();
    assert_eq!(matchers, expected);

    // The alert fires: Alertmanager holds it suppressed by this silence and notifies nobody.
    let alert = json!([{"labels": labels, "annotations": {"summary": "deferred spike"}}]);
    am.push(&alert).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let alerts = get(&format!("{}/api/v2/alerts", am.base)).await;
    assert_eq!(alerts[0]["status"]["state"], "suppressed", "{alerts}");
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([silence.id]));
    assert_eq!(
        notifications.load(Ordering::SeqCst),
        0,
        "silenced: no notification"
    );

    // Expired: the silence stays, expired, and the next notification goes out.
    silences.expire(&silence.id).await.expect("expired");
    let stored = get(&format!("{}/api/v2/silence/{}", am.base, silence.id)).await;
    assert_eq!(stored["status"]["state"], "expired", "{stored}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while notifications.load(Ordering::SeqCst) == 0 {
        am.push(&alert).await;
        assert!(
            Instant::now() < deadline,
            "no notification after the silence expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alerts = get(&format!("{}/api/v2/alerts", am.base)).await;
    assert_eq!(alerts[0]["status"]["state"], "active", "{alerts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_an_unreachable_alertmanager_say_what_to_check() {
    let Some(binary) = alertmanager::binary_or_skip("silences") else {
        return;
    };
    let (webhook, _) = receiver().await;
    let am =
        alertmanager::Alertmanager::start(&binary, "am-refusals", &config(&webhook), None).await;
    let error = client(&am.base)
        .expire("0b4f3c1e-2f0a-4b7e-9d61-1c2f3e4d5a6b")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SilenceError::Refused { status: 404, .. } | SilenceError::Refused { status: 500, .. }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("Alertmanager refused to expire a silence"),
        "{error}"
    );
    let error = client(&am.base).expire("../../-/quit").await.unwrap_err();
    assert!(matches!(error, SilenceError::InvalidId(_)), "{error}");

    let port = alertmanager::free_port();
    let error = client(&format!("http://127.0.0.1:{port}"))
        .expire("0b4f3c1e-2f0a-4b7e-9d61-1c2f3e4d5a6b")
        .await
        .unwrap_err();
    assert!(matches!(error, SilenceError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("alertmanager.url"), "{error}");
    assert!(
        !error.to_string().contains(&port.to_string()),
        "no URL in the error: {error}"
    );
}
