//! The AWS probes of the IMAPAuthFailureSpike and ContainerRestartLoop runbooks against moto in
//! server mode, seeded by `support/seed_moto.py` (`imap_auth`, `restart_loop`), and against the
//! fake ECS endpoint (`support/fake_aws.rs`) and a fake EC2 answer for what moto does not
//! implement.
//!
//! What moto gives and what it does not (moto 5.2):
//! - ENIs: id, description, requester, security groups, every private address (secondary ones
//!   too) and the `addresses.private-ip-address` filter; **not** `InterfaceType: lambda` (moto
//!   accepts the parameter and answers `interface` for every ENI), so against moto a Lambda ENI
//!   shows only in its description; the `lambda` type is read from an answer in EC2's own XML,
//!   served by a few lines of axum in this file (a Lambda ENI, an instance's).
//! - SSM DescribeParameters: name filter, version, last modified time.
//! - ECS: service counts and deployments (no events), task definitions' images (no
//!   `registeredAt`), container instances (status, agent, registered and remaining CPU/memory),
//!   stopped tasks with their stopped reason and containers (exit code 0 always; no `stopCode`,
//!   no `stoppedAt`; ListTasks ignores `serviceName`). The fake ECS covers service events,
//!   stop codes and times, non-zero exit codes, container reasons, registration times, a
//!   disconnected agent and ListContainerInstances paging.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use cabal_triage::aws::probes::{AwsImapAuthProbe, AwsServiceProbe};
use cabal_triage::aws::AwsClients;
use cabal_triage::config::Config;
use cabal_triage::probe::service::ErrorLogQuery;
use cabal_triage::probe::snapshot::{Resources, Window};
use cabal_triage::probe::{ImapAuthProbe, ServiceProbe};
use cabal_triage::timing::Deadline;
use serde_json::{json, Value};
use support::aws_front::AwsFront;
use support::fake_aws::{aws_error, FakeAws, FakeEcs as EcsControlPlane};
use support::moto::Moto;
use time::OffsetDateTime;

fn now_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn config_for(endpoint: &str) -> Config {
    let mut config = Config::default();
    config.aws.region = Some("us-east-1".into());
    config.aws.endpoint_url = Some(endpoint.to_string());
    config.probes.log_page_limit = 10;
    config
}

async fn clients(config: &Config) -> AwsClients {
    AwsClients::load(
        &config.aws,
        Duration::from_secs(config.probes.aws_connect_timeout_secs),
        Some(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "tests",
        ))),
    )
    .await
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(20))
}

fn last_30_min(at: OffsetDateTime) -> Window {
    Window {
        from: at - Duration::from_secs(1800),
        to: at,
    }
}

fn near(t: Option<OffsetDateTime>, expected: OffsetDateTime, slack: Duration) -> bool {
    t.is_some_and(|t| (t - expected).unsigned_abs() <= slack)
}

