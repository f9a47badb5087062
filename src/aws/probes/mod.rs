//! The AWS implementations of the probe traits (`crate::probe`): task discovery (ECS), ECS Exec,
//! the CloudWatch Logs scan and the NAT lookup (EC2), and the production `ProbeSet` built from
//! them. The probe side speaks probe types only; the conversion from AWS's answers and errors
//! happens here.

pub mod ecs_service;
pub mod exec;
pub mod imap_auth;
pub mod logs;
pub mod nat;
pub mod tasks;

use std::sync::Arc;

use crate::aws::exec::EcsSessionStarter;
use crate::aws::{AwsClients, AwsError};
use crate::config::Config;
use crate::probe::{DnsblCheck, ProbeError, ProbeSet};

pub use ecs_service::AwsServiceProbe;
pub use exec::AwsExecProbe;
pub use imap_auth::AwsImapAuthProbe;
pub use logs::AwsLogScan;
pub use nat::AwsNatProbe;
pub use tasks::AwsTaskDiscovery;

impl From<AwsError> for ProbeError {
    fn from(e: AwsError) -> Self {
        ProbeError {
            timed_out: e.is_timeout(),
            message: e.to_string(),
        }
    }
}

/// The production probes: ECS, ECS Exec, CloudWatch Logs and EC2 through `clients`, and the
/// DNSBL check it is given (the DNS edge, `crate::dns`).
pub fn probe_set(clients: &AwsClients, config: &Config, dnsbl: Arc<dyn DnsblCheck>) -> ProbeSet {
    let starter = Arc::new(EcsSessionStarter::new(
        clients.ecs.clone(),
        clients.endpoints.ecs.clone(),
        config.probes.throttle_backoff(),
    ));
    ProbeSet {
        tasks: Arc::new(AwsTaskDiscovery::new(clients, config)),
        exec: Arc::new(AwsExecProbe::new(starter, config.exec.clone())),
        logs: Arc::new(AwsLogScan::new(clients, config)),
        nat: Arc::new(AwsNatProbe::new(clients, config)),
        dnsbl,
        services: Arc::new(AwsServiceProbe::new(clients, config)),
        imap_auth: Arc::new(AwsImapAuthProbe::new(clients, config)),
        // Live, the history comes from the ledger with each request.
        recorded_history: None,
    }
}
