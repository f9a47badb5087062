//! The shipped IAM policy (deploy/iam/cabal-triage-policy.json) grants exactly what the probes
//! and the DynamoDB ledger call, on exactly the default names of config/cabal-triage.toml, and
//! nothing else. The ledger's operations are read from its source (every `client.operation()`
//! call in src/ledger/dynamodb), so a new call without its permission fails here.

use std::collections::BTreeSet;

use cabal_triage::config::Config;
use serde_json::Value;

fn policy() -> Value {
    serde_json::from_str(include_str!("../deploy/iam/cabal-triage-policy.json"))
        .expect("the policy is JSON")
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        other => panic!("not a string or list: {other}"),
    }
}

fn statement(sid: &str) -> Value {
    policy()["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
        .clone()
}

#[test]
fn grants_exactly_the_actions_the_probes_call() {
    let policy = policy();
    assert_eq!(policy["Version"], "2012-10-17");
    let mut actions = BTreeSet::new();
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow");
        for a in list(&s["Action"]) {
            assert!(!a.contains('*'), "wildcard action {a}");
            actions.insert(a);
        }
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
    }
    let mut expected: BTreeSet<String> = [
        cabal_triage::aws::logs::FILTER_LOG_EVENTS,
        cabal_triage::aws::logs::DESCRIBE_LOG_STREAMS,
        cabal_triage::aws::ec2::DESCRIBE_INSTANCES,
        cabal_triage::aws::ec2::DESCRIBE_NAT_GATEWAYS,
        cabal_triage::aws::ec2::DESCRIBE_ROUTE_TABLES,
        cabal_triage::aws::ec2::DESCRIBE_SUBNETS,
        cabal_triage::aws::ec2::DESCRIBE_ADDRESSES,
        cabal_triage::aws::ecs::LIST_TASKS,
        cabal_triage::aws::ecs::DESCRIBE_TASKS,
        cabal_triage::aws::ecs_service::DESCRIBE_SERVICES,
        cabal_triage::aws::ecs_service::DESCRIBE_TASK_DEFINITION,
        cabal_triage::aws::ecs_service::LIST_CONTAINER_INSTANCES,
        cabal_triage::aws::ecs_service::DESCRIBE_CONTAINER_INSTANCES,
        cabal_triage::aws::imap_sources::DESCRIBE_NETWORK_INTERFACES,
        cabal_triage::aws::ssm::DESCRIBE_PARAMETERS,
        cabal_triage::aws::exec::starter::EXECUTE_COMMAND,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    expected.extend(ledger_operations().into_values().flatten());
    assert_eq!(actions, expected);
}

/// `GetItem` from `get_item`.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The DynamoDB operations a Rust source calls on an SDK client (`client.get_item()`, also
/// split over lines as `self\n.client\n.get_item()`), as IAM actions.
fn client_calls(source: &str) -> BTreeSet<String> {
    client_calls_of(source, "dynamodb")
}

/// The operations a Rust source calls on an SDK client of `service` (its IAM prefix).
fn client_calls_of(source: &str, service: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("client") {
        rest = &rest[at + "client".len()..];
        let after = rest.trim_start();
        let Some(call) = after.strip_prefix('.') else {
            continue;
        };
        let name: String = call
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        // `Client`'s methods that are not AWS operations.
        let not_an_operation = ["clone", "config"].contains(&name.as_str());
        if !name.is_empty()
            && !not_an_operation
            && call.trim_start()[name.len()..].starts_with("()")
        {
            found.insert(format!("{service}:{}", pascal_case(&name)));
        }
    }
    found
}

/// The ledger's DynamoDB calls by source file (src/ledger/dynamodb/*.rs).
fn ledger_operations() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ledger/dynamodb");
    let mut by_file = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("src/ledger/dynamodb") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            by_file.insert(name, client_calls(&source));
        }
    }
    by_file
}

#[test]
fn the_source_scan_finds_calls_however_they_are_laid_out() {
    let source = "let a = self\n            .client\n            .batch_get_item()\n; client.describe_table().table_name(t); client_calls(x); self.client.clone();";
    let found: Vec<String> = client_calls(source).into_iter().collect();
    assert_eq!(found, ["dynamodb:BatchGetItem", "dynamodb:DescribeTable"]);
    // The scan of the real source sees the calls every ledger needs.
    let all: BTreeSet<String> = ledger_operations().into_values().flatten().collect();
    for operation in ["GetItem", "PutItem", "UpdateItem", "Query", "DescribeTable"] {
        assert!(all.contains(&format!("dynamodb:{operation}")), "{all:?}");
    }
}

