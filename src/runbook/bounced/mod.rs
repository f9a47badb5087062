//! `SendmailBouncedSpike`: which tier bounces and why. In parallel: each tier's `dsn=5` lines in
//! the window (CloudWatch Logs), the virtusertable's line count and age in every smtp-in task
//! (ECS Exec, the fixed `runbooks.virtusertable_command`), the NAT and the DNSBL check of its
//! public IPs (a listed IP explains smtp-out bounces). The verdict comes from `rules`.

pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;

use super::environment::Environment;
use super::evidence::VIRTUSERTABLE;
use super::gather::ExecPlan;
use super::spike::{run, SpikeSpec};
use super::{Runbook, RunbookError, TriageRequest};
use crate::report::Report;

pub const ALERTNAME: &str = "SendmailBouncedSpike";
pub const NAME: &str = "sendmail-bounced-spike";

pub struct BouncedSpike {
    env: Arc<Environment>,
    spec: SpikeSpec,
}

impl BouncedSpike {
    pub fn new(env: Arc<Environment>) -> BouncedSpike {
        let tiers = env
            .config
            .cabalmail
            .tiers
            .contains_key("smtp-in")
            .then(|| "smtp-in".to_string())
            .into_iter()
            .collect();
        let spec = SpikeSpec {
            alertname: ALERTNAME,
            runbook: NAME,
            plans: vec![ExecPlan {
                probe: VIRTUSERTABLE,
                command: env.config.runbooks.virtusertable_command.clone(),
                tiers,
                section: None,
            }],
            verdict: rules::verdict,
        };
        BouncedSpike { env, spec }
    }
}

#[async_trait]
impl Runbook for BouncedSpike {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn triage(&self, request: TriageRequest) -> Result<Report, RunbookError> {
        run(&self.env, &self.spec, request).await
    }
}
