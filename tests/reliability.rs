//! Reliability under load and faults, through the real binary (built with `--all-features`, so
//! the test runbook `CabalTriageTest` triages without AWS):
//! - storm: two replicas sharing a DynamoDB ledger on dynalite take a storm of distinct alerts plus
//!   HA duplicates and repeats; every episode is triaged and annotated exactly once;
//! - crash: the same while one replica is `kill -9`ed every few seconds and restarted;
//! - dependencies failing: DynamoDB (dynalite) paused, Slack answering 429, PagerDuty 500s;
//! - disk full and read-only SQLite: 503, never 2xx for an alert that was not stored.
//!
//! Sizes and durations are constants at the top of each test; each test has a deadline.

#[allow(dead_code)]
#[path = "support/fake_ntfy.rs"]
mod fake_ntfy;
#[allow(dead_code)]
#[path = "support/fake_pagerduty.rs"]
mod fake_pagerduty;
#[allow(dead_code)]
#[path = "support/fake_pushover.rs"]
mod fake_pushover;
#[allow(dead_code)]
#[path = "support/fake_slack.rs"]
mod fake_slack;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_pagerduty::FakePagerDuty;
use fake_slack::FakeSlack;
use futures::StreamExt;
use serde_json::{json, Value};
use support::dynalite::Dynalite;
use support::service::{Service, ServiceOptions, TOKEN};

const STARTS_AT: &str = "2026-11-28T20:00:00Z";

/// A size from the environment (to run the full sizes), else the default that fits the
/// suite's time budget (see `storm_two_replicas_every_episode_once`).
fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
/// How long the dependencies fail (the scenario: DynamoDB stopped 30 s, Slack 429 for a
/// minute, PagerDuty 500s; shortened so that the file runs in minutes, see each constant).
const DYNAMO_PAUSED: Duration = Duration::from_secs(30);
const SLACK_RATE_LIMITED: Duration = Duration::from_secs(60);
const PAGERDUTY_FAILING: Duration = Duration::from_secs(45);

/// How long a storm may take: 4 minutes plus half a second per episode (what a loaded 2-core
/// machine with dynalite and two debug builds needs, with room), or CABAL_TRIAGE_STORM_DEADLINE_SECS.
fn storm_deadline(storm: &Storm) -> Duration {
    let episodes = (storm.payloads * storm.per_payload) as u64;
    Duration::from_secs(size(
        "CABAL_TRIAGE_STORM_DEADLINE_SECS",
        (240 + episodes / 2) as usize,
    ) as u64)
}

#[derive(Clone, Copy)]
/// One storm: `payloads` notifications of `per_payload` distinct alerts each.
struct Storm {
    payloads: usize,
    per_payload: usize,
    /// Each notification is also sent this many more times (HA peer and repeat_interval).
    repeats: usize,
    /// Distinguishes the storms of different tests (fingerprints and group keys).
    tag: &'static str,
}

impl Storm {
    fn group_key(&self, payload: usize) -> String {
        format!(
            "{{}}/{{severity=\"critical\"}}:{{alertname=\"CabalTriageTest\", batch=\"{}-{payload}\"}}",
            self.tag
        )
    }

    fn fingerprint(&self, payload: usize, alert: usize) -> String {
        let tag = self.tag.bytes().fold(0u64, |h, b| h * 31 + u64::from(b)) & 0xffff;
        format!("{tag:04x}{payload:06x}{alert:06x}")
    }

