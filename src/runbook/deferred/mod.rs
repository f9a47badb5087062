//! `SendmailDeferredSpike`: which tier defers, why, whether it is us, what to do. In parallel:
//! each tier's queue depth (`mailq` over ECS Exec in every task) and beside it the runbook's
//! follow-up checks (`followup`: smtp-out's egress, smtp-in's relay, imap's spool and procmail),
//! each tier's deferred lines in the window (CloudWatch Logs), the NAT's state, then the DNSBL
//! check of the NAT's public IPs. The verdict comes from `rules`.

pub mod checks;
pub mod egress;
pub mod history;
pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;

use super::environment::Environment;
use super::evidence::MAILQ;
use super::followup;
use super::gather::ExecPlan;
use super::spike::{run, SpikeSpec};
use super::{Runbook, RunbookError, TriageRequest};
use crate::probe::exec::with_section;
use crate::report::Report;

pub const ALERTNAME: &str = "SendmailDeferredSpike";
pub const NAME: &str = "sendmail-deferred-spike";

pub struct DeferredSpike {
    env: Arc<Environment>,
    spec: SpikeSpec,
}

impl DeferredSpike {
    pub fn new(env: Arc<Environment>) -> DeferredSpike {
        let tiers: Vec<String> = env
            .config
            .cabalmail
            .tiers_in_order()
            .map(|(name, _)| name.to_string())
            .collect();
        // mailq in every task; in the tiers with a follow-up check, the check rides in the same
        // ECS Exec session after a section line (no second session per task: the critical path
        // and the calls stay as they were).
        let checks = followup::commands(&env.config.runbooks);
        let mailq = &env.config.exec.mailq_command;
        let (checked, plain): (Vec<String>, Vec<String>) = tiers
            .into_iter()
            .partition(|tier: &String| checks.iter().any(|(t, _, _)| t == tier));
        let mut plans = vec![ExecPlan {
            probe: MAILQ,
            command: mailq.clone(),
            tiers: plain,
            section: None,
        }];
        for tier in checked {
            if let Some((_, probe, check)) = checks.iter().find(|(t, _, _)| *t == tier) {
                plans.push(ExecPlan {
                    probe: MAILQ,
                    command: with_section(mailq, probe, check),
                    tiers: vec![tier],
                    section: Some(probe),
                });
            }
        }
        let spec = SpikeSpec {
            alertname: ALERTNAME,
            runbook: NAME,
            plans,
            verdict: rules::verdict,
        };
        DeferredSpike { env, spec }
    }
}

#[async_trait]
impl Runbook for DeferredSpike {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn triage(&self, request: TriageRequest) -> Result<Report, RunbookError> {
        run(&self.env, &self.spec, request).await
    }
}
