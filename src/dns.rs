//! The DNS edge: blocklist lookups through hickory-resolver (the system resolver or
//! `dnsbl.nameservers`), each NAT public IP in each configured zone, all in parallel, each under
//! the deadline. It implements `probe::DnsblCheck` and returns the raw answers (the replay
//! snapshot's `dnsbl` object) and the errors; `crate::dnsbl` (pure) makes the query names and
//! interprets the answers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::config::DnsblConfig;
use crate::dnsbl::{query_name, query_zone};
use crate::probe::{DnsblCheck, DnsblOutcome};
use crate::timing::Deadline;

/// Why the resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DnsblError {
    #[error("dnsbl.nameservers: {0:?} is not ip:port")]
    BadNameserver(String),
    #[error("cannot read the system resolver configuration (/etc/resolv.conf): {0}; set dnsbl.nameservers")]
    SystemConfig(String),
}

/// Lookups of some IPs in the configured zones, with one resolver.
pub struct DnsblProbe {
    resolver: TokioResolver,
    zones: Vec<String>,
    deadline: Duration,
    /// Spamhaus Data Query Service key (`dnsbl.spamhaus_dqs_key_file`): kept out of every answer
    /// and error.
    dqs_key: Option<String>,
}

impl DnsblProbe {
    pub fn new(config: &DnsblConfig, deadline: Duration) -> Result<DnsblProbe, DnsblError> {
        let mut builder = if config.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| DnsblError::SystemConfig(e.to_string()))?
        } else {
            let mut servers = Vec::new();
            for text in &config.nameservers {
                let addr: SocketAddr = text
                    .parse()
                    .map_err(|_| DnsblError::BadNameserver(text.clone()))?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                servers.push(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let options = builder.options_mut();
        options.timeout = deadline;
        options.attempts = 1;
        options.cache_size = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsblError::SystemConfig(e.to_string()))?;
        Ok(DnsblProbe {
            resolver,
            zones: config.zones.clone(),
            deadline,
            dqs_key: config
                .spamhaus_dqs_key
                .as_ref()
                .map(|k| k.expose().to_string()),
        })
    }

    /// Checks every IP against every zone, concurrently.
    pub async fn check(&self, ips: &[IpAddr]) -> DnsblOutcome {
        let mut outcome = DnsblOutcome::default();
        let mut lookups = Vec::new();
        for ip in ips {
            if ip.is_ipv6() {
                outcome.skipped.insert(
                    ip.to_string(),
                    "IPv6 is not checked: the configured blocklists list IPv4 addresses".into(),
                );
                continue;
            }
            for zone in &self.zones {
                // Answers and errors stay under the configured zone's name.
                let queried = query_zone(zone, self.dqs_key.as_deref());
                let Some(name) = query_name(*ip, &queried) else {
                    continue;
                };
                lookups
                    .push(async move { (ip.to_string(), zone.clone(), self.lookup(&name).await) });
            }
        }
        for (ip, zone, result) in join_all(lookups).await {
            match result {
                Ok(codes) => {
                    outcome.answers.entry(ip).or_default().insert(zone, codes);
                }
                Err(error) => {
                    let error = match &self.dqs_key {
                        Some(key) => error.replace(key.as_str(), "<dqs-key>"),
                        None => error,
                    };
                    outcome.errors.entry(ip).or_default().insert(zone, error);
                }
            }
        }
        outcome
    }

    async fn lookup(&self, name: &str) -> Result<Vec<String>, String> {
        let lookup =
            tokio::time::timeout(self.deadline, self.resolver.lookup(name, RecordType::A)).await;
        match lookup {
            Err(_) => Err(format!("timed out after {} ms", self.deadline.as_millis())),
            Ok(Ok(found)) => Ok(found
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect()),
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(no_records))))
                if no_records.response_code == ResponseCode::NXDomain
                    || no_records.response_code == ResponseCode::NoError =>
            {
                Ok(Vec::new())
            }
            Ok(Err(NetError::Dns(DnsError::ResponseCode(code)))) => Err(format!("answered {code}")),
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(no_records)))) => {
                Err(format!("answered {}", no_records.response_code))
            }
            Ok(Err(error)) => Err(error.to_string()),
        }
    }
}

/// `probe::DnsblCheck` through a resolver built per check (its per-query timeout is the
/// configured one, cut to what the runbook has left).
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