    fn body(&self, payload: usize) -> String {
        let alerts: Vec<Value> = (0..self.per_payload)
            .map(|alert| {
                json!({
                    "status": "firing",
                    "labels": {"alertname": "CabalTriageTest", "severity": "critical",
                               "batch": format!("{}-{payload}", self.tag), "n": alert.to_string()},
                    "annotations": {"summary": "storm"},
                    "startsAt": STARTS_AT,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://127.0.0.1:9090/graph",
                    "fingerprint": self.fingerprint(payload, alert),
                })
            })
            .collect();
        json!({
            "version": "4", "groupKey": self.group_key(payload), "truncatedAlerts": 0,
            "status": "firing", "receiver": "triage",
            "groupLabels": {"alertname": "CabalTriageTest"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "alerts": alerts,
        })
        .to_string()
    }

    fn episode_ids(&self) -> Vec<String> {
        let starts_at =
            time::OffsetDateTime::parse(STARTS_AT, &time::format_description::well_known::Rfc3339)
                .unwrap();
        (0..self.payloads)
            .flat_map(|p| (0..self.per_payload).map(move |a| (p, a)))
            .map(|(p, a)| {
                cabal_triage::alert::EpisodeKey::new(
                    &self.group_key(p),
                    &self.fingerprint(p, a),
                    starts_at,
                )
                .id()
            })
            .collect()
    }

    fn incident_key(&self, payload: usize) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.group_key(payload).as_bytes()))
    }

    fn alerts(&self) -> usize {
        self.payloads * self.per_payload * (1 + self.repeats)
    }
}

/// The base URLs of the replicas that are up; the driver sends each notification to one and
/// falls over to another on a refused connection or a 503, as Alertmanager's retries would.
type Targets = Arc<Mutex<Vec<Option<String>>>>;

#[derive(Debug, Default, Clone)]
struct DriveStats {
    accepted: usize,
    refused_503: usize,
    connection_errors: usize,
    other: BTreeMap<u16, usize>,
    p99_ms: u128,
}

