//! The ECS Exec probe's own types: the targets (every task of a tier, as task discovery found
//! it), the result per task in the replay-snapshot shape (`docs/contracts.md`, "Replay
//! snapshot": `{"task", "probe", "output", "exit_status", "error"}`), and the fan-out that runs
//! one command in every task of every tier at once. How one command runs in one task is the
//! `ExecProbe` implementation's business (ECS Exec in `aws::probes`, the snapshot in `replay`);
//! parsing the `mailq` text is the `sendmail` module's.

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::tasks::task_id;

/// The probe name of the mail-queue command in the snapshot.
pub const MAILQ_PROBE: &str = "mailq";

/// The line that separates two commands' outputs in one ECS Exec session: the first command's
/// output, this mark with the second's probe name and the first's exit status, then the second's
/// output. One session per task instead of two (the follow-up checks ride with `mailq`), and the
/// snapshot still holds one record per probe.
pub const SECTION_MARK: &str = "__CABAL_TRIAGE_SECTION__";

/// Shell text that runs `first`, prints the section line naming `probe`, then runs `second`.
pub fn with_section(first: &str, probe: &str, second: &str) -> String {
    format!("{first}\nprintf '\\n{SECTION_MARK} {probe} %s\\n' \"$?\"\n{second}")
}

/// The probe named by the section line of a command built by `with_section`.
pub fn section_of(command: &str) -> Option<&str> {
    let (_, after) = command.split_once(&format!("{SECTION_MARK} "))?;
    let name = after.split_whitespace().next()?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(name)
}

/// An output split at its section line: the first command's output (as it printed it), its
/// exit status, and the named second section's output; None when there is no section line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sections {
    pub first: String,
    pub first_status: Option<i32>,
    pub probe: String,
    pub second: String,
}

/// Splits an output of a `with_section` command (any text: never panics).
pub fn split_sections(output: &str) -> Option<Sections> {
    let at = output.find(&format!("\n{SECTION_MARK} "))?;
    // The section line's own leading line break (CR LF through the agent's terminal) is ours.
    let first = &output[..at];
    let first = first.strip_suffix('\r').unwrap_or(first);
    let rest = &output[at + 1..];
    let (line, second) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut words = line.trim_end_matches('\r').split_whitespace().skip(1);
    let probe = words.next()?.to_string();
    let first_status = words.next().and_then(|s| s.parse().ok());
    Some(Sections {
        first: first.to_string(),
        first_status,
        probe,
        second: second.to_string(),
    })
}

/// The output `split_sections` reads back as these parts (a replay rebuilds a session's output
/// from its two records).
pub fn join_sections(first: &str, first_status: Option<i32>, probe: &str, second: &str) -> String {
    let status = first_status.map_or_else(|| "?".to_string(), |s| s.to_string());
    format!("{first}\n{SECTION_MARK} {probe} {status}\n{second}")
}

/// One running task, as task discovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTarget {
    /// Task ARN or id.
    pub task: String,
    /// `enableExecuteCommand` on the task: without it ECS refuses, so the call is not made.
    pub exec_enabled: bool,
}

/// The tasks of one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTargets {
    pub tier: String,
    pub cluster: String,
    pub container: String,
    pub tasks: Vec<TaskTarget>,
}

/// One task's result, in the replay-snapshot shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecProbeResult {
    /// The task id (the last part of an ARN).
    pub task: String,
    pub probe: String,
    /// Raw output as received (CR LF and all), without the exit-status line; `None` on error.
    pub output: Option<String>,
    /// `None` when unknown (error, or the session ended without the exit-status line).
    pub exit_status: Option<i32>,
    /// Operator-readable text when ECS Exec failed.
    pub error: Option<String>,
    /// The output went past `exec.output_cap_bytes` and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The deadline ended it (for the report's `timed_out` step outcome).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl ExecProbeResult {
    /// A result for `task` (an ARN or id) that failed with `error`.
    pub fn failed(task: &str, probe: &str, error: String, timed_out: bool) -> ExecProbeResult {
        ExecProbeResult {
            task: task_id(task).to_string(),
            probe: probe.to_string(),
            output: None,
            exit_status: None,
            error: Some(error),
            truncated: false,
            timed_out,
        }
    }
}

