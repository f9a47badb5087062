//! The restart-loop verdict, pure, on typed evidence (`docs/runbooks.md` states each rule):
//!
//! 1. ECS says it is "unable to place a task" -> `capacity`, `scale-cluster`.
//! 2. "failed to chown" in the error lines or the stopped containers' reasons ->
//!    `efs-permission`, `fix-efs-ownership`.
//! 3. `restart_loop.cluster_wide_services` configured services or more below their desired
//!    count, or no container instance with a connected agent -> `cluster-wide`,
//!    `investigate-cluster`.
//! 4. Tasks crash (essential container exited, non-zero exit codes) and the current task
//!    definition's image differs from the previous revision's -> `image-regression`, `rollback`
//!    (with the configured command filled with the previous tag).
//! 5. Tasks crash, same image -> `crash-loop`, `investigate`.
//! 6. Otherwise `unknown`, `investigate`.

use super::evidence::RestartEvidence;
use crate::config::{Config, RestartLoopConfig};
use crate::report::{Action, Confidence, RestartLoopCause, RestartLoopVerdict};
use crate::runbook::next_command::is_word;

const UNABLE_TO_PLACE: &str = "unable to place a task";
const FAILED_TO_CHOWN: &str = "failed to chown";
const ESSENTIAL_EXITED: &str = "essential container in task exited";

fn contains(text: &str, needle: &str) -> bool {
    text.to_ascii_lowercase().contains(needle)
}

/// ECS's events say no instance could take the task.
pub fn unable_to_place(e: &RestartEvidence) -> bool {
    e.state
        .iter()
        .flat_map(|s| &s.events)
        .any(|ev| contains(&ev.message, UNABLE_TO_PLACE))
}

/// The error lines or the stopped containers say `failed to chown`.
pub fn chown_failure(e: &RestartEvidence) -> bool {
    e.error_lines
        .iter()
        .any(|l| contains(&l.message, FAILED_TO_CHOWN))
        || e.stopped.iter().any(|t| {
            t.stopped_reason
                .as_deref()
                .is_some_and(|r| contains(r, FAILED_TO_CHOWN))
                || t.containers.iter().any(|c| {
                    c.reason
                        .as_deref()
                        .is_some_and(|r| contains(r, FAILED_TO_CHOWN))
                })
        })
}

/// Tasks end because their essential container exits, or exit non-zero.
pub fn crashing(e: &RestartEvidence) -> bool {
    e.stopped.iter().any(|t| {
        t.stop_code.as_deref() == Some("EssentialContainerExited")
            || t.stopped_reason
                .as_deref()
                .is_some_and(|r| contains(r, ESSENTIAL_EXITED))
            || t.containers
                .iter()
                .any(|c| c.exit_code.is_some_and(|x| x != 0))
    }) || e
        .state
        .iter()
        .flat_map(|s| &s.events)
        .any(|ev| contains(&ev.message, ESSENTIAL_EXITED))
}

/// Every container instance has its agent disconnected (none at all counts too).
pub fn no_connected_agent(e: &RestartEvidence) -> bool {
    e.instances_known && e.instances.iter().all(|i| i.agent_connected == Some(false))
}