#[test]
fn only_the_ledger_talks_to_dynamodb() {
    // The scan above covers src/ledger/dynamodb; no other module may hold a DynamoDB client.
    fn visit(dir: &std::path::Path, offenders: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("src/ledger/dynamodb") {
                    visit(&path, offenders);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path)
                    .unwrap()
                    .contains("aws_sdk_dynamodb")
            {
                offenders.push(path.display().to_string());
            }
        }
    }
    let mut offenders = Vec::new();
    visit(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut offenders,
    );
    assert!(
        offenders.is_empty(),
        "DynamoDB used outside the ledger: {offenders:?}"
    );
}

#[test]
fn ledger_table_statements_grant_exactly_the_ledger_calls_on_its_table_and_indexes() {
    let config = Config::default();
    let table = format!(
        "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/{}",
        config.ledger.table
    );
    let by_file = ledger_operations();
    // Creating the table (table.rs's create_table, with ledger.create_table = true) is a
    // statement of its own, so that operators with Terraform-made tables can leave it out.
    let creation: BTreeSet<String> = ["dynamodb:CreateTable", "dynamodb:UpdateTimeToLive"]
        .into_iter()
        .map(String::from)
        .collect();
    let everything: BTreeSet<String> = by_file.values().flatten().cloned().collect();
    assert!(creation.is_subset(&everything), "{everything:?}");
    let data: BTreeSet<String> = everything.difference(&creation).cloned().collect();

    let ledger = statement("LedgerTable");
    let actions: BTreeSet<String> = list(&ledger["Action"]).into_iter().collect();
    assert_eq!(
        actions, data,
        "LedgerTable must allow every call the ledger makes, no more"
    );
    let resources: BTreeSet<String> = list(&ledger["Resource"]).into_iter().collect();
    let expected: BTreeSet<String> = [table.clone(), format!("{table}/index/*")].into();
    assert_eq!(resources, expected);

    let create = statement("LedgerTableCreationOnlyWithCreateTable");
    let actions: BTreeSet<String> = list(&create["Action"]).into_iter().collect();
    assert_eq!(actions, creation);
    assert_eq!(list(&create["Resource"]), vec![table]);
    for s in [&ledger, &create] {
        assert!(s.get("Condition").is_none());
        for action in list(&s["Action"]) {
            assert!(action.starts_with("dynamodb:") && !action.contains('*'));
        }
    }
}

#[test]
fn resources_are_the_configured_log_groups_cluster_and_containers() {
    let config = Config::default();
    let logs = statement("ReadDeliveryLinesOfTheThreeMailTiers");
    let resources: BTreeSet<String> = list(&logs["Resource"]).into_iter().collect();
    let mut expected = BTreeSet::new();
    for (_, tier) in config.cabalmail.tiers_in_order() {
        let arn = format!(
            "arn:aws:logs:REGION:ACCOUNT_ID:log-group:{}",
            tier.log_group
        );
        expected.insert(format!("{arn}:*"));
        expected.insert(arn);
    }
    assert_eq!(resources, expected);

    let cluster = format!(
        "arn:aws:ecs:REGION:ACCOUNT_ID:cluster/{}",
        config.cabalmail.cluster
    );
    for sid in [
        "ListTasksOfTheMailCluster",
        "DescribeTasksOfTheMailCluster",
        "ExecIntoTheMailContainersOnly",
    ] {
        assert_eq!(
            statement(sid)["Condition"]["ArnEquals"]["ecs:cluster"],
            cluster.as_str(),
            "{sid}"
        );
    }
    let exec = statement("ExecIntoTheMailContainersOnly");
    let containers: BTreeSet<String> =
        list(&exec["Condition"]["StringEquals"]["ecs:container-name"])
            .into_iter()
            .collect();
    let configured: BTreeSet<String> = config
        .cabalmail
        .tiers_in_order()
        .map(|(_, t)| t.container.clone())
        .collect();
    assert_eq!(containers, configured);
    for r in list(&exec["Resource"]) {
        assert!(
            r.starts_with(&cluster)
                || r.starts_with("arn:aws:ecs:REGION:ACCOUNT_ID:task/cabal-mail/")
        );
    }
}

