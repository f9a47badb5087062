//! The production implementations of `ExecProbe` (ECS Exec through `aws::exec`) and
//! `DnsblCheck` (hickory-resolver through `probe::dnsbl`), each bounded by the deadline the
//! runbook gives it on top of its own configured limits.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::dnsbl::{DnsblOutcome, DnsblProbe};
use super::{DnsblCheck, ExecProbe};
use crate::aws::exec::probe::{run_everywhere, task_id, ExecProbeResult, TierTargets};
use crate::aws::exec::ExecSessionStarter;
use crate::config::{DnsblConfig, ExecConfig};
use crate::timing::Deadline;

/// ECS Exec in every given task, in parallel.
pub struct AwsExecProbe {
    starter: Arc<dyn ExecSessionStarter>,
    config: ExecConfig,
}

impl AwsExecProbe {
    pub fn new(starter: Arc<dyn ExecSessionStarter>, config: ExecConfig) -> AwsExecProbe {
        AwsExecProbe { starter, config }
    }
}

#[async_trait]
impl ExecProbe for AwsExecProbe {
    async fn run(
        &self,
        probe: &str,
        command: &str,
        tier: &TierTargets,
        deadline: Deadline,
    ) -> Vec<ExecProbeResult> {
        // Each task's own deadline is the configured one, cut to what the runbook has left.
        let mut config = self.config.clone();
        let remaining_secs = deadline.remaining().as_secs_f64().ceil() as u64;
        config.task_deadline_secs = config.task_deadline_secs.min(remaining_secs.max(1));
        let tiers = std::slice::from_ref(tier);
        let run = run_everywhere(self.starter.as_ref(), command, probe, &config, tiers);
        match tokio::time::timeout(deadline.remaining(), run).await {
            Ok(mut by_tier) => by_tier.remove(&tier.tier).unwrap_or_default(),
            Err(_) => tier
                .tasks
                .iter()
                .map(|target| ExecProbeResult {
                    task: task_id(&target.task).to_string(),
                    probe: probe.to_string(),
                    output: None,
                    exit_status: None,
                    error: Some(format!(
                        "ECS Exec did not finish within the triage's remaining {} ms",
                        deadline.budget.as_millis()
                    )),
                    truncated: false,
                    timed_out: true,
                })
                .collect(),
        }
    }
}

/// DNSBL lookups through hickory-resolver (the system resolver or `dnsbl.nameservers`).
pub struct ResolverDnsbl {
    config: DnsblConfig,
}

impl ResolverDnsbl {
    pub fn new(config: DnsblConfig) -> ResolverDnsbl {
        ResolverDnsbl { config }
    }
}

#[async_trait]
impl DnsblCheck for ResolverDnsbl {
    async fn check(&self, ips: &[IpAddr], deadline: Deadline) -> DnsblOutcome {
        let per_query = self.config.timeout().min(deadline.remaining());
        match DnsblProbe::new(&self.config, per_query) {
            Ok(probe) => probe.check(ips).await,
            Err(error) => {
                let mut outcome = DnsblOutcome::default();
                for ip in ips {
                    let zones = self
                        .config
                        .zones
                        .iter()
                        .map(|zone| (zone.clone(), error.to_string()))
                        .collect();
                    outcome.errors.insert(ip.to_string(), zones);
                }
                outcome
            }
        }
    }
}
