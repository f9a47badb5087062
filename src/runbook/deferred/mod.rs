//! `SendmailDeferredSpike`: which tier defers, why, whether it is us, what to do. In parallel:
//! each tier's queue depth (`mailq` over ECS Exec in every task), each tier's deferred lines in
//! the window (CloudWatch Logs), the NAT's state, then the DNSBL check of the NAT's public IPs.
//! The verdict comes from `rules`.

pub mod egress;
pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;

use super::environment::Environment;
use super::evidence::MAILQ;
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
        let spec = SpikeSpec {
            alertname: ALERTNAME,
            runbook: NAME,
            plans: vec![ExecPlan {
                probe: MAILQ,
                command: env.config.exec.mailq_command.clone(),
                tiers,
            }],
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
