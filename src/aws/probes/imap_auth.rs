//! The AWS implementation of `probe::ImapAuthProbe`: FilterLogEvents pages of the imap log
//! group up to the cap, DescribeNetworkInterfaces for the failing sources (chunks of 200
//! addresses, side by side), DescribeParameters for the master-password parameter. Each call is
//! retried on throttling within its deadline.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;

use crate::aws::imap_sources::{
    describe_network_interfaces, ADDRESSES_PER_CALL, DESCRIBE_NETWORK_INTERFACES,
};
use crate::aws::logs::{filter_log_events_page, FilterQuery, FILTER_LOG_EVENTS};
use crate::aws::ssm::{describe_parameter, DESCRIBE_PARAMETERS};
use crate::aws::{retry, AwsClients};
use crate::config::Config;
use crate::probe::imap_auth::{ImapAuthProbe, LOGIN_FILTER_PATTERN};
use crate::probe::snapshot::{LogEvent, NetworkInterfaceSnapshot, ParameterSnapshot, Window};
use crate::probe::ProbeError;
use crate::timing::{Backoff, Deadline};

#[derive(Debug, Clone)]
pub struct AwsImapAuthProbe {
    clients: AwsClients,
    backoff: Backoff,
    page_limit: i32,
}

impl AwsImapAuthProbe {
    pub fn new(clients: &AwsClients, config: &Config) -> AwsImapAuthProbe {
        AwsImapAuthProbe {
            clients: clients.clone(),
            backoff: config.probes.throttle_backoff(),
            page_limit: config.probes.log_page_limit,
        }
    }
}

#[async_trait]
impl ImapAuthProbe for AwsImapAuthProbe {
    async fn login_lines(
        &self,
        log_group: &str,
        window: Window,
        max_events: usize,
        deadline: Deadline,
    ) -> Result<Vec<LogEvent>, ProbeError> {
        let query = FilterQuery {
            log_group,
            start_ms: window.from_ms(),
            end_ms: window.to_ms(),
            filter_pattern: LOGIN_FILTER_PATTERN,
            limit: self.page_limit,
        };
        let action = format!("{FILTER_LOG_EVENTS} on {log_group}");
        let endpoint = self.clients.endpoints.logs.as_deref();
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = retry::call(&action, deadline, self.backoff, || {
                filter_log_events_page(&self.clients.logs, endpoint, &query, token.clone())
            })
            .await?;
            events.extend(page.events.into_iter().map(|e| LogEvent {
                timestamp: e.timestamp,
                message: e.message,
                log_stream: e.log_stream,
            }));
            if events.len() >= max_events {
                events.truncate(max_events);
                break;
            }
            match page.next_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        Ok(events)
    }

    async fn network_interfaces(
        &self,
        ips: &[IpAddr],
        deadline: Deadline,
    ) -> Result<BTreeMap<String, NetworkInterfaceSnapshot>, ProbeError> {
        let texts: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        let endpoint = self.clients.endpoints.ec2.as_deref();
        let calls = texts.chunks(ADDRESSES_PER_CALL).map(|chunk| {
            retry::call(
                DESCRIBE_NETWORK_INTERFACES,
                deadline,
                self.backoff,
                move || describe_network_interfaces(&self.clients.ec2, endpoint, chunk),
            )
        });
        let mut found = BTreeMap::new();
        for answer in futures::future::join_all(calls).await {
            found.extend(answer?);
        }
        Ok(found)
    }

    async fn parameter(
        &self,
        name: &str,
        deadline: Deadline,
    ) -> Result<Option<ParameterSnapshot>, ProbeError> {
        let endpoint = self.clients.endpoints.ssm.as_deref();
        Ok(
            retry::call(DESCRIBE_PARAMETERS, deadline, self.backoff, || {
                describe_parameter(&self.clients.ssm, endpoint, name)
            })
            .await?,
        )
    }
}