/// Runs `run_one` in every task of every tier at once and collects the results keyed by tier,
/// tasks in the order given. A task without ECS Exec enabled gets its error without a call.
pub async fn fan_out<'a, F, Fut>(
    tiers: &'a [TierTargets],
    probe: &str,
    run_one: F,
) -> BTreeMap<String, Vec<ExecProbeResult>>
where
    F: Fn(&'a TierTargets, &'a TaskTarget) -> Fut,
    Fut: Future<Output = ExecProbeResult>,
{
    let run_one = &run_one;
    let jobs = tiers.iter().flat_map(|tier| {
        tier.tasks.iter().map(move |target| async move {
            let result = if target.exec_enabled {
                run_one(tier, target).await
            } else {
                ExecProbeResult::failed(
                    &target.task,
                    probe,
                    format!(
                        "ECS Exec is not enabled on task {}: start the tier's tasks with enableExecuteCommand=true",
                        task_id(&target.task)
                    ),
                    false,
                )
            };
            (tier.tier.clone(), result)
        })
    });
    let mut by_tier: BTreeMap<String, Vec<ExecProbeResult>> = tiers
        .iter()
        .map(|tier| (tier.tier.clone(), Vec::new()))
        .collect();
    for (tier, result) in join_all(jobs).await {
        by_tier.entry(tier).or_default().push(result);
    }
    by_tier
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_as_printed_and_join_back() {
        let command = with_section("mailq | tail -1", "egress", "python3 -c x");
        assert_eq!(section_of(&command), Some("egress"));
        assert!(command.contains("printf '\\n__CABAL_TRIAGE_SECTION__ egress %s\\n' \"$?\""));
        assert_eq!(section_of("mailq | tail -1"), None);
        // Through the agent's terminal (CR LF) and without it.
        for (output, first) in [
            (
                "Total requests: 42\r\n\r\n__CABAL_TRIAGE_SECTION__ egress 0\r\ndns=ok 1.2.3.4\r\ntcp=ok\r\n",
                "Total requests: 42\r\n",
            ),
            (
                "Total requests: 42\n\n__CABAL_TRIAGE_SECTION__ egress 0\ndns=ok 1.2.3.4\ntcp=ok\n",
                "Total requests: 42\n",
            ),
        ] {
            let parts = split_sections(output).unwrap();
            assert_eq!(parts.first, first);
            assert_eq!((parts.first_status, parts.probe.as_str()), (Some(0), "egress"));
            assert!(parts.second.starts_with("dns=ok 1.2.3.4"));
            let joined = join_sections(&parts.first, parts.first_status, &parts.probe, &parts.second);
            assert_eq!(split_sections(&joined).unwrap(), parts);
        }
        assert_eq!(split_sections("Total requests: 1\n"), None);
        assert_eq!(split_sections("\n__CABAL_TRIAGE_SECTION__ "), None);
        let odd = split_sections("x\n__CABAL_TRIAGE_SECTION__ local nope").unwrap();
        assert_eq!((odd.first_status, odd.second.as_str()), (None, ""));
    }

    proptest::proptest! {
        #[test]
        fn any_output_splits_without_panicking(text in "\\PC{0,200}", cut in 0usize..200) {
            let _ = split_sections(&text);
            let cut = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let marked = format!("{}\n{SECTION_MARK} {}", &text[..cut], &text[cut..]);
            let _ = split_sections(&marked);
            let _ = section_of(&marked);
        }
    }

    #[test]
    fn snapshot_shape() {
        let result = ExecProbeResult {
            task: "0a1b".into(),
            probe: "mailq".into(),
            output: Some("Total requests: 42\r\n".into()),
            exit_status: Some(0),
            error: None,
            truncated: false,
            timed_out: false,
        };
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            serde_json::json!({"task": "0a1b", "probe": "mailq",
                "output": "Total requests: 42\r\n", "exit_status": 0, "error": null})
        );
    }

    fn tier(name: &str, tasks: &[(&str, bool)]) -> TierTargets {
        TierTargets {
            tier: name.into(),
            cluster: "cabal-mail".into(),
            container: name.into(),
            tasks: tasks
                .iter()
                .map(|(id, exec_enabled)| TaskTarget {
                    task: format!("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/{id}"),
                    exec_enabled: *exec_enabled,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn fan_out_runs_every_enabled_task_and_keeps_the_order() {
        let tiers = [
            tier("smtp-out", &[("a1", true), ("off", false), ("a2", true)]),
            tier("imap", &[]),
        ];
        let ran = std::sync::Mutex::new(Vec::new());
        let results = fan_out(&tiers, "mailq", |tier, target| {
            ran.lock().unwrap().push(task_id(&target.task).to_string());
            let task = task_id(&target.task).to_string();
            let tier = tier.tier.clone();
            async move {
                ExecProbeResult {
                    task,
                    probe: "mailq".into(),
                    output: Some(format!("from {tier}")),
                    exit_status: Some(0),
                    error: None,
                    truncated: false,
                    timed_out: false,
                }
            }
        })
        .await;
        assert_eq!(
            *ran.lock().unwrap(),
            ["a1", "a2"],
            "no call for the task without exec"
        );
        let out = &results["smtp-out"];
        assert_eq!(
            out.iter().map(|r| r.task.as_str()).collect::<Vec<_>>(),
            ["a1", "off", "a2"]
        );
        assert_eq!(out[0].output.as_deref(), Some("from smtp-out"));
        assert!(out[1]
            .error
            .as_deref()
            .unwrap()
            .contains("not enabled on task off"));
        assert!(!out[1].timed_out);
        assert!(
            results["imap"].is_empty(),
            "a tier without tasks is still listed"
        );
    }
}