/// An ECS control plane with no task: the front needs one, these tests call no ListTasks.
fn empty_control_plane() -> EcsControlPlane {
    EcsControlPlane {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        services: BTreeMap::new(),
        page_size: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_auth_probe_reads_login_lines_interfaces_and_parameter_metadata_from_moto() {
    let moto = Moto::start();
    let at = OffsetDateTime::now_utc();
    let seeded = moto.seed("imap_auth", now_ms(at));
    // Through the recording front, to see every action the probe sends.
    let front = AwsFront::start(
        &moto.endpoint,
        "http://127.0.0.1:9",
        empty_control_plane(),
        Duration::ZERO,
    )
    .await;
    let config = config_for(&front.endpoint);
    let clients = clients(&config).await;
    let probe = AwsImapAuthProbe::new(&clients, &config);

    // Login lines: every page (10 per page), oldest first, inside the window.
    let window = last_30_min(at);
    let lines = probe
        .login_lines("/ecs/cabal-imap", window, 5000, deadline())
        .await
        .unwrap();
    let failures = lines
        .iter()
        .filter(|l| l.message.contains("(auth failed") && l.message.contains("rip=10.64.40.17"))
        .count();
    assert_eq!(failures as u64, seeded["failures"].as_u64().unwrap());
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.message.contains("Login: user=<dana>"))
            .count(),
        5
    );
    assert!(lines.iter().any(|l| l.message.contains("[sync-users]")));
    assert_eq!(lines.len(), 26);
    assert!(lines.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert!(lines
        .iter()
        .all(|l| l.timestamp >= window.from_ms() && l.timestamp <= window.to_ms()));
    assert!(lines
        .iter()
        .all(|l| l.log_stream == "imap/imap/9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"));
    let filter_calls = front
        .calls()
        .iter()
        .filter(|c| c.action == "logs:FilterLogEvents")
        .count();
    assert_eq!(filter_calls, 3, "26 lines at 10 per page");
    // The cap stops the paging.
    let capped = probe
        .login_lines("/ecs/cabal-imap", window, 12, deadline())
        .await
        .unwrap();
    assert_eq!(capped[..], lines[..12]);

    // Interfaces: the Lambda's (both of its addresses), the intruder's instance; an address no
    // interface holds is absent.
    let expected = &seeded["network_interfaces"];
    let ips: Vec<IpAddr> = ["10.64.11.23", "10.64.11.24", "10.64.40.17", "10.64.99.99"]
        .iter()
        .map(|ip| ip.parse().unwrap())
        .collect();
    let found = probe.network_interfaces(&ips, deadline()).await.unwrap();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["10.64.11.23", "10.64.11.24", "10.64.40.17"]
    );
    for (ip, eni) in &found {
        let e = &expected[ip.as_str()];
        assert_eq!(eni.id, e["id"].as_str().unwrap(), "{ip}");
        assert_eq!(eni.interface_type.as_deref(), e["interface_type"].as_str());
        assert_eq!(eni.description.as_deref(), e["description"].as_str());
        assert_eq!(eni.requester_id.as_deref(), e["requester_id"].as_str());
        assert_eq!(
            eni.groups,
            e["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(
        found["10.64.11.23"].id,
        seeded["lambda_eni"].as_str().unwrap()
    );
    assert_eq!(found["10.64.11.23"], found["10.64.11.24"]);
    assert_eq!(
        found["10.64.11.23"].description.as_deref(),
        Some("AWS Lambda VPC ENI-cabal-list_messages-1a2b3c4d")
    );
    assert_eq!(found["10.64.40.17"].groups, ["cabal-ecs-instance-sg"]);
    assert_ne!(found["10.64.40.17"].id, found["10.64.11.23"].id);

    // 450 addresses (the three and 447 nobody holds): three calls of at most 200, same answer.
    let before = front.calls().len();
    let many: Vec<IpAddr> = ips[..3]
        .iter()
        .copied()
        .chain((0..447u32).map(|k| IpAddr::from([10, 65, (k / 250) as u8, (k % 250) as u8 + 1])))
        .collect();
    let found_many = probe.network_interfaces(&many, deadline()).await.unwrap();
    assert_eq!(found_many, found);
    let eni_calls = front.calls()[before..]
        .iter()
        .filter(|c| c.action == "ec2:DescribeNetworkInterfaces")
        .count();
    assert_eq!(eni_calls, 3);

    // The parameter's metadata: version 2 (rewritten once), its last modified time; an exact
    // name (the decoy it prefixes is not it), None for a name that does not exist.
    let parameter = probe
        .parameter("/cabal/master_password", deadline())
        .await
        .unwrap()
        .expect("the parameter exists");
    assert_eq!(parameter.version, seeded["parameter"]["version"].as_i64());
    assert_eq!(parameter.version, Some(2));
    let modified = seeded["parameter"]["last_modified"].as_f64().unwrap();
    let modified = OffsetDateTime::from_unix_timestamp_nanos((modified * 1e9) as i128).unwrap();
    assert!(
        near(parameter.last_modified, modified, Duration::from_millis(5)),
        "{:?} vs {modified}",
        parameter.last_modified
    );
    assert_eq!(
        probe.parameter("/cabal/master", deadline()).await.unwrap(),
        None
    );
    assert_eq!(
        probe
            .parameter("/cabal/no_such_parameter", deadline())
            .await
            .unwrap(),
        None
    );
    // The value is never asked for: no GetParameter(s) of any kind went out, and no secret is in
    // anything the probe returned.
    let actions: std::collections::BTreeSet<String> =
        front.calls().into_iter().map(|c| c.action).collect();
    assert_eq!(
        actions.into_iter().collect::<Vec<_>>(),
        [
            "AmazonSSM:DescribeParameters",
            "ec2:DescribeNetworkInterfaces",
            "logs:FilterLogEvents"
        ]
    );
    let returned = format!("{lines:?}{found:?}{parameter:?}");
    for secret in seeded["secret_values"].as_array().unwrap() {
        assert!(!returned.contains(secret.as_str().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_probe_reads_services_definitions_instances_and_stopped_tasks_from_moto() {
    let moto = Moto::start();
    let at = OffsetDateTime::now_utc();
    let seeded = moto.seed("restart_loop", now_ms(at));
    let config = config_for(&moto.endpoint);
    let clients = clients(&config).await;
    let probe = AwsServiceProbe::new(&clients, &config);

    // Every configured service (14: two DescribeServices calls); only cabal-imap exists.
    let names = config.services.names();
    assert!(names.len() > 10);
    let services = probe.describe_services(&names, deadline()).await.unwrap();
    assert_eq!(services.keys().collect::<Vec<_>>(), ["cabal-imap"]);
    let imap = &services["cabal-imap"];
    let expected = &seeded["service"];
    assert_eq!(imap.desired, expected["desired"].as_i64());
    assert_eq!(imap.desired, Some(2));
    assert_eq!(imap.running, expected["running"].as_i64());
    assert_eq!(imap.pending, expected["pending"].as_i64());
    assert_eq!(imap.deployments.len(), 1);
    let deployment = &imap.deployments[0];
    assert_eq!(
        deployment.task_definition,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/cabal-imap:2"
    );
    assert_eq!(deployment.status.as_deref(), Some("PRIMARY"));
    assert_eq!(
        deployment.rollout_state.as_deref(),
        expected["deployments"][0]["rollout_state"].as_str()
    );
    assert!(near(deployment.created_at, at, Duration::from_secs(120)));
    assert!(imap.events.is_empty(), "moto keeps no service events");

    // The current and previous revisions' images.
    for revision in ["cabal-imap:1", "cabal-imap:2"] {
        let definition = probe.task_definition(revision, deadline()).await.unwrap();
        assert_eq!(
            definition.images,
            BTreeMap::from([(
                "imap".to_string(),
                seeded["images"][revision].as_str().unwrap().to_string()
            )]),
            "{revision}"
        );
    }
    let missing = probe
        .task_definition("cabal-imap:9", deadline())
        .await
        .unwrap_err();
    assert!(
        missing.message.starts_with("ecs:DescribeTaskDefinition"),
        "{}",
        missing.message
    );
    assert!(
        missing.message.contains("cabal-imap:9"),
        "{}",
        missing.message
    );

    // Container instances: both, with status, agent, registered and free CPU/memory (the running
    // imap task holds 256 CPU and 512 MiB of the first).
    let instances = probe.container_instances(deadline()).await.unwrap();
    assert_eq!(instances.len(), 2);
    let by_id: BTreeMap<&str, _> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
    for (id, e) in seeded["instances"].as_object().unwrap() {
        let i = by_id[id.as_str()];
        assert_eq!(i.ec2_instance_id.as_deref(), e["ec2_instance_id"].as_str());
        assert_eq!(i.status.as_deref(), e["status"].as_str());
        assert_eq!(i.agent_connected, e["agent_connected"].as_bool());
        let resources = |r: &Value| Resources {
            cpu: r["CPU"].as_i64(),
            memory: r["MEMORY"].as_i64(),
        };
        assert_eq!(i.registered, resources(&e["registered"]), "{id}");
        assert_eq!(i.remaining, resources(&e["remaining"]), "{id}");
    }
    let active = instances
        .iter()
        .find(|i| i.status.as_deref() == Some("ACTIVE"))
        .unwrap();
    assert_eq!(
        (
            active.registered.cpu.unwrap() - active.remaining.cpu.unwrap(),
            active.registered.memory.unwrap() - active.remaining.memory.unwrap()
        ),
        (256, 512)
    );
    assert!(instances
        .iter()
        .any(|i| i.status.as_deref() == Some("DRAINING")));

    // Stopped tasks: the two imap tasks, with the stopped reason and their container's name,
    // image and exit code; not the running one, not smtp-in's (moto ignores serviceName).
    let stopped = probe
        .stopped_tasks("cabal-imap", 5, deadline())
        .await
        .unwrap();
    let mut ids: Vec<&str> = stopped.iter().map(|t| t.id.as_str()).collect();
    ids.sort();
    let expected_ids: Vec<&str> = seeded["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(ids, expected_ids);
    for task in &stopped {
        assert_eq!(
            task.stopped_reason.as_deref(),
            Some("Essential container in task exited")
        );
        assert_eq!(
            task.task_definition.as_deref(),
            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/cabal-imap:2")
        );
        assert_eq!(task.containers.len(), 1);
        let container = &task.containers[0];
        assert_eq!(container.name, "imap");
        assert_eq!(
            container.image.as_deref(),
            seeded["images"]["cabal-imap:2"].as_str()
        );
        assert_eq!(container.exit_code, Some(0));
    }
    let one = probe
        .stopped_tasks("cabal-imap", 1, deadline())
        .await
        .unwrap();
    assert_eq!(one.len(), 1);

    // The service's error lines: every page, in the window (moto ignores the `?` pattern: all
    // nine lines of the group come back, the six Dovecot errors among them).
    let window = last_30_min(at);
    let lines = probe
        .error_lines(
            ErrorLogQuery {
                service: "cabal-imap",
                log_group: "/ecs/cabal-imap",
                window,
                filter_pattern: &config.restart_loop.log_filter_pattern,
                max_events: 200,
            },
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.message.contains("Error") || l.message.contains("Fatal"))
            .count() as u64,
        seeded["error_lines"].as_u64().unwrap()
    );
    assert_eq!(lines.len(), 9);
    assert!(lines
        .iter()
        .all(|l| l.timestamp >= window.from_ms() && l.timestamp <= window.to_ms()));
    let capped = probe
        .error_lines(
            ErrorLogQuery {
                service: "cabal-imap",
                log_group: "/ecs/cabal-imap",
                window,
                filter_pattern: &config.restart_loop.log_filter_pattern,
                max_events: 4,
            },
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(capped[..], lines[..4]);
}

/// Seconds since the epoch, as the AWS JSON protocol sends timestamps.
fn epoch(rfc3339: &str) -> f64 {
    let t = OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap();
    t.unix_timestamp() as f64
}

fn at(rfc3339: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()
}

const TASKS: &str = "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail";
const INSTANCES: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/cabal-mail";
const DEFINITIONS: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition";

/// What moto lacks, as ECS answers it.
fn fake_ecs_answer(action: &str, body: &Value) -> (u16, Value) {
    match action {
        "DescribeServices" => {
            // Twelve events, newest first (the probe keeps ten).
            let events: Vec<Value> = (0..12)
                .map(|k| {
                    json!({"id": format!("e{k}"),
                           "createdAt": epoch("2026-12-01T03:00:00Z") - 60.0 * k as f64,
                           "message": if k == 0 {
                               "(service cabal-imap) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance 0a1b) has insufficient memory available.".to_string()
                           } else {
                               format!("(service cabal-imap) has started 1 tasks: (task t{k}).")
                           }})
                })
                .collect();
            let services: Vec<Value> = body["services"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| *s == "cabal-imap")
                .map(|_| {
                    json!({"serviceName": "cabal-imap", "desiredCount": 2, "runningCount": 1,
                           "pendingCount": 1, "events": events,
                           "deployments": [
                               {"id": "ecs-svc/2", "status": "PRIMARY",
                                "taskDefinition": format!("{DEFINITIONS}/cabal-imap:8"),
                                "rolloutState": "IN_PROGRESS",
                                "createdAt": epoch("2026-12-01T02:30:00Z")},
                               {"id": "ecs-svc/1", "status": "ACTIVE",
                                "taskDefinition": format!("{DEFINITIONS}/cabal-imap:7"),
                                "rolloutState": "COMPLETED",
                                "createdAt": epoch("2026-11-20T10:00:00Z")}]})
                })
                .collect();
            let failures: Vec<Value> = body["services"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| *s != "cabal-imap")
                .map(|s| json!({"arn": s, "reason": "MISSING"}))
                .collect();
            (200, json!({"services": services, "failures": failures}))
        }
        "ListTasks" => (200, {
            let arns = ["a1", "b2", "c3", "d4"].map(|id| format!("{TASKS}/{id}"));
            json!({ "taskArns": arns })
        }),
        "DescribeTasks" => {
            let task = |id: &str,
                        group: &str,
                        stopped_at: Option<&str>,
                        code: &str,
                        reason: &str,
                        exit: Value,
                        container_reason: Value| {
                let mut t = json!({"taskArn": format!("{TASKS}/{id}"), "group": group,
                                   "taskDefinitionArn": format!("{DEFINITIONS}/cabal-imap:8"),
                                   "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                                   "stopCode": code, "stoppedReason": reason,
                                   "containers": [{"name": "imap", "exitCode": exit,
                                                   "reason": container_reason,
                                                   "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/cabal-imap:sha-8888"}]});
                if let Some(s) = stopped_at {
                    t["stoppedAt"] = json!(epoch(s));
                }
                t
            };
            (
                200,
                json!({"tasks": [
                    task("a1", "service:cabal-imap", Some("2026-12-01T02:50:00Z"), "EssentialContainerExited",
                         "Essential container in task exited", json!(137),
                         json!("OutOfMemoryError: Container killed due to memory usage")),
                    task("b2", "service:cabal-imap", None, "TaskFailedToStart",
                         "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
                         Value::Null, Value::Null),
                    task("c3", "service:cabal-imap", Some("2026-12-01T02:55:00Z"), "EssentialContainerExited",
                         "Essential container in task exited", json!(1), Value::Null),
                    task("d4", "service:cabal-smtp-in", Some("2026-12-01T02:59:00Z"), "UserInitiated",
                         "Scaling activity initiated by (deployment ecs-svc/9)", json!(0), Value::Null),
                ], "failures": []}),
            )
        }
        "DescribeTaskDefinition" => (
            200,
            json!({"taskDefinition": {"family": "cabal-imap", "revision": 8,
                       "registeredAt": epoch("2026-12-01T02:29:00Z"),
                       "containerDefinitions": [
                           {"name": "imap", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/cabal-imap:sha-8888"},
                           {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32"}]}}),
        ),
        "ListContainerInstances" => match body["nextToken"].as_str() {
            None => (
                200,
                json!({"containerInstanceArns": [format!("{INSTANCES}/ci-1")], "nextToken": "p2"}),
            ),
            Some("p2") => (
                200,
                json!({"containerInstanceArns": [format!("{INSTANCES}/ci-2")]}),
            ),
            Some(other) => aws_error(400, "InvalidParameterException", other),
        },
        "DescribeContainerInstances" => {
            let resources = |cpu: i64, memory: i64| {
                json!([{"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                       {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
                       {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]}])
            };
            (
                200,
                json!({"containerInstances": [
                    {"containerInstanceArn": format!("{INSTANCES}/ci-1"), "ec2InstanceId": "i-0aaa",
                     "status": "ACTIVE", "agentConnected": true,
                     "remainingResources": resources(128, 100),
                     "registeredResources": resources(2048, 3904)},
                    {"containerInstanceArn": format!("{INSTANCES}/ci-2"), "ec2InstanceId": "i-0bbb",
                     "status": "ACTIVE", "agentConnected": false,
                     "remainingResources": resources(2048, 3904),
                     "registeredResources": resources(2048, 3904)}], "failures": []}),
            )
        }
        other => aws_error(400, "UnknownOperationException", other),
    }
}

#[tokio::test]
async fn service_probe_reads_what_moto_lacks_from_the_fake_ecs() {
    let fake = FakeAws::start(Arc::new(fake_ecs_answer)).await;
    let mut config = Config::default();
    config.aws.region = Some("us-east-1".into());
    config.aws.endpoint_url = Some(fake.endpoint.clone());
    let clients = clients(&config).await;
    let probe = AwsServiceProbe::new(&clients, &config);

    // Service events (ten kept, newest first) and both deployments.
    let services = probe
        .describe_services(&["cabal-imap".into(), "cabal-ghost".into()], deadline())
        .await
        .unwrap();
    assert_eq!(services.keys().collect::<Vec<_>>(), ["cabal-imap"]);
    let imap = &services["cabal-imap"];
    assert_eq!(
        (imap.desired, imap.running, imap.pending),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(imap.events.len(), 10);
    assert!(imap.events[0].message.contains(
        "was unable to place a task because no container instance met all of its requirements"
    ));
    assert_eq!(imap.events[0].created_at, at("2026-12-01T03:00:00Z"));
    assert_eq!(imap.events[9].created_at, at("2026-12-01T02:51:00Z"));
    assert_eq!(
        imap.events[9].message,
        "(service cabal-imap) has started 1 tasks: (task t9)."
    );
    let deployments: Vec<_> = imap
        .deployments
        .iter()
        .map(|d| {
            (
                d.task_definition.rsplit('/').next().unwrap(),
                d.status.as_deref(),
                d.rollout_state.as_deref(),
                d.created_at,
            )
        })
        .collect();
    assert_eq!(
        deployments,
        [
            (
                "cabal-imap:8",
                Some("PRIMARY"),
                Some("IN_PROGRESS"),
                at("2026-12-01T02:30:00Z")
            ),
            (
                "cabal-imap:7",
                Some("ACTIVE"),
                Some("COMPLETED"),
                at("2026-11-20T10:00:00Z")
            ),
        ]
    );

    // Stopped tasks: stop codes and times, non-zero exit codes, the container's reason; newest
    // first, the one without a stop time last, another service's task left out.
    let stopped = probe
        .stopped_tasks("cabal-imap", 5, deadline())
        .await
        .unwrap();
    let summary: Vec<_> = stopped
        .iter()
        .map(|t| {
            (
                t.id.as_str(),
                t.stop_code.as_deref(),
                t.stopped_at,
                t.containers[0].exit_code,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "c3",
                Some("EssentialContainerExited"),
                at("2026-12-01T02:55:00Z"),
                Some(1)
            ),
            (
                "a1",
                Some("EssentialContainerExited"),
                at("2026-12-01T02:50:00Z"),
                Some(137)
            ),
            ("b2", Some("TaskFailedToStart"), None, None),
        ]
    );
    assert_eq!(
        stopped[1].containers[0].reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
    assert_eq!(
        stopped[2].stopped_reason.as_deref(),
        Some("CannotPullContainerError: pull image manifest has been retried 5 time(s)")
    );
    assert_eq!(
        stopped[0].containers[0].image.as_deref(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/cabal-imap:sha-8888")
    );
    let two = probe
        .stopped_tasks("cabal-imap", 2, deadline())
        .await
        .unwrap();
    assert_eq!(two[..], stopped[..2]);
    let lists = fake.requests_of("ListTasks");
    assert_eq!(lists.len(), 2);
    for (request, limit) in lists.iter().zip([5, 2]) {
        assert_eq!(request["desiredStatus"], "STOPPED");
        assert_eq!(request["serviceName"], "cabal-imap");
        assert_eq!(request["cluster"], "cabal-mail");
        assert_eq!(request["maxResults"], limit);
    }

    // The task definition's registration time and every container's image.
    let definition = probe
        .task_definition("cabal-imap:8", deadline())
        .await
        .unwrap();
    assert_eq!(definition.registered_at, at("2026-12-01T02:29:00Z"));
    assert_eq!(
        definition.images.keys().collect::<Vec<_>>(),
        ["imap", "log-router"]
    );

    // Both ListContainerInstances pages, then one DescribeContainerInstances; the second
    // instance's agent is disconnected.
    let instances = probe.container_instances(deadline()).await.unwrap();
    let summary: Vec<_> = instances
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.ec2_instance_id.as_deref(),
                i.agent_connected,
                i.remaining,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "ci-1",
                Some("i-0aaa"),
                Some(true),
                Resources {
                    cpu: Some(128),
                    memory: Some(100)
                }
            ),
            (
                "ci-2",
                Some("i-0bbb"),
                Some(false),
                Resources {
                    cpu: Some(2048),
                    memory: Some(3904)
                }
            ),
        ]
    );
    assert_eq!(fake.requests_of("ListContainerInstances").len(), 2);
    let described = fake.requests_of("DescribeContainerInstances");
    assert_eq!(described.len(), 1);
    assert_eq!(
        described[0]["containerInstances"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        fake.requests_of("DescribeTaskDefinition")[0]["taskDefinition"],
        "cabal-imap:8"
    );
    assert_eq!(
        fake.requests_of("DescribeServices")[0]["cluster"],
        "cabal-mail"
    );
}

/// DescribeNetworkInterfaces as EC2 answers for a Lambda's ENI (`interfaceType` `lambda`, which
/// moto cannot give) that also holds an address nobody asked about, and an instance's ENI.
const LAMBDA_ENIS_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
  <networkInterfaceSet>
    <item>
      <networkInterfaceId>eni-01a1b2c3d4e5f6a7b8</networkInterfaceId>
      <subnetId>subnet-0a1b</subnetId>
      <vpcId>vpc-0a1b</vpcId>
      <description>AWS Lambda VPC ENI-cabal-list_messages-1a2b3c4d</description>
      <ownerId>123456789012</ownerId>
      <requesterId>AROA1234567890EXAMPL:cabal-list_messages</requesterId>
      <requesterManaged>true</requesterManaged>
      <status>in-use</status>
      <interfaceType>lambda</interfaceType>
      <privateIpAddress>10.64.11.23</privateIpAddress>
      <groupSet>
        <item><groupId>sg-0aaa</groupId><groupName>cabal-lambda-sg</groupName></item>
      </groupSet>
      <privateIpAddressesSet>
        <item><privateIpAddress>10.64.11.23</privateIpAddress><primary>true</primary></item>
        <item><privateIpAddress>10.64.11.99</privateIpAddress><primary>false</primary></item>
      </privateIpAddressesSet>
    </item>
    <item>
      <networkInterfaceId>eni-0c9d8e7f6a5b4c3d2</networkInterfaceId>
      <description></description>
      <requesterManaged>false</requesterManaged>
      <status>in-use</status>
      <interfaceType>interface</interfaceType>
      <privateIpAddress>10.64.40.17</privateIpAddress>
      <groupSet>
        <item><groupId>sg-0bbb</groupId><groupName>cabal-ecs-instance-sg</groupName></item>
        <item><groupId>sg-0ccc</groupId><groupName>default</groupName></item>
      </groupSet>
      <privateIpAddressesSet>
        <item><privateIpAddress>10.64.40.17</privateIpAddress><primary>true</primary></item>
      </privateIpAddressesSet>
    </item>
  </networkInterfaceSet>
</DescribeNetworkInterfacesResponse>"#;

#[tokio::test]
async fn a_lambda_eni_is_read_as_lambda_from_ec2s_answer() {
    let requests: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let recorded = requests.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().unwrap().push(body);
            (
                axum::http::StatusCode::OK,
                [("content-type", "text/xml;charset=UTF-8")],
                LAMBDA_ENIS_XML,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = Config::default();
    config.aws.region = Some("us-east-1".into());
    config.aws.endpoint_url = Some("http://127.0.0.1:9".into());
    config.aws.endpoints.insert("ec2".into(), endpoint);
    let clients = clients(&config).await;
    let ips: Vec<IpAddr> = ["10.64.11.23", "10.64.40.17"]
        .iter()
        .map(|ip| ip.parse().unwrap())
        .collect();
    let found = AwsImapAuthProbe::new(&clients, &config)
        .network_interfaces(&ips, deadline())
        .await
        .unwrap();
    server.abort();
    // The address the Lambda ENI also holds was not asked about: not in the answer.
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["10.64.11.23", "10.64.40.17"]
    );
    let lambda = &found["10.64.11.23"];
    assert_eq!(lambda.id, "eni-01a1b2c3d4e5f6a7b8");
    assert_eq!(lambda.interface_type.as_deref(), Some("lambda"));
    assert_eq!(
        lambda.requester_id.as_deref(),
        Some("AROA1234567890EXAMPL:cabal-list_messages")
    );
    assert_eq!(lambda.groups, ["cabal-lambda-sg"]);
    let instance = &found["10.64.40.17"];
    assert_eq!(instance.interface_type.as_deref(), Some("interface"));
    assert_eq!(instance.requester_id, None);
    assert_eq!(instance.groups, ["cabal-ecs-instance-sg", "default"]);
    // One request, filtered on the two addresses.
    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let form: BTreeMap<String, String> = requests[0]
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(form["Action"], "DescribeNetworkInterfaces");
    assert_eq!(form["Filter.1.Name"], "addresses.private-ip-address");
    assert_eq!(form["Filter.1.Value.1"], "10.64.11.23");
    assert_eq!(form["Filter.1.Value.2"], "10.64.40.17");
}