/// The non-zero exit codes of the stopped containers, newest task first, without repeats.
pub fn exit_codes(e: &RestartEvidence) -> Vec<i64> {
    let mut codes = Vec::new();
    for code in e
        .stopped
        .iter()
        .flat_map(|t| &t.containers)
        .filter_map(|c| c.exit_code)
        .filter(|c| *c != 0)
    {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// `repo/cabal-imap:sha-1a2b3c4d` -> `sha-1a2b3c4d`; None for a digest or an untagged image.
pub fn image_tag(image: &str) -> Option<&str> {
    let name = image.rsplit('/').next()?;
    if image.contains('@') {
        return None;
    }
    name.rsplit_once(':').map(|(_, tag)| tag)
}

/// The configured rollback command with the previous tag; None unless every value is a plain
/// word (a tag or name that could carry shell text gives no command at all).
pub fn rollback_command(
    e: &RestartEvidence,
    config: &RestartLoopConfig,
    cluster: &str,
) -> Option<String> {
    let tag = image_tag(e.image_before.as_deref()?)?;
    let values = [
        ("{tier}", e.tier.as_str()),
        ("{previous_tag}", tag),
        ("{cluster}", cluster),
        ("{service}", e.service.as_str()),
    ];
    if !values.iter().all(|(_, v)| is_word(v)) {
        return None;
    }
    Some(
        values
            .iter()
            .fold(config.rollback_command.clone(), |text, (key, value)| {
                text.replace(key, value)
            }),
    )
}

fn counts(e: &RestartEvidence) -> String {
    match &e.state {
        Some(s) => format!(
            "{} running of {} desired ({} pending)",
            opt(s.running),
            opt(s.desired),
            opt(s.pending)
        ),
        None if e.services_known => "ECS does not know this service in the cluster".into(),
        None => "its counts are unknown".into(),
    }
}

fn opt(n: Option<i64>) -> String {
    n.map_or_else(|| "?".into(), |n| n.to_string())
}

fn free_room(e: &RestartEvidence) -> String {
    if !e.instances_known {
        return "container instances unknown".into();
    }
    let free: Vec<String> = e
        .instances
        .iter()
        .map(|i| {
            format!(
                "{} {} CPU/{} MiB free",
                i.ec2_instance_id.as_deref().unwrap_or(&i.id),
                opt(i.remaining.cpu),
                opt(i.remaining.memory)
            )
        })
        .collect();
    if free.is_empty() {
        "no container instance in the cluster".into()
    } else {
        free.join(", ")
    }
}

/// The verdict for a configured service.
pub fn verdict(e: &RestartEvidence, config: &Config) -> RestartLoopVerdict {
    let t = &config.restart_loop;
    let missing = e.failed.len();
    let crash = crashing(e);
    let image_changed = e.images_known && e.image_now != e.image_before;
    let (cause, action, mut summary) = if unable_to_place(e) {
        (
            RestartLoopCause::Capacity,
            Action::ScaleCluster,
            format!(
                "ECS is unable to place {}'s tasks: {}. Scale the cluster's auto scaling group up by one (or a larger instance type when memory is short).",
                e.service,
                free_room(e)
            ),
        )
    } else if chown_failure(e) {
        (
            RestartLoopCause::EfsPermission,
            Action::FixEfsOwnership,
            format!(
                "{}'s container fails to chown its EFS files: the access point's owner does not match the image's user; fix the ownership rather than the image.",
                e.service
            ),
        )
    } else if e.below_desired.len() >= t.cluster_wide_services || no_connected_agent(e) {
        let why = if no_connected_agent(e) && !e.instances.is_empty() {
            "no container instance has its ECS agent connected".to_string()
        } else if e.instances.is_empty() && e.instances_known {
            "the cluster has no container instance".to_string()
        } else {
            format!(
                "{} services are below their desired count ({})",
                e.below_desired.len(),
                e.below_desired.join(", ")
            )
        };
        (
            RestartLoopCause::ClusterWide,
            Action::InvestigateCluster,
            format!(
                "Not {} alone: {why}. Suspect the cluster (instance role, EFS, network), not the service.",
                e.service
            ),
        )
    } else if crash && image_changed {
        (
            RestartLoopCause::ImageRegression,
            Action::Rollback,
            format!(
                "{}'s tasks crash since its image changed from {} to {}: roll back to the previous tag.",
                e.service,
                e.image_before.as_deref().unwrap_or("?"),
                e.image_now.as_deref().unwrap_or("?")
            ),
        )
    } else if crash {
        let same = if e.images_known {
            "with the same image as the previous revision"
        } else {
            "(whether the image changed is unknown)"
        };
        (
            RestartLoopCause::CrashLoop,
            Action::Investigate,
            format!(
                "{}'s tasks keep exiting {same}: read the stopped reason and the error lines.",
                e.service
            ),
        )
    } else {
        (
            RestartLoopCause::Unknown,
            Action::Investigate,
            format!(
                "Neither a crash, a placement failure nor a cluster-wide problem shows for {}.",
                e.service
            ),
        )
    };
    summary.push_str(&format!(" The service has {}.", counts(e)));
    if missing > 0 {
        summary.push_str(&format!(" {missing} piece(s) of evidence missing."));
    }
    let confidence = match cause {
        RestartLoopCause::Unknown => Confidence::Low,
        RestartLoopCause::CrashLoop if !e.images_known => Confidence::Medium,
        _ if missing == 0 => Confidence::High,
        _ if missing >= 3 => Confidence::Low,
        _ => Confidence::Medium,
    };
    let next_command = (action == Action::Rollback)
        .then(|| rollback_command(e, t, &config.cabalmail.cluster))
        .flatten();
    RestartLoopVerdict {
        service: e.service.clone(),
        cause,
        action,
        confidence,
        summary,
        next_command,
        exit_codes: exit_codes(e),
        stopped_reason: e.stopped.first().and_then(|t| t.stopped_reason.clone()),
        image_now: e.image_now.clone(),
        image_before: e.image_before.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::{
        ContainerInstanceSnapshot, LogEvent, Resources, ServiceEvent, ServiceSnapshot,
        StoppedContainer, StoppedTask,
    };

    fn crashed(exit: i64, reason: &str) -> StoppedTask {
        StoppedTask {
            id: "9f".into(),
            task_definition: Some("cabal-imap:42".into()),
            stopped_at: None,
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some(reason.into()),
            containers: vec![StoppedContainer {
                name: "imap".into(),
                exit_code: Some(exit),
                reason: None,
                image: None,
            }],
        }
    }

    fn instance(agent: bool, cpu: i64, mem: i64) -> ContainerInstanceSnapshot {
        ContainerInstanceSnapshot {
            id: "ci".into(),
            ec2_instance_id: Some("i-0abc".into()),
            status: Some("ACTIVE".into()),
            agent_connected: Some(agent),
            remaining: Resources {
                cpu: Some(cpu),
                memory: Some(mem),
            },
            registered: Resources::default(),
        }
    }

    fn base() -> RestartEvidence {
        RestartEvidence {
            service: "cabal-imap".into(),
            tier: "imap".into(),
            state: Some(ServiceSnapshot {
                desired: Some(1),
                running: Some(0),
                pending: Some(0),
                ..ServiceSnapshot::default()
            }),
            services_known: true,
            below_desired: vec!["cabal-imap".into()],
            stopped_known: true,
            images_known: true,
            image_now: Some("r/cabal-imap:sha-2".into()),
            image_before: Some("r/cabal-imap:sha-2".into()),
            instances: vec![instance(true, 1024, 2000)],
            instances_known: true,
            logs_known: true,
            ..RestartEvidence::default()
        }
    }

    fn event(message: &str) -> ServiceEvent {
        ServiceEvent {
            created_at: None,
            message: message.into(),
        }
    }

    #[test]
    fn a_crash_after_an_image_change_is_a_rollback_with_the_previous_tag() {
        let mut e = base();
        e.stopped = vec![crashed(1, "Essential container in task exited")];
        e.image_before = Some("123.dkr.ecr.us-east-1.amazonaws.com/cabal-imap:sha-1a2b3c4d".into());
        let v = verdict(&e, &Config::default());
        assert_eq!(
            (v.cause, v.action),
            (RestartLoopCause::ImageRegression, Action::Rollback)
        );
        assert_eq!(v.confidence, Confidence::High);
        assert_eq!(
            v.next_command.as_deref(),
            Some(".github/scripts/deploy-ecs-service.sh imap sha-1a2b3c4d cabal-mail cabal-imap")
        );
        assert_eq!(v.exit_codes, [1]);
    }

    #[test]
    fn a_crash_with_the_same_image_is_a_crash_loop() {
        let mut e = base();
        e.stopped = vec![
            crashed(137, "Essential container in task exited"),
            crashed(1, "x"),
        ];
        let v = verdict(&e, &Config::default());
        assert_eq!(
            (v.cause, v.action),
            (RestartLoopCause::CrashLoop, Action::Investigate)
        );
        assert_eq!(v.exit_codes, [137, 1]);
        assert_eq!(v.next_command, None);
        e.images_known = false;
        assert_eq!(
            verdict(&e, &Config::default()).confidence,
            Confidence::Medium
        );
    }

    #[test]
    fn unable_to_place_is_capacity_before_anything_else() {
        let mut e = base();
        e.stopped = vec![crashed(1, "Essential container in task exited")];
        e.state.as_mut().unwrap().events = vec![event(
            "(service cabal-imap) was unable to place a task because no container instance met all of its requirements.",
        )];
        e.instances = vec![instance(true, 0, 12)];
        let v = verdict(&e, &Config::default());
        assert_eq!(
            (v.cause, v.action),
            (RestartLoopCause::Capacity, Action::ScaleCluster)
        );
        assert!(v.summary.contains("0 CPU/12 MiB free"), "{}", v.summary);
    }

    #[test]
    fn failed_to_chown_is_efs_permission() {
        let mut e = base();
        e.stopped = vec![crashed(1, "Essential container in task exited")];
        e.error_lines = vec![LogEvent {
            timestamp: 0,
            message: "chown: /data: Operation not permitted; FATAL: failed to chown /data".into(),
            log_stream: "s".into(),
        }];
        let v = verdict(&e, &Config::default());
        assert_eq!(
            (v.cause, v.action),
            (RestartLoopCause::EfsPermission, Action::FixEfsOwnership)
        );
    }

    #[test]
    fn several_services_below_desired_or_no_agent_is_the_cluster() {
        let mut e = base();
        e.stopped = vec![crashed(1, "Essential container in task exited")];
        e.below_desired = vec![
            "cabal-imap".into(),
            "cabal-grafana".into(),
            "cabal-ntfy".into(),
        ];
        let v = verdict(&e, &Config::default());
        assert_eq!(
            (v.cause, v.action),
            (RestartLoopCause::ClusterWide, Action::InvestigateCluster)
        );
        assert!(v.summary.contains("3 services"), "{}", v.summary);
        let mut e = base();
        e.instances = vec![instance(false, 1024, 2000)];
        assert_eq!(
            verdict(&e, &Config::default()).cause,
            RestartLoopCause::ClusterWide
        );
        // One service below, agents fine, no crash: nothing to go on.
        let v = verdict(&base(), &Config::default());
        assert_eq!(
            (v.cause, v.confidence),
            (RestartLoopCause::Unknown, Confidence::Low)
        );
    }

    #[test]
    fn missing_evidence_lowers_confidence() {
        let mut e = base();
        e.stopped = vec![crashed(1, "Essential container in task exited")];
        e.failed = vec![("container-instances".into(), "AccessDenied".into())];
        let v = verdict(&e, &Config::default());
        assert_eq!(v.confidence, Confidence::Medium);
        assert!(v.summary.contains("1 piece(s) of evidence missing"));
    }

    #[test]
    fn a_hostile_tag_or_digest_gives_no_command() {
        let mut e = base();
        e.stopped = vec![crashed(1, "Essential container in task exited")];
        for image in [
            "r/cabal-imap:sha-1;rm -rf /",
            "r/cabal-imap:$(id)",
            "r/cabal-imap@sha256:abcd",
            "r/cabal-imap",
            "r/cabal-imap:-x",
        ] {
            e.image_before = Some(image.into());
            let v = verdict(&e, &Config::default());
            assert_eq!(v.action, Action::Rollback, "{image}");
            assert_eq!(v.next_command, None, "{image}");
        }
        assert_eq!(image_tag("host:5000/cabal-imap:sha-1"), Some("sha-1"));
        assert_eq!(image_tag("host:5000/cabal-imap"), None);
    }
}
