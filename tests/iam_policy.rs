//! The shipped IAM policy (deploy/iam/cabal-triage-policy.json) grants exactly what the probes
//! call, on exactly the default names of config/cabal-triage.toml, and nothing else.

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
    let expected: BTreeSet<String> = [
        cabal_triage::aws::logs::FILTER_LOG_EVENTS,
        cabal_triage::aws::ec2::DESCRIBE_INSTANCES,
        cabal_triage::aws::ec2::DESCRIBE_NAT_GATEWAYS,
        cabal_triage::aws::ecs::LIST_TASKS,
        cabal_triage::aws::ecs::DESCRIBE_TASKS,
        "ecs:ExecuteCommand",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(actions, expected);
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
