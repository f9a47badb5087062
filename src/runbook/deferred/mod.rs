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
use crate::report::Report;

pub const ALERTNAME: &str = "SendmailDeferredSpike";
pub const NAME: &str = "sendmail-deferred-spike";

pub struct DeferredSpike {
    env: Arc<Environment>,
    spec: SpikeSpec,
}

impl DeferredSpike {
    pub fn new(env: Arc<Environment>) -> DeferredSpike {
        let tiers = env
            .config
            .cabalmail
            .tiers_in_order()
            .map(|(name, _)| name.to_string())
            .collect();
        let mut plans = vec![ExecPlan {
            probe: MAILQ,
            command: env.config.exec.mailq_command.clone(),
            tiers,
        }];
        // The runbook's follow-up checks, beside mailq (each its own session, so a check that
        // waits for its timeout never holds up the queue's answer).
        for (tier, probe, command) in followup::commands(&env.config.runbooks) {
            if env.config.cabalmail.tiers.contains_key(tier) {
                plans.push(ExecPlan {
                    probe,
                    command,
                    tiers: vec![tier.to_string()],
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
