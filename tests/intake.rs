//! The webhook intake through the real binary: authentication, bad input, deduplication.

mod support;

use std::time::Duration;

use base64::Engine;
use support::payload::{alert, notification, test_alert, GROUP_KEY};
use support::service::{Service, ServiceOptions, TOKEN};

async fn start(options: ServiceOptions) -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start_in(dir.path(), options).await;
    (dir, service)
}

fn one_alert_body() -> String {
    notification(
        GROUP_KEY,
        vec![alert(
            "NoSuchRunbook",
            "00000000000000a1",
            "2026-11-28T20:00:00Z",
            "firing",
            &[],
        )],
    )
}

#[tokio::test]
async fn authentication_bearer_basic_rotation_and_read_tokens() {
    let file_dir = tempfile::tempdir().unwrap();
    let tokens = file_dir.path().join("tokens");
    std::fs::write(&tokens, "# rotated in\nsecond-secret-0123456789abc\n").unwrap();
    let options = ServiceOptions::default()
        .with(
            "CABAL_TRIAGE__AUTH__WEBHOOK_TOKENS_FILE",
            tokens.to_str().unwrap(),
        )
        .with("CABAL_TRIAGE_READ_TOKEN", "reader-secret-0123456789abc");
    let (_dir, service) = start(options).await;
    let body = one_alert_body().into_bytes();
    let json = "application/json";

    let (status, error) = service.post_raw(body.clone(), json, None).await;
    assert_eq!(status, 401, "{error}");
    assert!(error["error"].as_str().unwrap().contains("secret"));
    let (status, _) = service
        .post_raw(body.clone(), json, Some("Bearer wrong-secret-0123456789"))
        .await;
    assert_eq!(status, 401);
    let (status, _) = service
        .post_raw(body.clone(), json, Some(&format!("Bearer {TOKEN}x")))
        .await;
    assert_eq!(status, 401);
    let (status, _) = service
        .post_raw(body.clone(), json, Some(&format!("Bearer {TOKEN}")))
        .await;
    assert_eq!(status, 202);
    let (status, _) = service
        .post_raw(
            body.clone(),
            json,
            Some("Bearer second-secret-0123456789abc"),
        )
        .await;
    assert_eq!(
        status, 202,
        "a rotated-in secret from the file is accepted alongside the env one"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alertmanager:{TOKEN}"));
    let (status, _) = service
        .post_raw(body.clone(), json, Some(&format!("Basic {basic}")))
        .await;
    assert_eq!(status, 202);
    let (status, _) = service
        .post_raw(
            body.clone(),
            json,
            Some("Bearer reader-secret-0123456789abc"),
        )
        .await;
    assert_eq!(status, 401, "a read secret cannot post alerts");

    let response = service
        .client
        .get(format!("{}/api/v1/episodes", service.base))
        .header("authorization", "Bearer reader-secret-0123456789abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = service
        .client
        .get(format!("{}/api/v1/episodes", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Health and metrics need no secret.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = service
            .client
            .get(format!("{}{path}", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn refuses_to_start_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(support::service::binary())
        .arg("serve")
        .env_clear()
        .env("CABAL_TRIAGE_LEDGER", dir.path().join("l.db"))
        .env("CABAL_TRIAGE_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth.webhook_tokens"), "{stderr}");
    assert!(
        !dir.path().join("l.db").exists(),
        "nothing is created before the config is valid"
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_never_crashes() {
    let (_dir, mut service) = start(ServiceOptions::default()).await;
    let auth = format!("Bearer {TOKEN}");
    let cases: Vec<(Vec<u8>, &str, u16, Option<&str>)> = vec![
        (b"{not json".to_vec(), "application/json", 400, None),
        (br#"{"version":"5","groupKey":"g","status":"firing","alerts":[]}"#.to_vec(), "application/json", 400, Some("version")),
        (br#"{"version":"4","status":"firing","alerts":[]}"#.to_vec(), "application/json", 400, Some("groupKey")),
        (br#"{"version":"4","groupKey":"g","status":"firing","alerts":{"a":1}}"#.to_vec(), "application/json", 400, Some("alerts")),
        (
            br#"{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{},"fingerprint":"ab"}]}"#.to_vec(),
            "application/json",
            400,
            Some("alerts[0].startsAt"),
        ),
        (one_alert_body().into_bytes(), "text/plain", 415, None),
        (vec![b' '; 2 * 1024 * 1024], "application/json", 413, None),
        (b"\xff\xfe\x00garbage".to_vec(), "application/json", 400, None),
        (b"[]".to_vec(), "application/json", 400, Some("$")),
        (
            // Parses, but in UTC it is year 10000: a panic in the handler on main.
            br#"{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"9999-12-31T23:59:59-23:59","fingerprint":"ab"}]}"#.to_vec(),
            "application/json",
            400,
            Some("alerts[0].startsAt"),
        ),
    ];
    for (body, content_type, expected, field) in cases {
        let (status, error) = service.post_raw(body, content_type, Some(&auth)).await;
        assert_eq!(status, expected, "{error}");
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{error}"
        );
        if let Some(field) = field {
            assert_eq!(error["field"], field, "{error}");
        }
    }
    // A chunked body over the limit (no Content-Length) is refused too.
    let stream =
        futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let response = service
        .client
        .post(format!("{}/api/v1/alerts", service.base))
        .header("content-type", "application/json")
        .header("authorization", &auth)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // Still alive and nothing was recorded. (The server closes a connection whose body it did
    // not read to the end, so ask on a new connection.)
    service.client = reqwest::Client::new();
    let (status, body) = service.get_json("/api/v1/episodes").await;
    assert_eq!(status, 200);
    assert_eq!(body["episodes"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn huge_values_are_quoted_at_most_200_bytes_in_the_answer_and_the_log() {
    let (_dir, service) = start(ServiceOptions::default()).await;
    let auth = format!("Bearer {TOKEN}");
    let huge = "V".repeat(500_000);
    let body = format!(r#"{{"version":"{huge}","groupKey":"g","status":"firing","alerts":[]}}"#);
    let (status, error) = service
        .post_raw(body.into_bytes(), "application/json", Some(&auth))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["field"], "version");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.len() < 400,
        "{} bytes in the 400 body",
        message.len()
    );
    let (status, _) = service.get_json("/api/v1/episodes").await;
    assert_eq!(status, 200);
    let longest = service
        .drain_stderr()
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
}

fn bytes_under(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum()
}

#[tokio::test]
async fn readyz_polled_300_times_writes_the_ledger_at_most_once_per_period() {
    let (dir, service) = start(ServiceOptions::default()).await;
    let (status, _) = service.get_json("/readyz").await;
    assert_eq!(status, 200);
    let before = bytes_under(dir.path());
    for _ in 0..300 {
        let response = service
            .client
            .get(format!("{}/readyz", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let grown = bytes_under(dir.path()).saturating_sub(before);
    // On main every call was a durable write: 300 calls grew the ledger by about 1.1 MB.
    assert!(
        grown < 64 * 1024,
        "300 /readyz calls grew the ledger by {grown} bytes"
    );
}

#[tokio::test]
async fn ten_thousand_alerts_in_one_payload() {
    // Over the default 1 MiB body limit: a clear 413 naming the setting.
    let (_dir, service) = start(ServiceOptions::default()).await;
    let alerts: Vec<_> = (0..10_000)
        .map(|n| {
            alert(
                "NoSuchRunbook",
                &format!("{n:016x}"),
                "2026-11-28T20:00:00Z",
                "firing",
                &[],
            )
        })
        .collect();
    let body = notification(GROUP_KEY, alerts);
    let (status, error) = service.post_alerts(&body).await;
    assert_eq!(status, 413, "{error}");
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("server.body_limit_bytes"));
    drop(service);

    // With the limit raised, all 10,000 are recorded in one durable step.
    let options =
        ServiceOptions::default().with("CABAL_TRIAGE__SERVER__BODY_LIMIT_BYTES", "16777216");
    let (_dir, service) = start(options).await;
    let (status, answer) = service.post_alerts(&body).await;
    assert_eq!(status, 202, "{answer}");
    let episodes = answer["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 10_000);
    assert!(episodes.iter().all(|e| e["state"] == "no_runbook"));
    let (_, listed) = service
        .get_json("/api/v1/episodes?limit=1000&state=no_runbook")
        .await;
    assert_eq!(listed["episodes"].as_array().unwrap().len(), 1000);

    // More alerts than max_alerts_per_payload: 413 naming that setting.
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE__SERVER__BODY_LIMIT_BYTES", "16777216")
        .with("CABAL_TRIAGE__SERVER__MAX_ALERTS_PER_PAYLOAD", "5000");
    let (_dir, service) = start(options).await;
    let (status, error) = service.post_alerts(&body).await;
    assert_eq!(status, 413);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("max_alerts_per_payload"),
        "{error}"
    );
}

#[tokio::test]
async fn same_payload_five_times_concurrently_is_one_job() {
    let (_dir, service) = start(ServiceOptions::default()).await;
    let body = notification(GROUP_KEY, vec![test_alert(1, &[("test_sleep_ms", "300")])]);
    let mut posts = Vec::new();
    for _ in 0..5 {
        let client = service.client.clone();
        let url = format!("{}/api/v1/alerts", service.base);
        let body = body.clone();
        posts.push(tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for post in posts {
        let answer = post.await.unwrap();
        let episode = &answer["episodes"][0];
        ids.push(episode["id"].as_str().unwrap().to_string());
        if episode["outcome"] == "created" {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one post creates the episode");
    ids.dedup();
    assert_eq!(ids.len(), 1, "all five name the same episode");
    let episodes = service
        .wait_for_states(&ids, &["triaged"], Duration::from_secs(20))
        .await;
    let episode = &episodes[0];
    assert_eq!(episode["repeats"], 4);
    assert_eq!(episode["job"]["attempts"], 1, "triaged once: {episode}");
    assert_eq!(episode["report"]["episode"], ids[0].as_str());
    assert_eq!(episode["status"], "firing");
    use sha2::Digest;
    assert_eq!(
        episode["pagerduty_dedup_key"],
        hex::encode(sha2::Sha256::digest(GROUP_KEY.as_bytes())),
        "the PagerDuty key Alertmanager derives from the same group key"
    );

    // A resolved notification marks the same episode resolved, without a new job.
    let resolved = notification(
        GROUP_KEY,
        vec![alert(
            "CabalTriageTest",
            &format!("{:016x}", 1),
            "2026-11-28T20:00:00.123456789Z",
            "resolved",
            &[("test_sleep_ms", "300")],
        )],
    );
    let (status, answer) = service.post_alerts(&resolved).await;
    assert_eq!(status, 202);
    assert_eq!(answer["episodes"][0]["id"], ids[0].as_str());
    assert_eq!(answer["episodes"][0]["outcome"], "resolved");
    let episode = service.episode(&ids[0]).await;
    assert_eq!(episode["status"], "resolved");
    assert_eq!(episode["ends_at"], "2026-11-28T21:00:00Z");
    assert_eq!(episode["job"]["attempts"], 1);

    // The same labels firing again (new startsAt) are a new episode.
    let again = notification(
        GROUP_KEY,
        vec![alert(
            "CabalTriageTest",
            &format!("{:016x}", 1),
            "2026-11-28T22:00:00Z",
            "firing",
            &[],
        )],
    );
    let (_, answer) = service.post_alerts(&again).await;
    assert_eq!(answer["episodes"][0]["outcome"], "created");
    assert_ne!(answer["episodes"][0]["id"], ids[0].as_str());
}

#[tokio::test]
async fn unknown_alertname_is_recorded_not_triaged() {
    let (_dir, service) = start(ServiceOptions::default()).await;
    let (status, answer) = service.post_alerts(&one_alert_body()).await;
    assert_eq!(status, 202);
    assert_eq!(answer["episodes"][0]["state"], "no_runbook");
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let episode = service.episode(&id).await;
    assert_eq!(episode["state"], "no_runbook");
    assert!(episode["job"].is_null());
    assert_eq!(episode["alert"]["labels"]["alertname"], "NoSuchRunbook");
    let (status, _) = service.get_json("/api/v1/episodes/ep-doesnotexist").await;
    assert_eq!(status, 404);
    let (status, error) = service.get_json("/api/v1/episodes?limit=5000").await;
    assert_eq!(status, 400);
    assert_eq!(error["field"], "limit");
    let (status, error) = service.get_json("/api/v1/episodes?state=bogus").await;
    assert_eq!(status, 400);
    assert_eq!(error["field"], "state");
}

#[tokio::test]
async fn a_full_ledger_answers_503_and_stores_nothing_then_recovers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let capped = ServiceOptions::default()
        .with("CABAL_TRIAGE__LEDGER__MAX_SIZE_MIB", "1")
        .with("CABAL_TRIAGE__SERVER__BODY_LIMIT_BYTES", "16777216");
    let service = Service::start_in(dir.path(), capped).await;
    // Large annotations fill the capped file quickly.
    let filler = "x".repeat(4000);
    let mut refused_body = None;
    for batch in 0..200 {
        let alerts: Vec<_> = (0..50)
            .map(|n| {
                let mut a = alert(
                    "NoSuchRunbook",
                    &format!("{:016x}", batch * 50 + n),
                    "2026-11-28T20:00:00Z",
                    "firing",
                    &[],
                );
                a["annotations"]["filler"] = serde_json::json!(filler);
                a
            })
            .collect();
        let body = notification(GROUP_KEY, alerts);
        let (status, answer) = service.post_alerts(&body).await;
        if status == 503 {
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .contains("ledger cannot write"),
                "{answer}"
            );
            refused_body = Some((batch, body));
            break;
        }
        assert_eq!(status, 202, "{answer}");
    }
    let (batch, body) = refused_body.expect("the capped ledger filled up");
    // Nothing of the refused notification was stored: the whole payload is one transaction.
    let first_refused = format!("{:016x}", batch * 50);
    let (_, listed) = service.get_json("/api/v1/episodes?limit=1000").await;
    assert!(listed["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["fingerprint"] != first_refused.as_str()));
    let response = service
        .client
        .get(format!("{}/healthz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "alive while full");
    drop(service);

    // Alertmanager retries the same body; with room again it is accepted.
    let roomy =
        ServiceOptions::default().with("CABAL_TRIAGE__SERVER__BODY_LIMIT_BYTES", "16777216");
    let service = Service::start_in(dir.path(), roomy).await;
    let (status, answer) = service.post_alerts(&body).await;
    assert_eq!(status, 202, "{answer}");
    assert!(answer["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "created"));
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    // Short limits so the test takes seconds: headers and bodies 1 s, four connections.
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE__SERVER__HEADER_READ_TIMEOUT_SECS", "1")
        .with("CABAL_TRIAGE__SERVER__BODY_READ_TIMEOUT_SECS", "1")
        .with("CABAL_TRIAGE__SERVER__MAX_CONNECTIONS", "4");
    let (_dir, service) = start(options).await;
    let healthz = format!("{}/healthz", service.base);
    let quick = || {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(400))
            .build()
            .unwrap()
    };

    // Four clients trickle headers and never finish them: they hold every slot.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&service.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        quick().get(&healthz).send().await.is_err(),
        "a fifth connection was served past the cap of four"
    );
    // The header read timeout closes them (on main they stayed open for good).
    for stream in &mut slow {
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(4), stream.read(&mut buffer)).await;
        assert!(read.is_ok(), "a client trickling headers was not cut off");
    }
    let response = quick().get(&healthz).send().await.expect("served again");
    assert_eq!(response.status(), 200);

    // A body that never arrives in full: 408 once the body read timeout is up.
    let mut stream = TcpStream::connect(&service.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"version\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(4), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // An idle keep-alive connection is closed after the (header read) timeout.
    let mut stream = TcpStream::connect(&service.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(4), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle keep-alive connection stayed open");
}

/// An alert too large for a DynamoDB item is refused for good (413, which Alertmanager does not
/// resend), saying why without echoing it, and nothing of its notification is stored; a normal
/// alert is still taken.
#[tokio::test]
async fn an_alert_too_large_for_the_ledger_is_refused_with_413_not_503() {
    let dynamo = support::dynalite::Dynalite::start();
    let options = ServiceOptions::default().dynamodb(&dynamo.endpoint, "large");
    let (_dir, service) = start(options).await;
    let huge = "x".repeat(900_000);
    let body = notification(
        GROUP_KEY,
        vec![
            alert(
                "NoSuchRunbook",
                "00000000000000b1",
                "2026-11-28T20:00:00Z",
                "firing",
                &[],
            ),
            alert(
                "NoSuchRunbook",
                "00000000000000b2",
                "2026-11-28T20:00:00Z",
                "firing",
                &[("huge", huge.as_str())],
            ),
        ],
    );
    let (status, error) = service.post_alerts(&body).await;
    assert_eq!(status, 413, "{error}");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("do not retry"), "{message}");
    assert!(message.contains("400 KB"), "{message}");
    assert!(!message.contains("xxxxxxxxxx"), "{message}");
    let (_, listed) = service.get_json("/api/v1/episodes").await;
    assert_eq!(
        listed["episodes"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let (status, _) = service.post_alerts(&one_alert_body()).await;
    assert_eq!(status, 202);
}