/// Every operation the AWS adapters call on an SDK client is granted: a new call without its
/// permission fails here (the probes' adapters hold every ECS, EC2 and Logs call).
#[test]
fn the_policy_covers_every_call_the_adapters_make() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut granted = BTreeSet::new();
    for s in policy()["Statement"].as_array().unwrap() {
        granted.extend(list(&s["Action"]));
    }
    let mut called = BTreeSet::new();
    for (file, service) in [
        ("src/aws/ecs.rs", "ecs"),
        ("src/aws/ecs_service.rs", "ecs"),
        ("src/aws/ec2.rs", "ec2"),
        ("src/aws/logs.rs", "logs"),
        ("src/aws/imap_sources.rs", "ec2"),
        ("src/aws/ssm.rs", "ssm"),
    ] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let calls = client_calls_of(&source, service);
        assert!(
            !calls.is_empty(),
            "{file}: no call found: the scan is broken"
        );
        called.extend(calls);
    }
    for call in [
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:ListContainerInstances",
        "ecs:DescribeContainerInstances",
        "ecs:ListTasks",
        "ec2:DescribeNetworkInterfaces",
        "ssm:DescribeParameters",
    ] {
        assert!(called.contains(call), "the scan misses {call}: {called:?}");
    }
    let ungranted: Vec<&String> = called.difference(&granted).collect();
    assert!(
        ungranted.is_empty(),
        "calls without a permission: {ungranted:?}"
    );
}

#[test]
fn the_restart_loop_statements_stay_in_the_cluster_and_the_services_log_groups() {
    let config = Config::default();
    let cluster = format!(
        "arn:aws:ecs:REGION:ACCOUNT_ID:cluster/{}",
        config.cabalmail.cluster
    );
    for sid in [
        "DescribeServicesOfTheMailCluster",
        "DescribeContainerInstancesOfTheMailCluster",
    ] {
        assert_eq!(
            statement(sid)["Condition"]["ArnEquals"]["ecs:cluster"],
            cluster.as_str(),
            "{sid}"
        );
    }
    assert_eq!(
        list(&statement("ListContainerInstancesOfTheMailCluster")["Resource"]),
        vec![cluster.clone()]
    );
    // DescribeTaskDefinition has no resource-level permission in IAM: "*", held to the region.
    let definitions = statement("DescribeTaskDefinitionsHasNoResourceLevelScope");
    assert_eq!(list(&definitions["Action"]), ["ecs:DescribeTaskDefinition"]);
    assert_eq!(
        definitions["Condition"]["StringEquals"]["aws:RequestedRegion"],
        "REGION"
    );
    // The error lines: every configured service's log group, the tiers' in their own statement.
    let mut logs: BTreeSet<String> =
        list(&statement("ReadErrorLinesOfTheOtherServices")["Resource"])
            .into_iter()
            .collect();
    logs.extend(list(
        &statement("ReadDeliveryLinesOfTheThreeMailTiers")["Resource"],
    ));
    let mut expected = BTreeSet::new();
    for service in &config.services.0 {
        let arn = format!(
            "arn:aws:logs:REGION:ACCOUNT_ID:log-group:{}",
            service.log_group
        );
        expected.insert(format!("{arn}:*"));
        expected.insert(arn);
    }
    assert_eq!(logs, expected);
}

#[test]
fn the_imap_statements_read_metadata_only() {
    // Neither call supports resource-level permissions in IAM: "*", held to the region.
    for (sid, action) in [
        ("IdentifyImapLoginSources", "ec2:DescribeNetworkInterfaces"),
        (
            "MasterPasswordParameterMetadataHasNoResourceLevelScope",
            "ssm:DescribeParameters",
        ),
    ] {
        let s = statement(sid);
        assert_eq!(list(&s["Action"]), [action]);
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:RequestedRegion"],
            "REGION"
        );
    }
    // Never a parameter's value.
    let text = include_str!("../deploy/iam/cabal-triage-policy.json");
    assert!(!text.contains("ssm:GetParameter"));
}