/// Posts every notification of `storm` (each `1 + repeats` times, the copies at once to
/// different replicas), `concurrency` at a time, retrying until 202 or `deadline`.
async fn drive(
    storm: &Storm,
    targets: Targets,
    concurrency: usize,
    deadline: Instant,
) -> DriveStats {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let stats = Arc::new(Mutex::new(DriveStats::default()));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let sends: Vec<(usize, usize)> = (0..=storm.repeats)
        .flat_map(|copy| (0..storm.payloads).map(move |p| (p, copy)))
        .collect();
    futures::stream::iter(sends)
        .for_each_concurrent(concurrency, |(payload, copy)| {
            let (client, targets, stats, latencies) = (
                client.clone(),
                Arc::clone(&targets),
                Arc::clone(&stats),
                Arc::clone(&latencies),
            );
            let body = storm.body(payload);
            async move {
                let mut replica = payload + copy;
                loop {
                    assert!(
                        Instant::now() < deadline,
                        "notification {payload} not accepted before the deadline: {:?}",
                        stats.lock().unwrap()
                    );
                    let base = {
                        let targets = targets.lock().unwrap();
                        targets[replica % targets.len()].clone()
                    };
                    replica += 1;
                    let Some(base) = base else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let started = Instant::now();
                    let answer = client
                        .post(format!("{base}/api/v1/alerts"))
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let accepted = {
                        let mut stats = stats.lock().unwrap();
                        match answer.map(|r| r.status().as_u16()) {
                            Ok(202) => {
                                stats.accepted += 1;
                                true
                            }
                            Ok(503) => {
                                stats.refused_503 += 1;
                                false
                            }
                            Ok(code) => {
                                *stats.other.entry(code).or_default() += 1;
                                false
                            }
                            Err(_) => {
                                stats.connection_errors += 1;
                                false
                            }
                        }
                    };
                    if accepted {
                        latencies
                            .lock()
                            .unwrap()
                            .push(started.elapsed().as_millis());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
        .await;
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    let mut stats = stats.lock().unwrap().clone();
    if !latencies.is_empty() {
        stats.p99_ms = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    }
    stats
}

/// Episode ids (`ep-` and 20 hex digits) in a text, in order.
fn episode_ids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("ep-") {
        let start = at + offset;
        let end = start + 23;
        if end <= bytes.len() && bytes[start + 3..end].iter().all(u8::is_ascii_hexdigit) {
            found.push(text[start..end].to_string());
            at = end;
        } else {
            at = start + 3;
        }
    }
    found
}

/// The cluster under test: dynalite, fake Slack (bot mode) and PagerDuty, and the replicas.
struct Cluster {
    dynamo: Dynalite,
    slack: FakeSlack,
    pd: FakePagerDuty,
    ntfy: fake_ntfy::FakeNtfy,
    pushover: fake_pushover::FakePushover,
    options: ServiceOptions,
    dirs: Vec<tempfile::TempDir>,
    replicas: Vec<Option<Service>>,
    targets: Targets,
}

impl Cluster {
    async fn start(replicas: usize, table: &str, extra: &[(&str, &str)]) -> Cluster {
        let dynamo = Dynalite::start();
        let slack = FakeSlack::start().await;
        let pd = FakePagerDuty::start().await;
        let ntfy = fake_ntfy::FakeNtfy::start().await;
        let pushover = fake_pushover::FakePushover::start().await;
        let mut options = ServiceOptions::default()
            .dynamodb(&dynamo.endpoint, table)
            // `CABAL_TRIAGE_TEST_RUST_LOG=info` (with `CABAL_TRIAGE_TEST_LOG_DIR`) keeps every
            // delivery's story.
            .with(
                "RUST_LOG",
                &std::env::var("CABAL_TRIAGE_TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .with("CABAL_TRIAGE_SLACK_API_BASE_URL", &slack.api_base_url())
            .with("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-test-token")
            .with("CABAL_TRIAGE_SLACK_CHANNEL", "C0TRIAGE")
            .with("CABAL_TRIAGE_PAGERDUTY_API_BASE_URL", &pd.base_url())
            .with("CABAL_TRIAGE_PAGERDUTY_API_TOKEN", "pd-test-token")
            .with("CABAL_TRIAGE_PAGERDUTY_FROM", "oncall@example.com")
            .with("CABAL_TRIAGE_NTFY_BASE_URL", &ntfy.base_url())
            .with("CABAL_TRIAGE_NTFY_TOPIC", "cabal-alerts")
            .with("CABAL_TRIAGE_NTFY_TOKEN", "tk_testtoken")
            .with("CABAL_TRIAGE_PUSHOVER_API_BASE_URL", &pushover.base_url())
            .with("CABAL_TRIAGE_PUSHOVER_APP_TOKEN", "apptoken123")
            .with("CABAL_TRIAGE_PUSHOVER_USER_KEY", "userkey456")
            .with("CABAL_TRIAGE__WORKER__CONCURRENCY", "8")
            .with("CABAL_TRIAGE__WORKER__POLL_INTERVAL_MS", "1000")
            .with("CABAL_TRIAGE__WORKER__LEASE_SECS", "10")
            .with("CABAL_TRIAGE__WORKER__SHUTDOWN_GRACE_SECS", "1")
            .with("CABAL_TRIAGE__DELIVERY__CONCURRENCY", "16")
            .with("CABAL_TRIAGE__DELIVERY__POLL_INTERVAL_MS", "1000")
            .with("CABAL_TRIAGE__DELIVERY__LEASE_SECS", "10")
            .with("CABAL_TRIAGE__DELIVERY__INITIAL_BACKOFF_MS", "200")
            .with("CABAL_TRIAGE__DELIVERY__MAX_BACKOFF_MS", "2000")
            .with("CABAL_TRIAGE__DELIVERY__HTTP_TIMEOUT_MS", "2000");
        for (key, value) in extra {
            options = options.with(key, value);
        }
        let mut cluster = Cluster {
            dynamo,
            slack,
            pd,
            ntfy,
            pushover,
            options,
            dirs: Vec::new(),
            replicas: Vec::new(),
            targets: Arc::new(Mutex::new(Vec::new())),
        };
        for _ in 0..replicas {
            cluster.dirs.push(tempfile::tempdir().unwrap());
            cluster.replicas.push(None);
            cluster.targets.lock().unwrap().push(None);
        }
        for index in 0..replicas {
            cluster.restart(index).await;
        }
        cluster
    }

    async fn restart(&mut self, index: usize) {
        let service = Service::start_in(self.dirs[index].path(), self.options.clone()).await;
        self.targets.lock().unwrap()[index] = Some(service.base.clone());
        self.replicas[index] = Some(service);
    }

    fn kill(&mut self, index: usize) {
        self.targets.lock().unwrap()[index] = None;
        if let Some(service) = self.replicas[index].take() {
            service.kill_hard();
        }
    }

    fn add_incidents(&self, storm: &Storm) {
        for payload in 0..storm.payloads {
            self.pd.add_incident(
                &format!("P{}{payload}", storm.tag),
                &storm.incident_key(payload),
                0,
            );
        }
    }

    /// Peak resident memory (VmHWM) of a running replica, in MiB.
    fn peak_rss_mib(&self, index: usize) -> f64 {
        let pid = self.replicas[index].as_ref().expect("replica up").pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024.0
    }

    /// Parent messages per episode (the episode marker is in the message metadata).
    fn slack_parents(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in self.slack.parents() {
            for id in episode_ids_in(&message.metadata.to_string())
                .into_iter()
                .take(1)
            {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }

    /// Thread replies per outbox row (the row's marker in the reply's metadata).
    fn slack_replies_per_row(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for reply in self.slack.replies() {
            let payload = &reply.metadata["event_payload"];
            let row = format!("{}/{}", payload["episode"], payload["row"]);
            *counts.entry(row).or_default() += 1;
        }
        counts
    }

    /// Verdicts shown per episode: Slack `chat.update`s that carry a report, by episode.
    fn pagerduty_notes(&self, storm: &Storm) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for payload in 0..storm.payloads {
            for note in self.pd.notes(&format!("P{}{payload}", storm.tag)) {
                for id in episode_ids_in(&note).into_iter().take(1) {
                    *counts.entry(id).or_default() += 1;
                }
            }
        }
        counts
    }

    /// ntfy notifications per episode (its id ends the message) and per outbox row (the
    /// row's tag).
    fn ntfy_counts(&self) -> (HashMap<String, usize>, HashMap<String, usize>) {
        let (mut episodes, mut rows) = (HashMap::new(), HashMap::new());
        for message in self.ntfy.messages() {
            for id in episode_ids_in(&message.message).into_iter().take(1) {
                *episodes.entry(id).or_default() += 1;
            }
            for tag in message.tags.iter().filter(|t| t.starts_with("ct-")) {
                *rows.entry(tag.clone()).or_default() += 1;
            }
        }
        (episodes, rows)
    }

    /// Pushover pages per episode (its id ends the message).
    fn pushover_pages(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for page in self.pushover.accepted() {
            for id in episode_ids_in(&page["message"]).into_iter().take(1) {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }

    /// Waits until every episode of `storm` has its Slack message and PagerDuty note, then a
    /// little longer for any duplicate to show, and checks there is exactly one of each.
    async fn assert_exactly_once(&self, storm: &Storm, deadline: Instant) {
        let ids = storm.episode_ids();
        loop {
            let (parents, notes) = (self.slack_parents(), self.pagerduty_notes(storm));
            let missing_slack = ids.iter().filter(|id| !parents.contains_key(*id)).count();
            let missing_pd = ids.iter().filter(|id| !notes.contains_key(*id)).count();
            let ntfy = self.ntfy_counts().0;
            let missing_ntfy = ids.iter().filter(|id| !ntfy.contains_key(*id)).count();
            if missing_slack == 0 && missing_pd == 0 && missing_ntfy == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not every episode was annotated in time: {missing_slack} without a Slack message, {missing_pd} without a PagerDuty note, {missing_ntfy} without an ntfy notification (of {})",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (parents, notes) = (self.slack_parents(), self.pagerduty_notes(storm));
        let twice: Vec<_> = parents.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "Slack messages posted twice: {twice:?}");
        let twice: Vec<_> = notes.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "PagerDuty notes added twice: {twice:?}");
        let replies = self.slack_replies_per_row();
        let twice: Vec<_> = replies.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "Slack thread replies posted twice: {twice:?}"
        );
        assert_eq!(notes.len(), ids.len(), "one note per episode, none unknown");
        // ntfy: exactly once per episode (the storms only fire: one verdict each). Pushover: at
        // most once (a page in doubt is never sent again), and only for episodes of the storm.
        let (ntfy, ntfy_rows) = self.ntfy_counts();
        let twice: Vec<_> = ntfy.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "ntfy notifications published twice: {twice:?}"
        );
        assert!(
            ntfy_rows.values().all(|n| *n == 1),
            "an ntfy row published twice"
        );
        assert_eq!(ntfy.len(), ids.len(), "one ntfy notification per episode");
        let pages = self.pushover_pages();
        let twice: Vec<_> = pages.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "Pushover pages sent twice: {twice:?}");
        assert!(pages.keys().all(|id| ids.contains(id)));
        eprintln!("Pushover paged {} of {} episodes", pages.len(), ids.len());
    }

    /// Episode counts by state from a replica's /metrics, read until `triaged` episodes are
    /// counted as triaged or two and a half minutes have passed. Scrapes start the ledger read
    /// and serve the last values when it takes longer than they wait (tens of thousands of
    /// episodes on a busy DynamoDB), so the first scrapes after a storm can show older counts.
    async fn states(&self, triaged: usize) -> BTreeMap<String, u64> {
        let service = self.replicas.iter().flatten().next().expect("a replica up");
        let give_up = Instant::now() + Duration::from_secs(150);
        loop {
            let text = reqwest::get(format!("{}/metrics", service.base))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let states: BTreeMap<String, u64> = text
                .lines()
                .filter_map(|line| {
                    let rest = line.strip_prefix("cabal_triage_episodes{state=\"")?;
                    let (state, value) = rest.split_once("\"} ")?;
                    Some((state.to_string(), value.trim().parse().ok()?))
                })
                .collect();
            if states.get("triaged") == Some(&(triaged as u64)) || Instant::now() > give_up {
                return states;
            }
            let warnings: Vec<String> = service
                .drain_stderr()
                .into_iter()
                .filter(|line| line.contains("statistics"))
                .collect();
            eprintln!("/metrics: {states:?}, expecting {triaged} triaged; the replica logged {warnings:?}");
            tokio::time::sleep(Duration::from_secs(6)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storm_two_replicas_every_episode_once() {
    // The storm is 200 payloads of 50 alerts plus 20,000 repeats:
    //   CABAL_TRIAGE_STORM_PAYLOADS=200 CABAL_TRIAGE_STORM_PER_PAYLOAD=50 cargo nextest run \
    //     --all-features --no-capture -E 'test(storm_two_replicas)'
    // The default keeps the payloads of 50 alerts and its two repeats per alert, with
    // 10 payloads (500 episodes, 1,500 alerts), to fit the suite's time budget on the 2-core
    // machine; docs/benchmarks.md has the figures.
    let storm = Storm {
        payloads: size("CABAL_TRIAGE_STORM_PAYLOADS", 10),
        per_payload: size("CABAL_TRIAGE_STORM_PER_PAYLOAD", 50),
        repeats: 2,
        tag: "storm",
    };
    let started = Instant::now();
    let deadline = started + storm_deadline(&storm);
    let cluster = Cluster::start(2, "storm", &[]).await;
    cluster.add_incidents(&storm);
    let drive_stats = drive(&storm, Arc::clone(&cluster.targets), 4, deadline).await;
    let ingested = started.elapsed();
    cluster.assert_exactly_once(&storm, deadline).await;
    let done = started.elapsed();
    let episodes = storm.payloads * storm.per_payload;
    let states = cluster.states(episodes).await;
    eprintln!(
        "storm: {} alerts ({episodes} episodes) in {:.1} s, all annotated after {:.1} s; posts {:?}; states {states:?}; peak RSS replica 0: {:.1} MiB, replica 1: {:.1} MiB",
        storm.alerts(),
        ingested.as_secs_f64(),
        done.as_secs_f64(),
        drive_stats,
        cluster.peak_rss_mib(0),
        cluster.peak_rss_mib(1),
    );
    assert_eq!(
        states.get("triaged").copied(),
        Some((storm.payloads * storm.per_payload) as u64),
        "{states:?}"
    );
    for index in 0..2 {
        assert!(
            cluster.peak_rss_mib(index) < 512.0,
            "replica {index} used too much memory"
        );
    }
}

/// A small ext4 file system on a loop device (`mount -o loop`, needs root), mounted with
/// `errors=remount-ro` so that a file system error turns it read-only under a running process,
/// as a failing disk would. Unmounted when dropped.
struct LoopFs {
    image: tempfile::NamedTempFile,
    mountpoint: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (scripts/test.sh installs it)"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed (these tests need root to mount a loop device): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl LoopFs {
    fn new(size_mib: u64) -> LoopFs {
        let image = tempfile::NamedTempFile::new().unwrap();
        image.as_file().set_len(size_mib * 1024 * 1024).unwrap();
        let path = image.path().to_str().unwrap().to_string();
        run("mkfs.ext4", &["-q", "-F", "-O", "^has_journal", &path]);
        let mountpoint = tempfile::tempdir().unwrap();
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                &path,
                mountpoint.path().to_str().unwrap(),
            ],
        );
        LoopFs { image, mountpoint }
    }

    fn path(&self) -> &std::path::Path {
        self.mountpoint.path()
    }

    /// Makes the kernel see a file system error: ext4 remounts read-only at once, even with
    /// files open for writing.
    fn fail_read_only(&self) {
        let source = std::process::Command::new("findmnt")
            .args(["-n", "-o", "SOURCE", self.path().to_str().unwrap()])
            .output()
            .unwrap();
        let device = String::from_utf8_lossy(&source.stdout).trim().to_string();
        let name = device.rsplit('/').next().unwrap().to_string();
        std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "test\n")
            .expect("ext4 trigger_fs_error");
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", self.mountpoint.path().to_str().unwrap()])
            .status();
        let _ = &self.image;
    }
}

/// A notification with `count` distinct alerts, `n` makes it unique.
fn small_payload(n: usize, count: usize, filler: usize) -> String {
    let storm = Storm {
        payloads: n + 1,
        per_payload: count,
        repeats: 0,
        tag: "disk",
    };
    let mut body: Value = serde_json::from_str(&storm.body(n)).unwrap();
    for alert in body["alerts"].as_array_mut().unwrap() {
        alert["annotations"]["filler"] = json!("x".repeat(filler));
    }
    body.to_string()
}

/// Posts until the ledger refuses; every 202 must name episodes that can be read back.
async fn fill_until_refused(service: &Service, max_posts: usize) -> (Vec<String>, usize) {
    let mut stored = Vec::new();
    let mut refused = 0;
    for n in 0..max_posts {
        let (status, body) = service.post_alerts(&small_payload(n, 10, 2000)).await;
        match status {
            202 => stored.extend(
                body["episodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_string()),
            ),
            503 => {
                refused += 1;
                if refused >= 3 {
                    break;
                }
            }
            other => panic!("a full or failing ledger must answer 503, not {other}: {body}"),
        }
    }
    (stored, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_full_answers_503_and_never_acks_an_unstored_alert() {
    let fs = LoopFs::new(8);
    // Leave little room: the ledger hits the end of the disk after some posts.
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 5 * 1024 * 1024]).unwrap();
    let service = Service::start_in(fs.path(), ServiceOptions::default()).await;
    let (stored, refused) = fill_until_refused(&service, 3000).await;
    assert!(
        refused >= 3,
        "the disk never filled up ({} episodes stored)",
        stored.len()
    );
    assert!(!stored.is_empty());
    for id in &stored {
        let (status, _) = service.get_json(&format!("/api/v1/episodes/{id}")).await;
        assert_eq!(
            status, 200,
            "episode {id} was acknowledged but is not stored"
        );
    }
    // Space again: the same service stores again, without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let (status, body) = service.post_alerts(&small_payload(9999, 10, 10)).await;
    assert_eq!(status, 202, "{body}");
    eprintln!(
        "disk full: {} episodes stored, then {refused} notifications refused with 503",
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_ledger_answers_503_and_keeps_what_it_acked() {
    let fs = LoopFs::new(16);
    let service = Service::start_in(fs.path(), ServiceOptions::default()).await;
    let mut stored = Vec::new();
    for n in 0..5 {
        let (status, body) = service.post_alerts(&small_payload(n, 5, 10)).await;
        assert_eq!(status, 202, "{body}");
        stored.extend(
            body["episodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
    }
    fs.fail_read_only();
    for n in 5..10 {
        let (status, body) = service.post_alerts(&small_payload(n, 5, 10)).await;
        assert_eq!(status, 503, "read-only ledger must refuse: {body}");
        assert!(body.to_string().contains("not stored"), "{body}");
    }
    // Without a token: only "ledger not writable"; with one (get_json sends it): the details.
    let anonymous = service
        .client
        .get(format!("{}/readyz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 503);
    let anonymous: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(anonymous["error"], "ledger not writable", "{anonymous}");
    assert!(anonymous.get("detail").is_none(), "{anonymous}");
    let (status, body) = service.get_json("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    for id in &stored {
        let (status, _) = service.get_json(&format!("/api/v1/episodes/{id}")).await;
        assert_eq!(
            status, 200,
            "episode {id} acknowledged before the failure is gone"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_kill_9_every_few_seconds_every_episode_once() {
    let storm = Storm {
        payloads: size("CABAL_TRIAGE_CRASH_PAYLOADS", 4),
        per_payload: size("CABAL_TRIAGE_CRASH_PER_PAYLOAD", 25),
        repeats: 2,
        tag: "crash",
    };
    let started = Instant::now();
    let deadline = started + storm_deadline(&storm);
    // Short leases, so that the survivor takes over a killed replica's work quickly.
    let mut cluster = Cluster::start(
        2,
        "crash",
        &[
            ("CABAL_TRIAGE__WORKER__LEASE_SECS", "3"),
            ("CABAL_TRIAGE__DELIVERY__LEASE_SECS", "3"),
            ("CABAL_TRIAGE__DELIVERY__HTTP_TIMEOUT_MS", "700"),
        ],
    )
    .await;
    cluster.add_incidents(&storm);
    let targets = Arc::clone(&cluster.targets);
    let driver = tokio::spawn(async move {
        let stats = drive(&storm, targets, 2, deadline).await;
        (storm, stats)
    });
    let mut kills = 0;
    while !driver.is_finished() || kills < 3 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let victim = kills % 2;
        cluster.kill(victim);
        kills += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.restart(victim).await;
        assert!(
            Instant::now() < deadline,
            "storm did not finish under crashes"
        );
    }
    let (storm, stats) = driver.await.unwrap();
    // Keep killing while the backlog drains: crashes mid-triage and mid-delivery.
    let drain_kills = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            tokio::time::sleep(Duration::from_millis(3000)).await;
            let victim = kills % 2;
            cluster.kill(victim);
            kills += 1;
            cluster.restart(victim).await;
        }
    });
    let _ = drain_kills.await;
    cluster.assert_exactly_once(&storm, deadline).await;
    let states = cluster.states(storm.payloads * storm.per_payload).await;
    eprintln!(
        "crash: {} alerts, {kills} kill -9, done after {:.1} s; posts {stats:?}; states {states:?}",
        storm.alerts(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        states.get("triaged").copied(),
        Some((storm.payloads * storm.per_payload) as u64),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dependencies_failing_then_back_deliveries_complete_once() {
    let storm = Storm {
        payloads: 2,
        per_payload: 5,
        repeats: 1,
        tag: "deps",
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(200);
    let cluster = Cluster::start(2, "deps", &[]).await;
    cluster.add_incidents(&storm);
    // Slack rate-limits every post and PagerDuty fails every note for a while; meanwhile
    // DynamoDB (dynalite) stops answering altogether.
    let slack_back = Instant::now() + SLACK_RATE_LIMITED;
    cluster.slack.fail_until(
        "chat.postMessage",
        fake_slack::Scripted::RateLimited {
            retry_after_secs: 2,
        },
        slack_back,
    );
    // PagerDuty answers 500 to the first notes (whenever the first verdicts come) and for a
    // while after the start.
    let pd_back = Instant::now() + PAGERDUTY_FAILING;
    cluster
        .pd
        .fail_until("notes_post", fake_pagerduty::Scripted::Status(500), pd_back);
    for _ in 0..4 {
        cluster
            .pd
            .script("notes_post", fake_pagerduty::Scripted::Status(500));
    }
    let first_half = Storm {
        payloads: storm.payloads / 2,
        ..storm
    };
    let stats = drive(&first_half, Arc::clone(&cluster.targets), 2, deadline).await;
    cluster.dynamo.pause();
    let paused = Instant::now();
    let during_pause = async {
        let targets = Arc::clone(&cluster.targets);
        let body = storm.body(storm.payloads - 1);
        let base = targets.lock().unwrap()[0].clone().unwrap();
        reqwest::Client::new()
            .post(format!("{base}/api/v1/alerts"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .timeout(Duration::from_secs(40))
            .send()
            .await
    };
    // Scrapes while the ledger is unreachable still answer in time (the read goes on behind
    // them), and once the read has failed they say so.
    let replica_base = cluster.replicas[0].as_ref().unwrap().base.clone();
    let failure_counted = |text: &str| {
        text.lines().any(|line| {
            line.starts_with("cabal_triage_ledger_stats_failures_total ") && !line.ends_with(" 0")
        })
    };
    let scraping = async {
        let mut scrapes = 0;
        loop {
            let scrape_started = Instant::now();
            let scrape = reqwest::get(format!("{replica_base}/metrics"))
                .await
                .unwrap();
            let scrape_took = scrape_started.elapsed();
            assert_eq!(scrape.status(), 200);
            let text = scrape.text().await.unwrap();
            scrapes += 1;
            assert!(
                scrape_took < Duration::from_secs(8),
                "/metrics took {scrape_took:?} with the ledger unreachable"
            );
            if failure_counted(&text) {
                break;
            }
            assert!(
                paused.elapsed() < DYNAMO_PAUSED,
                "the failed ledger read is counted while DynamoDB is unreachable \
                 ({scrapes} scrapes):\n{text}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!(
            "ledger read failure counted after {scrapes} scrapes, {:?} into the pause",
            paused.elapsed()
        );
    };
    // Both at once, from the start of the pause: the webhook's write and the scrapes' read each
    // take the SDK's operation timeout to fail.
    let (during_pause, ()) = tokio::join!(during_pause, scraping);
    let during_pause = during_pause.expect("an answer within 40 s");
    assert_eq!(
        during_pause.status().as_u16(),
        503,
        "with DynamoDB unreachable the webhook answers 503 (Alertmanager retries)"
    );
    // It says what went wrong with DynamoDB, and no advice meant for SQLite.
    let said = during_pause.text().await.unwrap();
    assert!(
        said.contains("DynamoDB") && !said.contains("disk space"),
        "{said}"
    );
    tokio::time::sleep(DYNAMO_PAUSED.saturating_sub(paused.elapsed())).await;
    cluster.dynamo.resume();
    let rest = drive(&storm, Arc::clone(&cluster.targets), 2, deadline).await;
    cluster.assert_exactly_once(&storm, deadline).await;
    assert!(Instant::now() >= slack_back && Instant::now() >= pd_back);
    // The failures are on record: the delivery rows carry the attempts and the last error.
    let ids = storm.episode_ids();
    let service = cluster.replicas[0].as_ref().unwrap();
    let detail = service.episode(&ids[0]).await;
    let rows = detail["deliveries"].as_array().unwrap().clone();
    let slack_started = rows
        .iter()
        .find(|r| r["destination"] == "slack" && r["kind"] == "started")
        .expect("slack row");
    assert!(slack_started["attempts"].as_u64().unwrap() > 1, "{rows:?}");
    assert!(
        slack_started["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("429")
            || slack_started["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("rate"),
        "{rows:?}"
    );
    let mut pagerduty_retried = 0;
    for id in &ids {
        let detail = service.episode(id).await;
        for row in detail["deliveries"].as_array().unwrap() {
            if row["destination"] == "pagerduty" {
                assert_eq!(row["state"], "delivered", "{detail}");
                if row["attempts"].as_u64().unwrap() > 1
                    && row["last_error"].as_str().unwrap_or("").contains("500")
                {
                    pagerduty_retried += 1;
                }
            }
        }
    }
    assert!(
        pagerduty_retried > 0,
        "no PagerDuty delivery recorded its 500 and was retried"
    );
    eprintln!(
        "dependencies: first half {stats:?}, all {rest:?}; every episode annotated once after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
